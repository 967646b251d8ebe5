#!/usr/bin/env bash
# lab.sh - a REAL Slurm 22.05 cluster on one Debian bookworm machine, for the exporter's tests.
#
#   Run as root. No systemd, no Docker: every daemon is started directly and all
#   traffic stays on loopback (127.0.0.0/8 and unix sockets).
#
# Usage:
#   lab.sh start              install (if needed), configure, start everything, wait for the nodes,
#                             create the accounting (idempotent; a fast no-op when already up)
#   lab.sh status             daemons, sinfo, squeue summary; exit 0 only if slurmctld, slurmrestd
#                             and all live nodes are up
#   lab.sh submit-mix         clear the previous mix, submit a realistic job mix, wait until it settled
#   lab.sh stop               stop every lab daemon (state stays on disk; running job steps survive
#                             and are picked up again by the next start)
#   lab.sh token USER [SECS]  print a Slurm JWT (HS256) for USER, default lifespan 86400 s
#   lab.sh env                print shell exports for tests:  eval "$(lab.sh env)"
#
# Settings (env): LAB_JOB_SECS (21600: sleep of the long jobs of the mix), LAB_REST_PORT (6820),
#   LAB_MIX_TIMEOUT (300: seconds submit-mix waits for the mix to settle),
#   LAB_NODE_MODE (auto|uts|ports), LAB_APT_LOG (/tmp/slurm-lab-apt.log).
# See README.md next to this file.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N_CPU=8        # cpu-01..08   live (slurmd running)
N_DEAD=2       # cpu-09..10   defined, no slurmd -> down*
N_GPU=4        # gpu-01..04   live, fake GRES gpu:a100:4
N_HIMEM=2      # himem-01..02 live
N_XGPU=2       # xgpu-01 (untyped gpu:2), xgpu-02 (two GPU types, gpu:h100:2,gpu:h200:2)
N_ST=4         # st-01..04: live, put by submit-mix into FAIL, POWERED_DOWN, MAINT, DRAIN+POWERED_DOWN
REST_PORT="${LAB_REST_PORT:-6820}"
JOB_SECS="${LAB_JOB_SECS:-21600}"
MIX_TIMEOUT="${LAB_MIX_TIMEOUT:-300}"
APT_LOG="${LAB_APT_LOG:-/tmp/slurm-lab-apt.log}"
NODE_MODE="${LAB_NODE_MODE:-auto}"
REST_SOCK=/run/slurmrestd/slurmrestd.sock
REST_USER=slurmrest
ETC=/etc/slurm
RUN=/run/slurm
LOG=/var/log/slurm
STATE=/var/lib/slurm/slurmctld
SPOOL=/var/spool/slurmd
LABSTATE=/var/lib/slurm/lab
JWT_KEY=$STATE/jwt_hs256.key
FAKEGPU=/var/lib/slurm/fakegpu
DB_PASS=slurmlabpass
LAB_USERS="alice bob carol dave"
PKGS=(munge slurmctld slurmd slurm-client slurmrestd slurm-wlm-jwt-plugin slurmdbd mariadb-server jq curl python3)
export SLURM_CONF=$ETC/slurm.conf

log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
wait_for() { # wait_for <seconds> <description> <command...>
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS >= end)) && { log "timeout (${t}s) waiting for: $what"; return 1; }
    sleep 0.5
  done
}
pad() { printf '%02d' "$1"; }
have_config() { [[ -s $ETC/slurm.conf ]]; }
# Any Slurm client run without a config tries "configless" mode, i.e. a DNS SRV lookup that leaves
# the machine. Every client call in this script goes through a function guarded by this check.
need_config() { have_config || die "$ETC/slurm.conf is missing: run '$0 start' first"; }

# ---------------------------------------------------------------- nodes and addresses
# uts mode: every node has its own loopback address (Linux routes all of 127/8 to lo) and its slurmd
# runs in its own UTS namespace with hostname=<node>:  cpu-NN 127.0.1.N, gpu-NN 127.0.2.N, himem-NN 127.0.3.N
node_group() { case ${1%-*} in cpu) echo 1 ;; gpu) echo 2 ;; himem) echo 3 ;; xgpu) echo 4 ;; st) echo 5 ;; esac; }
node_addr() { echo "127.0.$(node_group "$1").$((10#${1#*-}))"; }
node_hostport() { # address/port slurmd of node $1 listens on (for bash's /dev/tcp)
  if [[ $NODE_MODE == uts ]]; then echo "$(node_addr "$1")/6818"; return; fi
  echo "127.0.0.1/$((17000 + 100 * $(node_group "$1") + 10#${1#*-}))"
}
live_nodes() {
  local i
  for ((i = 1; i <= N_CPU; i++)); do echo "cpu-$(pad $i)"; done
  for ((i = 1; i <= N_GPU; i++)); do echo "gpu-$(pad $i)"; done
  for ((i = 1; i <= N_HIMEM; i++)); do echo "himem-$(pad $i)"; done
  for ((i = 1; i <= N_XGPU; i++)); do echo "xgpu-$(pad $i)"; done
}
# nodes with a slurmd whose state the mix sets (FAIL, POWERED_DOWN, MAINT, DOWN): not "live"
state_nodes() { local i; for ((i = 1; i <= N_ST; i++)); do echo "st-$(pad $i)"; done; }
ST_RANGE="st-[01-$(pad $N_ST)]"
dead_nodes() { local i; for ((i = N_CPU + 1; i <= N_CPU + N_DEAD; i++)); do echo "cpu-$(pad $i)"; done; }
all_nodes() { live_nodes; dead_nodes; state_nodes; }
DEAD_RANGE="cpu-[$(pad $((N_CPU + 1)))-$(pad $((N_CPU + N_DEAD)))]"

resolve_node_mode() { # auto: keep the mode of an existing config, else uts when `unshare --uts` is allowed
  if [[ $NODE_MODE == auto ]]; then
    if [[ -s $ETC/slurm.conf ]]; then
      if grep -q '^CommunicationParameters=NoInAddrAny' $ETC/slurm.conf; then NODE_MODE=uts; else NODE_MODE=ports; fi
    elif unshare --uts true 2>/dev/null; then NODE_MODE=uts; else NODE_MODE=ports; fi
  fi
  [[ $NODE_MODE == uts || $NODE_MODE == ports ]] || die "LAB_NODE_MODE must be auto, uts or ports"
}

write_hosts() { # node names resolve locally (never via DNS): managed block in /etc/hosts
  local tmp; tmp=$(mktemp)
  sed '/^# BEGIN slurm-lab/,/^# END slurm-lab/d' /etc/hosts >"$tmp"
  [[ ! -s $tmp || -z $(tail -c1 "$tmp") ]] || echo >>"$tmp" # last line without newline
  { echo "# BEGIN slurm-lab (managed by deploy/slurm-lab/lab.sh)"
    all_nodes | while read -r n; do echo "$(node_addr "$n") $n"; done
    echo "# END slurm-lab"; } >>"$tmp"
  cmp -s "$tmp" /etc/hosts || cat "$tmp" >/etc/hosts # in place: keeps the inode (/etc/hosts may be a bind mount)
  rm -f "$tmp"
}

# ---------------------------------------------------------------- install
missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}
install_pkgs() {
  local missing; mapfile -t missing < <(missing_pkgs "${PKGS[@]}")
  ((${#missing[@]})) || return 0
  log "installing: ${missing[*]} (log: $APT_LOG)"
  export DEBIAN_FRONTEND=noninteractive
  local made_policy=0 updated=0 apt=(apt-get -o DPkg::Lock::Timeout=600 -q -y)
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then # no init system: package scripts must not start daemons
    printf '#!/bin/sh\n# temporary, written by deploy/slurm-lab/lab.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    log "apt-get update (no package lists)"
    "${apt[@]}" update >>"$APT_LOG" 2>&1 || { ((made_policy)) && rm -f /usr/sbin/policy-rc.d; die "apt-get update failed (see $APT_LOG)"; }
    updated=1
  fi
  if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1; then
    if ((updated == 0)); then
      log "install failed with the current package lists: apt-get update and retry"
      "${apt[@]}" update >>"$APT_LOG" 2>&1 &&
        "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1 && updated=2
    fi
    if ((updated != 2)); then
      ((made_policy)) && rm -f /usr/sbin/policy-rc.d
      tail -20 "$APT_LOG" >&2; die "apt-get install failed (see $APT_LOG)"
    fi
  fi
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  mapfile -t missing < <(missing_pkgs "${PKGS[@]}")
  ((${#missing[@]} == 0)) || die "still missing after install: ${missing[*]}"
}

make_users() {
  getent group $REST_USER >/dev/null || groupadd --system $REST_USER
  id $REST_USER >/dev/null 2>&1 || useradd --system -g $REST_USER -d /nonexistent -s /usr/sbin/nologin $REST_USER
  local u
  for u in $LAB_USERS; do id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"; done
}

# ---------------------------------------------------------------- munge, mariadb
start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating munge key"
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force
    else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
  fi
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  wait_for 15 munged bash -c 'munge -n | unmunge' || die "munged did not start"
}

start_mariadb() {
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  local cnf=/etc/mysql/mariadb.conf.d/99-slurm-lab.cnf
  cat >$cnf.new <<'EOF'
# written by deploy/slurm-lab/lab.sh: loopback only, small footprint
[mysqld]
bind-address = 127.0.0.1
skip-name-resolve
innodb_buffer_pool_size = 256M
innodb_lock_wait_timeout = 900
max_connections = 100
EOF
  if cmp -s $cnf.new $cnf; then rm -f $cnf.new; else mv $cnf.new $cnf; fi
  if ! mysqladmin --protocol=socket ping >/dev/null 2>&1; then
    log "starting mariadb (mysqld_safe)"
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql >>"$LOG/mariadb-install.log" 2>&1
    (cd / && exec setsid -f /usr/bin/mysqld_safe --user=mysql </dev/null >>"$LOG/mysqld_safe.out" 2>&1)
    wait_for 60 mariadb mysqladmin --protocol=socket ping || die "mariadb did not start (see /var/log/mysql, $LOG/mysqld_safe.out)"
  fi
  if ! pid_alive $RUN/slurmdbd.pid; then
    mysql --protocol=socket -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
      CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  fi
}

# ---------------------------------------------------------------- config
write_configs() {
  write_hosts
  install -d -o slurm -g slurm -m 0755 $RUN $LOG $STATE $SPOOL
  install -d -m 0755 $ETC $LABSTATE
  [[ -s $JWT_KEY ]] || dd if=/dev/urandom of=$JWT_KEY bs=32 count=1 2>/dev/null
  chown slurm:slurm $JWT_KEY; chmod 0600 $JWT_KEY

  local comm_params
  # uts  : each slurmd binds <its 127.0.x.y>:6818
  # ports: all slurmds on 127.0.0.1, one port each (17000 + 100*group + i)
  if [[ $NODE_MODE == uts ]]; then comm_params=NoInAddrAny,NoCtldInAddrAny; else comm_params=NoCtldInAddrAny; fi
  addr_port() { # <count> <groupidx>
    if [[ $NODE_MODE == uts ]]; then echo "NodeAddr=127.0.$2.[1-$1] Port=6818"
    else echo "NodeAddr=127.0.0.1 Port=[$((17000 + 100 * $2 + 1))-$((17000 + 100 * $2 + $1))]"; fi
  }
  addr_port_one() { # <groupidx> <i>
    if [[ $NODE_MODE == uts ]]; then echo "NodeAddr=127.0.$1.$2 Port=6818"
    else echo "NodeAddr=127.0.0.1 Port=$((17000 + 100 * $1 + $2))"; fi
  }
  local ncpu_all=$((N_CPU + N_DEAD))
  cat >$ETC/slurm.conf.new <<EOF
# generated by deploy/slurm-lab/lab.sh - one machine, many emulated nodes (one slurmd per node)
ClusterName=lab
SlurmctldHost=localhost
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
# bind slurmctld/slurmd to the address their name resolves to (127.x.y.z), not 0.0.0.0
CommunicationParameters=$comm_params
AuthType=auth/munge
CredType=cred/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
# report the configured (fake) hardware instead of the real machine's
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=60
SlurmctldTimeout=60
InactiveLimit=0
MinJobAge=600
KillWait=10
Waittime=0
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=10
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
Licenses=matlab:10,ansys:4
MaxArraySize=10001
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageEnforce=associations,limits,qos
# No gres/gpu here on purpose: like many production sites, slurmdbd and the TRES strings of jobs
# do not track GPUs, so the exporter must read them from gres_detail / tres_per_node (issue 12).
AccountingStorageTRES=cpu,mem,node,billing
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
PriorityType=priority/multifactor
PriorityDecayHalfLife=7-0
PriorityCalcPeriod=1
PriorityFavorSmall=NO
PriorityMaxAge=7-0
PriorityWeightAge=1000
PriorityWeightFairshare=10000
PriorityWeightJobSize=1000
PriorityWeightPartition=1000
PriorityWeightQOS=2000
PriorityWeightTRES=CPU=1000,Mem=2000
JobCompType=jobcomp/none
# power saving with no-op programs, for st-02 and st-04 only (submit-mix powers them down by hand;
# INFINITE would switch power saving off): every other node and partition is excluded
SuspendProgram=/bin/true
ResumeProgram=/bin/true
SuspendTime=86400
SuspendExcParts=cpu,gpu,himem,debug,xgpu
SuspendExcNodes=st-01,st-03
SuspendTimeout=5
ResumeTimeout=60

# ---- nodes: every node is its own slurmd process (slurmd -N <name>; the Debian build has MULTIPLE_SLURMD)
NodeName=DEFAULT State=UNKNOWN
NodeName=cpu-[01-$(pad $ncpu_all)] $(addr_port $ncpu_all 1) CPUs=32 Boards=1 SocketsPerBoard=2 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=128000 Feature=cpu,icelake Weight=10
NodeName=gpu-[01-$(pad $N_GPU)] $(addr_port $N_GPU 2) CPUs=64 Boards=1 SocketsPerBoard=2 CoresPerSocket=32 ThreadsPerCore=1 RealMemory=512000 Gres=gpu:a100:4 Feature=gpu,a100 Weight=50
NodeName=himem-[01-$(pad $N_HIMEM)] $(addr_port $N_HIMEM 3) CPUs=64 Boards=1 SocketsPerBoard=2 CoresPerSocket=32 ThreadsPerCore=1 RealMemory=2048000 Feature=himem Weight=100
NodeName=xgpu-01 $(addr_port_one 4 1) CPUs=16 Boards=1 SocketsPerBoard=2 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=64000 Gres=gpu:2 Feature=gpu Weight=60
NodeName=xgpu-02 $(addr_port_one 4 2) CPUs=16 Boards=1 SocketsPerBoard=2 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=64000 Gres=gpu:h100:2,gpu:h200:2 Feature=gpu,h100,h200 Weight=60
NodeName=st-[01-$(pad $N_ST)] $(addr_port $N_ST 5) CPUs=8 Boards=1 SocketsPerBoard=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=16000 Feature=states Weight=200

# ---- partitions
PartitionName=cpu   Nodes=cpu-[01-$(pad $ncpu_all)] Default=YES MaxTime=3-00:00:00 DefaultTime=01:00:00 State=UP
PartitionName=gpu   Nodes=gpu-[01-$(pad $N_GPU)] MaxTime=2-00:00:00 DefaultTime=01:00:00 State=UP
PartitionName=himem Nodes=himem-[01-$(pad $N_HIMEM)] MaxTime=7-00:00:00 DefaultTime=01:00:00 State=UP
PartitionName=debug Nodes=cpu-[01-02] MaxTime=12:00:00 DefaultTime=00:30:00 PriorityTier=10 State=UP
PartitionName=xgpu  Nodes=xgpu-[01-$(pad $N_XGPU)] MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP
PartitionName=states Nodes=$ST_RANGE MaxTime=01:00:00 DefaultTime=00:10:00 State=UP
EOF
  # Fake GPUs: 22.05 drops file-less gpu GRES (node goes INVAL "gres/gpu count reported lower than
  # configured"), so each fake GPU gets a device file: a char device cloned from /dev/null (c 1 3).
  install -d -m 0755 $FAKEGPU
  local i
  for i in 0 1 2 3; do
    [[ -c $FAKEGPU/nvidia$i ]] || { rm -f $FAKEGPU/nvidia$i; mknod -m 0666 $FAKEGPU/nvidia$i c 1 3 2>/dev/null || ln -sf /dev/null $FAKEGPU/nvidia$i; }
  done
  cat >$ETC/gres.conf.new <<EOF
AutoDetect=off
NodeName=gpu-[01-$(pad $N_GPU)] Name=gpu Type=a100 File=$FAKEGPU/nvidia[0-3]
NodeName=xgpu-01 Name=gpu File=$FAKEGPU/nvidia[0-1]
NodeName=xgpu-02 Name=gpu Type=h100 File=$FAKEGPU/nvidia[0-1]
NodeName=xgpu-02 Name=gpu Type=h200 File=$FAKEGPU/nvidia[2-3]
EOF
  cat >$ETC/slurmdbd.conf.new <<EOF
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  CONFIG_CHANGED=0
  local f
  for f in slurm.conf gres.conf slurmdbd.conf; do
    if cmp -s $ETC/$f.new $ETC/$f; then rm -f $ETC/$f.new; else mv $ETC/$f.new $ETC/$f; CONFIG_CHANGED=1; fi
  done
  [[ -e $ETC/cgroup.conf ]] && { rm -f $ETC/cgroup.conf; CONFIG_CHANGED=1; }
  chmod 0644 $ETC/slurm.conf $ETC/gres.conf
  chown slurm:slurm $ETC/slurmdbd.conf; chmod 0600 $ETC/slurmdbd.conf
  ((CONFIG_CHANGED)) && log "configuration written" || true
}

# ---------------------------------------------------------------- slurm daemons
start_slurmdbd() {
  if ! pid_alive $RUN/slurmdbd.pid; then
    log "starting slurmdbd"
    /usr/sbin/slurmdbd
  fi
  wait_for 60 "slurmdbd port 6819" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819' || die "slurmdbd not listening (see $LOG/slurmdbd.log)"
}

ensure_cluster() {
  local c
  c=$(sacctmgr -n -P show cluster format=cluster 2>/dev/null) || { wait_for 30 sacctmgr sacctmgr -n show cluster; c=$(sacctmgr -n -P show cluster format=cluster); }
  grep -qx lab <<<"$c" || { log "adding cluster lab to the accounting DB"; sacctmgr -i add cluster lab >/dev/null; }
}

start_slurmctld() {
  if ! pid_alive $RUN/slurmctld.pid; then
    log "starting slurmctld"
    /usr/sbin/slurmctld
  fi
  wait_for 60 "scontrol ping" bash -c 'scontrol ping | grep -q UP' || die "slurmctld not up (see $LOG/slurmctld.log)"
}

start_slurmds() {
  local name started=0
  while read -r name; do
    pid_alive $RUN/slurmd-$name.pid && continue
    install -d -m 0755 $SPOOL/$name
    if [[ $NODE_MODE == uts ]]; then
      unshare --uts bash -c 'hostname "$0" && exec /usr/sbin/slurmd -N "$0"' "$name"
    else
      /usr/sbin/slurmd -N "$name"
    fi
    started=$((started + 1))
  done < <(live_nodes; state_nodes)
  ((started == 0)) || log "started $started slurmd processes"
}

# spawn_as <user> <pidfile> <logfile> <cmd...>: detached (new session); pid file holds the daemon's pid
spawn_as() {
  local u=$1 pf=$2 lf=$3; shift 3
  touch "$lf"; chown "$u" "$lf"
  (cd / && exec setsid -f bash -c 'echo $$ >"$0"; exec setpriv --reuid="$1" --regid="$1" --init-groups -- "${@:2}"' \
    "$pf" "$u" "$@" </dev/null >>"$lf" 2>&1)
}

start_rest() {
  # slurmrestd refuses to run as root: it runs as $REST_USER
  install -d -o $REST_USER -g $REST_USER -m 0755 /run/slurmrestd
  # 1) TCP 127.0.0.1:PORT with rest_auth/jwt (headers X-SLURM-USER-NAME / X-SLURM-USER-TOKEN)
  if ! pid_alive /run/slurmrestd/tcp.pid; then
    log "starting slurmrestd on 127.0.0.1:$REST_PORT (rest_auth/jwt)"
    spawn_as $REST_USER /run/slurmrestd/tcp.pid $LOG/slurmrestd-tcp.log \
      env SLURM_JWT=daemon SLURM_CONF=$SLURM_CONF /usr/sbin/slurmrestd -a rest_auth/jwt 127.0.0.1:$REST_PORT
  fi
  # 2) unix socket with rest_auth/local: clients with uid root or $REST_USER
  if ! pid_alive /run/slurmrestd/unix.pid; then
    log "starting slurmrestd on unix:$REST_SOCK (rest_auth/local)"
    rm -f $REST_SOCK
    spawn_as $REST_USER /run/slurmrestd/unix.pid $LOG/slurmrestd-unix.log \
      env SLURM_CONF=$SLURM_CONF /usr/sbin/slurmrestd -a rest_auth/local unix:$REST_SOCK
  fi
  wait_for 30 "slurmrestd tcp" bash -c "exec 3<>/dev/tcp/127.0.0.1/$REST_PORT" || die "slurmrestd tcp not listening (see $LOG/slurmrestd-tcp.log)"
  wait_for 30 "slurmrestd unix" test -S $REST_SOCK || die "slurmrestd unix socket missing (see $LOG/slurmrestd-unix.log)"
}

# "name state" of the live nodes that do NOT count as up yet
nodes_not_up() {
  sinfo -h -N -n "$(live_nodes | paste -sd, -)" -o '%N %t' | sort -u |
    awk '$2 ~ /[*~#!%@^]$/ || $2 ~ /^(unk|inval|down|fail|futr|boot|powering|powered)/'
  local n # each slurmd must accept connections on its own address (slurmctld may still show a recovered state)
  while read -r n; do
    (exec 3<>"/dev/tcp/$(node_hostport "$n")") 2>/dev/null || echo "$n slurmd-not-listening"
  done < <(live_nodes)
  local seen; seen=$(sinfo -h -N -n "$(live_nodes | paste -sd, -)" -o '%N' | sort -u | wc -l)
  ((seen == $(live_nodes | wc -l))) || echo "missing nodes ($seen seen)"
}
wait_nodes() {
  local bad
  bad=$(nodes_not_up) || true
  [[ -z $bad ]] && return 0
  # nodes drained/invalid by slurm itself (e.g. an earlier bad registration); our own reasons start with "lab:"
  local slurm_drained
  slurm_drained=$(sinfo -h -N -R -n "$(live_nodes | paste -sd, -)" -o '%N|%E' |
    awk -F'|' '$2 !~ /^lab:/ && $2 !~ /Not responding/ && $2 != "none" {print $1}' | sort -u | paste -sd, -)
  if [[ -n $slurm_drained ]]; then
    log "resuming nodes set down/drained by slurm: $slurm_drained"
    scontrol update nodename="$slurm_drained" state=resume 2>/dev/null || true
  fi
  log "waiting for $(live_nodes | wc -l) live nodes to respond (not yet: $(paste -sd, - <<<"$bad" | cut -c1-120))"
  wait_for 120 "all live nodes up" bash -c '[ -z "$("$0" _nodes_not_up)" ]' "${BASH_SOURCE[0]}" ||
    { nodes_not_up >&2; die "nodes did not come up (see $LOG/slurmd-*.log)"; }
}
mark_dead_nodes() { # cpu-09/10 have no slurmd: mark them DOWN with a lab reason (else they stay unk*)
  ((N_DEAD > 0)) || return 0
  local st; st=$(sinfo -h -N -n "$DEAD_RANGE" -o '%t|%E' | sort -u)
  if grep -qv '^down\*|lab: powered off' <<<"$st"; then
    scontrol update nodename="$DEAD_RANGE" state=down reason="lab: powered off (no slurmd)" 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------- accounting
ASSOC_WANT="biology||64|
biology|dave||
chemistry|||
chemistry|alice||
chemistry|carol||2
physics|||
physics|alice||
physics|bob||
physics|root||"
assoc_state() {
  sacctmgr -n -P show assoc where cluster=lab format=account,user,grptres,maxjobs 2>/dev/null |
    awk -F'|' '$1 != "root" {g=$3; sub(/^cpu=/, "", g); print $1 "|" $2 "|" g "|" $4}' | sort
}
qos_state() { sacctmgr -n -P show qos format=name,priority,maxjobspu 2>/dev/null | sort; }
QOS_WANT="high|100|
low|0|1
normal|0|"
setup_accounts() {
  if [[ "$(assoc_state)" == "$(sort <<<"$ASSOC_WANT")" && "$(qos_state)" == "$(sort <<<"$QOS_WANT")" ]]; then return 0; fi
  log "creating accounting: accounts, users, QOS, limits"
  local s=(sacctmgr -i)
  sacctmgr -n -P show qos format=name | grep -qx high || "${s[@]}" add qos high priority=100 MaxWall=2-00:00:00 >/dev/null
  sacctmgr -n -P show qos format=name | grep -qx low || "${s[@]}" add qos low priority=0 >/dev/null
  local a acc desc
  for a in physics:"Physics dept" chemistry:"Chemistry dept" biology:"Biology dept"; do
    acc=${a%%:*} desc=${a#*:}
    sacctmgr -n -P show account "$acc" format=account | grep -qx "$acc" ||
      "${s[@]}" add account "$acc" cluster=lab Description="$desc" Organization=science fairshare=100 >/dev/null
  done
  add_user() { # user account [extra...]
    local u=$1 acc=$2; shift 2
    sacctmgr -n -P show assoc where user="$u" account="$acc" format=user | grep -qx "$u" ||
      "${s[@]}" add user "$u" account="$acc" cluster=lab qos=normal,high,low "$@" >/dev/null
  }
  add_user alice physics DefaultAccount=physics
  add_user bob physics DefaultAccount=physics
  add_user alice chemistry
  add_user carol chemistry DefaultAccount=chemistry
  add_user dave biology DefaultAccount=biology
  add_user root physics DefaultAccount=physics
  # limits that make jobs pend with Assoc*/QOS* reasons
  "${s[@]}" modify user where name=carol account=chemistry set MaxJobs=2 >/dev/null || true
  "${s[@]}" modify account where name=biology set GrpTRES=cpu=64 >/dev/null || true
  "${s[@]}" modify qos where name=low set MaxJobsPerUser=1 >/dev/null || true
  [[ "$(assoc_state)" == "$(sort <<<"$ASSOC_WANT")" ]] || { assoc_state >&2; die "associations are not as expected"; }
}

# ---------------------------------------------------------------- start / stop / status
all_daemons_alive() {
  local f
  for f in $RUN/slurmdbd.pid $RUN/slurmctld.pid /run/slurmrestd/tcp.pid /run/slurmrestd/unix.pid; do pid_alive $f || return 1; done
  while read -r f; do pid_alive $RUN/slurmd-$f.pid || return 1; done < <(live_nodes)
}

cmd_start() {
  [[ $(id -u) == 0 ]] || die "run as root"
  local t0=$SECONDS was_up=0
  all_daemons_alive && pid_alive /run/munge/munged.pid && pid_alive /run/mysqld/mysqld.pid && was_up=1
  install_pkgs
  local t_inst=$((SECONDS - t0))
  [[ $NODE_MODE == ports ]] && log "WARN: node mode 'ports' (unshare --uts not allowed): slurmds bind 0.0.0.0:<port>"
  make_users
  install -d -o slurm -g slurm -m 0755 $LOG
  start_munge
  start_mariadb
  write_configs
  if ((CONFIG_CHANGED)) && { pid_alive $RUN/slurmctld.pid || pid_alive $RUN/slurmdbd.pid; }; then
    log "configuration changed while running: restarting the slurm daemons"; stop_slurm
  fi
  start_slurmdbd
  ensure_cluster
  start_slurmctld
  start_slurmds
  wait_nodes
  mark_dead_nodes
  setup_accounts
  start_rest
  if ((was_up && !CONFIG_CHANGED)); then log "lab already up (checked in $((SECONDS - t0))s)"
  else log "lab up in $((SECONDS - t0))s (packages ${t_inst}s); REST http://127.0.0.1:$REST_PORT, eval \"\$($0 env)\""; fi
}

stop_many() { # SIGTERM every pid of the given pid files at once, wait, escalate to SIGKILL
  local f p pids=()
  for f in "$@"; do pid_alive "$f" && pids+=("$(cat "$f")"); done
  if ((${#pids[@]})); then
    kill "${pids[@]}" 2>/dev/null || true
    local _ alive
    for _ in $(seq 1 80); do
      alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      ((alive)) || break; sleep 0.25
    done
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null; done
  fi
  rm -f "$@"
}
stop_slurm() {
  stop_many /run/slurmrestd/tcp.pid /run/slurmrestd/unix.pid $RUN/slurmd-*.pid
  stop_many $RUN/slurmctld.pid
  stop_many $RUN/slurmdbd.pid
}
cmd_stop() {
  stop_slurm
  if mysqladmin --protocol=socket ping >/dev/null 2>&1; then mysqladmin --protocol=socket shutdown 2>/dev/null || true; fi
  stop_many /run/munge/munged.pid
  log "lab stopped (state kept in $STATE, $SPOOL, /var/lib/mysql)"
}

rest_ping() { # HTTP status of GET /slurm/v0.0.38/ping with a root JWT
  curl -s -o /dev/null -m 5 -w '%{http_code}' -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $(mint_jwt root 60)" \
    "http://127.0.0.1:$REST_PORT/slurm/v0.0.38/ping" 2>/dev/null || true
}
cmd_status() {
  local ok=1 f
  echo "== daemons"
  for f in /run/munge/munged.pid /run/mysqld/mysqld.pid $RUN/slurmdbd.pid $RUN/slurmctld.pid /run/slurmrestd/tcp.pid /run/slurmrestd/unix.pid; do
    printf '  %-32s %s\n' "$(basename "$(dirname "$f")")/$(basename "$f")" "$(pid_alive "$f" && echo "up (pid $(cat "$f"))" || echo DOWN)"
  done
  local n=0 up=0
  while read -r f; do n=$((n + 1)); pid_alive $RUN/slurmd-$f.pid && up=$((up + 1)); done < <(live_nodes)
  printf '  %-32s %s\n' "slurmd processes" "$up/$n up"
  ((up == n)) || ok=0
  if ! have_config; then echo "== no $ETC/slurm.conf: lab not configured (run: $0 start)"; exit 1; fi
  if ! pid_alive $RUN/slurmctld.pid || ! scontrol ping 2>/dev/null | grep -q UP; then echo "== slurmctld: DOWN"; exit 1; fi
  local code; code=$(rest_ping)
  echo "== slurmrestd: tcp 127.0.0.1:$REST_PORT -> HTTP $code; unix $REST_SOCK $([[ -S $REST_SOCK ]] && echo present || echo MISSING)"
  [[ $code == 200 && -S $REST_SOCK ]] || ok=0
  echo "== sinfo"; sinfo || ok=0
  local bad; bad=$(nodes_not_up 2>/dev/null) || true
  [[ -z $bad ]] || { echo "== live nodes not up:"; echo "$bad"; ok=0; }
  echo "== squeue (jobs by state / pending reason)"
  squeue -h -a -r -o '%T %r' | awk '{s=$1; $1=""; sub(/^ /, ""); if (s == "PENDING") k=s " (" $0 ")"; else k=s; c[k]++} END {for (k in c) printf "  %4d %s\n", c[k], k}' | sort -k2
  echo "  $(squeue -h -a -r | wc -l) job records (squeue -a -r)"
  ((ok)) && echo "== OK" || { echo "== NOT OK"; exit 1; }
}

# ---------------------------------------------------------------- token / env
mint_jwt() { # mint_jwt USER SECS: HS256 token with claims exp/iat/sun, exactly what `scontrol token` makes
  python3 - "$1" "$2" "$JWT_KEY" <<'EOF'
import base64, hashlib, hmac, json, sys, time
user, life, keyfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
key = open(keyfile, "rb").read()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
now = int(time.time())
h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
p = b64(json.dumps({"exp": now + life, "iat": now, "sun": user}, separators=(",", ":")).encode())
sig = b64(hmac.new(key, h + b"." + p, hashlib.sha256).digest())
print((h + b"." + p + b"." + sig).decode())
EOF
}
cmd_token() {
  local u=${1:?usage: $0 token USER [SECS]} secs=${2:-86400}
  [[ -r $JWT_KEY ]] || die "no JWT key at $JWT_KEY: run '$0 start' first"
  mint_jwt "$u" "$secs"
}
cmd_env() {
  cat <<EOF
export SLURM_CONF=$ETC/slurm.conf
export SLURM_LAB_REST_URL=http://127.0.0.1:$REST_PORT
export SLURM_LAB_REST_SOCKET=$REST_SOCK
export SLURM_LAB_JWT_KEY=$JWT_KEY
export SLURM_LAB_CLUSTER=lab
export SLURM_LAB_SCRIPT=$LAB_DIR/lab.sh
EOF
  [[ -s $LABSTATE/mix-first-job ]] && echo "export SLURM_LAB_MIX_FIRST_JOB=$(cat $LABSTATE/mix-first-job)"
  return 0
}

# ---------------------------------------------------------------- job mix
as() { local u=$1; shift; runuser -u "$u" -- env -C "/home/$u" SLURM_CONF=$SLURM_CONF "$@"; }
sub() { local u=$1; shift 2; as "$u" sbatch --parsable --comment=lab-mix "$@" | cut -d';' -f1; } # sub USER sbatch ARGS... -> job id
wait_state() { # wait_state JOBID STATE... : wait (max 20 s) until the job is in one of the states
  local id=$1; shift
  local want="$*"
  wait_for 20 "job $id in ${want// /|}" bash -c '[[ " $1 " == *" $(squeue -h -a -j "$0" -o %T 2>/dev/null | head -1) "* ]]' "$id" "$want" ||
    log "WARN: job $id is $(squeue -h -a -j "$id" -o %T | head -1), expected $want"
}
live_jobs() { squeue -h -a -r -o %A 2>/dev/null | sort -u; } # default states: everything not finished

clear_mix() {
  local ids; ids=$(squeue -h -a -o %A | sort -u | paste -sd' ' -)
  if [[ -n $ids ]]; then
    log "cancelling the previous jobs ($(wc -w <<<"$ids"))"
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
    wait_for 120 "previous jobs gone" bash -c '[ -z "$("$0" _live_jobs)" ]' "${BASH_SOURCE[0]}" ||
      die "jobs still alive after scancel: $(live_jobs | paste -sd' ' -)"
  fi
  local prev
  prev=$(sinfo -h -N -R -n "$(live_nodes | paste -sd, -)" -o '%N|%E' | awk -F'|' '$2 ~ /^lab:/ {print $1}' | sort -u | paste -sd, -)
  if [[ -n $prev ]]; then scontrol update nodename="$prev" state=resume 2>/dev/null || true; fi
  scontrol delete ReservationName=maint >/dev/null 2>&1 || true
  mark_dead_nodes
  reset_state_nodes
  wait_nodes
}

# st-01 and st-03 back to plain idle (no reservation, resumed). st-02 and st-04 stay powered
# down from one mix to the next: "powering up" would need a real boot (slurmctld checks the
# node's uptime), and a failed resume leaves the node DOWN+NOT_RESPONDING.
reset_state_nodes() {
  scontrol delete ReservationName=lab-maint-now >/dev/null 2>&1 || true
  [[ $(node_state st-01) == idle ]] || scontrol update nodename=st-01 state=resume >/dev/null 2>&1 || true
  wait_for 60 "st-01 and st-03 idle" bash -c '[ -z "$(sinfo -h -N -n st-01,st-03 -O NodeList:20,StateComplete:80 | grep -v " idle *$")" ]' ||
    log "WARN: state nodes: $(sinfo -h -N -n "$ST_RANGE" -o '%N:%T' | paste -sd' ' -)"
}
node_state() { sinfo -h -N -n "$1" -O StateComplete:80 | head -1 | tr -d ' '; }

# Node states sinfo %C counts apart: IDLE+FAIL, IDLE+POWERED_DOWN and IDLE+MAINT (an active
# maintenance reservation) count idle; IDLE+DRAIN+POWERED_DOWN counts other (drained).
# Idempotent: each node is moved only when it is not in its state yet.
set_state_nodes() {
  scontrol update nodename=st-01 state=fail reason="lab: failing hardware"
  scontrol create reservation reservationname=lab-maint-now starttime=now duration=7-00:00:00 nodes=st-03 flags=maint users=root >/dev/null
  local n st try
  for n in st-02 st-04; do
    st=$(node_state "$n")
    # DOWN after a failed resume: back to idle, still powered down
    for try in 1 2 3; do
      [[ $st == down* ]] || break
      scontrol update nodename="$n" state=resume >/dev/null 2>&1 || true
      sleep 1; st=$(node_state "$n")
    done
    if [[ $st != *powered_down* ]]; then
      scontrol update nodename="$n" state=power_down reason="lab: power saving"
      wait_for 30 "$n powered down" bash -c '[[ $(sinfo -h -N -n "$0" -O StateComplete:80) == *powered_down* ]]' "$n" ||
        log "WARN: $n is $(node_state "$n")"
    fi
  done
  # drained after the power down: a power down request clears DRAIN
  [[ $(node_state st-04) == *drain* ]] || scontrol update nodename=st-04 state=drain reason="lab: drained and powered down"
}

# Node states sinfo %C counts apart: IDLE+FAIL, IDLE+POWERED_DOWN and IDLE+MAINT (an active
# maintenance reservation) count idle; IDLE+DRAIN+POWERED_DOWN counts other (drained).
set_state_nodes() {
  scontrol update nodename=st-01 state=fail reason="lab: failing hardware"
  scontrol update nodename=st-02 state=power_down reason="lab: power saving"
  scontrol create reservation reservationname=lab-maint-now starttime=now duration=7-00:00:00 nodes=st-03 flags=maint users=root >/dev/null
  # drain after the power down: a power down request clears DRAIN
  scontrol update nodename=st-04 state=power_down reason="lab: drained and powered down"
  wait_for 30 "st-04 powered down" bash -c 'sinfo -h -N -n st-04 -O StateComplete:80 | grep -q "^idle+powered_down"' ||
    log "WARN: st-04 is $(sinfo -h -N -n st-04 -O StateComplete:80 | head -1)"
  scontrol update nodename=st-04 state=drain reason="lab: drained and powered down"
}

MIX_REASONS="Resources Priority AssocMaxJobsLimit AssocGrpCpuLimit QOSMaxJobsPerUserLimit JobArrayTaskLimit DependencyNeverSatisfied JobHeldUser"
mix_missing() { # mix_missing FIRST_JOBID: prints what is still missing for the mix to count as settled (empty: settled)
  local jobs; jobs=$(squeue -h -a -r -t all -o '%A|%j|%T|%P|%r' 2>/dev/null | awk -F'|' -v f="$1" '$1 + 0 >= f + 0')
  local st
  st=$(awk -F'|' '$3 == "CONFIGURING" || $3 == "COMPLETING" {print "transient:" $1 ":" $3}' <<<"$jobs"); [[ -z $st ]] || echo "$st"
  awk -F'|' '$3 == "PENDING" && ($5 == "None" || $5 == "") {print "no-reason:" $1}' <<<"$jobs"
  local r; for r in $MIX_REASONS; do awk -F'|' -v r="$r" '$3 == "PENDING" && $5 == r {f=1} END {exit !f}' <<<"$jobs" || echo "reason:$r"; done
  local p; for p in cpu gpu himem debug xgpu; do awk -F'|' -v p="$p" '$3 == "RUNNING" && $4 == p {f=1} END {exit !f}' <<<"$jobs" || echo "running-in:$p"; done
  local nj
  for nj in will-fail:FAILED will-fail2:FAILED will-timeout:TIMEOUT quick-ok:COMPLETED to-cancel:CANCELLED; do
    awk -F'|' -v n="${nj%%:*}" -v s="${nj#*:}" '$2 == n && $3 == s {f=1} END {exit !f}' <<<"$jobs" || echo "end-state:$nj"
  done
  awk -F'|' '$2 == "short-array" && $3 != "COMPLETED" {f=1} END {exit !f}' <<<"$jobs" && echo "short-array:not-finished"
  [[ $(awk -F'|' '$2 == "param-sweep" && $3 == "RUNNING"' <<<"$jobs" | wc -l) -eq 8 ]] || echo "param-sweep:not-8-running"
  local ns; ns=$(sinfo -h -N -o '%t' | sort -u | paste -sd' ' -)
  [[ " $ns " == *" drain "* ]] || echo "node:drained"
  [[ " $ns " == *" drng "* ]] || echo "node:draining"
  local want; for want in st-01:idle+fail st-02:idle+powered_down st-03:idle+maintenance+reserved st-04:idle+drain+powered_down; do
    # (a powered-down node may also carry not_responding)
    [[ $(node_state "${want%%:*}") == "${want#*:}"* ]] || echo "node:${want}"
  done
  awk -F'|' '$2 == "multi-part" && $3 == "PENDING" && $4 == "cpu,debug" {f=1} END {exit !f}' <<<"$jobs" || echo "multi-partition:pending"
  awk -F'|' '$2 == "requeued" && $3 == "PENDING" {f=1} END {exit !f}' <<<"$jobs" || echo "requeued:pending"
  return 0
}

cmd_submit_mix() {
  [[ $(id -u) == 0 ]] || die "run as root"
  need_config
  if ! all_daemons_alive || ! scontrol ping 2>/dev/null | grep -q UP; then log "lab not up: starting it"; cmd_start; fi
  local t0=$SECONDS L=$JOB_SECS
  clear_mix
  cd /tmp
  log "submitting the job mix (long jobs sleep ${L}s)"
  date +%FT%T >$LABSTATE/mix-since
  # a drained idle node (drain before submitting: stays "drained", never "draining")
  scontrol update nodename=cpu-$(pad $N_CPU) state=drain reason="lab: hardware maintenance"
  local first id
  # the timeout job first: it needs ~1-2 min to hit its 1-minute limit
  first=$(sub alice sbatch -p cpu -A physics -J will-timeout -n 1 -t 00:01:00 --wrap 'sleep 600')
  echo "$first" >$LABSTATE/mix-first-job
  wait_state "$first" RUNNING
  # long running work on every partition and account; one at a time so placement is the same on every run
  local spec
  while IFS= read -r spec; do
    [[ -n $spec ]] || continue
    # shellcheck disable=SC2086
    id=$(eval sub $spec)
    wait_state "$id" RUNNING
  done <<EOF
alice sbatch -p debug -A physics   -J quick      -n 4 -t 12:00:00 --wrap 'sleep $L'
alice sbatch -p cpu   -A physics   -J md-sim     -n 64 -t 12:00:00 --wrap 'sleep $L'
alice sbatch -p cpu   -A chemistry -J dft-scan   -N 2 --ntasks-per-node=16 -t 12:00:00 --wrap 'sleep $L'
bob   sbatch -p cpu   -A physics   -J lattice    -n 16 --mem=64G -t 12:00:00 --wrap 'sleep $L'
bob   sbatch -p gpu   -A physics   -J train-llm  -N 2 --ntasks-per-node=1 -c 32 --gres=gpu:a100:4 -t 1-00:00:00 --wrap 'sleep $L'
carol sbatch -p gpu   -A chemistry -J alphafold  -c 16 --gres=gpu:2 --mem=100G -t 12:00:00 --wrap 'sleep $L'
dave  sbatch -p himem -A biology   -J assembly   -c 48 --mem=1500G -t 2-00:00:00 --wrap 'sleep $L'
carol sbatch -p cpu   -A chemistry -J matlab-fit -n 2 -L matlab:2 -t 12:00:00 --wrap 'sleep $L'
bob   sbatch -p cpu   -A physics --qos=low -J qos-low -n 1 -t 12:00:00 --wrap 'sleep $L'
EOF
  # throttled array: 8 tasks run, 32 pend with JobArrayTaskLimit
  id=$(sub alice sbatch -p cpu -A physics -J param-sweep --array=1-40%8 -n 8 -t 12:00:00 --wrap "sleep $L")
  wait_for 20 "8 param-sweep tasks running" bash -c '[ "$(squeue -h -j "$0" -t R -r | wc -l)" -ge 8 ]' "$id" || log "WARN: param-sweep not 8 running"
  # short jobs: an array that completes, FAILED (exit 1 and exit 3), COMPLETED, one to cancel while running
  sub bob sbatch -p cpu -A physics -J short-array --array=0-9 -n 1 -t 00:05:00 --wrap 'sleep $((5 + SLURM_ARRAY_TASK_ID))' >/dev/null
  sub bob sbatch -p cpu -A physics -J will-fail -n 1 -t 00:05:00 --wrap 'echo boom >&2; exit 1' >/dev/null
  sub dave sbatch -p cpu -A biology -J will-fail2 -n 1 -t 00:05:00 --wrap 'exit 3' >/dev/null
  sub dave sbatch -p cpu -A biology -J quick-ok -n 2 -t 00:05:00 --wrap 'sleep 5' >/dev/null
  local cj; cj=$(sub bob sbatch -p cpu -A physics -J to-cancel -n 1 -t 00:10:00 --wrap 'sleep 600')
  wait_state "$cj" RUNNING
  # pending on limits: carol@chemistry MaxJobs=2, biology GrpTRES=cpu=64, QOS low MaxJobsPerUser=1
  sub carol sbatch -p cpu -A chemistry -J assoc-limited -n 2 -t 12:00:00 --wrap "sleep $L" >/dev/null
  sub carol sbatch -p cpu -A chemistry -J assoc-limited -n 2 -t 12:00:00 --wrap "sleep $L" >/dev/null
  sub dave sbatch -p cpu -A biology -J grp-cpu-limited -n 48 -t 01:00:00 --wrap 'sleep 600' >/dev/null
  sub bob sbatch -p cpu -A physics --qos=low -J qos-low -n 1 -t 12:00:00 --wrap "sleep $L" >/dev/null
  # pending on resources: all 4 GPU nodes (Resources), then one behind it (Priority); the whole cpu
  # partition exclusive (cannot run while nodes are down/drained)
  sub bob sbatch -p gpu -A physics -J gpu-wait -N $N_GPU --gres=gpu:a100:4 -t 01:00:00 --wrap 'sleep 600' >/dev/null
  sleep 1
  sub alice sbatch -p gpu -A physics -J gpu-queued -N 2 --gres=gpu:a100:4 -t 01:00:00 --wrap 'sleep 600' >/dev/null
  sub alice sbatch -p cpu -A physics --qos=high -J whole-partition -N $N_CPU --exclusive -t 01:00:00 --wrap 'sleep 600' >/dev/null
  # held, and a dependency that can never be satisfied (afterok on a job that gets cancelled)
  sub dave sbatch -H -p cpu -A biology -J held-job -n 1 -t 00:10:00 --wrap 'sleep 60' >/dev/null
  sub alice sbatch -p cpu -A physics -J after-cancel --dependency=afterok:$cj -n 1 -t 00:10:00 --wrap 'sleep 60' >/dev/null
  scancel "$cj"
  # a draining node: drain the node running bob's "lattice" job
  local ln; ln=$(squeue -h -u bob -n lattice -t R -o %N | head -1)
  [[ -n $ln ]] && scontrol update nodename="$ln" state=drain reason="lab: drain for kernel update"
  # a maintenance reservation that starts tomorrow (recreated on every run)
  scontrol create reservation reservationname=maint starttime=now+1day duration=120 nodes=cpu-[01-02] flags=maint users=root >/dev/null || true
  # GRES shapes (issue 12): an untyped GPU node and a node with two GPU types, partly in use
  while IFS= read -r spec; do
    [[ -n $spec ]] || continue
    # shellcheck disable=SC2086
    id=$(eval sub $spec)
    wait_state "$id" RUNNING
  done <<EOF
alice sbatch -p xgpu -A physics   -J untyped-gpu -w xgpu-01 -n 1 --gres=gpu:1 -t 12:00:00 --wrap 'sleep $L'
bob   sbatch -p xgpu -A physics   -J h100-pair   -w xgpu-02 -n 1 --gres=gpu:h100:2 -t 12:00:00 --wrap 'sleep $L'
dave  sbatch -p xgpu -A biology   -J h200-one    -w xgpu-02 -n 1 --gres=gpu:h200:1 -t 12:00:00 --wrap 'sleep $L'
EOF
  # a job pending in two partitions (squeue -p cpu and -p debug both list it)
  sub alice sbatch -H -p cpu,debug -A physics -J multi-part -n 1 -t 00:10:00 --wrap 'sleep 60' >/dev/null
  # a requeued run: started, then requeued and held (sacct -D: a REQUEUED record with an end time)
  local rq; rq=$(sub bob sbatch -p xgpu -A physics -J requeued -n 2 -t 00:10:00 --wrap 'sleep 600')
  wait_state "$rq" RUNNING
  sleep 1
  scontrol requeuehold "$rq"
  set_state_nodes
  log "submitted in $((SECONDS - t0))s; waiting (max ${MIX_TIMEOUT}s) for the mix to settle"
  local end=$((SECONDS + MIX_TIMEOUT)) miss
  while :; do
    miss=$(mix_missing "$first")
    [[ -z $miss ]] && break
    if ((SECONDS >= end)); then
      log "mix did not settle in ${MIX_TIMEOUT}s; missing: $(paste -sd' ' - <<<"$miss")"
      squeue -a -r -o '%.10i %.6u %.9a %.6P %.16j %.11T %.5C %r' >&2
      return 1
    fi
    sleep 2
  done
  log "mix settled in $((SECONDS - t0))s (first job id $first)"
  squeue -a -o '%.10i %.6u %.9a %.6P %.16j %.9T %.5C %R' | head -40
}

# ---------------------------------------------------------------- main
resolve_node_mode
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  submit-mix) cmd_submit_mix ;;
  token) shift; cmd_token "$@" ;;
  env) cmd_env ;;
  _nodes_not_up) need_config; nodes_not_up ;;   # internal (used by wait loops)
  _live_jobs) need_config; live_jobs ;;         # internal
  *) sed -n '2,22p' "$0"; exit 2 ;;
esac
