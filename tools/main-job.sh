#!/usr/bin/env bash
# The main job on the tiny model in testdata/ (no download): convert the Hugging Face model to
# GGUF, collect an importance matrix from the calibration text, quantize to Q4_K (= Q4_K_M) with
# it, and measure perplexity of the F16 and quantized models on the evaluation text.
# Outputs go to a fresh temporary directory (printed at the end), never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ingot-tools
bin=${CARGO_TARGET_DIR:-target}/release
out=$(mktemp -d -t ingot-main-job.XXXXXX)
"$bin/convert" testdata/tiny "$out/tiny-f16.gguf" --outtype f16
"$bin/imatrix" -m "$out/tiny-f16.gguf" -f testdata/tiny/calib.txt -o "$out/imatrix.dat" --output-format dat -c 256
"$bin/quantize" "$out/tiny-f16.gguf" "$out/tiny-q4k.gguf" Q4_K --imatrix "$out/imatrix.dat"
"$bin/inspect" "$out/tiny-q4k.gguf" --no-tensors
for m in tiny-f16 tiny-q4k; do
  echo "== perplexity of $m on testdata/tiny/eval.txt"
  "$bin/perplexity" -m "$out/$m.gguf" -f testdata/tiny/eval.txt -c 256
done
echo "outputs in $out"
