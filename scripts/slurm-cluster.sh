#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost for jobq's tests: munged + slurmctld + slurmd as plain background
# daemons (no systemd), everything under one directory. Needs root (slurmd runs jobs as their users).
#
#   scripts/slurm-cluster.sh start [DIR]   install Debian's packages if missing, configure, start, wait until the
#                                          node is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-cluster.sh stop [DIR]    cancel every job, stop the daemons started from DIR
#
# What it relies on (measured on Debian 12, Slurm 22.05): clients need SLURM_CONF; munged wants its socket dir
# world-executable; without DefMemPerCPU a job takes all the node's memory; batch_sched_delay=0 starts jobs in ~1 s
# instead of ~3 s; cgroup v1 (memory+freezer) lets --mem end a job OUT_OF_MEMORY; KillWait=5 keeps a TIMEOUT to
# ~70 s; jobcomp/filetxt makes `sacct -c` answer without slurmdbd; MinJobAge=10 lets slurmctld forget a finished
# job at its next purge (about a minute), so the tests see jobq take its end from sacct, as on a real cluster.
set -euo pipefail
ACTION=${1:-}
DIR=${2:-${JOBQ_SLURM_DIR:-/tmp/jobq-slurm}}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF
log() { echo "slurm-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# pidof FILE NAME: the pid in FILE if that process lives, is not a zombie, and is called NAME.
pidof_file() {
  local pid st
  [ -r "$1" ] || return 1
  pid=$(tr -dc "0-9" <"$1") || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [ "$st" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}

until_ok() { # until_ok SECONDS WHAT CMD...
  local end=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out waiting for $what (logs in $DIR/log)"
    sleep 0.1
  done
}

install() {
  local need="" p
  for p in munge slurm-client slurmctld slurmd; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need="$need $p"
  done
  [ -z "$need" ] && return 0
  log "installing:$need"
  # Package scripts must not start the distribution's own daemons.
  local policy=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; policy=1; }
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need; }; } >&2 || { [ $policy = 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get failed"; }
  [ $policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

configure() {
  local node cpus=8 mem cgroup=none
  node=$(hostname -s)
  mem=$(($(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 * 8 / 10))
  mkdir -p "$DIR"/{state,spool,log,run,munge}
  chmod 755 "$DIR" "$DIR/munge"
  # cgroup v1 with memory and freezer mounted read-write: Slurm confines each job (and --mem ends it OUT_OF_MEMORY).
  if grep -qE ' /sys/fs/cgroup/memory cgroup (rw|[^ ]*,rw)' /proc/mounts && grep -qE ' /sys/fs/cgroup/freezer cgroup (rw|[^ ]*,rw)' /proc/mounts; then cgroup=v1; fi
  local track="ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherParams=OverMemoryKill"
  if [ $cgroup = v1 ]; then
    track="ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup"
    printf 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainRAMSpace=yes\nConstrainSwapSpace=yes\n' >"$DIR/cgroup.conf"
  fi
  cat >"$CONF" <<EOF
ClusterName=jobqtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=${JOBQ_SLURM_PORT:-6817}
SlurmdPort=$((${JOBQ_SLURM_PORT:-6817} + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$track
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=10
KillWait=5
InactiveLimit=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  echo "$node" >"$DIR/run/node"
}

start() {
  [ "$(id -u)" = 0 ] || die "needs root (slurmd runs jobs as their users)"
  if pidof_file "$DIR/run/slurmctld.pid" slurmctld >/dev/null && pidof_file "$DIR/run/slurmd.pid" slurmd >/dev/null; then
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  install
  configure
  if ! pidof_file "$DIR/munge/munged.pid" munged >/dev/null; then
    [ -s "$DIR/munge/munge.key" ] || { dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 2>/dev/null; chmod 400 "$DIR/munge/munge.key"; }
    rm -f "$DIR/munge/munge.socket" "$DIR/munge/munge.socket.lock"
    munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" --pid-file="$DIR/munge/munged.pid" \
      --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" </dev/null >>"$DIR/log/munged.log" 2>&1
    until_ok 20 munged sh -c "munge -n -S '$DIR/munge/munge.socket' | unmunge -S '$DIR/munge/munge.socket'"
  fi
  slurmctld -f "$CONF" </dev/null >>"$DIR/log/slurmctld.log" 2>&1
  until_ok 30 slurmctld sh -c 'scontrol ping | grep -q "is UP"'
  slurmd -f "$CONF" -N "$(cat "$DIR/run/node")" </dev/null >>"$DIR/log/slurmd.log" 2>&1
  until_ok 30 "node $(cat "$DIR/run/node") idle" sh -c "sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)'"
  log "ready (node $(cat "$DIR/run/node"))"
  echo "export SLURM_CONF=$CONF"
}

stop() {
  local f name pid
  local ids
  if pidof_file "$DIR/run/slurmctld.pid" slurmctld >/dev/null; then
    ids=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ') || true
    # shellcheck disable=SC2086
    [ -z "${ids// /}" ] || scancel $ids >/dev/null 2>&1 || true
  fi
  for f in run/slurmd.pid:slurmd run/slurmctld.pid:slurmctld munge/munged.pid:munged; do
    name=${f#*:}
    pid=$(pidof_file "$DIR/${f%:*}" "$name") || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do pidof_file "$DIR/${f%:*}" "$name" >/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
