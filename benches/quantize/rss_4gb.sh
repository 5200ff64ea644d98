#!/usr/bin/env bash
# Peak resident memory of `quantize` on a synthetic F16 model of >= 4 GB, measured with
# /usr/bin/time -v, against the bound "3 x the largest tensor's F32 size + a small constant".
#
#   benches/quantize/rss_4gb.sh [WORKDIR] [SIZE_GB] [TYPE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-/tmp/ingot-quantize-rss}"
size="${2:-4.2}"
ty="${3:-Q4_K_M}"
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p ingot-tools --bin quantize --manifest-path "$root/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/quantize"
model="$work/synthetic-f16-4gb.gguf"
[ -f "$model" ] || python3 "$here/make_synthetic_model.py" "$model" --size-gb "$size"
read -r total largest < <(python3 -c "
from gguf import GGUFReader
r = GGUFReader('$model')
print(sum(int(t.n_bytes) for t in r.tensors), max(int(t.n_elements) for t in r.tensors) * 4)")
echo "model: $model: $total bytes of tensor data; largest tensor as f32: $largest bytes"
/usr/bin/time -v "$bin" "$model" "$work/out.gguf" "$ty" --threads 2 --no-progress-bar 2> "$work/time.txt" >/dev/null || { cat "$work/time.txt"; exit 1; }
grep -E "Elapsed|Maximum resident" "$work/time.txt"
tail -n 30 "$work/time.txt" | grep -m1 "^quantize:" || true
rss_kb=$(grep "Maximum resident" "$work/time.txt" | awk '{print $NF}')
echo "peak RSS: $((rss_kb / 1024)) MiB; bound 3 x largest f32 = $((3 * largest / 1048576)) MiB"
rm -f "$work/out.gguf"
