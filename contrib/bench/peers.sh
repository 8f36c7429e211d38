# contrib/bench/peers.sh — sourced by setup-peers.sh, run.sh and idle.py's callers.
#
# Where everything lives, and start/stop functions for the three MTAs of the
# benchmark (postern, Postfix, OpenSMTPD) plus smtp-sink. Each MTA runs in its
# own accounting cgroup (cpuacct on cgroup v1, the unified hierarchy on v2), so
# the CPU it uses is counted for every process of the instance, including the
# short-lived ones that have exited (Postfix's smtpd/cleanup/local, OpenSMTPD's
# mail.maildir); the same cgroup lists the processes whose RSS idle.py sums.
# The peers run in a private mount namespace whose /etc/resolv.conf points at
# 127.0.0.1, so their DNS look-ups (OpenSMTPD resolves every client's PTR)
# stay on loopback. No systemd: everything is started and stopped by PID.
#
# Needs bash; run as root.

BENCH_DIR=${BENCH_DIR:-/var/tmp/postern-bench}
BENCH_DOMAIN=${BENCH_DOMAIN:-bench.test}
BENCH_USER=${BENCH_USER:-benchuser}
BENCH_RCPT="$BENCH_USER@$BENCH_DOMAIN"
BENCH_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POSTERN_REPO=$(cd "$BENCH_SRC_DIR/../.." && pwd)
POSTERN_BIN=${POSTERN_BIN:-$POSTERN_REPO/build/postern}

POSTERN_PORT=${POSTERN_PORT:-2610}
POSTFIX_PORT=${POSTFIX_PORT:-2611}
OPENSMTPD_PORT=${OPENSMTPD_PORT:-2612}
SINK_PORT=${SINK_PORT:-2613}

POSTFIX_CONF=$BENCH_DIR/postfix/etc
POSTFIX_SPOOL=$BENCH_DIR/postfix/spool
OPENSMTPD_ROOT=$BENCH_DIR/opensmtpd/root
OPENSMTPD_CONF=$BENCH_DIR/opensmtpd/smtpd.conf
BENCH_HOME=$BENCH_DIR/home/$BENCH_USER
# Where each MTA's Maildir for $BENCH_RCPT is (postern's moves with its run dir).
POSTFIX_MAILDIR=$BENCH_HOME/Maildir
OPENSMTPD_MAILDIR=$BENCH_HOME/Maildir-opensmtpd
POSTERN_RUN=$BENCH_DIR/postern/current      # symlink to the run's own dir
POSTERN_MAILDIR=$POSTERN_RUN/mail/$BENCH_DOMAIN/$BENCH_USER

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---- accounting cgroups ---------------------------------------------------
# bench_cg_path NAME -> directory of the cgroup (created on demand)
bench_cg_path() {
    local name=postern-bench-$1
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        echo /sys/fs/cgroup/$name
    elif [ -d /sys/fs/cgroup/cpuacct ]; then
        echo /sys/fs/cgroup/cpuacct/$name
    elif [ -d /sys/fs/cgroup/cpu,cpuacct ]; then
        echo /sys/fs/cgroup/cpu,cpuacct/$name
    else
        bench_die "no cgroup hierarchy with CPU accounting found"
    fi
}
bench_cg_make() { local d; d=$(bench_cg_path "$1"); mkdir -p "$d"; echo "$d"; }
# bench_cg_run NAME CMD... : runs CMD inside cgroup NAME (in the background
# when the caller adds &; exec keeps the PID).
bench_cg_run() {
    local d; d=$(bench_cg_make "$1"); shift
    ( echo "$BASHPID" > "$d/cgroup.procs"; exec "$@" )
}
# bench_cg_pids NAME -> PIDs now in it
bench_cg_pids() { local d; d=$(bench_cg_path "$1"); cat "$d/cgroup.procs" 2>/dev/null || true; }
# bench_cg_cpu_ns NAME -> CPU nanoseconds used by everything ever in it
bench_cg_cpu_ns() {
    local d; d=$(bench_cg_path "$1")
    if [ -f "$d/cpuacct.usage" ]; then cat "$d/cpuacct.usage"
    else echo $(( $(awk '/^usage_usec/ {print $2}' "$d/cpu.stat") * 1000 )); fi
}
# kill whatever is left in the cgroup (only our own daemons ever enter it)
bench_cg_reap() {
    local name=$1 p i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        p=$(bench_cg_pids "$name"); [ -z "$p" ] && return 0
        kill $( [ "$i" -gt 5 ] && echo -9 ) $p 2>/dev/null || true
        sleep 0.5
    done
}

# ---- DNS on loopback --------------------------------------------------------
# "${BENCH_NS[@]}" CMD... : runs CMD in a private mount namespace where /etc/resolv.conf
# says "nameserver 127.0.0.1" (nothing listens there: look-ups fail at once).
# (an array, so that bench_cg_run can exec it and keep the PID)
BENCH_NS=(unshare --mount --propagation private -- /bin/sh -c
          'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$BENCH_DIR/resolv.conf")

# wait_port PORT [SECONDS] : until something accepts on 127.0.0.1:PORT
wait_port() {
    local port=$1 n=$(( ${2:-20} * 10 )) i
    for ((i = 0; i < n; i++)); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
wait_port_free() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# ---- Postfix ----------------------------------------------------------------
postfix_start() {
    wait_port_free "$POSTFIX_PORT" || bench_die "port $POSTFIX_PORT busy"
    # configure-instance.sh copies resolv.conf, hosts, nsswitch… into the chroot
    # (its queue directory); inside the namespace it copies the loopback one.
    bench_cg_run postfix "${BENCH_NS[@]}" /bin/sh -c \
        'MAIL_CONFIG="$0" /usr/lib/postfix/configure-instance.sh - >/dev/null &&
         exec postfix -c "$0" start' "$POSTFIX_CONF" >"$BENCH_DIR/postfix/start.log" 2>&1 \
        || { cat "$BENCH_DIR/postfix/start.log" >&2; bench_die "postfix did not start"; }
    wait_port "$POSTFIX_PORT" 20 || bench_die "postfix does not listen on $POSTFIX_PORT"
}
postfix_stop() {
    postfix -c "$POSTFIX_CONF" stop >/dev/null 2>&1 || true
    bench_cg_reap postfix
}

# ---- OpenSMTPD ----------------------------------------------------------------
opensmtpd_start() {
    wait_port_free "$OPENSMTPD_PORT" || bench_die "port $OPENSMTPD_PORT busy"
    # -d: foreground, log to stderr (kept in a file); its own helpers run from
    # /usr/libexec/opensmtpd, where setup-peers.sh put them.
    bench_cg_run opensmtpd "${BENCH_NS[@]}" "$OPENSMTPD_ROOT/usr/sbin/smtpd" -d -f "$OPENSMTPD_CONF" \
        >>"$BENCH_DIR/opensmtpd/smtpd.log" 2>&1 &
    echo $! > "$BENCH_DIR/opensmtpd/smtpd.pid"
    wait_port "$OPENSMTPD_PORT" 20 || { tail "$BENCH_DIR/opensmtpd/smtpd.log" >&2; bench_die "opensmtpd does not listen on $OPENSMTPD_PORT"; }
}
opensmtpd_stop() {
    local pid; pid=$(cat "$BENCH_DIR/opensmtpd/smtpd.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    bench_cg_reap opensmtpd
    rm -f "$BENCH_DIR/opensmtpd/smtpd.pid"
}

# ---- postern ------------------------------------------------------------------
# postern_start RUN_DIR : a config with spool and Maildirs under RUN_DIR
postern_start() {
    local run=$1
    wait_port_free "$POSTERN_PORT" || bench_die "port $POSTERN_PORT busy"
    mkdir -p "$run/spool" "$run/mail"
    ln -sfn "$run" "$POSTERN_RUN"
    cat > "$run/postern.json" <<EOF
{
  "hostname": "postern.$BENCH_DOMAIN",
  "spool_dir": "$run/spool",
  "mail_root": "$run/mail",
  "listeners": [ { "address": "127.0.0.1:$POSTERN_PORT", "mode": "smtp" } ],
  "local_domains": [ "$BENCH_DOMAIN" ],
  "limits": { "connections": 30000, "connections_per_ip": 30000 },
  "log_level": "warn"
}
EOF
    bench_cg_run postern "$POSTERN_BIN" serve --config "$run/postern.json" >>"$run/postern.log" 2>&1 &
    echo $! > "$BENCH_DIR/postern/postern.pid"
    wait_port "$POSTERN_PORT" 20 || { tail "$run/postern.log" >&2; bench_die "postern does not listen on $POSTERN_PORT"; }
}
postern_stop() {
    local pid; pid=$(cat "$BENCH_DIR/postern/postern.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    bench_cg_reap postern
    rm -f "$BENCH_DIR/postern/postern.pid"
}

# ---- smtp-sink (no disk) ----------------------------------------------------------
sink_start() {
    wait_port_free "$SINK_PORT" || bench_die "port $SINK_PORT busy"
    bench_cg_run sink /usr/sbin/smtp-sink -u nobody -c 127.0.0.1:"$SINK_PORT" 1024 >/dev/null 2>&1 &
    echo $! > "$BENCH_DIR/sink.pid"
    wait_port "$SINK_PORT" 10 || bench_die "smtp-sink does not listen"
}
sink_stop() {
    local pid; pid=$(cat "$BENCH_DIR/sink.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    bench_cg_reap sink
    rm -f "$BENCH_DIR/sink.pid"
}

# mta_port / mta_maildir NAME
mta_port() {
    case $1 in postern) echo "$POSTERN_PORT" ;; postfix) echo "$POSTFIX_PORT" ;;
        opensmtpd) echo "$OPENSMTPD_PORT" ;; sink) echo "$SINK_PORT" ;; esac
}
mta_maildir() {
    case $1 in postern) echo "$POSTERN_MAILDIR" ;; postfix) echo "$POSTFIX_MAILDIR" ;;
        opensmtpd) echo "$OPENSMTPD_MAILDIR" ;; esac
}
stop_all() { postern_stop; postfix_stop; opensmtpd_stop; sink_stop; }
