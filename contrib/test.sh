#!/usr/bin/env bash
# contrib/test.sh — install what is missing, build (warnings are errors),
# run every suite: the doctest unit binaries, then the integration suite
# (the real binary on loopback, driven by smtplib, swaks, curl, openssl);
# then both again on a sanitizer build (ASan + UBSan, leaks included) and
# every fuzz target for a few seconds (POSTERN_FUZZ_SECONDS, default 3).
# Prints one line per suite and, last, "N passed, N failed" over all suites.
# Exit status 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. contrib/deps.sh
ensure_packages "${build_packages[@]}" "${test_packages[@]}"

passed=0
failed=0
report() { # suite passed failed
    echo "suite $1: $2 passed, $3 failed ($(elapsed))"
    passed=$((passed + $2))
    failed=$((failed + $3))
}
# Time since the start, on every suite line: where the run spends its time.
started=$SECONDS
elapsed() { echo "at $((SECONDS - started)) s"; }

# No debug info: a third less compile time on the critical path (measured:
# smtp_server.cpp -O2 -g 15.9 s, -O2 11.6 s); the sanitizer build below has
# line tables for its reports.
if ! build_postern -Dwerror=true -Ddebug=false; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "build: done ($(elapsed))"

# Unit suites: one doctest binary per module, of the build dir $1, reported
# with the prefix $2.
unit_suites() { # build-dir prefix
    local bin name out rc line p f
    for bin in "$1"/tests/*/test_*; do
        [ -f "$bin" ] && [ -x "$bin" ] || continue
        name=$2$(basename "$bin")
        out=$("$bin" --no-intro 2>&1)
        rc=$?
        line=$(printf '%s\n' "$out" | grep -E '^\[doctest\] test cases:' | tail -1)
        p=$(printf '%s' "$line" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
        f=$(printf '%s' "$line" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
        if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; }; then
            printf '%s\n' "$out" | tail -40
            p=${p:-0}
            f=$(( ${f:-0} + 1 )) # a crash or a run without a summary counts as a failure
        elif [ "$f" -ne 0 ]; then
            printf '%s\n' "$out" | grep -vE '^\[doctest\]' | tail -60
        fi
        report "$name" "${p:-0}" "$f"
    done
}

# Integration suite: pytest under Debian's interpreter (it owns
# python3-aiosmtpd), against the binary $1, reported as suite $2. The tests
# wait on sockets and timers far more than they compute, so they run on
# POSTERN_TEST_WORKERS pytest-xdist workers (default 4; each worker takes
# its server ports from its own range, see conftest.free_port).
integration_suite() { # binary suite-name
    local junit=build/$2-junit.xml ip if_
    rm -f "$junit"
    POSTERN_BIN="$1" /usr/bin/python3 -m pytest tests/integration -q \
        -n "${POSTERN_TEST_WORKERS:-4}" -p no:cacheprovider --junitxml="$junit" 2>&1 | tail -40
    if [ -f "$junit" ]; then
        read -r ip if_ < <(/usr/bin/python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)
        report "$2" "$ip" "$if_"
    else
        report "$2" 0 1
    fi
}

# The sanitizer build compiles while the first run's tests (mostly waiting
# on sockets) use the other core. Niced: the integration tests have
# deadlines (a greeting within 10 s, a TLS handshake...) and a run with the
# build at full priority on a busy machine lost 5 of 475 to timeouts; niced,
# the build gets the CPU the tests leave idle, and gets it all back (root
# only: renice) once they are done.
( renice -n 10 -p "$BASHPID" >/dev/null; build_sanitized ) > build-san.log 2>&1 &
san_build=$!

unit_suites build ""
integration_suite "$PWD/build/postern" integration
# Normal priority again for the build (its subshell, ninja, the meson setup);
# compilers already running finish niced, ninja starts the next ones at 0.
renice -n 0 -p "$san_build" $(pgrep -P "$san_build") >/dev/null 2>&1 || true

# The same suites again on a second build with AddressSanitizer and
# UndefinedBehaviorSanitizer (clang, which also builds the fuzz targets).
# Every report, leaks included, is written under $san_logs and fails the run.
san_logs=$PWD/build-san/sanitizer-logs
if ! wait "$san_build"; then
    tail -40 build-san.log
    echo "sanitizer build failed"
    report sanitizer-build 0 1
else
    echo "sanitizer build: done ($(elapsed))"
    rm -rf "$san_logs"
    mkdir -p "$san_logs"
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$san_logs/asan"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$san_logs/ubsan"
    export LSAN_OPTIONS="suppressions=$PWD/contrib/lsan.supp"
    unit_suites build-san "san-"
    # Memory bounds are not judged under ASan (redzones); fewer kill rounds.
    POSTERN_SANITIZED=1 POSTERN_TORTURE_ROUNDS=${POSTERN_TORTURE_ROUNDS:-10} \
        integration_suite "$PWD/build-san/postern" integration-san
    # Fuzzing: each target a few seconds, its regression inputs first.
    fuzz_out=$(contrib/fuzz.sh all "${POSTERN_FUZZ_SECONDS:-3}" 2>&1)
    fuzz_rc=$?
    printf '%s\n' "$fuzz_out" | grep -E '^fuzz ' || printf '%s\n' "$fuzz_out" | tail -30
    fp=$(printf '%s\n' "$fuzz_out" | grep -cE '^fuzz .*, 0 crashes$')
    ff=$(printf '%s\n' "$fuzz_out" | grep -E '^fuzz ' | grep -cvE ', 0 crashes$')
    [ "$fuzz_rc" -ne 0 ] && [ "$ff" -eq 0 ] && ff=1
    report fuzz "$fp" "$ff"
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    reports=$(find "$san_logs" -type f | wc -l)
    if [ "$reports" -ne 0 ]; then
        for r in "$san_logs"/*; do echo "==== $r"; head -60 "$r"; done
    fi
    report sanitizer-reports $(( reports == 0 ? 1 : 0 )) "$reports"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
