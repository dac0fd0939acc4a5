#!/usr/bin/env bash
# Runs every unit-test executable given on the command line and prints one
# summary line CI can read:
#   unit: total: S suites, T tests, C checks, F failures, X crashed
set -u
suites=0 tests=0 checks=0 failures=0 crashed=0
for exe in "$@"; do
    out=$("$exe" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^unit: ' >&2
    line=$(printf '%s\n' "$out" | grep '^unit: ' | tail -n 1)
    if [ -z "$line" ]; then
        echo "unit: $exe: crashed or printed no summary (exit $rc)"
        crashed=$((crashed + 1))
        continue
    fi
    echo "$line"
    read -r t c f <<<"$(printf '%s\n' "$line" \
        | sed -E 's/.*: ([0-9]+) tests, ([0-9]+) checks, ([0-9]+) failures/\1 \2 \3/')"
    suites=$((suites + 1)) tests=$((tests + t)) checks=$((checks + c))
    failures=$((failures + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        crashed=$((crashed + 1))
    fi
done
echo "unit: total: $suites suites, $tests tests, $checks checks, $failures failures, $crashed crashed"
[ "$failures" -eq 0 ] && [ "$crashed" -eq 0 ]
