#!/usr/bin/env python3
"""Independent check of an ingot-converted GGUF against its Hugging Face source.

Usage: convert_check.py OUT.gguf HF_DIR OUTTYPE

Reads the safetensors with numpy only (header JSON + raw data, single file or sharded), applies
llama.cpp's rules written out again here (name map, `LlamaModel.permute` for llama-family
Q/K, F32 for 1-D tensors, norms and biases, element conversion), reads the GGUF with gguf-py's
GGUFReader, and compares every tensor bit for bit (Q8_0 against gguf-py's own quantizer).
Prints a JSON summary of the metadata on success; exits non-zero with a message otherwise.
"""

import json
import os
import re
import struct
import sys

import numpy as np
import gguf


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = np.frombuffer(data[a:b], dtype=np.uint8)
        dt = info["dtype"]
        if dt == "F32":
            arr = raw.view("<f4")
        elif dt == "F16":
            arr = raw.view("<f2")
        elif dt == "BF16":
            arr = (raw.view("<u2").astype(np.uint32) << 16).view("<f4")
        else:
            raise SystemExit(f"unexpected dtype {dt}")
        out[name] = (dt, arr.reshape(info["shape"]))
    return out


def load_hf(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(idx):
        shards = sorted(set(json.load(open(idx))["weight_map"].values()))
        for s in shards:
            tensors.update(read_safetensors(os.path.join(d, s)))
    else:
        tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    return tensors


def gguf_name(hf):
    fixed = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    if hf in fixed:
        return fixed[hf]
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", hf)
    part = {
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }[m.group(2)]
    return f"blk.{m.group(1)}.{part}.{m.group(3)}"


def permute(w, n_head, n_head_kv):
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    out, d, outtype = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = json.load(open(os.path.join(d, "config.json")))
    arch = cfg["architectures"][0]
    permuted = arch in ("LlamaForCausalLM", "MistralForCausalLM")
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads")
    hf = load_hf(d)
    reader = gguf.GGUFReader(out)
    got = {t.name: t for t in reader.tensors}
    expected_names = {gguf_name(n) for n in hf if not n.endswith("rotary_emb.inv_freq")}
    if set(got) != expected_names:
        raise SystemExit(f"tensor names differ: extra {set(got) - expected_names}, missing {expected_names - set(got)}")
    for name, (dt, arr) in hf.items():
        if name.endswith("rotary_emb.inv_freq"):
            continue
        g = gguf_name(name)
        t = got[g]
        data = arr
        if permuted and name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute(data, n_head, n_head)
        if permuted and name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute(data, n_head, n_kv)
        n_dims = data.ndim
        if n_dims <= 1 or g.endswith("_norm.weight") or not g.endswith(".weight"):
            want = gguf.GGMLQuantizationType.F32
        else:
            want = {
                "f32": gguf.GGMLQuantizationType.F32,
                "f16": gguf.GGMLQuantizationType.F16,
                "bf16": gguf.GGMLQuantizationType.BF16,
                "q8_0": gguf.GGMLQuantizationType.Q8_0,
            }[outtype]
        if t.tensor_type != want:
            raise SystemExit(f"{g}: type {t.tensor_type.name}, expected {want.name}")
        if list(t.shape) != list(reversed(data.shape)):
            raise SystemExit(f"{g}: shape {list(t.shape)} vs {list(reversed(data.shape))}")
        if want == gguf.GGMLQuantizationType.F32:
            exp = np.ascontiguousarray(data.astype("<f4")).tobytes()
        elif want == gguf.GGMLQuantizationType.F16:
            exp = (data if dt == "F16" else data.astype(np.float32).astype("<f2")).tobytes()
        elif want == gguf.GGMLQuantizationType.BF16:
            exp = gguf.quants.quantize(np.ascontiguousarray(data.astype(np.float32)), want).tobytes()
        else:
            exp = gguf.quants.quantize(np.ascontiguousarray(data.astype(np.float32)), want).tobytes()
        if bytes(t.data.tobytes()) != exp:
            raise SystemExit(f"{g}: data differs from the safetensors value")
    meta = {}
    for k, f in reader.fields.items():
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        if isinstance(v, list) and len(v) > 8:
            v = {"len": len(v), "head": v[:4]}
        meta[k] = v
    print(json.dumps({"n_tensors": len(got), "metadata": meta, "order": list(reader.fields)}))


if __name__ == "__main__":
    main()
