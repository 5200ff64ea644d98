# Peer side of tests/tests/format_peer.rs: the `gguf` Python package (gguf-py) reading a file
# ingot wrote, and writing a file for ingot to read. Values are printed as tagged JSON:
# {"t": "<value type>", "v": value}, arrays {"t": "array", "v": [tagged elements]}.
import json
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as T

NAMES = {T.UINT8: "u8", T.INT8: "i8", T.UINT16: "u16", T.INT16: "i16", T.UINT32: "u32",
         T.INT32: "i32", T.FLOAT32: "f32", T.BOOL: "bool", T.STRING: "string",
         T.ARRAY: "array", T.UINT64: "u64", T.INT64: "i64", T.FLOAT64: "f64"}


def decode(vtype, parts, i):
    """Rebuilds a value from GGUFReader's flat `parts`, starting at index i."""
    if vtype == T.STRING:
        return {"t": "string", "v": bytes(parts[i + 1].tobytes()).decode("utf-8")}, i + 2
    if vtype == T.ARRAY:
        itype = T(int(parts[i][0]))
        n = int(parts[i + 1][0])
        i += 2
        out = []
        for _ in range(n):
            v, i = decode(itype, parts, i)
            out.append(v)
        return {"t": "array", "e": NAMES[itype], "v": out}, i
    x = parts[i].tolist()[0]
    if vtype == T.BOOL:
        x = bool(x)
    return {"t": NAMES[vtype], "v": x}, i + 1


def read(path):
    r = gguf.GGUFReader(path)
    fields = []
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        # parts: key length, key bytes, value type, then the value's parts.
        v, end = decode(T(int(f.parts[2][0])), f.parts, 3)
        assert end == len(f.parts), name
        fields.append([name, v])
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "type": int(t.tensor_type),
            "shape": [int(d) for d in t.shape],
            "hex": t.data.tobytes().hex(),
        })
    print(json.dumps({"alignment": int(r.alignment), "fields": fields, "tensors": tensors}))


def tag(t, v):
    return {"t": NAMES[t], "v": v}


def write(path):
    w = gguf.GGUFWriter(path, "peer")
    w.add_custom_alignment(64)
    expect = [["general.architecture", tag(T.STRING, "peer")],
              ["general.alignment", tag(T.UINT32, 64)]]

    def kv(key, t, v, tagged, sub=None):
        w.add_key_value(key, v, t, sub_type=sub)
        expect.append([key, tagged])

    kv("p.u8", T.UINT8, 200, tag(T.UINT8, 200))
    kv("p.i8", T.INT8, -100, tag(T.INT8, -100))
    kv("p.u16", T.UINT16, 60000, tag(T.UINT16, 60000))
    kv("p.i16", T.INT16, -30000, tag(T.INT16, -30000))
    kv("p.u32", T.UINT32, 4000000000, tag(T.UINT32, 4000000000))
    kv("p.i32", T.INT32, -2000000000, tag(T.INT32, -2000000000))
    kv("p.f32", T.FLOAT32, 0.125, tag(T.FLOAT32, 0.125))
    kv("p.bool", T.BOOL, True, tag(T.BOOL, True))
    kv("p.str", T.STRING, "héllo ✓", tag(T.STRING, "héllo ✓"))
    kv("p.u64", T.UINT64, 2**63 + 5, tag(T.UINT64, 2**63 + 5))
    kv("p.i64", T.INT64, -(2**62), tag(T.INT64, -(2**62)))
    kv("p.f64", T.FLOAT64, 1e300, tag(T.FLOAT64, 1e300))
    ints = [1, -2, 3]
    kv("p.arr_i32", T.ARRAY, ints, {"t": "array", "e": "i32", "v": [tag(T.INT32, x) for x in ints]})
    floats = [0.5, -1.25]
    kv("p.arr_f32", T.ARRAY, floats, {"t": "array", "e": "f32", "v": [tag(T.FLOAT32, x) for x in floats]})
    strs = ["a", "", "ünï"]
    kv("p.arr_str", T.ARRAY, strs, {"t": "array", "e": "string", "v": [tag(T.STRING, s) for s in strs]})
    u8s = [0, 255]
    kv("p.arr_u8", T.ARRAY, u8s, {"t": "array", "e": "u8", "v": [tag(T.UINT8, x) for x in u8s]}, T.UINT8)
    nested = [[1, 2], [3]]
    kv("p.nested", T.ARRAY, nested, {"t": "array", "e": "array", "v": [
        {"t": "array", "e": "i32", "v": [tag(T.INT32, x) for x in inner]} for inner in nested]})

    rng = np.random.default_rng(7)
    tensors = []
    f32 = rng.standard_normal((3, 8)).astype(np.float32)          # ne = [8, 3]
    w.add_tensor("w.f32", f32)
    tensors.append(("w.f32", 0, [8, 3], f32.tobytes()))
    f16 = rng.standard_normal((5,)).astype(np.float16)
    w.add_tensor("w.f16", f16)
    tensors.append(("w.f16", 1, [5], f16.tobytes()))
    q8 = rng.integers(0, 256, size=(2, 34), dtype=np.uint8)        # 2 rows of one Q8_0 block
    w.add_tensor("w.q8_0", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    tensors.append(("w.q8_0", 8, [32, 2], q8.tobytes()))
    i32 = np.arange(7, dtype=np.int32)
    w.add_tensor("w.i32", i32)
    tensors.append(("w.i32", 26, [7], i32.tobytes()))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(json.dumps({"alignment": 64, "fields": expect, "tensors": [
        {"name": n, "type": t, "shape": s, "hex": b.hex()} for (n, t, s, b) in tensors]}))


if __name__ == "__main__":
    {"read": read, "write": write}[sys.argv[1]](sys.argv[2])
