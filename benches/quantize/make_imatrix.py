#!/usr/bin/env python3
"""Write a synthetic legacy (.dat) importance matrix matching a GGUF model's weight matrices.

    make_imatrix.py MODEL.gguf OUT.dat

Per-column values are log-normal (what real activations' mean squares look like), ncall = 10,
entries for every 2-D `*.weight` except token_embd (as llama-imatrix). Layout: see
formats/imatrix.md.
"""
import struct
import sys

import numpy as np
from gguf import GGUFReader


def main() -> None:
    model, out = sys.argv[1], sys.argv[2]
    r = GGUFReader(model)
    rng = np.random.default_rng(1)
    entries = []
    for t in r.tensors:
        shape = [int(x) for x in t.shape]
        if len(shape) < 2 or not t.name.endswith("weight") or t.name == "token_embd.weight" or "norm" in t.name:
            continue
        n_in = shape[0]
        vals = (np.exp(rng.standard_normal(n_in) * 1.0) * 10.0).astype(np.float32)
        entries.append((t.name, vals))
    entries.sort()
    with open(out, "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, vals in entries:
            b = name.encode()
            f.write(struct.pack("<i", len(b)) + b + struct.pack("<ii", 10, len(vals)))
            f.write(vals.tobytes())
        ds = b"synthetic"
        f.write(struct.pack("<i", 10) + struct.pack("<i", len(ds)) + ds)
    print(f"{out}: {len(entries)} entries")


if __name__ == "__main__":
    main()
