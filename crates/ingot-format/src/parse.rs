//! Parsing a GGUF header from untrusted bytes.
//!
//! Layout (llama.cpp `docs/gguf.md`, `ggml/src/gguf.cpp` `gguf_init_from_file_impl`), all
//! little-endian:
//!
//! ```text
//! magic "GGUF" | version u32 | n_tensors u64 | n_kv u64
//! n_kv ×      key (u64 len + UTF-8) | value type u32 | value
//! n_tensors × name (u64 len + UTF-8) | n_dims u32 | ne[n_dims] u64 | type u32 | offset u64
//! zero padding to general.alignment (default 32)
//! data section: each tensor at its offset (relative to the section start)
//! ```
//!
//! Every read goes through [`Cursor`], which checks the bytes remaining; every count read from
//! the file is compared with the bytes remaining *before* anything is allocated for it (a count
//! times the smallest possible element size must fit); every arithmetic step on file values is
//! checked.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{At, FormatError, Result};
use crate::integrity::RESERVED_PREFIX;
use crate::types::GgmlType;
use crate::value::{Array, Value, ValueType};
use crate::{MAX_ARRAY_DEPTH, MAX_DIMS, MAX_TENSOR_NAME};

/// The four magic bytes at offset 0.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment used when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that sets the alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// Size of the fixed header (magic, version, n_tensors, n_kv).
const FIXED_HEADER: u64 = 24;
/// Smallest encoded key/value: 8-byte length + 1-byte key + 4-byte type + 1-byte value.
const MIN_KV_BYTES: u64 = 14;
/// Smallest encoded tensor info: 8-byte name length + 4-byte n_dims + one 8-byte dim +
/// 4-byte type + 8-byte offset.
const MIN_TENSOR_INFO_BYTES: u64 = 32;

/// `x` rounded up to a multiple of `align` (a non-zero power of two), or `None` on overflow.
pub fn align_up(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    Some(x.checked_add(align - 1)? & !(align - 1))
}

/// A tensor's description from its tensor info: name, shape, type and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub(crate) name: Arc<str>,
    pub(crate) dims: [u64; MAX_DIMS],
    pub(crate) n_dims: u8,
    pub(crate) ty: GgmlType,
    pub(crate) offset: u64,
    pub(crate) n_bytes: u64,
    pub(crate) shard: usize,
    /// Byte offset of the tensor info in its file (for error messages).
    pub(crate) info_offset: u64,
}

impl TensorInfo {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The shape in ggml order: `shape()[0]` (`ne[0]`) is the number of elements per row.
    pub fn shape(&self) -> &[u64] {
        &self.dims[..usize::from(self.n_dims)]
    }
    /// The element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }
    /// Total elements (product of the shape; validated not to overflow).
    pub fn n_elements(&self) -> u64 {
        self.shape().iter().product()
    }
    /// Byte size of the tensor's data (without padding).
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }
    /// Offset of the tensor's data relative to the start of its file's data section.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// Index of the shard (file) holding the tensor: 0 for unsplit files.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

/// A parsed and validated header of one file.
#[derive(Debug)]
pub(crate) struct Header {
    pub version: u32,
    pub kvs: Vec<(String, Value)>,
    pub key_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_offset: u64,
    /// Byte ranges of the encoded values (after the value type id) of every
    /// `ingot.integrity.*` key, in file order: the header digest treats them as zeros.
    pub reserved_values: Vec<std::ops::Range<u64>>,
}

/// Bounds-checked little-endian reader over the file bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, field: &'static str) -> Result<&'a [u8]> {
        let trunc = || FormatError::Truncated {
            field,
            offset: self.pos as u64,
            needed: n,
            available: (self.buf.len() - self.pos) as u64,
        };
        let n = usize::try_from(n).map_err(|_| trunc())?;
        let end = self.pos.checked_add(n).ok_or_else(trunc)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(trunc)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let b = self.take(N as u64, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A GGUF string, owned.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        self.str(what).map(str::to_owned)
    }

    /// A GGUF string borrowed from the buffer; `what` names it in errors and is only called
    /// on error.
    fn str(&mut self, what: &dyn Fn() -> String) -> Result<&'a str> {
        let at = self.offset();
        let len = self.u64("string length")?;
        if len > self.remaining() {
            return Err(FormatError::StringPastEnd {
                field: what(),
                offset: at,
                len,
                remaining: self.remaining(),
            });
        }
        let start = self.offset();
        let bytes = self.take(len, "string bytes")?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => Err(FormatError::InvalidUtf8 {
                field: what(),
                offset: start,
                valid_up_to: e.valid_up_to(),
            }),
        }
    }
}

/// Parses and validates the header of one GGUF file held in `buf` (the whole file).
pub(crate) fn parse_header(buf: &[u8]) -> Result<Header> {
    let mut c = Cursor { buf, pos: 0 };
    let magic: [u8; 4] = c.array("magic")?;
    if magic != MAGIC {
        return Err(FormatError::BadMagic { found: magic });
    }
    let version = c.u32("version")?;
    if version & 0xFFFF == 0 && version != 0 {
        return Err(FormatError::BigEndian {
            raw_version: version,
        });
    }
    if !(2..=3).contains(&version) {
        return Err(FormatError::UnsupportedVersion { version });
    }
    let n_tensors_at = c.offset();
    let n_tensors = c.u64("n_tensors")?;
    let n_kv_at = c.offset();
    let n_kv = c.u64("n_kv")?;
    debug_assert_eq!(c.offset(), FIXED_HEADER);
    check_count("n_kv", n_kv_at, n_kv, MIN_KV_BYTES, c.remaining())?;
    check_count(
        "n_tensors",
        n_tensors_at,
        n_tensors,
        MIN_TENSOR_INFO_BYTES,
        c.remaining(),
    )?;

    // Both counts are bounded by the file size now; reservations are capped further.
    let mut kvs: Vec<(String, Value)> = Vec::with_capacity(prealloc(n_kv));
    let mut key_index: HashMap<String, usize> = HashMap::with_capacity(prealloc(n_kv));
    let mut alignment = DEFAULT_ALIGNMENT;
    let mut reserved_values = Vec::new();
    for _ in 0..n_kv {
        let key_at = c.offset();
        let key = c.string(&|| format!("metadata key at byte {key_at}"))?;
        if key.is_empty() {
            return Err(FormatError::EmptyKey {
                at: At::Offset(key_at),
            });
        }
        if key_index.contains_key(&key) {
            return Err(FormatError::DuplicateKey {
                key,
                at: At::Offset(key_at),
            });
        }
        let type_at = c.offset();
        let type_id = c.u32("value type")?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| FormatError::UnknownValueType {
            key: key.clone(),
            offset: type_at,
            type_id,
        })?;
        let value_at = c.offset();
        let value = read_value(&mut c, &key, ty, 0)?;
        if key.starts_with(RESERVED_PREFIX) {
            reserved_values.push(value_at..c.offset());
        }
        if key == ALIGNMENT_KEY {
            alignment = match value {
                Value::U32(a) if a.is_power_of_two() => u64::from(a),
                Value::U32(a) => {
                    return Err(FormatError::BadAlignment {
                        at: At::Offset(value_at),
                        alignment: a.into(),
                    })
                }
                ref other => {
                    return Err(FormatError::WrongType {
                        key,
                        expected: "u32",
                        found: other.type_name(),
                    })
                }
            };
        }
        key_index.insert(key.clone(), kvs.len());
        kvs.push((key, value));
    }

    check_count(
        "n_tensors",
        n_tensors_at,
        n_tensors,
        MIN_TENSOR_INFO_BYTES,
        c.remaining(),
    )?;
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(prealloc(n_tensors));
    for _ in 0..n_tensors {
        let info_at = c.offset();
        let len_at = c.offset();
        let name_len = c.u64("tensor name length")?;
        if name_len > MAX_TENSOR_NAME as u64 {
            return Err(FormatError::TensorNameTooLong {
                at: At::Offset(len_at),
                len: name_len,
                max: MAX_TENSOR_NAME,
            });
        }
        c.pos = len_at as usize; // re-read through the checked string path
        let name = c.str(&|| format!("tensor name at byte {info_at}"))?;
        let dims_at = c.offset();
        let n_dims = c.u32("n_dims")?;
        if n_dims == 0 || n_dims as usize > MAX_DIMS {
            return Err(FormatError::BadDimCount {
                tensor: name.to_owned(),
                at: At::Offset(dims_at),
                n_dims: n_dims.into(),
            });
        }
        let mut dims = [1u64; MAX_DIMS];
        for d in dims.iter_mut().take(n_dims as usize) {
            *d = c.u64("tensor dimension")?;
        }
        let type_at = c.offset();
        let type_id = c.u32("tensor type")?;
        let ty = match GgmlType::from_id(type_id) {
            Some(t) => t,
            None => {
                return Err(match GgmlType::retired_name(type_id) {
                    Some(old) => FormatError::RetiredTensorType {
                        tensor: name.to_owned(),
                        offset: type_at,
                        type_id,
                        name: old,
                    },
                    None => FormatError::UnknownTensorType {
                        tensor: name.to_owned(),
                        offset: type_at,
                        type_id,
                    },
                })
            }
        };
        let n_bytes = tensor_n_bytes(name, &dims[..n_dims as usize], ty, At::Offset(dims_at))?;
        let offset = c.u64("tensor offset")?;
        tensors.push(TensorInfo {
            name: Arc::from(name),
            dims,
            n_dims: n_dims as u8,
            ty,
            offset,
            n_bytes,
            shard: 0,
            info_offset: info_at,
        });
    }
    // Duplicate names are detected when the tensor index is built (`GgufFile::assemble`),
    // across all shards.

    let infos_end = c.offset();
    // infos_end <= buf.len() and alignment <= 2^31, so this cannot overflow on 64-bit.
    let data_offset = align_up(infos_end, alignment).unwrap_or(u64::MAX);
    let data_len = (buf.len() as u64).saturating_sub(data_offset);
    validate_layout(&tensors, alignment, data_offset, data_len)?;

    Ok(Header {
        version,
        kvs,
        key_index,
        tensors,
        alignment,
        data_offset,
        reserved_values,
    })
}

/// Most entries reserved up front for a count read from the file. The count already fits in
/// the bytes remaining, but an in-memory entry (a `String`, a `TensorInfo`) is larger than its
/// smallest encoding, so a hostile count in a large file could still reserve several times the
/// file size before the first entry fails to parse. Beyond this, vectors grow as entries
/// actually parse.
const PREALLOC_CAP: u64 = 1 << 16;

fn prealloc(count: u64) -> usize {
    count.min(PREALLOC_CAP) as usize
}

fn check_count(
    field: &'static str,
    offset: u64,
    count: u64,
    min_each: u64,
    remaining: u64,
) -> Result<()> {
    if count
        .checked_mul(min_each)
        .is_none_or(|need| need > remaining)
    {
        return Err(FormatError::CountPastEnd {
            field,
            offset,
            count,
            min_each,
            remaining,
        });
    }
    Ok(())
}

/// Checks a tensor's shape against ggml's rules and returns its byte size.
///
/// Rules (gguf.cpp, `gguf_init_from_file_impl`): 1 to 4 dims, each in `1..=i64::MAX` (ggml
/// holds them as `int64_t`; we also reject 0), element and byte counts within `i64`, and
/// `ne[0]` a multiple of the type's block size.
pub(crate) fn tensor_n_bytes(name: &str, dims: &[u64], ty: GgmlType, at: At) -> Result<u64> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(FormatError::BadDimCount {
            tensor: name.to_owned(),
            at,
            n_dims: dims.len() as u64,
        });
    }
    let overflow = || FormatError::DimOverflow {
        tensor: name.to_owned(),
        at,
        dims: dims.to_vec(),
    };
    if let Some(axis) = dims.iter().position(|&d| d == 0) {
        return Err(FormatError::ZeroDim {
            tensor: name.to_owned(),
            at,
            axis,
        });
    }
    const LIMIT: u64 = i64::MAX as u64;
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&p| p <= LIMIT))
        .ok_or_else(overflow)?;
    let ne0 = dims[0];
    if ne0 % ty.block_size() as u64 != 0 {
        return Err(FormatError::NotBlockMultiple {
            tensor: name.to_owned(),
            at,
            ty,
            ne0,
            block_size: ty.block_size(),
        });
    }
    // A whole number of blocks: `None` here can only mean the row's byte size overflows (for
    // example F32 with ne[0] = 2^62), which is an overflow, not a block-size problem.
    let row = ty.row_bytes(ne0).ok_or_else(overflow)?;
    let rows = n_elements / ne0;
    row.checked_mul(rows)
        .filter(|&b| b <= LIMIT)
        .ok_or_else(overflow)
}

/// Offsets aligned, inside the data section, and pairwise disjoint. Contiguity in info order
/// (which llama.cpp's reader demands) is deliberately not required.
fn validate_layout(
    tensors: &[TensorInfo],
    alignment: u64,
    data_start: u64,
    data_len: u64,
) -> Result<()> {
    for t in tensors {
        let info_at = t.info_offset;
        if t.offset % alignment != 0 {
            return Err(FormatError::UnalignedTensor {
                tensor: t.name.to_string(),
                info_offset: info_at,
                offset: t.offset,
                alignment,
            });
        }
        if t.offset
            .checked_add(t.n_bytes)
            .is_none_or(|end| end > data_len)
        {
            return Err(FormatError::TensorOutOfBounds {
                tensor: t.name.to_string(),
                offset: t.offset,
                size: t.n_bytes,
                data_start,
                data_len,
            });
        }
    }
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_unstable_by_key(|&i| tensors[i].offset);
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        // In bounds was checked above, so offset + n_bytes does not overflow.
        let a_end = a.offset + a.n_bytes;
        if b.offset < a_end {
            return Err(FormatError::TensorOverlap {
                first: a.name.to_string(),
                first_start: a.offset,
                first_end: a_end,
                second: b.name.to_string(),
                second_start: b.offset,
            });
        }
    }
    Ok(())
}

fn read_value(c: &mut Cursor<'_>, key: &str, ty: ValueType, depth: usize) -> Result<Value> {
    Ok(match ty {
        ValueType::U8 => Value::U8(c.array::<1>("u8 value")?[0]),
        ValueType::I8 => Value::I8(i8::from_le_bytes(c.array("i8 value")?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(c.array("u16 value")?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(c.array("i16 value")?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(c.array("u32 value")?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(c.array("i32 value")?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(c.array("f32 value")?)),
        ValueType::U64 => Value::U64(u64::from_le_bytes(c.array("u64 value")?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(c.array("i64 value")?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(c.array("f64 value")?)),
        ValueType::Bool => {
            let at = c.offset();
            let b = c.array::<1>("bool value")?[0];
            Value::Bool(to_bool(key, at, b)?)
        }
        ValueType::String => Value::String(c.string(&|| key.to_owned())?),
        ValueType::Array => Value::Array(read_array(c, key, depth + 1)?),
    })
}

fn to_bool(key: &str, offset: u64, b: u8) -> Result<bool> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(FormatError::InvalidBool {
            key: key.to_owned(),
            offset,
            value,
        }),
    }
}

/// Reads `count` fixed-size little-endian elements.
macro_rules! fixed {
    ($c:expr, $n:expr, $t:ty, $variant:ident) => {{
        const W: usize = std::mem::size_of::<$t>();
        let bytes = $c.take($n * W as u64, "array elements")?;
        Array::$variant(
            bytes
                .chunks_exact(W)
                .map(|ch| {
                    let mut a = [0u8; W];
                    a.copy_from_slice(ch);
                    <$t>::from_le_bytes(a)
                })
                .collect(),
        )
    }};
}

/// Reads an array payload (element type, count, elements). `depth` is 1 for a top-level array.
fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Array> {
    let at = c.offset();
    if depth > MAX_ARRAY_DEPTH {
        return Err(FormatError::NestingTooDeep {
            key: key.to_owned(),
            offset: at,
            max: MAX_ARRAY_DEPTH,
        });
    }
    let type_id = c.u32("array element type")?;
    let ty = ValueType::from_id(type_id).ok_or_else(|| FormatError::UnknownValueType {
        key: key.to_owned(),
        offset: at,
        type_id,
    })?;
    let count_at = c.offset();
    let n = c.u64("array count")?;
    let remaining = c.remaining();
    let min_bytes = n.saturating_mul(ty.min_size());
    if min_bytes > remaining {
        return Err(FormatError::ArrayPastEnd {
            key: key.to_owned(),
            offset: count_at,
            count: n,
            min_bytes,
            remaining,
        });
    }
    // n * min_size <= remaining, so n is bounded by the file size from here on.
    Ok(match ty {
        ValueType::U8 => Array::U8(c.take(n, "array elements")?.to_vec()),
        ValueType::I8 => fixed!(c, n, i8, I8),
        ValueType::U16 => fixed!(c, n, u16, U16),
        ValueType::I16 => fixed!(c, n, i16, I16),
        ValueType::U32 => fixed!(c, n, u32, U32),
        ValueType::I32 => fixed!(c, n, i32, I32),
        ValueType::F32 => fixed!(c, n, f32, F32),
        ValueType::U64 => fixed!(c, n, u64, U64),
        ValueType::I64 => fixed!(c, n, i64, I64),
        ValueType::F64 => fixed!(c, n, f64, F64),
        ValueType::Bool => {
            let start = c.offset();
            let bytes = c.take(n, "array elements")?;
            let mut v = Vec::with_capacity(bytes.len());
            for (i, &b) in bytes.iter().enumerate() {
                v.push(to_bool(key, start + i as u64, b)?);
            }
            Array::Bool(v)
        }
        ValueType::String => {
            let mut v = Vec::with_capacity(prealloc(n));
            for i in 0..n {
                v.push(c.string(&|| format!("{key}[{i}]"))?);
            }
            Array::String(v)
        }
        ValueType::Array => {
            let mut v = Vec::with_capacity(prealloc(n));
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            Array::Array(v)
        }
    })
}
