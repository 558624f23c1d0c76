#!/usr/bin/env bash
# A one-node SLURM cluster on this machine for tests (docs: /work/shared/docs/slurm.md).
#   scripts/slurm_cluster.sh start   # munge + slurmctld + slurmd; idempotent; waits for `idle`
#   scripts/slurm_cluster.sh stop    # stops the daemons this script started (by their pids)
# Needs root and the slurm-wlm and munge packages. Exit 1 with a message on any failure.
set -euo pipefail

STATE=/run/maven-slurm   # pid files of the daemons started here
CONF=/etc/slurm/slurm.conf

die() { echo "slurm_cluster: $*" >&2; exit 1; }

install_packages() {
  command -v apt-get >/dev/null 2>&1 || return 0
  for bin in munged slurmctld slurmd sbatch; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
      echo "slurm_cluster: installing slurm-wlm and munge (apt-get)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null 2>&1; } ||
        die "apt-get install slurm-wlm munge failed"
      return 0
    fi
  done
}

need() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  install_packages
  for bin in munged munge unmunge slurmctld slurmd sinfo sbatch squeue; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || die "missing $bin (apt-get install -y slurm-wlm munge)"
  done
}

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

start_munge() {
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
    sleep 1
    pgrep -u munge -n munged > "$STATE/munged.pid"
  fi
  munge -n | unmunge | grep -q Success || die "munge -n | unmunge does not say Success"
}

write_conf() {
  local host cpus mem
  host=$(hostname -s); cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  cat > "$CONF" <<CONF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  need
  mkdir -p "$STATE"
  start_munge
  if alive slurmctld && alive slurmd && sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; then
    echo "slurm_cluster: already running"; return 0
  fi
  write_conf
  alive slurmctld || { /usr/sbin/slurmctld -i 2>/dev/null || /usr/sbin/slurmctld || die "slurmctld failed (see /var/log/slurm/slurmctld.log)"; sleep 1; pgrep -n -x slurmctld > "$STATE/slurmctld.pid"; }
  alive slurmd || { /usr/sbin/slurmd || die "slurmd failed (see /var/log/slurm/slurmd.log)"; sleep 1; pgrep -n -x slurmd > "$STATE/slurmd.pid"; }
  for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; then echo "slurm_cluster: up ($(sinfo -h -o '%P %D %T'))"; return 0; fi
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 1
  done
  die "node never became idle: $(sinfo -h 2>&1 | head -3)"
}

stop() {
  for daemon in slurmd slurmctld munged; do
    if alive "$daemon"; then
      kill "$(cat "$STATE/$daemon.pid")" && echo "slurm_cluster: stopped $daemon"
    fi
    rm -f "$STATE/$daemon.pid"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
