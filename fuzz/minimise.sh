#!/bin/sh
# Minimises each target's corpus (libFuzzer -merge via `cargo fuzz cmin`: keeps only inputs
# that add coverage), then caps it at CAP_KB (default 300) by dropping the largest inputs, so
# the committed corpus stays small. Usage: fuzz/minimise.sh [TARGET...]
set -eu
cd "$(dirname "$0")"
cap=$(( ${CAP_KB:-300} * 1024 ))
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-fuzz}
for t in ${*:-gguf imatrix safetensors tokenizer quant}; do
    [ -d "corpus/$t" ] || continue
    before=$(ls "corpus/$t" | wc -l)
    nice -n 19 cargo +nightly fuzz cmin "$t" "corpus/$t" -- -rss_limit_mb=1024 \
        -malloc_limit_mb=1024 -timeout=10 >"/tmp/ingot-cmin-$t.log" 2>&1
    total=0
    for f in $(ls -Sr "corpus/$t"); do
        size=$(stat -c %s "corpus/$t/$f")
        if [ $((total + size)) -gt "$cap" ]; then rm "corpus/$t/$f"; else total=$((total + size)); fi
    done
    echo "$t: $before -> $(ls "corpus/$t" | wc -l) files, $total bytes"
done
