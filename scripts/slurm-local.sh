#!/usr/bin/env bash
# A single-node Slurm on this machine, for the sweep tests (`make test-slurm`) and for trying
# `valleys sweep --executor slurm` without a cluster. Needs root: it installs Debian's
# slurmctld, slurmd, slurm-client and munge if they are missing, writes a minimal
# /etc/slurm/slurm.conf (one node with this machine's CPUs and memory, partition "debug"),
# starts munged, slurmctld and slurmd, and waits until `sinfo` shows the node idle.
#
#   scripts/slurm-local.sh start     # about 10 s to install, seconds to start
#   scripts/slurm-local.sh stop
#   scripts/slurm-local.sh status    # exit 0 when the node answers
set -euo pipefail

state=/tmp/valleys-slurm

fail() {
    echo "slurm-local: $*" >&2
    exit 1
}

answers() {
    command -v sinfo >/dev/null 2>&1 && sinfo -h -o '%T' 2>/dev/null | grep -Eq 'idle|mixed|allocated'
}

start() {
    [ "$(id -u)" = 0 ] || fail "needs root (apt and the Slurm daemons); run it as root or skip the Slurm tests"
    if answers; then
        echo "slurm-local: already running"
        return
    fi
    if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1 \
        || ! command -v sbatch >/dev/null 2>&1; then
        echo "slurm-local: installing slurmctld slurmd slurm-client munge"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            slurmctld slurmd slurm-client munge >/dev/null 2>&1 \
            || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y \
                --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; } \
            || fail "could not install Slurm with apt-get"
    fi
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p "$state"/{spool,state,log} /run/munge /etc/slurm
    [ -f /etc/munge/munge.key ] || /usr/sbin/mungekey -c
    chown munge:munge /etc/munge/munge.key /run/munge
    if ! pgrep -x munged >/dev/null; then
        runuser -u munge -- /usr/sbin/munged
    fi
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
KillWait=30
SlurmctldLogFile=$state/log/ctld.log
SlurmdLogFile=$state/log/d.log
SlurmctldPidFile=$state/ctld.pid
SlurmdPidFile=$state/d.pid
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    /usr/sbin/slurmctld
    /usr/sbin/slurmd
    for _ in $(seq 1 60); do
        if answers; then
            echo "slurm-local: up: $(sinfo -h -o '%P %a %D %T' | head -1)"
            return
        fi
        sleep 0.5
    done
    fail "the node did not become idle within 30 s (see $state/log/)"
}

stop() {
    for pidfile in "$state/d.pid" "$state/ctld.pid"; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
    pkill -x munged 2>/dev/null || true
    echo "slurm-local: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) answers ;;
    *) echo "usage: scripts/slurm-local.sh start|stop|status" >&2; exit 2 ;;
esac
