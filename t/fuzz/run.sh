#!/usr/bin/env bash
# Runs each libFuzzer executable given on the command line (default: the
# build of every t/fuzz/fuzz_*.c in build/fuzz) for FUZZ_SECONDS (default
# 20).  A target keeps its corpus in <exe dir>/corpus/<name>, starting from
# t/fuzz/seeds/<name> when that exists, and its log in <exe dir>/<name>.log;
# a crashing input lands in <exe dir>/artifacts/.  Prints a line per target
# and one CI can read:
#   fuzz: total: T targets, C crashed
# and exits nonzero if any target crashed or was missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-20}

if [ $# -eq 0 ]; then
    for src in "$here"/fuzz_*.c; do
        [ -e "$src" ] || continue
        set -- "$@" "$here/../../build/fuzz/$(basename "$src" .c)"
    done
fi

targets=0 crashed=0
for exe in "$@"; do
    name=$(basename "$exe")
    dir=$(dirname "$exe")
    corpus=$dir/corpus/$name
    log=$dir/$name.log
    targets=$((targets + 1))

    if [ ! -x "$exe" ]; then
        echo "fuzz: $name: not built ($exe); run make fuzz"
        crashed=$((crashed + 1))
        continue
    fi

    mkdir -p "$corpus" "$dir/artifacts"
    dirs=("$corpus")
    [ -d "$here/seeds/$name" ] && dirs+=("$here/seeds/$name")

    "$exe" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$name-" "${dirs[@]}" >"$log" 2>&1
    rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $name: CRASHED (exit $rc) after ${runs:-?} runs, log $log"
        grep -E '^==[0-9]+==|runtime error|^SUMMARY|Test unit written' \
            "$log" | head -n 10 >&2
        grep -E '^ +#[0-9]+ .* in (ngx_|fuzz_|LLVMFuzzerTestOneInput)' \
            "$log" | head -n 10 >&2
        crashed=$((crashed + 1))
        continue
    fi

    echo "fuzz: $name: ${runs:-?} runs in ${seconds}s," \
        "corpus $(find "$corpus" -type f | wc -l) inputs, no crash"
done

echo "fuzz: total: $targets targets, $crashed crashed"
[ "$crashed" -eq 0 ]
