#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/seeds/<target>/ (small, valid files
the fuzzer mutates from; libFuzzer then grows fuzz/corpus/<target>/ from them).

Uses the `gguf` Python package (tests/requirements.txt) so the GGUF seeds come from an
independent writer. Run from the repository root: python3 fuzz/make_seeds.py
"""
import json
import os
import struct
import tempfile

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, "seeds")


def out(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gguf_bytes(build, alignment=None, arch="llama"):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.gguf")
        w = GGUFWriter(path, arch)
        if alignment is not None:
            w.data_alignment = alignment
            w.add_uint32("general.alignment", alignment)
        build(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        with open(path, "rb") as f:
            return f.read()


def every_value_type(w):
    w.add_uint8("t.u8", 7)
    w.add_int8("t.i8", -7)
    w.add_uint16("t.u16", 700)
    w.add_int16("t.i16", -700)
    w.add_uint32("t.u32", 70000)
    w.add_int32("t.i32", -70000)
    w.add_float32("t.f32", 1.5)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_uint64("t.u64", 1 << 40)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 2.25)
    w.add_array("t.arr_i32", [1, 2, 3])
    w.add_array("t.arr_str", ["a", "bc", ""])
    w.add_array("t.arr_f32", [0.5, -1.0])
    w.add_array("t.nested", [[1, 2], [3]])


def tensors(w):
    rng = np.random.default_rng(1)
    w.add_tensor("f32", rng.standard_normal((2, 8)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((3, 4)).astype(np.float16))
    q8 = np.zeros((1, 34), dtype=np.uint8)
    w.add_tensor("q8_0", q8, raw_dtype=GGMLQuantizationType.Q8_0)
    q4k = np.zeros((1, 144), dtype=np.uint8)
    w.add_tensor("q4_k", q4k, raw_dtype=GGMLQuantizationType.Q4_K)


def gguf_seeds():
    out("gguf", "values", gguf_bytes(every_value_type))
    out("gguf", "tensors", gguf_bytes(tensors))
    out("gguf", "tensors-align8", gguf_bytes(tensors, alignment=8))
    out("gguf", "empty", gguf_bytes(lambda w: None))


def bpe_tokenizer(w):
    tok = json.load(open(os.path.join(ROOT, "testdata", "tiny", "tokenizer.json")))
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    # The first 320 tokens and the merges among them keep the seed small.
    keep = [t for t, _ in vocab[:320]]
    kept = set(keep)
    merges = []
    for m in tok["model"]["merges"]:
        m = m if isinstance(m, str) else " ".join(m)
        a, b = m.split(" ")
        if a in kept and b in kept and (a + b) in kept:
            merges.append(m)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(keep)
    w.add_token_types([1] * len(keep))
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)


def spm_tokenizer(w):
    v = json.load(open(os.path.join(ROOT, "testdata", "spm", "vocab.json")))
    n = 400
    w.add_tokenizer_model("llama")
    w.add_token_list(v["tokens"][:n])
    w.add_token_scores(v["scores"][:n])
    w.add_token_types(v["token_types"][:n])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)


def tokenizer_seeds():
    out("tokenizer", "bpe", gguf_bytes(bpe_tokenizer))
    out("tokenizer", "spm", gguf_bytes(spm_tokenizer))


def legacy_imatrix():
    b = struct.pack("<i", 2)
    for name, n in (("blk.0.attn_q.weight", 32), ("blk.0.ffn_down.weight", 64)):
        nb = name.encode()
        b += struct.pack("<i", len(nb)) + nb + struct.pack("<ii", 3, n)
        b += np.linspace(0.1, 2.0, n, dtype=np.float32).tobytes()
    ds = b"calib.txt"
    b += struct.pack("<ii", 3, len(ds)) + ds
    return b


def gguf_imatrix(w):
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", ["calib.txt"])
    w.add_uint32("imatrix.chunk_count", 3)
    w.add_uint32("imatrix.chunk_size", 512)
    w.add_tensor("blk.0.attn_q.weight.in_sum2", np.linspace(1, 9, 32, dtype=np.float32))
    w.add_tensor("blk.0.attn_q.weight.counts", np.array([3.0], dtype=np.float32))
    w.add_tensor("blk.0.moe.weight.in_sum2", np.ones((2, 16), dtype=np.float32))
    w.add_tensor("blk.0.moe.weight.counts", np.array([[1.0, 0.0]], dtype=np.float32))


def imatrix_seeds():
    out("imatrix", "legacy", legacy_imatrix())
    out("imatrix", "gguf", gguf_bytes(gguf_imatrix, arch="imatrix"))


def safetensors_file(tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    st = safetensors_file([
        ("model.embed_tokens.weight", "F16", [4, 8], np.ones(32, np.float16).tobytes()),
        ("model.norm.weight", "F32", [8], np.ones(8, np.float32).tobytes()),
        ("lm_head.weight", "BF16", [2, 8], b"\x80\x3f" * 16),
    ])
    out("safetensors", "single", b"\x00" + st)
    index = json.dumps({"metadata": {"total_size": 104}, "weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00001.safetensors",
        "model.norm.weight": "model-00001-of-00001.safetensors",
        "lm_head.weight": "model-00001-of-00001.safetensors",
    }}).encode()
    out("safetensors", "indexed", b"\x01" + struct.pack("<H", len(index)) + index + st)


def quant_seeds():
    x = np.sin(np.arange(256, dtype=np.float32) * 0.37) * 3.0
    for i, name in enumerate(["f32", "f16", "q4_0", "q4_1"]):
        out("quant", name, bytes([i, 0]) + x.tobytes())
    # Selectors for the other quantizable types (ids via the ALL table order; the target
    # wraps the selector modulo the table length).
    for sel in range(4, 16):
        out("quant", f"sel{sel}-weighted", bytes([sel, 2]) + x.tobytes())
        out("quant", f"sel{sel}-ref", bytes([sel, 1]) + x.tobytes())


if __name__ == "__main__":
    gguf_seeds()
    tokenizer_seeds()
    imatrix_seeds()
    safetensors_seeds()
    quant_seeds()
