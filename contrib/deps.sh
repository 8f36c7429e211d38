# contrib/deps.sh — sourced by run.sh and test.sh: install the Debian
# packages postern needs when they are missing (apt-get; root or sudo).
# Usage: ensure_packages pkg...

build_packages=(meson ninja-build g++ pkg-config cmake libasio-dev libssl-dev libc-ares-dev
                nlohmann-json3-dev doctest-dev)
# postfix: the relay interop test delivers to a real Postfix (installed with
# debconf's "No configuration": nothing of it runs until a test starts one).
# python3-pytest-xdist: the integration suite runs on several workers (its
# tests mostly wait on sockets and timers). fetchmail: a real POP3 client (issue 8).
# isync: mbsync, a real IMAP client syncing with a local Maildir (issue 10; curl
# speaks imap:// and imaps:// already).
test_packages=(swaks openssl curl python3 python3-pytest python3-pytest-xdist python3-aiosmtpd
               python3-dnslib postfix dovecot-core dovecot-lmtpd fetchmail isync clang libclang-rt-14-dev)

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "postern: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
        echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
    fi
    "${sudo[@]}" apt-get update -q >&2 || true
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# The sanitizer and fuzzing build (clang: libFuzzer ships with it).
build_sanitized() {
    if [ ! -f build-san/build.ninja ]; then
        # -O1 and line tables only: what ASan's reports need, a fifth less
        # compile time than -O2 -g (the build is on test.sh's critical path).
        CXX=clang++ CC=clang meson setup build-san -Db_sanitize=address,undefined -Db_lundef=false \
            -Dwerror=false -Dfuzz=true -Doptimization=1 -Ddebug=false \
            -Dcpp_args=-gline-tables-only -Dc_args=-gline-tables-only >&2 || return 1
    fi
    ninja -C build-san >&2
}

# Configures (once) and builds build/. Extra meson options go in $@.
build_postern() {
    if [ ! -f build/build.ninja ]; then
        meson setup build "$@" >&2 || return 1
    elif [ $# -gt 0 ]; then
        meson configure build "$@" >&2 || return 1
    fi
    ninja -C build >&2
}
