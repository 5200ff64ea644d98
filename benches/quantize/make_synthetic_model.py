#!/usr/bin/env python3
"""Write a synthetic llama-shaped F16 GGUF model of about --size-gb GB for quantize benchmarks.

The weights are random (normal, scale 0.02), norms are F32 ones. Tensors are written one at a
time, so this script's own memory stays at one tensor. Usage:

    make_synthetic_model.py OUT.gguf --size-gb 4.2 [--hidden 4096] [--ff 11008] [--vocab 32000]

The number of blocks is chosen to reach the size. Uses the `gguf` Python package (the repo's
tests/requirements.txt) and numpy.
"""
import argparse

import gguf
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size-gb", type=float, required=True)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--ff", type=int, default=11008)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--kv", type=int, default=1024, help="width of attn_k/attn_v outputs")
    args = ap.parse_args()

    h, ff, kv, vocab = args.hidden, args.ff, args.kv, args.vocab
    per_block = 2 * (2 * h * h + 2 * h * kv + 3 * h * ff)
    fixed = 2 * (2 * vocab * h)
    n_layer = max(1, round((args.size_gb * 1e9 - fixed) / per_block))

    shapes: list[tuple[str, tuple[int, ...], str]] = [("token_embd.weight", (vocab, h), "f16")]
    for i in range(n_layer):
        b = f"blk.{i}."
        shapes += [
            (b + "attn_norm.weight", (h,), "f32"),
            (b + "attn_q.weight", (h, h), "f16"),
            (b + "attn_k.weight", (kv, h), "f16"),
            (b + "attn_v.weight", (kv, h), "f16"),
            (b + "attn_output.weight", (h, h), "f16"),
            (b + "ffn_norm.weight", (h,), "f32"),
            (b + "ffn_gate.weight", (ff, h), "f16"),
            (b + "ffn_up.weight", (ff, h), "f16"),
            (b + "ffn_down.weight", (h, ff), "f16"),
        ]
    shapes += [("output_norm.weight", (h,), "f32"), ("output.weight", (vocab, h), "f16")]

    w = gguf.GGUFWriter(args.out, "llama")
    w.add_block_count(n_layer)
    w.add_embedding_length(h)
    w.add_feed_forward_length(ff)
    w.add_head_count(h // 128)
    w.add_head_count_kv(kv // 128)
    w.add_context_length(4096)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    for name, shape, dt in shapes:
        dtype = np.float16 if dt == "f16" else np.float32
        n = int(np.prod(shape))
        w.add_tensor_info(name, shape, np.dtype(dtype), n * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(0)
    pool = (rng.standard_normal(1 << 24, dtype=np.float32) * 0.02).astype(np.float16)
    for k, (name, shape, dt) in enumerate(shapes):
        n = int(np.prod(shape))
        if dt == "f32":
            t = np.ones(shape, dtype=np.float32)
        else:
            reps = -(-n // pool.size)
            t = np.tile(np.roll(pool, k * 7919), reps)[:n].reshape(shape)
        w.write_tensor_data(t)
    w.close()
    total = sum(int(np.prod(s)) * (2 if d == "f16" else 4) for _, s, d in shapes)
    print(f"{args.out}: {n_layer} blocks, {len(shapes)} tensors, {total / 1e9:.2f} GB of tensor data")


if __name__ == "__main__":
    main()
