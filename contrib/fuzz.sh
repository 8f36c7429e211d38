#!/usr/bin/env bash
# contrib/fuzz.sh — build the libFuzzer targets (tests/fuzz/) in build-san
# (clang, ASan + UBSan) and run them. Installs nothing.
#
#   contrib/fuzz.sh list               the targets, one a line
#   contrib/fuzz.sh TARGET SECONDS     replay tests/fuzz/regressions/TARGET/*,
#                                      then fuzz TARGET for SECONDS
#   contrib/fuzz.sh all SECONDS        every target, SECONDS each, one per core at a time
#
# The checked-in seeds (tests/fuzz/corpus/TARGET/) are read, never written:
# libFuzzer adds what it finds to build-san/fuzz-corpus/TARGET/, which
# starts as a copy of the seeds and grows from run to run. Crashing inputs
# land in build-san/fuzz-artifacts/TARGET/; keep one as a regression by
# copying it to tests/fuzz/regressions/TARGET/. Logs: build-san/fuzz-logs/.
# Prints one line per target, "fuzz TARGET: N runs in S s, C crashes"
# (crashes counts crashes, leaks, timeouts and out-of-memory alike).
# Exit status 0 only when no target found anything.
set -uo pipefail
cd "$(dirname "$0")/.."

build=build-san
# Every tests/fuzz/fuzz_<target>.cpp is a target (one list: the files).
targets=()
for f in tests/fuzz/fuzz_*.cpp; do
    f=${f##*/fuzz_}
    targets+=("${f%.cpp}")
done

usage() {
    echo "usage: contrib/fuzz.sh list | all SECONDS | TARGET SECONDS" >&2
    echo "targets: ${targets[*]}" >&2
    exit 2
}

is_target() {
    local t
    for t in "${targets[@]}"; do
        [ "$t" = "$1" ] && return 0
    done
    return 1
}

ensure_build() { # targets...
    if [ ! -f "$build/build.ninja" ]; then
        CXX=clang++ CC=clang meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false \
            -Dwerror=false -Dfuzz=true -Dbuildtype=debugoptimized >/dev/null || return 1
    elif ! ninja -C "$build" -t targets all 2>/dev/null | grep -q '^tests/fuzz/fuzz_'; then
        meson configure "$build" -Dfuzz=true >/dev/null || return 1
    fi
    local t names=()
    for t in "$@"; do
        names+=("tests/fuzz/fuzz_$t")
    done
    ninja -C "$build" "${names[@]}" >"$build/fuzz-build.log" 2>&1 || {
        tail -40 "$build/fuzz-build.log"
        return 1
    }
}

# UBSan reports must stop the run (meson's b_sanitize builds recover by
# default), and every report goes to the target's log (a caller's log_path,
# as contrib/test.sh sets for its suites, would hide it from that log).
# Later settings win: ours come last.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1:log_path=stderr"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:log_path=stderr"

run_target() { # target seconds → 0 when nothing was found
    local t=$1 secs=$2
    local bin="$build/tests/fuzz/fuzz_$t"
    local seeds="tests/fuzz/corpus/$t"
    local work="$build/fuzz-corpus/$t"
    local artifacts="$build/fuzz-artifacts/$t"
    local log="$build/fuzz-logs/$t.log"
    local regressions="tests/fuzz/regressions/$t"
    mkdir -p "$work" "$artifacts" "$build/fuzz-logs"
    : >"$log"
    local crashes=0

    # Replay the kept crashes first: each must pass now.
    if [ -d "$regressions" ]; then
        local f
        for f in "$regressions"/*; do
            [ -f "$f" ] || continue
            if ! "$bin" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/replay-" "$f" >>"$log" 2>&1; then
                echo "fuzz $t: regression $f fails again (log: $log)"
                crashes=$((crashes + 1))
            fi
        done
    fi

    local dirs=("$work")
    if [ -d "$seeds" ]; then
        cp -n "$seeds"/* "$work"/ 2>/dev/null
        dirs+=("$seeds")
    fi
    local before start
    before=$(find "$artifacts" -type f | wc -l)
    start=$(date +%s)
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/" \
        -print_final_stats=1 "${dirs[@]}" >>"$log" 2>&1
    local rc=$?
    local elapsed=$(($(date +%s) - start))
    local after
    after=$(find "$artifacts" -type f | wc -l)
    local found=$((after - before))
    if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then
        found=1 # died without an artifact (e.g. a crash in the driver itself)
    fi
    crashes=$((crashes + found))

    local runs time line
    if line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1) && [ -n "$line" ]; then
        runs=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/' <<<"$line")
        time=$(sed -E 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/' <<<"$line")
    else
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
        [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
        time=$elapsed # a crash ends the run before its "Done" line
    fi
    echo "fuzz $t: ${runs:-0} runs in ${time:-?} s, $crashes crashes"
    if [ "$crashes" -ne 0 ]; then
        grep -E '^==[0-9]+==ERROR|runtime error|fuzz invariant failed|^SUMMARY|Test unit written to' "$log" |
            head -10 | sed 's/^/    /'
        echo "    log: $log; keep an input with: cp $artifacts/<file> $regressions/"
    fi
    [ "$crashes" -eq 0 ]
}

[ $# -ge 1 ] || usage
case "$1" in
list)
    printf '%s\n' "${targets[@]}"
    exit 0
    ;;
all)
    [ $# -eq 2 ] || usage
    run=("${targets[@]}")
    ;;
*)
    [ $# -eq 2 ] || usage
    is_target "$1" || usage
    run=("$1")
    ;;
esac
secs=$2
[[ "$secs" =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] || usage

if ! ensure_build "${run[@]}"; then
    echo "fuzz: build failed"
    exit 1
fi
# The targets run side by side, one per core (POSTERN_FUZZ_JOBS; libFuzzer
# runs are single-threaded): contrib/test.sh's fuzz step takes half the
# time. Their lines are printed in target order once all are done.
status=0
jobs_max=${POSTERN_FUZZ_JOBS:-$(nproc)}
out=$(mktemp -d)
i=0
for t in "${run[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n
    done
    (run_target "$t" "$secs" >"$out/$i.out" 2>&1; echo $? >"$out/$i.rc") &
    i=$((i + 1))
done
wait
for ((k = 0; k < i; k++)); do
    cat "$out/$k.out"
    [ "$(cat "$out/$k.rc" 2>/dev/null)" = 0 ] || status=1
done
rm -rf "$out"
exit $status
