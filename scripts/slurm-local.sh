#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for the sweep tests (tests/slurm.rs) and for trying
# `s2s sweep --launcher slurm` without a cluster.
#
#   scripts/slurm-local.sh start    install slurmctld/slurmd/munge if missing (apt-get, root),
#                                   start munged, slurmctld and slurmd, wait for the node
#   scripts/slurm-local.sh stop     stop the daemons
#   scripts/slurm-local.sh status   sinfo, or exit 1 when the cluster is not up
#
# Slurm 22.05 (Debian 12) only accepts auth/munge; munged runs as the `munge` user with the
# key the package creates. No accounting storage: sacct answers "accounting storage is
# disabled", which `s2s sweep status` copes with.
set -euo pipefail

CONF=/etc/slurm/slurm.conf

log() { echo "slurm-local: $*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs packages and writes $CONF)"
    exit 1
  fi
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null; then
    return
  fi
  log "installing slurmctld slurmd slurm-client munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
  local cpus mem_mib
  cpus=$(nproc)
  mem_mib=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1000 ))
  mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /var/log/slurm
  cat >"$CONF" <<EOF
ClusterName=localhost
SlurmctldHost=localhost
AuthType=auth/munge
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
JobAcctGatherType=jobacct_gather/none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
EOF
}

start_munge() {
  if pgrep -x munged >/dev/null; then
    return
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
      mungekey --create --force >/dev/null
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  su -s /bin/sh munge -c '/usr/sbin/munged </dev/null >/dev/null 2>&1'
}

node_idle() {
  sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'
}

start() {
  need_root
  install_packages
  write_conf
  start_munge
  # The daemons must not hold the caller's stdout open (CI reads it to the end).
  pgrep -x slurmctld >/dev/null || slurmctld </dev/null >/dev/null 2>&1
  pgrep -x slurmd >/dev/null || slurmd -N localhost </dev/null >/dev/null 2>&1
  for _ in $(seq 1 60); do
    if node_idle; then
      log "up: $(sinfo -h -N -o '%N %T %c CPUs')"
      return
    fi
    # A node left "down" by an earlier run comes back with this.
    scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
    sleep 1
  done
  log "the node did not become idle; sinfo says:"
  sinfo -N >&2 || true
  tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
  exit 1
}

stop() {
  local d
  for d in slurmd slurmctld munged; do
    pkill -x "$d" 2>/dev/null || true
    # Wait for it to exit, so that a following start does not find it still there.
    for _ in $(seq 1 50); do
      pgrep -x "$d" >/dev/null || break
      sleep 0.2
    done
  done
  log "stopped"
}

status() {
  if command -v sinfo >/dev/null && node_idle; then
    sinfo
  else
    log "not up"
    exit 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
