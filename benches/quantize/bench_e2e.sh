#!/usr/bin/env bash
# End-to-end quantize throughput: MB/s of F16 input (10^6 bytes of tensor data per second of
# wall time), median of 3 runs, 2 threads, for Q8_0, Q4_0 and Q4_K_M (plus Q4_K_S and pure
# Q4_K) with and without an importance matrix.
#
#   benches/quantize/bench_e2e.sh [WORKDIR] [SIZE_GB]      # synthetic llama-shaped F16 model
#   MODEL=smol-f16.gguf IMATRIX=imatrix.gguf benches/quantize/bench_e2e.sh [WORKDIR]
#   LLAMA_QUANTIZE=/path/to/llama-quantize benches/quantize/bench_e2e.sh ...   # + the peer
#
# With LLAMA_QUANTIZE set, every row also times llama.cpp's llama-quantize on the same input
# with the same type, imatrix and thread count, alternating with ours, and prints the ratio.
# (The figures in ../shared/ANCHORS.md came from llama.cpp commit 0c1e57098bba; the sdist of
# the PyPI package llama-cpp-python 0.3.36 vendors exactly that commit, which builds with
# `cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF
# -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF && cmake --build build --target
# llama-quantize`.)
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
peer="${LLAMA_QUANTIZE:-}"
printf '%-9s %-9s %10s %10s %12s %10s %8s\n' type imatrix "median s" "MB/s" "llama.cpp s" "MB/s" ratio
# median of three wall-clock runs of "$@", in seconds
median3() {
  local times=() s e
  for _ in 1 2 3; do
    s=$(date +%s.%N)
    "$@" > /dev/null 2>&1
    e=$(date +%s.%N)
    times+=("$(echo "$e - $s" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | sed -n 2p
}
# "ref" = no imatrix with --reference (ggml's reference quantizers, llama-quantize's bytes).
for ty in Q8_0 Q4_0 Q4_K_M Q4_K_S Q4_K_pure; do
  for im in no ref yes; do
    [ "$ty" = Q8_0 ] && [ "$im" = yes ] && continue
    args=("$model" "$work/out.gguf" "${ty%_pure}" --threads 2 --no-progress-bar)
    peer_args=()
    [ "$ty" = Q4_K_pure ] && args+=(--pure) && peer_args+=(--pure)
    [ "$im" = yes ] && args+=(--imatrix "$imatrix") && peer_args+=(--imatrix "$imatrix")
    [ "$im" = ref ] && args+=(--reference)
    med=$(median3 "$bin" "${args[@]}")
    mbs=$(echo "$bytes / $med / 1000000" | bc -l)
    if [ -n "$peer" ] && [ "$im" != ref ]; then
      pmed=$(median3 "$peer" "${peer_args[@]}" "$model" "$work/peer.gguf" "${ty%_pure}" 2)
      pmbs=$(echo "$bytes / $pmed / 1000000" | bc -l)
      printf '%-9s %-9s %10.3f %10.0f %12.3f %10.0f %7.2fx\n' "$ty" "$im" "$med" "$mbs" "$pmed" "$pmbs" "$(echo "$pmed / $med" | bc -l)"
    else
      printf '%-9s %-9s %10.3f %10.0f\n' "$ty" "$im" "$med" "$mbs"
    fi
  done
done
rm -f "$work/out.gguf" "$work/peer.gguf"
