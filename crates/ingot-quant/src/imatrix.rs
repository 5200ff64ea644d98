//! Importance matrices: llama.cpp's two file formats, read and written by one implementation.
//!
//! An importance matrix holds, for every weight matrix `W` of a model, statistics of the
//! activations `x` that multiply it: per input column `j`, the sum of `x_j²` over every
//! activation row seen (`sums`), and how many rows were seen (`counts`, one per expert matrix
//! of a merged 3-D expert tensor). The quantizers weight their error by the per-column mean
//! `sums[j] / count`, so columns that carry large activations are reproduced more faithfully.
//!
//! Two containers exist (see `formats/imatrix.md` for the byte layouts and their sources in
//! llama.cpp's `tools/imatrix/imatrix.cpp`):
//!
//! ```text
//! legacy .dat:  i32 n_entries
//!               n_entries × { i32 name_len, name bytes, i32 ncall, i32 nval, nval × f32 }
//!                   (values stored as mean × ncall)
//!               [i32 last_chunk] [i32 dataset_len, dataset bytes]
//! GGUF:         general.type = "imatrix", imatrix.datasets (string array),
//!               imatrix.chunk_count (u32), imatrix.chunk_size (u32);
//!               per entry F32 tensors `<name>.in_sum2` [nval/nmat, nmat] and
//!               `<name>.counts` [1, nmat] (and, in newer files, `<name>.in_sum`).
//! ```
//!
//! In memory both become [`Imatrix`]: sums and counts as the GGUF format keeps them. A legacy
//! entry's values `v` (mean × ncall) become `sums = v·C` and `counts = [ncall·C]` with
//! `C = `[`LEGACY_CHUNK_SIZE`] — what llama-imatrix itself does when it loads a `.dat` — and
//! because `C` is a power of two the per-column mean `v / ncall` is reproduced exactly.
//! Writing `.dat` inverts this: `ncall = ceil(max count / chunk_size)`, `v = mean × ncall`.
//!
//! The format is detected by content: a file starting with the GGUF magic is GGUF, anything
//! else is parsed as legacy. Every length read from a legacy file is checked against the bytes
//! remaining before anything is allocated.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::QuantError;

/// Tokens per chunk assumed for a legacy `.dat` file, which does not record it: llama-imatrix's
/// default context (`n_ctx = 512`, one sequence). A power of two, so scaling by it is exact.
pub const LEGACY_CHUNK_SIZE: u32 = 512;

/// Longest entry name accepted from a legacy file (ggml tensor names are at most 63 bytes; this
/// leaves ample room while refusing absurd lengths before allocating).
pub const MAX_NAME_LEN: usize = 4096;

/// Suffix of the per-column sum-of-squares tensor in the GGUF format.
pub const IN_SUM2_SUFFIX: &str = ".in_sum2";
/// Suffix of the per-matrix row-count tensor in the GGUF format.
pub const COUNTS_SUFFIX: &str = ".counts";
/// Suffix of the optional per-column sum tensor in newer GGUF imatrix files.
pub const IN_SUM_SUFFIX: &str = ".in_sum";

/// GGUF key: `general.type` (must be `"imatrix"`).
pub const KEY_GENERAL_TYPE: &str = "general.type";
/// GGUF key: the datasets the matrix was collected on.
pub const KEY_DATASETS: &str = "imatrix.datasets";
/// GGUF key: number of chunks processed.
pub const KEY_CHUNK_COUNT: &str = "imatrix.chunk_count";
/// GGUF key: tokens per chunk.
pub const KEY_CHUNK_SIZE: &str = "imatrix.chunk_size";

/// The GGUF file magic, used to tell the two formats apart.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// One weight's statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct ImatrixEntry {
    /// Σ x_j² per input column, concatenated over `counts.len()` matrices (experts).
    pub sums: Vec<f32>,
    /// Activation rows accumulated into each matrix's sums; `sums.len()` is a multiple of
    /// `counts.len()`.
    pub counts: Vec<f32>,
    /// Σ x_j per column (newer GGUF files only; carried through, not used for quantizing).
    pub activation_sums: Option<Vec<f32>>,
}

impl ImatrixEntry {
    /// Per-column means `sums / count`, the importance weights the quantizers use. A matrix
    /// with count 0 (an expert never routed to) gets weight 1 everywhere, as llama-quantize
    /// does.
    pub fn means(&self) -> Vec<f32> {
        let n_mat = self.counts.len().max(1);
        let row = self.sums.len() / n_mat;
        let mut out = Vec::with_capacity(self.sums.len());
        for (m, &c) in self.counts.iter().enumerate() {
            let chunk = &self.sums[m * row..(m + 1) * row];
            if c > 0.0 {
                out.extend(chunk.iter().map(|&s| s / c));
            } else {
                out.extend(std::iter::repeat_n(1.0f32, row));
            }
        }
        out
    }

    /// Values per matrix (the weight's row length).
    pub fn row_len(&self) -> usize {
        self.sums.len() / self.counts.len().max(1)
    }
}

/// Which container an importance matrix came from or is written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImatrixFormat {
    /// llama.cpp's original binary `.dat` layout.
    Legacy,
    /// The GGUF container (`general.type = "imatrix"`).
    Gguf,
}

/// An importance matrix: entries by weight name, plus what it was collected on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imatrix {
    entries: BTreeMap<String, ImatrixEntry>,
    /// Names of the datasets (calibration files) it was collected on.
    pub datasets: Vec<String>,
    /// Chunks processed (`imatrix.chunk_count`, or the legacy trailing `last_chunk`).
    pub chunk_count: u32,
    /// Tokens per chunk (`imatrix.chunk_size`; [`LEGACY_CHUNK_SIZE`] for legacy files).
    pub chunk_size: u32,
}

impl Imatrix {
    /// An empty matrix with the given chunk size (tokens per chunk).
    pub fn new(chunk_size: u32) -> Self {
        Imatrix {
            chunk_size,
            ..Imatrix::default()
        }
    }

    /// Adds (or replaces) one weight's statistics. The model engineer's collector builds
    /// matrices this way.
    ///
    /// Returns [`QuantError::ImatrixBadEntry`] when `sums` is empty, `counts` is empty or `sums`
    /// is not a multiple of `counts` in length.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        entry: ImatrixEntry,
    ) -> Result<(), QuantError> {
        let name = name.into();
        check_shape(&name, &entry)?;
        self.entries.insert(name, entry);
        Ok(())
    }

    /// The entry for a weight, if present.
    pub fn get(&self, name: &str) -> Option<&ImatrixEntry> {
        self.entries.get(name)
    }

    /// Removes an entry.
    pub fn remove(&mut self, name: &str) -> Option<ImatrixEntry> {
        self.entries.remove(name)
    }

    /// Entries in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ImatrixEntry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps only the entries for which `keep(name)` is true (llama-quantize's
    /// `--include-weights` / `--exclude-weights`).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|k, _| keep(k));
    }

    /// Renames every entry through `map` (for example the layer renumbering of a pruned
    /// model); entries for which `map` returns `None` are dropped.
    pub fn remap(&self, mut map: impl FnMut(&str) -> Option<String>) -> Imatrix {
        let entries = self
            .entries
            .iter()
            .filter_map(|(k, v)| map(k).map(|n| (n, v.clone())))
            .collect();
        Imatrix {
            entries,
            datasets: self.datasets.clone(),
            chunk_count: self.chunk_count,
            chunk_size: self.chunk_size,
        }
    }

    /// The importance weights for a tensor with `row_len` elements per row and `n_expert`
    /// matrices (1 for an ordinary 2-D weight), checked: `Ok(None)` when there is no entry,
    /// [`QuantError::ImatrixLengthMismatch`] when its length differs, [`QuantError::ImatrixNonFinite`]
    /// when a mean is NaN, infinite or negative.
    pub fn weights_for(
        &self,
        name: &str,
        row_len: usize,
        n_expert: usize,
    ) -> Result<Option<Vec<f32>>, QuantError> {
        let Some(entry) = self.entries.get(name) else {
            return Ok(None);
        };
        let expected = row_len.saturating_mul(n_expert);
        if entry.sums.len() != expected {
            return Err(QuantError::ImatrixLengthMismatch {
                name: name.to_owned(),
                entry_len: entry.sums.len(),
                expected,
            });
        }
        let means = entry.means();
        check_finite(name, &means)?;
        Ok(Some(means))
    }

    /// Checks every entry's means are finite and non-negative (llama-quantize refuses an
    /// imatrix holding NaN or infinity); the error names the first bad entry.
    pub fn validate(&self) -> Result<(), QuantError> {
        for (name, entry) in &self.entries {
            check_finite(name, &entry.means())?;
        }
        Ok(())
    }

    /// Reads a file of either format, detected by content.
    pub fn open(path: impl AsRef<Path>) -> Result<(Imatrix, ImatrixFormat), QuantError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| QuantError::io(path, source))?;
        Imatrix::from_bytes(bytes)
    }

    /// Parses a file's bytes, detecting the format by content.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<(Imatrix, ImatrixFormat), QuantError> {
        if bytes.starts_with(GGUF_MAGIC) {
            let file = ingot_format::GgufFile::from_bytes(bytes)?;
            Ok((Imatrix::from_gguf(&file)?, ImatrixFormat::Gguf))
        } else {
            Ok((Imatrix::from_legacy(&bytes)?, ImatrixFormat::Legacy))
        }
    }

    /// Parses llama.cpp's legacy `.dat` layout.
    pub fn from_legacy(bytes: &[u8]) -> Result<Imatrix, QuantError> {
        let mut r = Reader { bytes, pos: 0 };
        let n_entries_at = r.pos;
        let n_entries = r.i32("n_entries")?;
        // Each entry takes at least 16 bytes (three i32s and one value).
        if n_entries < 1 || n_entries as usize > r.remaining() / 16 {
            return Err(QuantError::ImatrixBadField {
                field: "n_entries",
                value: n_entries.into(),
                offset: n_entries_at,
            });
        }
        let mut im = Imatrix::new(LEGACY_CHUNK_SIZE);
        let scale = LEGACY_CHUNK_SIZE as f32;
        for _ in 0..n_entries {
            let len_at = r.pos;
            let len = r.i32("name_len")?;
            if len < 1 || len as usize > MAX_NAME_LEN {
                return Err(QuantError::ImatrixBadField {
                    field: "name_len",
                    value: len.into(),
                    offset: len_at,
                });
            }
            let name_at = r.pos;
            let name = std::str::from_utf8(r.take(len as usize, "name")?)
                .map_err(|_| QuantError::ImatrixNameNotUtf8 { offset: name_at })?
                .to_owned();
            let ncall_at = r.pos;
            let ncall = r.i32("ncall")?;
            if ncall < 0 {
                return Err(QuantError::ImatrixBadField {
                    field: "ncall",
                    value: ncall.into(),
                    offset: ncall_at,
                });
            }
            let nval_at = r.pos;
            let nval = r.i32("nval")?;
            if nval < 1 || nval as usize > r.remaining() / 4 {
                return Err(QuantError::ImatrixBadField {
                    field: "nval",
                    value: nval.into(),
                    offset: nval_at,
                });
            }
            let raw = r.take(nval as usize * 4, "values")?;
            // ncall 0 means "values are the means already" in llama-quantize's reader.
            let calls = ncall.max(1) as f32;
            let sums = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * scale)
                .collect();
            let entry = ImatrixEntry {
                sums,
                counts: vec![calls * scale],
                activation_sums: None,
            };
            if im.entries.insert(name.clone(), entry).is_some() {
                return Err(QuantError::ImatrixDuplicateEntry { name });
            }
        }
        // Optional trailer: the chunk count, then the dataset name.
        if r.remaining() >= 4 {
            let at = r.pos;
            let last = r.i32("last_chunk")?;
            im.chunk_count = u32::try_from(last).map_err(|_| QuantError::ImatrixBadField {
                field: "last_chunk",
                value: last.into(),
                offset: at,
            })?;
            if r.remaining() >= 4 {
                let at = r.pos;
                let len = r.i32("dataset_len")?;
                if len < 0 || len as usize > r.remaining() {
                    return Err(QuantError::ImatrixBadField {
                        field: "dataset_len",
                        value: len.into(),
                        offset: at,
                    });
                }
                let ds_at = r.pos;
                let ds = std::str::from_utf8(r.take(len as usize, "dataset")?)
                    .map_err(|_| QuantError::ImatrixNameNotUtf8 { offset: ds_at })?;
                if !ds.is_empty() {
                    im.datasets.push(ds.to_owned());
                }
            }
        }
        if r.remaining() != 0 {
            return Err(QuantError::ImatrixTrailingBytes {
                offset: r.pos,
                extra: r.remaining(),
            });
        }
        Ok(im)
    }

    /// Serialises in llama.cpp's legacy `.dat` layout (entries in name order; entries whose
    /// every count is zero are skipped, as llama-imatrix does).
    pub fn to_legacy(&self) -> Vec<u8> {
        let chunk = self.chunk_size.max(1) as f32;
        let stored: Vec<(&String, &ImatrixEntry)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.counts.iter().any(|&c| c > 0.0))
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(&(stored.len() as i32).to_le_bytes());
        for (name, e) in stored {
            out.extend_from_slice(&(name.len() as i32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            let max_count = e.counts.iter().copied().fold(0.0f32, f32::max);
            let ncall = (max_count / chunk).ceil().max(1.0);
            out.extend_from_slice(&(ncall as i32).to_le_bytes());
            out.extend_from_slice(&(e.sums.len() as i32).to_le_bytes());
            let row = e.row_len();
            for (i, &s) in e.sums.iter().enumerate() {
                let c = e.counts[i / row.max(1)];
                let mean = if c > 0.0 { s / c } else { 1.0 };
                out.extend_from_slice(&(mean * ncall).to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.chunk_count as i32).to_le_bytes());
        let ds = self.datasets.last().map(String::as_str).unwrap_or("");
        out.extend_from_slice(&(ds.len() as i32).to_le_bytes());
        out.extend_from_slice(ds.as_bytes());
        out
    }

    /// Writes the legacy layout to `path` (temp file in the same directory, then rename).
    pub fn write_legacy(&self, path: impl AsRef<Path>) -> Result<(), QuantError> {
        write_atomic(path.as_ref(), &self.to_legacy())
    }
}

impl Imatrix {
    /// Reads a parsed GGUF imatrix (`general.type = "imatrix"`).
    pub fn from_gguf(file: &ingot_format::GgufFile) -> Result<Imatrix, QuantError> {
        let found = file.get_str(KEY_GENERAL_TYPE).ok().map(str::to_owned);
        if found.as_deref() != Some("imatrix") {
            return Err(QuantError::NotImatrix { found });
        }
        let mut im = Imatrix::new(file.get_u32(KEY_CHUNK_SIZE).unwrap_or(LEGACY_CHUNK_SIZE));
        im.chunk_count = file.get_u32(KEY_CHUNK_COUNT).unwrap_or(0);
        if let Ok(ds) = file.get_str_array(KEY_DATASETS) {
            im.datasets = ds.into_iter().map(|s| s.to_owned()).collect();
        }
        // Group the three tensors of each weight by the weight's name.
        let mut parts: BTreeMap<String, [Option<Vec<f32>>; 3]> = BTreeMap::new();
        for info in file.tensors() {
            let tname = info.name();
            let (base, slot) = if let Some(b) = tname.strip_suffix(IN_SUM2_SUFFIX) {
                (b, 0)
            } else if let Some(b) = tname.strip_suffix(COUNTS_SUFFIX) {
                (b, 1)
            } else if let Some(b) = tname.strip_suffix(IN_SUM_SUFFIX) {
                (b, 2)
            } else {
                continue;
            };
            let view = file
                .tensor(tname)
                .ok_or_else(|| QuantError::ImatrixBadEntry {
                    name: base.to_owned(),
                    problem: format!("tensor {tname} is listed but cannot be read"),
                })?;
            if view.ggml_type() != ingot_format::GgmlType::F32 {
                return Err(QuantError::ImatrixNotF32 {
                    name: tname.to_owned(),
                    ty: view.ggml_type().name(),
                });
            }
            let values: Vec<f32> = view
                .bytes()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let entry = parts.entry(base.to_owned()).or_default();
            if entry[slot].replace(values).is_some() {
                return Err(QuantError::ImatrixDuplicateEntry {
                    name: tname.to_owned(),
                });
            }
        }
        for (name, [sums, counts, act]) in parts {
            let (Some(sums), Some(counts)) = (sums, counts) else {
                return Err(QuantError::ImatrixBadEntry {
                    name,
                    problem: "needs both .in_sum2 and .counts tensors".to_owned(),
                });
            };
            if let Some(i) = counts.iter().position(|c| !c.is_finite() || *c < 0.0) {
                return Err(QuantError::ImatrixBadEntry {
                    problem: format!(
                        "count {} of matrix {i} is not a finite non-negative number",
                        counts[i]
                    ),
                    name,
                });
            }
            let entry = ImatrixEntry {
                sums,
                counts,
                activation_sums: act,
            };
            im.insert(name, entry)?;
        }
        if im.is_empty() {
            return Err(QuantError::ImatrixEmpty);
        }
        Ok(im)
    }
}

impl Imatrix {
    /// Writes the GGUF layout to `path` (entries in name order, `<name>.in_sum2` then
    /// `<name>.counts` then, if present, `<name>.in_sum`, as llama-imatrix writes them; a
    /// single-matrix entry is stored 1-D, as ggml's `ggml_n_dims` makes llama.cpp do).
    /// The writer's temp file + rename means `path` never holds a partial file.
    pub fn write_gguf(&self, path: impl AsRef<Path>) -> Result<(), QuantError> {
        use ingot_format::{Array, GgmlType, GgufWriter, Value};
        let mut w = GgufWriter::new(path.as_ref());
        w.add_kv(KEY_GENERAL_TYPE, "imatrix")?;
        w.add_kv(
            KEY_DATASETS,
            Value::Array(Array::String(self.datasets.clone())),
        )?;
        w.add_kv(KEY_CHUNK_COUNT, Value::U32(self.chunk_count))?;
        w.add_kv(KEY_CHUNK_SIZE, Value::U32(self.chunk_size))?;
        let shape = |inner: u64, nmat: u64| {
            if nmat == 1 {
                vec![inner]
            } else {
                vec![inner, nmat]
            }
        };
        for (name, e) in &self.entries {
            let nmat = e.counts.len() as u64;
            let row = e.row_len() as u64;
            w.add_tensor(
                &format!("{name}{IN_SUM2_SUFFIX}"),
                &shape(row, nmat),
                GgmlType::F32,
            )?;
            w.add_tensor(
                &format!("{name}{COUNTS_SUFFIX}"),
                &shape(1, nmat),
                GgmlType::F32,
            )?;
            if e.activation_sums.is_some() {
                w.add_tensor(
                    &format!("{name}{IN_SUM_SUFFIX}"),
                    &shape(row, nmat),
                    GgmlType::F32,
                )?;
            }
        }
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for e in self.entries.values() {
            w.write_tensor(&bytes(&e.sums))?;
            w.write_tensor(&bytes(&e.counts))?;
            if let Some(a) = &e.activation_sums {
                w.write_tensor(&bytes(a))?;
            }
        }
        w.finish()?;
        Ok(())
    }
}

fn check_shape(name: &str, e: &ImatrixEntry) -> Result<(), QuantError> {
    let bad = |problem: String| QuantError::ImatrixBadEntry {
        name: name.to_owned(),
        problem,
    };
    if e.sums.is_empty() || e.counts.is_empty() {
        return Err(bad(format!(
            "{} sums and {} counts; both must be non-empty",
            e.sums.len(),
            e.counts.len()
        )));
    }
    if !e.sums.len().is_multiple_of(e.counts.len()) {
        return Err(bad(format!(
            "{} sums are not a multiple of {} counts",
            e.sums.len(),
            e.counts.len()
        )));
    }
    if let Some(a) = &e.activation_sums {
        if a.len() != e.sums.len() {
            return Err(bad(format!(
                "{} activation sums but {} sums",
                a.len(),
                e.sums.len()
            )));
        }
    }
    Ok(())
}

fn check_finite(name: &str, means: &[f32]) -> Result<(), QuantError> {
    match means.iter().position(|v| !v.is_finite() || *v < 0.0) {
        None => Ok(()),
        Some(index) => Err(QuantError::ImatrixNonFinite {
            name: name.to_owned(),
            index,
            value: means[index],
        }),
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place, so
/// `path` never holds a partial file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), QuantError> {
    let io = |source| QuantError::io(path, source);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// A bounds-checked little-endian cursor over a legacy file.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], QuantError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(QuantError::ImatrixTruncated {
                field,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            }),
        }
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, QuantError> {
        let b = self.take(4, field)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_bytes(entries: &[(&str, i32, &[f32])], trailer: Option<(i32, &str)>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(entries.len() as i32).to_le_bytes());
        for (name, ncall, vals) in entries {
            b.extend_from_slice(&(name.len() as i32).to_le_bytes());
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(&ncall.to_le_bytes());
            b.extend_from_slice(&(vals.len() as i32).to_le_bytes());
            for v in *vals {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let Some((last, ds)) = trailer {
            b.extend_from_slice(&last.to_le_bytes());
            b.extend_from_slice(&(ds.len() as i32).to_le_bytes());
            b.extend_from_slice(ds.as_bytes());
        }
        b
    }

    #[test]
    fn legacy_means_are_values_over_ncall_exactly() {
        let vals = [3.0f32, 0.7, 1e-3, 12.5];
        let b = legacy_bytes(&[("blk.0.attn_q.weight", 7, &vals)], Some((7, "calib.txt")));
        let im = Imatrix::from_legacy(&b).unwrap();
        assert_eq!(im.len(), 1);
        assert_eq!(im.chunk_count, 7);
        assert_eq!(im.datasets, vec!["calib.txt".to_string()]);
        let means = im.get("blk.0.attn_q.weight").unwrap().means();
        for (m, v) in means.iter().zip(vals) {
            assert_eq!(*m, v / 7.0);
        }
    }

    #[test]
    fn legacy_round_trips_byte_for_byte() {
        let b = legacy_bytes(
            &[
                ("a.weight", 3, &[1.0, 2.0, 3.5]),
                ("b.weight", 10, &[0.25, 8.0]),
            ],
            Some((10, "data.txt")),
        );
        let im = Imatrix::from_legacy(&b).unwrap();
        assert_eq!(im.to_legacy(), b);
    }

    #[test]
    fn legacy_trailer_is_optional() {
        let b = legacy_bytes(&[("a.weight", 1, &[1.0])], None);
        let im = Imatrix::from_legacy(&b).unwrap();
        assert_eq!(im.chunk_count, 0);
        assert!(im.datasets.is_empty());
    }

    #[test]
    fn legacy_ncall_zero_means_values_are_means() {
        let b = legacy_bytes(&[("a.weight", 0, &[4.0, 2.0])], None);
        let im = Imatrix::from_legacy(&b).unwrap();
        assert_eq!(im.get("a.weight").unwrap().means(), vec![4.0, 2.0]);
    }

    #[test]
    fn legacy_errors() {
        // Truncated in the values.
        let mut b = legacy_bytes(&[("a.weight", 1, &[1.0, 2.0])], None);
        b.truncate(b.len() - 2);
        assert!(matches!(
            Imatrix::from_legacy(&b),
            Err(QuantError::ImatrixBadField { field: "nval", .. })
        ));
        // Truncated in the name.
        let b = legacy_bytes(&[("a.weight", 1, &[1.0, 2.0])], None);
        assert!(matches!(
            Imatrix::from_legacy(&b[..10]),
            Err(QuantError::ImatrixBadField {
                field: "n_entries",
                ..
            })
        ));
        // A name longer than the file.
        let mut b = legacy_bytes(&[("a.weight", 1, &[1.0, 2.0, 3.0, 4.0])], None);
        b[4..8].copy_from_slice(&100i32.to_le_bytes());
        assert!(matches!(
            Imatrix::from_legacy(&b),
            Err(QuantError::ImatrixTruncated {
                field: "name",
                offset: 8,
                needed: 100,
                ..
            })
        ));
        // Zero entries, negative lengths.
        assert!(matches!(
            Imatrix::from_legacy(&0i32.to_le_bytes()),
            Err(QuantError::ImatrixBadField {
                field: "n_entries",
                value: 0,
                ..
            })
        ));
        let mut b = legacy_bytes(&[("a.weight", 1, &[1.0, 2.0, 3.0, 4.0])], None);
        b[4..8].copy_from_slice(&(-3i32).to_le_bytes());
        assert!(matches!(
            Imatrix::from_legacy(&b),
            Err(QuantError::ImatrixBadField {
                field: "name_len",
                value: -3,
                offset: 4
            })
        ));
        let mut b = legacy_bytes(&[("a.weight", 1, &[1.0])], None);
        b[16..20].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(matches!(
            Imatrix::from_legacy(&b),
            Err(QuantError::ImatrixBadField { field: "ncall", .. })
        ));
        // Duplicates.
        let b = legacy_bytes(&[("a.weight", 1, &[1.0]), ("a.weight", 1, &[2.0])], None);
        assert!(matches!(
            Imatrix::from_legacy(&b),
            Err(QuantError::ImatrixDuplicateEntry { .. })
        ));
        // Trailing garbage.
        let mut b = legacy_bytes(&[("a.weight", 1, &[1.0])], Some((1, "x")));
        b.push(0);
        assert!(matches!(
            Imatrix::from_legacy(&b),
            Err(QuantError::ImatrixTrailingBytes { extra: 1, .. })
        ));
        // Bad UTF-8 name.
        let mut b = legacy_bytes(&[("ab", 1, &[1.0])], None);
        b[8] = 0xff;
        assert!(matches!(
            Imatrix::from_legacy(&b),
            Err(QuantError::ImatrixNameNotUtf8 { offset: 8 })
        ));
    }

    #[test]
    fn weights_for_checks_length_and_finiteness() {
        let b = legacy_bytes(
            &[
                ("a.weight", 1, &[1.0, 2.0]),
                ("nan.weight", 1, &[1.0, f32::NAN]),
            ],
            None,
        );
        let im = Imatrix::from_legacy(&b).unwrap();
        assert_eq!(
            im.weights_for("a.weight", 2, 1).unwrap(),
            Some(vec![1.0, 2.0])
        );
        assert_eq!(im.weights_for("missing.weight", 2, 1).unwrap(), None);
        assert!(matches!(
            im.weights_for("a.weight", 4, 1),
            Err(QuantError::ImatrixLengthMismatch {
                entry_len: 2,
                expected: 4,
                ..
            })
        ));
        assert!(matches!(
            im.weights_for("nan.weight", 2, 1),
            Err(QuantError::ImatrixNonFinite { index: 1, ref name, .. }) if name == "nan.weight"
        ));
        assert!(matches!(
            im.validate(),
            Err(QuantError::ImatrixNonFinite { .. })
        ));
    }

    #[test]
    fn experts_and_zero_counts() {
        let mut im = Imatrix::new(512);
        im.insert(
            "e.weight",
            ImatrixEntry {
                sums: vec![2.0, 4.0, 9.0, 9.0],
                counts: vec![2.0, 0.0],
                activation_sums: None,
            },
        )
        .unwrap();
        assert_eq!(
            im.get("e.weight").unwrap().means(),
            vec![1.0, 2.0, 1.0, 1.0]
        );
        let bad = ImatrixEntry {
            sums: vec![1.0, 2.0, 3.0],
            counts: vec![1.0, 1.0],
            activation_sums: None,
        };
        assert!(matches!(
            im.insert("x", bad),
            Err(QuantError::ImatrixBadEntry { .. })
        ));
    }

    #[test]
    fn remap_and_retain() {
        let b = legacy_bytes(
            &[
                ("blk.0.a.weight", 1, &[1.0]),
                ("blk.2.a.weight", 1, &[2.0]),
                ("out.weight", 1, &[3.0]),
            ],
            None,
        );
        let mut im = Imatrix::from_legacy(&b).unwrap();
        let re = im.remap(|n| match n {
            "blk.0.a.weight" => None,
            "blk.2.a.weight" => Some("blk.1.a.weight".into()),
            other => Some(other.into()),
        });
        let names: Vec<&str> = re.entries().map(|(n, _)| n).collect();
        assert_eq!(names, ["blk.1.a.weight", "out.weight"]);
        im.retain(|n| n.contains("blk"));
        assert_eq!(im.len(), 2);
    }

    #[test]
    fn golden_legacy_file_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/golden/smollm2/imatrix.dat"
        );
        let (im, fmt) = Imatrix::open(path).unwrap();
        assert_eq!(fmt, ImatrixFormat::Legacy);
        assert_eq!(im.len(), 210);
        assert_eq!(im.chunk_count, 10);
        assert_eq!(im.datasets, vec!["calib.txt".to_string()]);
        let e = im.get("blk.0.attn_k.weight").unwrap();
        assert_eq!(e.sums.len(), 576);
        im.validate().unwrap();
    }
}
