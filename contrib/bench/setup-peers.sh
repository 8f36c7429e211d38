#!/usr/bin/env bash
# contrib/bench/setup-peers.sh — install and configure the benchmark's peers.
#
# Installs (Debian 12, as root, non-interactive) Postfix, the load tools that
# come with it (smtp-source, smtp-sink), fio, strace, and OpenSMTPD unpacked
# beside it (both packages provide mail-transport-agent, so apt installs only
# one: OpenSMTPD is fetched with `apt-get download` and unpacked with
# `dpkg-deb -x`). Writes each peer's configuration under $BENCH_DIR (default
# /var/tmp/postern-bench): Postfix on 127.0.0.1:$POSTFIX_PORT, OpenSMTPD on
# 127.0.0.1:$OPENSMTPD_PORT, each delivering $BENCH_USER@$BENCH_DOMAIN into a
# Maildir. Their shipped durability is kept: nothing here touches fsync.
# Idempotent: run it again and it only rewrites the configuration.
# Ends with a smoke test: starts each peer, sends one message, checks the
# Maildir, stops it.
#
#   contrib/bench/setup-peers.sh            # install + configure + smoke test
#   contrib/bench/setup-peers.sh --no-test  # install + configure only
set -euo pipefail
. "$(dirname "$0")/peers.sh"
[ "$(id -u)" = 0 ] || bench_die "run as root"

# ---- packages ---------------------------------------------------------------
need=()
for p in postfix fio strace python3 util-linux findutils procps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
# OpenSMTPD's run-time libraries (it is unpacked, so apt does not pull them)
for p in libevent-2.1-7 libdb5.3 libssl3 libpam0g zlib1g libcrypt1; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    bench_log "installing: ${need[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/smtp-sink ] || bench_die "smtp-source/smtp-sink missing (package postfix)"

mkdir -p "$BENCH_DIR"/{postfix,opensmtpd,postern,home,runs}
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$BENCH_DIR/resolv.conf"

# ---- users ------------------------------------------------------------------
getent group "$BENCH_USER" >/dev/null || groupadd --system "$BENCH_USER"
id "$BENCH_USER" >/dev/null 2>&1 || useradd --system -g "$BENCH_USER" -d "$BENCH_HOME" -s /bin/sh "$BENCH_USER"
[ "$(getent passwd "$BENCH_USER" | cut -d: -f6)" = "$BENCH_HOME" ] || usermod -d "$BENCH_HOME" "$BENCH_USER"
for u in opensmtpd opensmtpq; do   # what OpenSMTPD's maintainer scripts would create
    id "$u" >/dev/null 2>&1 || useradd --system -U -d /var/lib/opensmtpd/empty -s /usr/sbin/nologin "$u"
done
mkdir -p "$BENCH_HOME" /var/lib/opensmtpd/empty
chown "$BENCH_USER:$BENCH_USER" "$BENCH_HOME"; chmod 755 "$BENCH_DIR/home" "$BENCH_HOME"

# ---- OpenSMTPD ----------------------------------------------------------------
if [ ! -x "$OPENSMTPD_ROOT/usr/sbin/smtpd" ]; then
    tmp=$(mktemp -d); chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -qq opensmtpd >/dev/null) || { apt-get update -qq && (cd "$tmp" && apt-get download -qq opensmtpd); }
    rm -rf "$OPENSMTPD_ROOT"; mkdir -p "$OPENSMTPD_ROOT"
    dpkg-deb -x "$tmp"/opensmtpd_*.deb "$OPENSMTPD_ROOT"
    rm -rf "$tmp"
fi
# smtpd runs its delivery helpers from the compiled-in /usr/libexec/opensmtpd
if [ ! -e /usr/libexec/opensmtpd ] || [ -L /usr/libexec/opensmtpd ]; then
    mkdir -p /usr/libexec
    ln -sfn "$OPENSMTPD_ROOT/usr/libexec/opensmtpd" /usr/libexec/opensmtpd
fi
cat > "$OPENSMTPD_CONF" <<EOF
# OpenSMTPD for the postern benchmark (written by contrib/bench/setup-peers.sh)
table domains { "$BENCH_DOMAIN" }
listen on 127.0.0.1 port $OPENSMTPD_PORT hostname opensmtpd.$BENCH_DOMAIN
action "maildir" maildir "$OPENSMTPD_MAILDIR"
match from any for domain <domains> action "maildir"
EOF
"$OPENSMTPD_ROOT/usr/sbin/smtpd" -n -f "$OPENSMTPD_CONF" >/dev/null

# ---- Postfix ------------------------------------------------------------------
mkdir -p "$POSTFIX_CONF" "$POSTFIX_SPOOL" "$BENCH_DIR/postfix/data"
cat > "$POSTFIX_CONF/main.cf" <<EOF
# Postfix for the postern benchmark (written by contrib/bench/setup-peers.sh).
# Debian's shipped defaults otherwise: same fsync behaviour, same process limits.
compatibility_level = 3.7
queue_directory = $POSTFIX_SPOOL
data_directory = $BENCH_DIR/postfix/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.$BENCH_DOMAIN
mydomain = $BENCH_DOMAIN
myorigin = \$myhostname
mydestination = $BENCH_DOMAIN, \$myhostname, localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
home_mailbox = Maildir/
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
readme_directory = no
smtpd_banner = \$myhostname ESMTP \$mail_name (Debian/GNU)
unknown_local_recipient_reject_code = 550
EOF
# Debian's master.cf with the smtp listener moved to 127.0.0.1:PORT
sed -E "s|^smtp( +)inet|127.0.0.1:$POSTFIX_PORT inet|" /etc/postfix/master.cf > "$POSTFIX_CONF/master.cf"
grep -q "^127.0.0.1:$POSTFIX_PORT inet" "$POSTFIX_CONF/master.cf" || bench_die "master.cf: no smtp inet line to rewrite"
chown postfix:postfix "$BENCH_DIR/postfix/data"; chmod 700 "$BENCH_DIR/postfix/data"
postfix -c "$POSTFIX_CONF" check

bench_log "configured under $BENCH_DIR: postfix :$POSTFIX_PORT, opensmtpd :$OPENSMTPD_PORT, postern :$POSTERN_PORT, smtp-sink :$SINK_PORT"

[ "${1:-}" = --no-test ] && exit 0

# ---- smoke test ---------------------------------------------------------------
smoke() {
    local mta=$1 dir n i
    dir=$(mta_maildir "$mta")
    n=$(find "$dir/new" -type f 2>/dev/null | wc -l)
    /usr/sbin/smtp-source -m 1 -f bench@client.test -t "$BENCH_RCPT" 127.0.0.1:"$(mta_port "$mta")"
    for ((i = 0; i < 100; i++)); do
        [ "$(find "$dir/new" -type f 2>/dev/null | wc -l)" -gt "$n" ] && { bench_log "$mta: ok (delivered into $dir)"; return 0; }
        sleep 0.1
    done
    bench_log "$mta: FAILED, nothing in $dir/new after 10 s"; return 1
}
stop_all
rc=0
postfix_start;   smoke postfix   || rc=1; postfix_stop
opensmtpd_start; smoke opensmtpd || rc=1; opensmtpd_stop
if [ -x "$POSTERN_BIN" ]; then
    postern_start "$BENCH_DIR/postern/smoke"; smoke postern || rc=1; postern_stop
else
    bench_log "postern: $POSTERN_BIN not built, skipped (ninja -C build postern)"
fi
exit $rc
