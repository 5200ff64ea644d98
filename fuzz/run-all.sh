#!/bin/sh
# Runs every fuzz target for SECONDS (default 600) one after another, at the lowest CPU
# priority, with libFuzzer's memory and time limits; new inputs go to fuzz/corpus/<target>/,
# crashes to fuzz/artifacts/<target>/, logs (with exec counts: -print_final_stats) to
# $LOGS (default /tmp/ingot-fuzz-logs). Needs a nightly toolchain and cargo-fuzz.
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")"
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-gguf imatrix safetensors tokenizer quant}
logs=${LOGS:-/tmp/ingot-fuzz-logs}
mkdir -p "$logs"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-fuzz}
for t in $targets; do
    mkdir -p "corpus/$t"
    echo "== $t: $secs s, $(date -u +%H:%M:%S)"
    nice -n 19 cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=10 \
        -max_len=65536 -print_final_stats=1 >"$logs/$t.log" 2>&1
    echo "   exit $? $(grep -E 'stat::number_of_executed_units|Done' "$logs/$t.log" | tr '\n' ' ')"
done
