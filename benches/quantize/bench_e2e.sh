#!/usr/bin/env bash
# End-to-end quantize throughput: MB/s of F16 input (10^6 bytes of tensor data per second of
# wall time), median of 3 runs, 2 threads, for Q8_0, Q4_0 and Q4_K_M with and without an
# importance matrix, on a synthetic llama-shaped F16 model of >= 1 GB.
#
#   benches/quantize/bench_e2e.sh [WORKDIR] [SIZE_GB]
#
# Needs: cargo, python3 with gguf + numpy. Builds the release `quantize` binary. The model is
# read once before timing so every run reads from the page cache (as the llama-quantize figures
# in ../shared/ANCHORS.md were measured: median of 3 on a warm cache).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-/tmp/ingot-quantize-bench}"
size="${2:-1.1}"
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p ingot-tools --bin quantize --manifest-path "$root/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/quantize"
model="$work/synthetic-f16.gguf"
if [ ! -f "$model" ]; then
  python3 "$here/make_synthetic_model.py" "$model" --size-gb "$size" --hidden 2048 --ff 5632 --kv 512
fi
imatrix="$work/synthetic.imatrix.dat"
[ -f "$imatrix" ] || python3 "$here/make_imatrix.py" "$model" "$imatrix"
cat "$model" > /dev/null
bytes=$(python3 -c "from gguf import GGUFReader; r=GGUFReader('$model'); print(sum(int(t.n_bytes) for t in r.tensors))")
echo "model: $model, $bytes bytes of tensor data; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
printf '%-8s %-9s %10s %10s\n' type imatrix "median s" "MB/s"
# "ref" = no imatrix with --reference (ggml's reference quantizers, llama-quantize's bytes).
for ty in Q8_0 Q4_0 Q4_K_M; do
  for im in no ref yes; do
    args=("$model" "$work/out.gguf" "$ty" --threads 2 --no-progress-bar)
    [ "$im" = yes ] && args+=(--imatrix "$imatrix")
    [ "$im" = ref ] && args+=(--reference)
    times=()
    for _ in 1 2 3; do
      s=$(date +%s.%N)
      "$bin" "${args[@]}" 2>/dev/null
      e=$(date +%s.%N)
      times+=("$(echo "$e - $s" | bc -l)")
    done
    med=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 2p)
    printf '%-8s %-9s %10.3f %10.0f\n' "$ty" "$im" "$med" "$(echo "$bytes / $med / 1000000" | bc -l)"
  done
done
rm -f "$work/out.gguf"
