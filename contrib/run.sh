#!/usr/bin/env bash
# contrib/run.sh — install what is missing, build, and start `postern serve`
# in the foreground on its embedded default configuration (SMTP on
# 127.0.0.1:2525, spool ./var/spool, mailboxes ./var/mail). Extra arguments
# go to `postern serve` (e.g. --config conf/postern.json).
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/deps.sh
ensure_packages "${build_packages[@]}"
build_postern
exec build/postern serve "$@"
