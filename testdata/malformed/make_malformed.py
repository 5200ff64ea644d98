#!/usr/bin/env python3
"""Builds the hostile-file corpus in testdata/malformed/: one small file per vulnerability
class that GGUF readers have been attacked with (CVE-2024-25664..25668, the 2024 Talos
reports on llama.cpp's gguf.cpp, CVE-2025-53630). Each file is a minimal valid GGUF v3 with
exactly one field made hostile, so the test (tests/tests/reliability_malformed.rs) can assert
the one specific error variant ingot must return, with its numbers.

Standard library only; byte-for-byte reproducible. Run from anywhere:
    python3 testdata/malformed/make_malformed.py
The files are committed; the test fails if a file is missing, so re-run this after editing.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# GGUF value type ids (gguf.cpp `enum gguf_type`, gguf-py GGUFValueType).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# GGML tensor type ids used here.
GGML_F32 = 0
GGML_Q8_0 = 8


def u32(x):
    return struct.pack("<I", x)


def u64(x):
    return struct.pack("<Q", x)


def gstr(b, length=None):
    b = b.encode() if isinstance(b, str) else b
    return u64(len(b) if length is None else length) + b


def kv(key, vtype, payload, key_len=None):
    return gstr(key, key_len) + u32(vtype) + payload


def tinfo(name, dims, ggml_type, offset, n_dims=None):
    n = len(dims) if n_dims is None else n_dims
    return gstr(name) + u32(n) + b"".join(u64(d) for d in dims) + u32(ggml_type) + u64(offset)


def gguf(kvs, infos, data=b"", alignment=32, n_kv=None, n_tensors=None, pad=True):
    """A GGUF v3 file: header, key/values, tensor infos, zero padding to `alignment`, data."""
    out = b"GGUF" + u32(3)
    out += u64(len(infos) if n_tensors is None else n_tensors)
    out += u64(len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs) + b"".join(infos)
    if pad:
        out += b"\0" * (-len(out) % alignment)
    return out + data


NAME = kv("general.name", STRING, gstr("malformed"))
# One valid f32 tensor of 8 elements (32 bytes) at offset 0.
T8 = tinfo("t", [8], GGML_F32, 0)
DATA8 = struct.pack("<8f", *range(8))


def alignment_kv(a):
    return kv("general.alignment", U32, u32(a))


def nested(depth):
    """An array nested `depth` levels deep around one u8 (depth 1 = array of u8)."""
    inner = u32(U8) + u64(1) + b"\x07"
    for _ in range(depth - 1):
        inner = u32(ARRAY) + u64(1) + inner
    return inner


FILES = {
    # A key's length prefix of 2^64 - 1: a reader that adds it to the cursor wraps around.
    "string_length_near_2_64.gguf": gguf([kv("k", STRING, gstr("v"), key_len=2**64 - 1)], []),
    # An array of u64 whose count times 8 wraps to 8 in 64-bit arithmetic.
    "array_count_wraps.gguf": gguf([kv("a", ARRAY, u32(U64) + u64(2**61 + 1) + u64(0))], []),
    # An array of strings with a count of 2^63: each string needs >= 8 bytes.
    "string_array_count_overflow.gguf": gguf(
        [kv("s", ARRAY, u32(STRING) + u64(2**63) + gstr("x"))], []),
    "n_kv_too_large.gguf": gguf([NAME], [], n_kv=2**60),
    "n_tensors_too_large.gguf": gguf([NAME], [], n_tensors=2**60),
    "n_dims_zero.gguf": gguf([NAME], [tinfo("t", [], GGML_F32, 0, n_dims=0)], DATA8),
    "n_dims_five.gguf": gguf([NAME], [tinfo("t", [1, 1, 1, 1, 8], GGML_F32, 0)], DATA8),
    "dim_zero.gguf": gguf([NAME], [tinfo("t", [8, 0], GGML_F32, 0)], DATA8),
    # 2^32 * 2^32 elements: the element count overflows.
    "dims_product_overflow.gguf": gguf([NAME], [tinfo("t", [2**32, 2**32], GGML_F32, 0)], DATA8),
    # 2^62 f32 elements (a valid i64) but 2^64 bytes: element count x type size overflows.
    "bytes_overflow.gguf": gguf([NAME], [tinfo("t", [2**62], GGML_F32, 0)], DATA8),
    "offset_past_end.gguf": gguf([NAME], [tinfo("t", [8], GGML_F32, 4096)], DATA8),
    # An aligned offset so close to 2^64 that offset + size wraps.
    "offset_plus_size_overflow.gguf": gguf(
        [NAME], [tinfo("t", [8], GGML_F32, 2**64 - 32)], DATA8),
    "overlapping_tensors.gguf": gguf(
        [NAME], [tinfo("a", [16], GGML_F32, 0), tinfo("b", [8], GGML_F32, 32)], DATA8 * 3),
    "unaligned_offset.gguf": gguf(
        [NAME], [tinfo("a", [8], GGML_F32, 0), tinfo("b", [8], GGML_F32, 33)], DATA8 * 3),
    "alignment_0.gguf": gguf([alignment_kv(0)], [T8], DATA8),
    "alignment_3.gguf": gguf([alignment_kv(3)], [T8], DATA8, alignment=4),
    # 2^31 is a power of two (llama.cpp accepts it), so the header is fine, but the data
    # section would start at byte 2^31 of a file of a few hundred bytes.
    "alignment_2_31.gguf": gguf([alignment_kv(2**31)], [T8], DATA8, pad=False),
    "duplicate_key.gguf": gguf([NAME, NAME], [T8], DATA8),
    "duplicate_tensor_name.gguf": gguf(
        [NAME], [tinfo("t", [8], GGML_F32, 0), tinfo("t", [8], GGML_F32, 32)], DATA8 * 2),
    "empty_key.gguf": gguf([kv("", U32, u32(1))], [T8], DATA8),
    "invalid_utf8.gguf": gguf([kv("general.name", STRING, gstr(b"ok \xff\xfe bad"))], [T8], DATA8),
    "unknown_value_type.gguf": gguf([kv("k", 13, u32(0))], [T8], DATA8),
    "unknown_tensor_type.gguf": gguf([NAME], [tinfo("t", [8], 99, 0)], DATA8),
    # One level deeper than ingot's cap of 8 (MAX_ARRAY_DEPTH).
    "nested_arrays_too_deep.gguf": gguf([kv("deep", ARRAY, nested(9))], [T8], DATA8),
    # A download cut short: two Q8_0 tensors, the file ends 10 bytes into the second.
    "truncated_data_section.gguf": gguf(
        [NAME], [tinfo("a", [32], GGML_Q8_0, 0), tinfo("b", [32], GGML_Q8_0, 64)],
        b"\1" * 34 + b"\0" * 30 + b"\2" * 10),
}


def legacy_imatrix(entries, last_chunk=1, dataset=b"calib.txt"):
    """llama.cpp's legacy imatrix.dat: n_entries, then per entry name, ncall, nval, values."""
    b = struct.pack("<i", len(entries))
    for name, values in entries:
        nb = name.encode()
        b += struct.pack("<i", len(nb)) + nb + struct.pack("<ii", 1, len(values))
        b += struct.pack("<%df" % len(values), *values)
    return b + struct.pack("<ii", last_chunk, len(dataset)) + dataset


# The model the imatrix is applied to: one 64-column weight (2 rows).
IMATRIX_MODEL = gguf(
    [kv("general.architecture", STRING, gstr("llama"))],
    [tinfo("blk.0.attn_q.weight", [64, 2], GGML_F32, 0)],
    struct.pack("<128f", *[(i % 7) - 3.0 for i in range(128)]),
)
# Its imatrix entry has 48 values where the weight has 64 columns.
IMATRIX_MISMATCH = legacy_imatrix([("blk.0.attn_q.weight", [1.0] * 48)])


def main():
    for name, data in FILES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "imatrix_model.gguf"), "wb") as f:
        f.write(IMATRIX_MODEL)
    with open(os.path.join(HERE, "imatrix_length_mismatch.dat"), "wb") as f:
        f.write(IMATRIX_MISMATCH)


if __name__ == "__main__":
    main()
