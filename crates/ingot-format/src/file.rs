//! [`GgufFile`]: a validated GGUF file (or split model) and borrowed tensor views.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{At, FormatError, Result};
use crate::integrity::{self, DATA_BLAKE3_KEY, HEADER_BLAKE3_KEY, TENSOR_XXH3_KEY};
use crate::map::Backing;
use crate::parse::{parse_header, Header, TensorInfo};
use crate::split::{self, SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT};
use crate::types::GgmlType;
use crate::value::{Array, Value};

/// One file of a model: its bytes and where its data section starts.
#[derive(Debug)]
struct Shard {
    path: Option<PathBuf>,
    backing: Backing,
    data_offset: u64,
    /// Index range of this shard's tensors in `GgufFile::tensors`.
    tensors: std::ops::Range<usize>,
    /// This shard's integrity values, if present.
    xxh3: Option<Value>,
    blake3: Option<Value>,
    header_blake3: Option<Value>,
    /// Encoded values of the `ingot.integrity.*` keys (zeroed for the header digest).
    reserved_values: Vec<std::ops::Range<u64>>,
}

/// A parsed, validated GGUF model: one file, or every shard of a split model.
///
/// Metadata and tensor infos are owned; tensor bytes stay in the memory map (or buffer) and
/// are lent out as [`TensorView`]s.
#[derive(Debug)]
pub struct GgufFile {
    version: u32,
    alignment: u64,
    kvs: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<Arc<str>, usize>,
    shards: Vec<Shard>,
}

/// A tensor's info and its bytes, borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    info: &'a TensorInfo,
    bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        self.info.name()
    }
    /// Shape in ggml order (`shape()[0]` = elements per row).
    pub fn shape(&self) -> &'a [u64] {
        self.info.shape()
    }
    /// Element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.info.ggml_type()
    }
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.info.n_elements()
    }
    /// The full tensor info.
    pub fn info(&self) -> &'a TensorInfo {
        self.info
    }
    /// The tensor's bytes, exactly `info().n_bytes()` long.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes viewed as blocks of `B` (zero-copy). `B` must be exactly one block of the
    /// tensor's type (`size_of::<B>() == ggml_type().type_size()`: this catches passing the
    /// wrong block struct) and the data must be aligned for `B`; otherwise
    /// [`FormatError::BlockCast`]. Never panics.
    pub fn blocks<B: bytemuck::Pod>(&self) -> Result<&'a [B]> {
        let err = || FormatError::BlockCast {
            tensor: self.info.name.to_string(),
            len: self.bytes.len(),
            block_bytes: std::mem::size_of::<B>(),
            block_align: std::mem::align_of::<B>(),
            addr_align: 1 << (self.bytes.as_ptr() as usize).trailing_zeros().min(12),
        };
        if std::mem::size_of::<B>() != self.info.ty.type_size() {
            return Err(err());
        }
        bytemuck::try_cast_slice(self.bytes).map_err(|_| err())
    }
}

impl GgufFile {
    /// Memory-maps and validates `path`. If the file is a shard of a split model
    /// (`split.count > 1`), every shard is opened and the result is the whole model, with the
    /// metadata of the first shard. Tensor data is never read here.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let backing = Backing::map(path)?;
        let header = parse_header(backing.bytes())?;
        let count = split_value(&header, SPLIT_COUNT)?;
        match count {
            Some(count) if count > 1 => Self::open_split(path, backing, header, count),
            _ => Self::assemble(vec![(Some(path.to_path_buf()), backing, header)]),
        }
    }

    /// Memory-maps and validates exactly one file, without following `split.*` keys.
    pub fn open_single(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref();
        let backing = Backing::map(path)?;
        let header = parse_header(backing.bytes())?;
        Self::assemble(vec![(Some(path.to_path_buf()), backing, header)])
    }

    /// Validates a file held in memory (tests, fuzzing, in-memory use). Split keys are not
    /// followed.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        let header = parse_header(&bytes)?;
        Self::assemble(vec![(None, Backing::Owned(bytes), header)])
    }

    fn open_split(path: &Path, backing: Backing, header: Header, count: u64) -> Result<GgufFile> {
        let (prefix, no, name_count) =
            split::parse_shard_path(path).ok_or_else(|| FormatError::SplitName {
                path: path.to_path_buf(),
                count,
            })?;
        if name_count as u64 != count {
            return Err(FormatError::SplitMismatch {
                path: path.to_path_buf(),
                field: "shard count in the file name",
                expected: count,
                found: name_count as u64,
            });
        }
        let mut parts = Vec::with_capacity(name_count);
        let mut given = Some((backing, header));
        for i in 0..name_count {
            let p = split::shard_path(&prefix, i, name_count);
            let (b, h) = match (i == no).then(|| given.take()).flatten() {
                Some(bh) => bh,
                None => {
                    let b = Backing::map(&p)?;
                    let h = parse_header(b.bytes())?;
                    (b, h)
                }
            };
            let mismatch = |field, expected, found: Option<u64>| FormatError::SplitMismatch {
                path: p.clone(),
                field,
                expected,
                found: found.unwrap_or(u64::MAX),
            };
            let c = split_value(&h, SPLIT_COUNT)?;
            if c != Some(count) {
                return Err(mismatch(SPLIT_COUNT, count, c));
            }
            let n = split_value(&h, SPLIT_NO)?;
            if n != Some(i as u64) {
                return Err(mismatch(SPLIT_NO, i as u64, n));
            }
            parts.push((Some(p), b, h));
        }
        let file = Self::assemble(parts)?;
        if let Some(total) = split_value_of(&file.kvs, &file.key_index, SPLIT_TENSORS_COUNT)? {
            if total != file.tensors.len() as u64 {
                return Err(FormatError::SplitMismatch {
                    path: path.to_path_buf(),
                    field: SPLIT_TENSORS_COUNT,
                    expected: total,
                    found: file.tensors.len() as u64,
                });
            }
        }
        Ok(file)
    }

    /// Joins validated shards: metadata from the first, tensors from all.
    fn assemble(parts: Vec<(Option<PathBuf>, Backing, Header)>) -> Result<GgufFile> {
        let mut shards = Vec::with_capacity(parts.len());
        let mut tensors = Vec::new();
        let mut first: Option<Header> = None;
        for (i, (path, backing, h)) in parts.into_iter().enumerate() {
            let get = |k: &str| h.key_index.get(k).map(|&j| h.kvs[j].1.clone());
            let (xxh3, blake3) = (get(TENSOR_XXH3_KEY), get(DATA_BLAKE3_KEY));
            let header_blake3 = get(HEADER_BLAKE3_KEY);
            let start = tensors.len();
            let mut h = h;
            tensors.extend(std::mem::take(&mut h.tensors).into_iter().map(|mut t| {
                t.shard = i;
                t
            }));
            shards.push(Shard {
                path,
                backing,
                data_offset: h.data_offset,
                tensors: start..tensors.len(),
                xxh3,
                blake3,
                header_blake3,
                reserved_values: std::mem::take(&mut h.reserved_values),
            });
            if first.is_none() {
                first = Some(h);
            }
        }
        let Header {
            version,
            alignment,
            kvs,
            key_index,
            ..
        } = first.ok_or(FormatError::WriterState { what: "no shards" })?;
        let mut tensor_index = HashMap::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            if tensor_index.insert(Arc::clone(&t.name), i).is_some() {
                return Err(FormatError::DuplicateTensor {
                    tensor: t.name.to_string(),
                    at: At::Offset(t.info_offset),
                });
            }
        }
        Ok(GgufFile {
            version,
            alignment,
            kvs,
            key_index,
            tensors,
            tensor_index,
            shards,
        })
    }

    /// GGUF version of the (first) file: 2 or 3.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Data alignment of the (first) file (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Number of files: 1, or the shard count of a split model.
    pub fn n_shards(&self) -> usize {
        self.shards.len()
    }

    /// Paths of the files, in shard order (`None` for in-memory files).
    pub fn shard_paths(&self) -> impl Iterator<Item = Option<&Path>> {
        self.shards.iter().map(|s| s.path.as_deref())
    }

    /// Absolute file offset of shard `shard`'s data section, or `None` if there is no such
    /// shard.
    pub fn data_offset(&self, shard: usize) -> Option<u64> {
        self.shards.get(shard).map(|s| s.data_offset)
    }

    /// Total byte size of shard `shard`'s file.
    pub fn file_size(&self, shard: usize) -> Option<u64> {
        self.shards
            .get(shard)
            .map(|s| s.backing.bytes().len() as u64)
    }

    /// The whole bytes of shard `shard` (for copying unchanged regions).
    pub fn shard_bytes(&self, shard: usize) -> Option<&[u8]> {
        self.shards.get(shard).map(|s| s.backing.bytes())
    }

    // ---- metadata ----

    /// Metadata pairs in file order.
    pub fn metadata(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.kvs.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of metadata pairs.
    pub fn metadata_len(&self) -> usize {
        self.kvs.len()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.kvs[i].1)
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| FormatError::MissingKey {
            key: key.to_owned(),
        })
    }

    fn integer(&self, key: &str, target: &'static str) -> Result<i128> {
        let v = self.require(key)?;
        v.as_integer().ok_or_else(|| FormatError::WrongType {
            key: key.to_owned(),
            expected: target,
            found: v.type_name(),
        })
    }

    fn int_as<T: TryFrom<i128>>(&self, key: &str, target: &'static str) -> Result<T> {
        let x = self.integer(key, target)?;
        T::try_from(x).map_err(|_| FormatError::OutOfRange {
            key: key.to_owned(),
            value: x,
            target,
        })
    }

    /// `key` as u32. Any integer type is accepted if the value fits (so a u64 or i32 holding
    /// a small count works), otherwise [`FormatError::OutOfRange`].
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.int_as(key, "u32")
    }
    /// `key` as u64 (any integer type whose value fits).
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.int_as(key, "u64")
    }
    /// `key` as i32 (any integer type whose value fits).
    pub fn get_i32(&self, key: &str) -> Result<i32> {
        self.int_as(key, "i32")
    }
    /// `key` as i64 (any integer type whose value fits).
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.int_as(key, "i64")
    }
    /// `key` as f32: an f32, or an f64 rounded to f32.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        match self.require(key)? {
            Value::F32(x) => Ok(*x),
            Value::F64(x) => Ok(*x as f32),
            v => Err(self.wrong(key, "f32", v)),
        }
    }
    /// `key` as f64: an f64 or an f32.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        match self.require(key)? {
            Value::F32(x) => Ok(f64::from(*x)),
            Value::F64(x) => Ok(*x),
            v => Err(self.wrong(key, "f64", v)),
        }
    }
    /// `key` as bool.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.require(key)? {
            Value::Bool(b) => Ok(*b),
            v => Err(self.wrong(key, "bool", v)),
        }
    }
    /// `key` as a string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            v => Err(self.wrong(key, "string", v)),
        }
    }
    /// `key` as an array of any element type.
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            v => Err(self.wrong(key, "array", v)),
        }
    }
    /// `key` as an array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        match self.require(key)? {
            Value::Array(Array::String(v)) => Ok(v.iter().map(String::as_str).collect()),
            v => Err(self.wrong(key, "array of string", v)),
        }
    }
    /// `key` as an array of i32.
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        match self.require(key)? {
            Value::Array(Array::I32(v)) => Ok(v),
            v => Err(self.wrong(key, "array of i32", v)),
        }
    }
    /// `key` as an array of u32.
    pub fn get_u32_array(&self, key: &str) -> Result<&[u32]> {
        match self.require(key)? {
            Value::Array(Array::U32(v)) => Ok(v),
            v => Err(self.wrong(key, "array of u32", v)),
        }
    }
    /// `key` as an array of f32.
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.require(key)? {
            Value::Array(Array::F32(v)) => Ok(v),
            v => Err(self.wrong(key, "array of f32", v)),
        }
    }

    fn wrong(&self, key: &str, expected: &'static str, v: &Value) -> FormatError {
        FormatError::WrongType {
            key: key.to_owned(),
            expected,
            found: v.type_name(),
        }
    }

    // ---- tensors ----

    /// Tensor infos in file order (shard by shard for split models).
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = &TensorInfo> {
        self.tensors.iter()
    }

    /// Number of tensors.
    pub fn n_tensors(&self) -> usize {
        self.tensors.len()
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        self.tensor_index
            .get(name)
            .map(|&i| self.view(&self.tensors[i]))
    }

    /// Views in file order.
    pub fn tensor_views(&self) -> impl ExactSizeIterator<Item = TensorView<'_>> {
        self.tensors.iter().map(|t| self.view(t))
    }

    fn view<'a>(&'a self, info: &'a TensorInfo) -> TensorView<'a> {
        let shard = &self.shards[info.shard];
        // Validated at open: offset aligned, offset + n_bytes within the data section.
        let start = (shard.data_offset + info.offset) as usize;
        let bytes = shard
            .backing
            .bytes()
            .get(start..start + info.n_bytes as usize)
            .expect("tensor bounds were validated against the data section at open");
        TensorView { info, bytes }
    }

    /// Sum of all tensors' byte sizes.
    pub fn total_tensor_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_bytes).sum()
    }

    /// Sum of all tensors' element counts.
    pub fn total_elements(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_elements()).sum()
    }

    // ---- integrity ----

    /// Whether every shard carries ingot's integrity keys.
    pub fn has_integrity(&self) -> bool {
        self.shards
            .iter()
            .all(|s| s.xxh3.is_some() && s.blake3.is_some() && s.header_blake3.is_some())
    }

    /// Recomputes the integrity digests written by [`crate::GgufWriter`] (see
    /// [`crate::integrity`]) and compares them with the stored ones. Reads every tensor byte.
    /// Also recomputes the header digest, so changed metadata or tensor infos are caught.
    /// Returns [`FormatError::IntegrityMismatch`] naming every tensor whose bytes changed, or
    /// [`FormatError::NoIntegrity`] if the file carries no digests.
    pub fn verify(&self) -> Result<()> {
        let mut bad = Vec::new();
        let (mut data_bad, mut header_bad) = (false, false);
        for s in &self.shards {
            let xxh3 = match &s.xxh3 {
                None => {
                    return Err(FormatError::NoIntegrity {
                        key: TENSOR_XXH3_KEY,
                    })
                }
                Some(Value::Array(Array::U64(v))) => v,
                Some(_) => {
                    return Err(FormatError::BadIntegrityKey {
                        key: TENSOR_XXH3_KEY,
                        problem: "not an array of u64",
                    })
                }
            };
            let blake = hex_digest(&s.blake3, DATA_BLAKE3_KEY)?;
            let head = hex_digest(&s.header_blake3, HEADER_BLAKE3_KEY)?;
            if xxh3.len() != s.tensors.len() {
                return Err(FormatError::BadIntegrityKey {
                    key: TENSOR_XXH3_KEY,
                    problem: "length differs from the shard's tensor count",
                });
            }
            for (t, &want) in self.tensors[s.tensors.clone()].iter().zip(xxh3) {
                if integrity::tensor_digest(self.view(t).bytes()) != want {
                    bad.push(t.name.to_string());
                }
            }
            let bytes = s.backing.bytes();
            let data = bytes.get(s.data_offset as usize..).unwrap_or(&[]);
            if integrity::hex(&blake3::hash(data)) != *blake {
                data_bad = true;
            }
            let header = bytes.get(..s.data_offset as usize).unwrap_or(bytes);
            if integrity::hex(&integrity::header_digest(header, &s.reserved_values)) != *head {
                header_bad = true;
            }
        }
        if bad.is_empty() && !data_bad && !header_bad {
            Ok(())
        } else {
            Err(FormatError::IntegrityMismatch {
                tensors: bad,
                data_section: data_bad,
                header: header_bad,
            })
        }
    }
}

/// A stored BLAKE3 digest: a string of 64 hex digits under `key`.
fn hex_digest<'v>(v: &'v Option<Value>, key: &'static str) -> Result<&'v str> {
    match v {
        None => Err(FormatError::NoIntegrity { key }),
        Some(Value::String(h)) if h.len() == 64 => Ok(h),
        Some(_) => Err(FormatError::BadIntegrityKey {
            key,
            problem: "not a string of 64 hex digits",
        }),
    }
}

fn split_value(h: &Header, key: &str) -> Result<Option<u64>> {
    split_value_of(&h.kvs, &h.key_index, key)
}

/// A split key's value as u64, accepting any non-negative integer type (llama.cpp writes
/// u16/u16/i32).
fn split_value_of(
    kvs: &[(String, Value)],
    index: &HashMap<String, usize>,
    key: &str,
) -> Result<Option<u64>> {
    let Some(&i) = index.get(key) else {
        return Ok(None);
    };
    let v = &kvs[i].1;
    let x = v.as_integer().ok_or_else(|| FormatError::WrongType {
        key: key.to_owned(),
        expected: "integer",
        found: v.type_name(),
    })?;
    u64::try_from(x)
        .map(Some)
        .map_err(|_| FormatError::OutOfRange {
            key: key.to_owned(),
            value: x,
            target: "u64",
        })
}
