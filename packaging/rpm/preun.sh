# Stops the service before the package is erased (RPM %preun; $1 = 0 on erase).
if [ "$1" = 0 ] && [ -x /usr/bin/systemctl ]; then
    /usr/bin/systemctl --no-reload disable --now slurm-exporter.service >/dev/null 2>&1 || :
fi
