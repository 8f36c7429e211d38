#!/usr/bin/env bash
# contrib/bench/run.sh — postern against Postfix and OpenSMTPD, same load, same disk.
#
#   contrib/bench/run.sh            # quick: 3 rounds; 5,000 msgs at 20 sessions, 2,000 at 1,
#                                   #   1,000 of 100 KB, 2,000 over reused connections (~10 min)
#   contrib/bench/run.sh --full     # 20,000 at 20 sessions, 10,000 at 1, 5,000 of 100 KB
#   contrib/bench/run.sh --rounds 5 --samples 500 --mtas postern,postfix --no-strace
#
# Run as root on Debian 12. Installs and configures the peers first
# (setup-peers.sh, idempotent), builds postern if its binary is missing, then
# runs bench.py: each MTA alone during its turn, rounds interleaved. Prints a
# Markdown report and writes it to contrib/bench/results-<date>.md.
# Work files: $BENCH_DIR (default /var/tmp/postern-bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/peers.sh"
[ "$(id -u)" = 0 ] || bench_die "run as root"

"$here/setup-peers.sh" --no-test
if [ ! -x "$POSTERN_BIN" ]; then
    [ -d "$POSTERN_REPO/build" ] || meson setup "$POSTERN_REPO/build" "$POSTERN_REPO" --buildtype=release
    ninja -C "$POSTERN_REPO/build" postern
fi
ulimit -n "$(ulimit -Hn)"

# Leftovers of an interrupted run: delete them, then let ext4 settle (a burst
# of freed inodes slows every file creation for ~30 s after it).
if [ -n "$(ls -A "$BENCH_DIR/runs" 2>/dev/null)" ]; then
    bench_log "removing leftovers in $BENCH_DIR/runs, then waiting 30 s"
    stop_all
    rm -rf "${BENCH_DIR:?}/runs/"*
    sync; sleep 30
fi
exec /usr/bin/python3 "$here/bench.py" "$@"
