#!/usr/bin/env bash
# contrib/test.sh — install what is missing, build (warnings are errors),
# run every suite: the doctest unit binaries, then the integration suite
# (the real binary on loopback, driven by smtplib and swaks).
# Prints one line per suite and, last, "N passed, N failed" over all suites.
# Exit status 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. contrib/deps.sh
ensure_packages "${build_packages[@]}" "${test_packages[@]}"

passed=0
failed=0
report() { # suite passed failed
    echo "suite $1: $2 passed, $3 failed"
    passed=$((passed + $2))
    failed=$((failed + $3))
}

if ! build_postern -Dwerror=true; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

# Unit suites: one doctest binary per module.
for bin in build/tests/*/test_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    name=$(basename "$bin")
    out=$("$bin" --no-intro 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^\[doctest\] test cases:' | tail -1)
    p=$(printf '%s' "$line" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
    if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; }; then
        printf '%s\n' "$out" | tail -20
        p=${p:-0}
        f=$(( ${f:-0} + 1 )) # a crash or a run without a summary counts as a failure
    elif [ "$f" -ne 0 ]; then
        printf '%s\n' "$out" | grep -vE '^\[doctest\]' | tail -60
    fi
    report "$name" "${p:-0}" "$f"
done

# Integration suite: pytest under Debian's interpreter (it owns python3-aiosmtpd).
junit=build/integration-junit.xml
rm -f "$junit"
POSTERN_BIN="$PWD/build/postern" /usr/bin/python3 -m pytest tests/integration -q \
    -p no:cacheprovider --junitxml="$junit" 2>&1 | tail -40
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
    report integration "$ip" "$if_"
else
    report integration 0 1
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
