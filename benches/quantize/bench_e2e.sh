#!/usr/bin/env bash
# End-to-end quantize throughput: MB/s of F16 input (10^6 bytes of tensor data per second of
# wall time), median of 3 runs, 2 threads, for Q8_0, Q4_0 and Q4_K_M (plus Q4_K_S and pure
# Q4_K) with and without an importance matrix.
#
#   benches/quantize/bench_e2e.sh [WORKDIR] [SIZE_GB]      # synthetic llama-shaped F16 model
#   MODEL=smol-f16.gguf IMATRIX=imatrix.gguf benches/quantize/bench_e2e.sh [WORKDIR]
#
# The second form times a given F16 model, e.g. SmolLM2-135M dequantized to F16 (the model
# llama-quantize's figures in ../shared/ANCHORS.md were measured on:
# `quantize --allow-requantize SmolLM2-135M-Instruct.Q4_1.gguf smol-f16.gguf F16`) with the
# golden imatrix, so the ratio to those figures compares like with like.
#
# Needs: cargo, python3 with gguf + numpy. Builds the release `quantize` binary. The model is
# read once before timing so every run reads from the page cache (as the llama-quantize figures
# were measured: median of 3 on a warm cache).
#
# Guest memory is pre-touched first: on these virtual machines the host backs guest RAM lazily,
# and the first write to a never-touched page is slow (measured: writing 570 MB into a new
# file went at 200-340 MB/s on untouched memory and at 2.4-4.6 GB/s after touching 3 GB once).
# Every output file lands in fresh page-cache pages, so without this the figures would measure
# how long the machine has been up rather than the quantizer.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-/tmp/ingot-quantize-bench}"
size="${2:-1.1}"
mkdir -p "$work"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p ingot-tools --bin quantize --manifest-path "$root/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/quantize"
if [ -n "${MODEL:-}" ]; then
  model="$MODEL"
  imatrix="${IMATRIX:?IMATRIX must name an imatrix for MODEL}"
else
  model="$work/synthetic-f16.gguf"
  if [ ! -f "$model" ]; then
    python3 "$here/make_synthetic_model.py" "$model" --size-gb "$size" --hidden 2048 --ff 5632 --kv 512
  fi
  imatrix="$work/synthetic.imatrix.dat"
  [ -f "$imatrix" ] || python3 "$here/make_imatrix.py" "$model" "$imatrix"
fi
python3 -c "
import mmap
m = mmap.mmap(-1, 6 << 30)
for i in range(0, 6 << 30, 4096):
    m[i] = 1
"
cat "$model" > /dev/null
bytes=$(python3 -c "from gguf import GGUFReader; r=GGUFReader('$model'); print(sum(int(t.n_bytes) for t in r.tensors))")
echo "model: $model, $bytes bytes of tensor data; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
printf '%-8s %-9s %10s %10s\n' type imatrix "median s" "MB/s"
# "ref" = no imatrix with --reference (ggml's reference quantizers, llama-quantize's bytes).
for ty in Q8_0 Q4_0 Q4_K_M Q4_K_S Q4_K_pure; do
  for im in no ref yes; do
    [ "$ty" = Q8_0 ] && [ "$im" = yes ] && continue
    args=("$model" "$work/out.gguf" "${ty%_pure}" --threads 2 --no-progress-bar)
    [ "$ty" = Q4_K_pure ] && args+=(--pure)
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
    printf '%-9s %-9s %10.3f %10.0f\n' "$ty" "$im" "$med" "$(echo "$bytes / $med / 1000000" | bc -l)"
  done
done
rm -f "$work/out.gguf"
