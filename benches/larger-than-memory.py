#!/usr/bin/env python3
"""Writes a synthetic llama-shaped F16 GGUF of about SIZE_GB gigabytes, streaming one tensor at
a time (the writer never holds more than one tensor in memory), for
benches/larger-than-memory.sh. Values are a random normal block tiled with a per-tensor shift:
cheap to generate, and realistic enough for quantizer speed.

Usage: python3 benches/larger-than-memory.py OUT.gguf SIZE_GB
"""
import sys

import numpy as np
from gguf import GGUFWriter

HIDDEN, FF, VOCAB = 4096, 11008, 32000


def tensors(n_layer):
    yield "token_embd.weight", (VOCAB, HIDDEN)
    for i in range(n_layer):
        b = f"blk.{i}."
        yield b + "attn_norm.weight", (HIDDEN,)
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            yield b + n + ".weight", (HIDDEN, HIDDEN)
        yield b + "ffn_norm.weight", (HIDDEN,)
        yield b + "ffn_gate.weight", (FF, HIDDEN)
        yield b + "ffn_up.weight", (FF, HIDDEN)
        yield b + "ffn_down.weight", (HIDDEN, FF)
    yield "output_norm.weight", (HIDDEN,)
    yield "output.weight", (VOCAB, HIDDEN)


def main():
    out, size_gb = sys.argv[1], float(sys.argv[2])
    per_layer = 2 * (4 * HIDDEN * HIDDEN + 3 * FF * HIDDEN)
    fixed = 2 * 2 * VOCAB * HIDDEN
    n_layer = max(1, round((size_gb * 1e9 - fixed) / per_layer))
    w = GGUFWriter(out, "llama")
    w.add_block_count(n_layer)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FF)
    w.add_head_count(32)
    w.add_head_count_kv(32)
    w.add_context_length(4096)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    w.add_name("larger-than-memory synthetic")
    specs = list(tensors(n_layer))
    for name, shape in specs:
        dtype = np.float32 if len(shape) == 1 else np.float16
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        w.add_tensor_info(name, shape, np.dtype(dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(0)
    block = (rng.standard_normal(1 << 24) * 0.02).astype(np.float16)
    for k, (name, shape) in enumerate(specs):
        n = int(np.prod(shape))
        if len(shape) == 1:
            t = np.ones(shape, dtype=np.float32)
        else:
            reps = -(-n // block.size)
            t = np.roll(np.tile(block, reps)[:n], k * 7919).reshape(shape)
        w.write_tensor_data(t)
        del t
    w.close()
    print(f"{out}: {n_layer} layers, {len(specs)} tensors")


if __name__ == "__main__":
    main()
