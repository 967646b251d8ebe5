# Creates the service user and the state directory of slurm-exporter (RPM %post).
getent group slurm-exporter >/dev/null || groupadd --system slurm-exporter
getent passwd slurm-exporter >/dev/null || useradd --system --gid slurm-exporter \
    --home-dir /var/lib/slurm-exporter --no-create-home --shell /sbin/nologin \
    --comment "SLURM Exporter" slurm-exporter
install -d -m 0700 -o slurm-exporter -g slurm-exporter /var/lib/slurm-exporter
chown root:slurm-exporter /etc/slurm-exporter /etc/slurm-exporter/slurm-exporter.toml
chmod 0750 /etc/slurm-exporter
chmod 0640 /etc/slurm-exporter/slurm-exporter.toml
if [ -x /usr/bin/systemctl ]; then /usr/bin/systemctl daemon-reload >/dev/null 2>&1 || :; fi
