#!/usr/bin/env bash
# Start/stop a throw-away one-node Slurm (22.05) cluster on loopback for tests.
#
# Usage:
#   tests/slurm/cluster.sh install            # apt-get install slurmctld slurmd slurm-client munge (idempotent)
#   tests/slurm/cluster.sh start DIR          # munged + slurmctld + slurmd, all state under DIR; waits until node idle
#   tests/slurm/cluster.sh stop DIR           # cancel jobs, stop everything started for DIR (idempotent)
#   tests/slurm/cluster.sh kill-slurmd DIR    # SIGKILL slurmd and its slurmstepd/job processes ("lost node")
#   tests/slurm/cluster.sh start-slurmd DIR   # (re)start slurmd; waits until the node is back (idle/mixed/alloc)
#   tests/slurm/cluster.sh status DIR         # print daemon pids and `sinfo` (exit 1 if slurmctld is down)
#
# After `start`, use the cluster with:  source DIR/env.sh   (exports SLURM_CONF=DIR/slurm.conf)
# `start` prints `SLURM_CONF=DIR/slurm.conf` on stdout; progress/diagnostics go to stderr.
#
# Environment knobs (optional):
#   QSCOPE_SLURM_START_TIMEOUT   seconds to wait for the node to become idle (default 60)
#   QSCOPE_SLURM_SLURMD_TIMEOUT  SlurmdTimeout in slurm.conf (default 10)
#   QSCOPE_SLURM_DEBUG           SlurmctldDebug/SlurmdDebug level (default info)
#   QSCOPE_SLURM_KEEP_ON_FAILURE=1  do not stop the daemons when `start` fails
set -euo pipefail

PROG=${0##*/}
START_TIMEOUT=${QSCOPE_SLURM_START_TIMEOUT:-60}
SLURMD_TIMEOUT=${QSCOPE_SLURM_SLURMD_TIMEOUT:-10}
DEBUG_LEVEL=${QSCOPE_SLURM_DEBUG:-info}
NODE=localhost
SBIN_PATHS=/usr/sbin:/usr/bin:/sbin:/bin
export PATH="$PATH:$SBIN_PATHS"

log() { echo "[$PROG] $*" >&2; }
die() { echo "[$PROG] ERROR: $*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo pipefail/{/^set /d;s/^# \{0,1\}//;p;}' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------- helpers
need_dir_arg() {
    [[ $# -ge 1 && -n "$1" ]] || usage
}

# Absolute path of DIR (DIR need not exist yet).
abs_dir() {
    local d=$1
    if command -v realpath >/dev/null 2>&1; then
        realpath -m -- "$d"
    else
        case $d in /*) echo "$d" ;; *) echo "$PWD/$d" ;; esac
    fi
}

# pid from a pid file if that process is alive and its comm matches $2.
live_pid() {
    local pidfile=$1 want=$2 pid comm
    [[ -s $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)
    [[ -n $pid ]] || return 1
    [[ -r /proc/$pid/comm ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    # zombies are not alive
    if [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then return 1; fi
    [[ $comm == "$want"* ]] || return 1
    echo "$pid"
}

# Kill pid with TERM, wait up to $2 seconds, then KILL.
kill_wait() {
    local pid=$1 secs=${2:-10} i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        [[ -d /proc/$pid ]] || return 0
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        [[ -d /proc/$pid ]] || return 0
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
        sleep 0.1
    done
}

# All ports (tcp+tcp6, any state) currently in use, one per line, decimal.
used_ports() {
    local f
    for f in /proc/net/tcp /proc/net/tcp6; do
        [[ -r $f ]] || continue
        awk 'NR > 1 { split($2, a, ":"); print a[2] }' "$f"
    done | while read -r hex; do echo $((16#$hex)); done | sort -un
}

port_free() {
    local p=$1
    ! grep -qx "$p" <<<"$USED_PORTS"
}

# Pick two free consecutive-ish ports derived from a hash of DIR.
pick_ports() {
    local dir=$1 h base i p1 p2
    USED_PORTS=$(used_ports || true)
    h=$(printf '%s' "$dir" | cksum | awk '{print $1}')
    # ephemeral range on Linux usually starts at 32768; stay below it.
    base=$((20000 + (h % 6000) * 2))
    for ((i = 0; i < 3000; i++)); do
        p1=$((20000 + ((base - 20000 + 2 * i) % 12000)))
        p2=$((p1 + 1))
        if port_free "$p1" && port_free "$p2"; then
            CTLD_PORT=$p1
            SLURMD_PORT=$p2
            return 0
        fi
    done
    die "no free TCP port pair found in 20000-31999"
}

# pids of slurmstepd processes that belong to the cluster in DIR.
# slurmstepd overwrites its environment (setproctitle), so it is attributed by
# (a) its cwd, which it inherits from slurmd (slurmd chdirs to its log dir,
#     DIR/log), or (b) holding a unix socket bound under DIR/spool.
stepd_pids() {
    local dir=$1 p inodes="" fd
    inodes=$(awk -v pre="$dir/spool/" 'NR > 1 && index($8, pre) == 1 { print $7 }' /proc/net/unix 2>/dev/null || true)
    for p in /proc/[0-9]*; do
        [[ $(cat "$p/comm" 2>/dev/null) == slurmstepd ]] || continue
        if [[ $(readlink "$p/cwd" 2>/dev/null) == "$dir/log" ]]; then
            echo "${p#/proc/}"
            continue
        fi
        [[ -n $inodes ]] || continue
        for fd in "$p"/fd/*; do
            fd=$(readlink "$fd" 2>/dev/null) || continue
            if [[ $fd == socket:\[*\] ]]; then
                fd=${fd#socket:[}
                fd=${fd%]}
                if grep -qx "$fd" <<<"$inodes"; then
                    echo "${p#/proc/}"
                    break
                fi
            fi
        done
    done
}

# pid plus all of its descendants (breadth first).
descendants() {
    local -a queue=("$@") out=()
    local table pid
    table=$(for p in /proc/[0-9]*; do
        awk '{print $1, $4}' "$p/stat" 2>/dev/null || true
    done)
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        out+=("$pid")
        while read -r c pp; do
            [[ $pp == "$pid" ]] && queue+=("$c")
        done <<<"$table"
    done
    echo "${out[@]}"
}

# SIGKILL every slurmstepd of DIR together with its job processes.
kill_stepds() {
    local dir=$1 pids all
    pids=$(stepd_pids "$dir" | tr '\n' ' ')
    [[ -n ${pids// /} ]] || return 0
    # shellcheck disable=SC2086
    all=$(descendants $pids)
    # shellcheck disable=SC2086
    kill -STOP $all 2>/dev/null || true
    # shellcheck disable=SC2086
    kill -KILL $all 2>/dev/null || true
}

show_logs() {
    local dir=$1 f
    for f in "$dir"/log/munged.log "$dir"/log/slurmctld.log "$dir"/log/slurmd.log \
             "$dir"/log/munged.out "$dir"/log/slurmctld.out "$dir"/log/slurmd.out; do
        [[ -s $f ]] || continue
        echo "----- tail -n 40 $f -----" >&2
        tail -n 40 "$f" >&2 || true
    done
}

CLEANUP_ON_FAIL=0
fail_start() {
    local dir=$1; shift
    show_logs "$dir"
    if ((CLEANUP_ON_FAIL)) && [[ ${QSCOPE_SLURM_KEEP_ON_FAILURE:-0} != 1 ]]; then
        CLEANUP_ON_FAIL=0
        cmd_stop "$dir" >/dev/null 2>&1 || true
    fi
    echo "[$PROG] ERROR: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- install
cmd_install() {
    local missing=0 b
    for b in slurmctld slurmd sbatch munged; do
        command -v "$b" >/dev/null 2>&1 || missing=1
    done
    if ((missing == 0)); then
        log "slurm and munge already installed ($(slurmctld -V 2>/dev/null || echo '?'))"
        return 0
    fi
    local pkgs=(slurmctld slurmd slurm-client munge)
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${pkgs[@]}"; then
        log "apt-get install failed; running apt-get update and retrying"
        apt-get update
        apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi
    for b in slurmctld slurmd sbatch munged; do
        command -v "$b" >/dev/null 2>&1 || die "$b still missing after install"
    done
    # The packages' init scripts must not leave system daemons behind (they
    # are normally refused by policy-rc.d in containers, but be sure).
    log "installed $(slurmctld -V)"
}

# ---------------------------------------------------------------- config
write_conf() {
    local dir=$1 cpus mem realmem defmem sockets cores threads line
    line=$(slurmd -C 2>/dev/null | head -n1) || true
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$line")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$line")
    sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$line")
    cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$line")
    threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$line")
    [[ -n $cpus ]] || cpus=$(nproc)
    [[ -n $mem ]] || mem=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)
    # Leave some head room; slurmd drains the node if RealMemory > actual.
    realmem=$((mem * 9 / 10))
    ((realmem >= 256)) || realmem=$mem
    defmem=$((realmem / cpus / 4))
    ((defmem > 1024)) && defmem=1024
    ((defmem >= 16)) || defmem=16
    local topo="CPUs=$cpus"
    if [[ -n $sockets && -n $cores && -n $threads ]] && ((sockets * cores * threads == cpus)); then
        topo="CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads"
    fi

    cat >"$dir/slurm.conf" <<EOF
# Generated by tests/slurm/cluster.sh -- one-node test cluster, do not edit.
ClusterName=qscope-test
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true

StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=$DEBUG_LEVEL
SlurmdDebug=$DEBUG_LEVEL

ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt

SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem

MinJobAge=3600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SlurmdTimeout=$SLURMD_TIMEOUT
SlurmctldTimeout=30
MessageTimeout=10
ReturnToService=2
# Jobs on a failed node end as NODE_FAIL instead of being requeued (sbatch --requeue overrides).
JobRequeue=0
MaxArraySize=10001

NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=localhost $topo RealMemory=$realmem State=UNKNOWN
PartitionName=debug Nodes=$NODE MaxTime=INFINITE State=UP Default=YES
PartitionName=second Nodes=$NODE MaxTime=INFINITE State=UP Default=NO
EOF
}

# ---------------------------------------------------------------- munge
start_munged() {
    local dir=$1 m=$1/munge pid
    if pid=$(live_pid "$m/munged.pid" munged); then
        log "munged already running (pid $pid)"
        return 0
    fi
    mkdir -p "$m"
    chmod 0755 "$m"
    if [[ ! -s $m/munge.key ]]; then
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile="$m/munge.key" --force
        else
            dd if=/dev/urandom of="$m/munge.key" bs=1 count=1024 status=none
        fi
    fi
    chmod 0400 "$m/munge.key"
    rm -f "$m/munge.sock" "$m/munge.sock.lock" "$m/munged.pid"
    # --force: tolerate group-writable parents of DIR (e.g. umask 002 in CI).
    munged --force \
        --socket="$m/munge.sock" \
        --key-file="$m/munge.key" \
        --pid-file="$m/munged.pid" \
        --log-file="$dir/log/munged.log" \
        --seed-file="$m/munged.seed" \
        </dev/null >>"$dir/log/munged.out" 2>&1 || fail_start "$dir" "munged failed to start"
    local i
    for ((i = 0; i < 100; i++)); do
        if [[ -S $m/munge.sock ]] && live_pid "$m/munged.pid" munged >/dev/null; then
            if munge -n --socket="$m/munge.sock" </dev/null | unmunge --socket="$m/munge.sock" >/dev/null 2>&1; then
                return 0
            fi
        fi
        sleep 0.1
    done
    fail_start "$dir" "munged did not come up (socket $m/munge.sock)"
}

# ---------------------------------------------------------------- slurm daemons
# start_daemon DIR NAME [ARGS...]: slurmctld or slurmd on DIR's config, unless already running.
# QSCOPE_SLURM_DIR in its environment marks the daemon as ours (see cmd_stop).
start_daemon() {
    local dir=$1 name=$2 pid
    shift 2
    if pid=$(live_pid "$dir/run/$name.pid" "$name"); then
        log "$name already running (pid $pid)"
        return 0
    fi
    rm -f "$dir/run/$name.pid"
    QSCOPE_SLURM_DIR=$dir SLURM_CONF=$dir/slurm.conf \
        "$name" -f "$dir/slurm.conf" "$@" </dev/null >>"$dir/log/$name.out" 2>&1 ||
        fail_start "$dir" "$name exited with status $?"
}

start_slurmctld() { start_daemon "$1" slurmctld; }
start_slurmd_daemon() { start_daemon "$1" slurmd -N "$NODE"; }

node_state() {
    local dir=$1
    SLURM_CONF=$dir/slurm.conf timeout 10 sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true
}

# Wait until the node state matches regex $2.
wait_node() {
    local dir=$1 want=$2 secs=$3 st="" deadline
    deadline=$((SECONDS + secs))
    local grace=$((SECONDS + 5))
    while ((SECONDS < deadline)); do
        # the daemon writes its pid file shortly after forking; allow a grace period
        if ((SECONDS > grace)) && ! live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null; then
            fail_start "$dir" "slurmctld is not running (died during startup?)"
        fi
        if ((SECONDS > grace)) && ! live_pid "$dir/run/slurmd.pid" slurmd >/dev/null; then
            fail_start "$dir" "slurmd is not running (died during startup?)"
        fi
        st=$(node_state "$dir")
        if [[ $st =~ $want ]]; then
            return 0
        fi
        sleep 0.5
    done
    fail_start "$dir" "node '$NODE' not ready after ${secs}s (last state: '${st:-no answer from slurmctld}')"
}

check_installed() {
    local b
    for b in slurmctld slurmd sbatch sinfo munged munge; do
        command -v "$b" >/dev/null 2>&1 || die "$b not found; run '$0 install' first"
    done
}

cmd_start() {
    need_dir_arg "$@"
    check_installed
    local dir
    dir=$(abs_dir "$1")
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd -P)
    mkdir -p "$dir/state" "$dir/spool" "$dir/run" "$dir/log" ||
        die "cannot create state directories under $dir"
    chmod 0755 "$dir/state" "$dir/spool" "$dir/run" "$dir/log"

    # Already fully running? Then nothing to do.
    if [[ -f $dir/slurm.conf ]] && live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null &&
        live_pid "$dir/run/slurmd.pid" slurmd >/dev/null &&
        live_pid "$dir/munge/munged.pid" munged >/dev/null; then
        log "cluster in $dir already running"
        wait_node "$dir" '^(idle|mixed|allocated|completing)' "$START_TIMEOUT"
        echo "SLURM_CONF=$dir/slurm.conf"
        return 0
    fi

    # From here on a failed start tears down whatever it started (unless
    # QSCOPE_SLURM_KEEP_ON_FAILURE=1), so a failing fixture leaves no daemons.
    CLEANUP_ON_FAIL=1
    if [[ ! -f $dir/slurm.conf ]] || ! live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null; then
        # (Re)generate config with fresh free ports unless slurmctld is still up.
        pick_ports "$dir"
        write_conf "$dir"
    fi
    echo "export SLURM_CONF=$dir/slurm.conf" >"$dir/env.sh"

    start_munged "$dir"
    start_slurmctld "$dir"
    start_slurmd_daemon "$dir"
    wait_node "$dir" '^idle' "$START_TIMEOUT"
    local ctld_port slurmd_port
    ctld_port=$(sed -n 's/^SlurmctldPort=//p' "$dir/slurm.conf")
    slurmd_port=$(sed -n 's/^SlurmdPort=//p' "$dir/slurm.conf")
    log "cluster up in $dir (slurmctld port $ctld_port, slurmd port $slurmd_port); source $dir/env.sh"
    echo "SLURM_CONF=$dir/slurm.conf"
}

cmd_start_slurmd() {
    need_dir_arg "$@"
    check_installed
    local dir
    dir=$(abs_dir "$1")
    [[ -f $dir/slurm.conf ]] || die "no cluster in $dir (missing slurm.conf)"
    live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null || die "slurmctld for $dir is not running"
    start_slurmd_daemon "$dir"
    wait_node "$dir" '^(idle|mixed|allocated|completing)$' "$START_TIMEOUT"
    log "slurmd up; node state $(node_state "$dir")"
}

cmd_kill_slurmd() {
    need_dir_arg "$@"
    local dir pid
    dir=$(abs_dir "$1")
    if pid=$(live_pid "$dir/run/slurmd.pid" slurmd); then
        kill -KILL "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
            live_pid "$dir/run/slurmd.pid" slurmd >/dev/null || break
            sleep 0.1
        done
        log "killed slurmd (pid $pid)"
    else
        log "slurmd not running"
    fi
    # A lost node loses its job steps too.
    kill_stepds "$dir"
}

cmd_stop() {
    need_dir_arg "$@"
    local dir pid
    dir=$(abs_dir "$1")
    [[ -d $dir ]] || { log "$dir does not exist; nothing to stop"; return 0; }
    # Cancel jobs first so slurmstepd/job processes are not left behind
    # (pending ones first, so nothing new starts while running ones are cancelled).
    local -a killed=()
    if [[ -f $dir/slurm.conf ]] && live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null; then
        local jobs
        jobs=$(SLURM_CONF=$dir/slurm.conf timeout 10 squeue -h -t PD -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
        # shellcheck disable=SC2086
        [[ -z ${jobs// /} ]] || SLURM_CONF=$dir/slurm.conf timeout 10 scancel $jobs 2>/dev/null || true
        jobs=$(SLURM_CONF=$dir/slurm.conf timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
        # shellcheck disable=SC2086
        [[ -z ${jobs// /} ]] || SLURM_CONF=$dir/slurm.conf timeout 10 scancel $jobs 2>/dev/null || true
        if [[ -n ${jobs// /} ]] && live_pid "$dir/run/slurmd.pid" slurmd >/dev/null; then
            local i
            for ((i = 0; i < 16; i++)); do
                [[ -z $(stepd_pids "$dir") ]] && break
                sleep 0.5
            done
        fi
    fi
    if pid=$(live_pid "$dir/run/slurmd.pid" slurmd); then killed+=("$pid"); kill_wait "$pid" 10; fi
    kill_stepds "$dir"
    if pid=$(live_pid "$dir/run/slurmctld.pid" slurmctld); then killed+=("$pid"); kill_wait "$pid" 15; fi
    if pid=$(live_pid "$dir/munge/munged.pid" munged); then killed+=("$pid"); kill_wait "$pid" 10; fi
    # Belt and braces: anything still carrying our marker in its environment.
    local p
    for p in /proc/[0-9]*; do
        case $(cat "$p/comm" 2>/dev/null) in slurmctld | slurmd) ;; *) continue ;; esac
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "QSCOPE_SLURM_DIR=$dir"; then
            kill -KILL "${p#/proc/}" 2>/dev/null || true
        fi
    done
    rm -f "$dir/run/slurmctld.pid" "$dir/run/slurmd.pid" "$dir/munge/munged.pid"
    # Dead daemons are reparented to PID 1; give it a moment to reap the zombies
    # so that callers checking `pgrep slurm` right after stop see nothing.
    local i k left
    for ((i = 0; i < 50 && ${#killed[@]}; i++)); do
        left=0
        for k in "${killed[@]}"; do [[ -d /proc/$k ]] && left=1; done
        ((left)) || break
        sleep 0.1
    done
    log "cluster in $dir stopped"
}

cmd_status() {
    need_dir_arg "$@"
    local dir pid name rc=0
    dir=$(abs_dir "$1")
    for name in munged slurmctld slurmd; do
        local f=$dir/run/$name.pid
        [[ $name == munged ]] && f=$dir/munge/munged.pid
        if pid=$(live_pid "$f" "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    echo "slurmstepd: $(stepd_pids "$dir" | tr '\n' ' ')"
    if live_pid "$dir/run/slurmctld.pid" slurmctld >/dev/null; then
        SLURM_CONF=$dir/slurm.conf timeout 10 sinfo -N || rc=1
    else
        rc=1
    fi
    return $rc
}

# ---------------------------------------------------------------- main
[[ $# -ge 1 ]] || usage
sub=$1; shift
case $sub in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill-slurmd) cmd_kill_slurmd "$@" ;;
    start-slurmd) cmd_start_slurmd "$@" ;;
    status) cmd_status "$@" ;;
    -h | --help | help) usage ;;
    *) echo "[$PROG] unknown subcommand: $sub" >&2; usage ;;
esac
