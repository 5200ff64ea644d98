#!/usr/bin/env python3
"""Compacts llama.cpp's golden SmolLM2 logits (64 x 49152 f32, 12 MB, kept out of the repo)
into smollm2_logits_compact.bin (~0.3 MB) for tests/tests/model_smollm2.rs.

Usage: python3 make_smollm2_logits_compact.py ../../../shared/golden/smollm2/logits.f32

Output layout, all little-endian:
  header: u32 n_pos, u32 n_vocab, u32 top_k, u32 stride
  per position (n_pos times):
    i32 top-1 token id
    f32 log-sum-exp of the row (computed in float64)
    top_k x (i32 id, f32 logit), sorted by decreasing logit
    (n_vocab // stride) x f32: logits of ids 0, stride, 2*stride, ... (an even sample of the
    whole vocabulary, for the max-abs-difference report)
"""
import struct
import sys

import numpy as np

N_VOCAB = 49152
TOP_K = 64
STRIDE = 48


def main() -> None:
    src = sys.argv[1] if len(sys.argv) > 1 else "../../../shared/golden/smollm2/logits.f32"
    logits = np.fromfile(src, dtype="<f4").reshape(-1, N_VOCAB)
    n_pos = logits.shape[0]
    out = bytearray(struct.pack("<4I", n_pos, N_VOCAB, TOP_K, STRIDE))
    for row in logits:
        r64 = row.astype(np.float64)
        m = r64.max()
        lse = m + np.log(np.exp(r64 - m).sum())
        order = np.argsort(-row, kind="stable")[:TOP_K]
        out += struct.pack("<i", int(order[0]))
        out += struct.pack("<f", float(lse))
        for i in order:
            out += struct.pack("<if", int(i), float(row[i]))
        out += row[::STRIDE].astype("<f4").tobytes()
    with open("smollm2_logits_compact.bin", "wb") as f:
        f.write(out)
    print(f"{n_pos} positions, {len(out)} bytes")


if __name__ == "__main__":
    main()
