//! Importance-matrix collection, as `llama-imatrix` does it, and both of llama.cpp's file
//! formats.
//!
//! Collection (llama.cpp `tools/imatrix/imatrix.cpp`, `IMatrixCollector::collect_imatrix`):
//! every matrix multiplication whose weight is named `blk.*` (plus `output.weight` when asked
//! for; a tied output head is `token_embd.weight` and is therefore never collected, as in
//! llama.cpp) and whose batch has at least 16 rows contributes, for every input column `j`,
//! `Σ_rows x[row][j]²` (accumulated in f32, row by row) to the weight's entry, and the number of
//! rows to its count. Q, K and V share one input but are separate entries; attention's own
//! `q·k`/`p·v` products have no `blk.*` weight and are not collected. This model family has no
//! mixture-of-experts layers, so every entry holds one matrix (`n_mat = 1`).
//!
//! The text is cut into windows of `n_ctx` tokens exactly as for perplexity (BOS first when
//! the vocabulary adds it), each from an empty cache, all logits requested; the perplexity of
//! each window's second half is reported alongside, as llama-imatrix prints it.
//!
//! Files:
//! - GGUF (llama.cpp's default): metadata `general.type = "imatrix"`, `imatrix.datasets`
//!   (array of strings), `imatrix.chunk_count` (u32), `imatrix.chunk_size` (u32); per entry,
//!   in sorted name order, an F32 tensor `<name>.in_sum2` of shape `[n_cols]` (the raw sums of
//!   squares) followed by an F32 tensor `<name>.counts` of shape `[1]` (rows seen).
//! - legacy `.dat`: `i32 n_entries`, then per entry (sorted by name) `i32 name_len`, the name
//!   bytes, `i32 ncall`, `i32 n_values`, `n_values × f32`, where
//!   `ncall = ceil(count / chunk_size)` and each value is `(sum / count) · ncall` (f32
//!   arithmetic); then `i32 chunk_count`, `i32 dataset_len` and the dataset name bytes. All
//!   little-endian (`save_imatrix_legacy`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ingot_format::{GgmlType, GgufWriter, WriterOptions};
use rayon::prelude::*;

use crate::llama::{KvPrecision, LlamaModel, MatmulObserver};
use crate::perplexity::{log_sum_exp, NllStats};
use crate::InferError;

/// Batches with fewer rows are ignored, as in llama.cpp.
pub const MIN_ROWS: usize = 16;

/// Accumulated statistics of one weight matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ImatrixEntry {
    /// Σ x² per input column.
    pub sum_sq: Vec<f32>,
    /// Number of activation rows accumulated.
    pub count: u64,
}

/// An importance matrix: per weight, column sums of squared activations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imatrix {
    /// Entries by weight name (sorted, as both file formats store them).
    pub entries: BTreeMap<String, ImatrixEntry>,
    /// Windows processed (`imatrix.chunk_count`).
    pub chunk_count: u32,
    /// Tokens per window (`imatrix.chunk_size`).
    pub chunk_size: u32,
    /// Calibration file names (`imatrix.datasets`).
    pub datasets: Vec<String>,
}

/// A [`MatmulObserver`] that accumulates an [`Imatrix`].
#[derive(Debug, Default)]
pub struct ImatrixCollector {
    entries: BTreeMap<String, ImatrixEntry>,
    process_output: bool,
}

impl ImatrixCollector {
    /// A collector; `process_output` also collects `output.weight`.
    pub fn new(process_output: bool) -> Self {
        Self {
            entries: BTreeMap::new(),
            process_output,
        }
    }

    /// Whether a weight's inputs are collected.
    pub fn wants(&self, weight: &str) -> bool {
        weight.starts_with("blk.") || (self.process_output && weight == "output.weight")
    }

    /// The entries collected so far.
    pub fn entries(&self) -> &BTreeMap<String, ImatrixEntry> {
        &self.entries
    }
}

impl MatmulObserver for ImatrixCollector {
    fn observe(&mut self, weight: &str, x: &[f32], n: usize) {
        if n < MIN_ROWS || n == 0 || !self.wants(weight) {
            return;
        }
        let cols = x.len() / n;
        let e = self
            .entries
            .entry(weight.to_string())
            .or_insert_with(|| ImatrixEntry {
                sum_sq: vec![0.0; cols],
                count: 0,
            });
        if e.sum_sq.len() != cols {
            // A weight always sees the same input width; a mismatch cannot come from the model.
            return;
        }
        // Columns are independent: split them across threads, keep the row order per column.
        const COLS_PER_TASK: usize = 64;
        e.sum_sq
            .par_chunks_mut(COLS_PER_TASK)
            .enumerate()
            .for_each(|(ci, acc)| {
                let c0 = ci * COLS_PER_TASK;
                let width = acc.len();
                for row in x.chunks_exact(cols) {
                    for (a, &v) in acc.iter_mut().zip(&row[c0..c0 + width]) {
                        *a += v * v;
                    }
                }
            });
        e.count += n as u64;
    }
}

/// Settings of an imatrix run.
#[derive(Debug, Clone)]
pub struct ImatrixOptions {
    /// Window size in tokens.
    pub n_ctx: usize,
    /// At most this many windows; `None` = all whole windows.
    pub max_chunks: Option<usize>,
    /// BOS token put first in every window (when the vocabulary adds BOS).
    pub bos: Option<u32>,
    /// Also collect `output.weight`.
    pub process_output: bool,
    /// Dataset name recorded in the file.
    pub dataset: String,
    /// KV cache precision.
    pub kv_precision: KvPrecision,
}

/// Progress after each window.
#[derive(Debug, Clone, Copy)]
pub struct ImatrixProgress {
    /// Windows done.
    pub chunk: usize,
    /// Windows in the run.
    pub n_chunks: usize,
    /// PPL of the scored halves so far.
    pub ppl: f64,
    /// Wall time so far.
    pub elapsed: Duration,
}

/// Result of [`collect`].
#[derive(Debug, Clone)]
pub struct ImatrixRun {
    /// The importance matrix.
    pub imatrix: Imatrix,
    /// Perplexity of the windows' second halves.
    pub nll: NllStats,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs the model over `tokens` in windows and collects the importance matrix.
pub fn collect(
    model: &LlamaModel<'_>,
    tokens: &[u32],
    opts: &ImatrixOptions,
    mut progress: impl FnMut(&ImatrixProgress),
) -> Result<ImatrixRun, InferError> {
    let n_ctx = opts.n_ctx;
    if n_ctx < 4 {
        return Err(InferError::InvalidArgument {
            name: "n_ctx",
            reason: "must be at least 4",
        });
    }
    let n_chunk_max = tokens.len() / n_ctx;
    let n_chunks = opts.max_chunks.map_or(n_chunk_max, |c| c.min(n_chunk_max));
    if n_chunks == 0 {
        return Err(InferError::NotEnoughTokens {
            have: tokens.len(),
            need: n_ctx,
        });
    }
    let n_vocab = model.config().n_vocab;
    let first = n_ctx / 2;
    let mut collector = ImatrixCollector::new(opts.process_output);
    let mut cache = model.new_cache(n_ctx, opts.kv_precision);
    let mut nll = NllStats::default();
    let start = Instant::now();
    for chunk in 0..n_chunks {
        let mut window = tokens[chunk * n_ctx..(chunk + 1) * n_ctx].to_vec();
        if let Some(bos) = opts.bos {
            window[0] = bos;
        }
        cache.clear();
        let logits = model.forward(&mut cache, &window, 0, Some(&mut collector))?;
        let targets = &tokens[chunk * n_ctx + first + 1..(chunk + 1) * n_ctx];
        let vals: Vec<f64> = logits[first * n_vocab..]
            .par_chunks_exact(n_vocab)
            .zip(targets.par_iter())
            .map(|(row, &t)| log_sum_exp(row).0 - f64::from(row[t as usize]))
            .collect();
        for v in vals {
            nll.push(v);
        }
        progress(&ImatrixProgress {
            chunk: chunk + 1,
            n_chunks,
            ppl: nll.ppl(),
            elapsed: start.elapsed(),
        });
    }
    let imatrix = Imatrix {
        entries: collector.entries,
        chunk_count: n_chunks as u32,
        chunk_size: n_ctx as u32,
        datasets: vec![opts.dataset.clone()],
    };
    Ok(ImatrixRun {
        imatrix,
        nll,
        elapsed: start.elapsed(),
    })
}

impl Imatrix {
    /// The legacy `.dat` bytes (see the module docs).
    pub fn to_dat_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.entries.len() as i32).to_le_bytes());
        let chunk = u64::from(self.chunk_size.max(1));
        for (name, e) in &self.entries {
            out.extend_from_slice(&(name.len() as i32).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            let ncall = e.count.div_ceil(chunk) as i32;
            out.extend_from_slice(&ncall.to_le_bytes());
            out.extend_from_slice(&(e.sum_sq.len() as i32).to_le_bytes());
            for &v in &e.sum_sq {
                let (value, count) = if e.count == 0 {
                    (1.0f32, 1.0f32)
                } else {
                    (v, e.count as f32)
                };
                out.extend_from_slice(&((value / count) * ncall as f32).to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.chunk_count as i32).to_le_bytes());
        let ds = self.datasets.last().map_or("", String::as_str);
        out.extend_from_slice(&(ds.len() as i32).to_le_bytes());
        out.extend_from_slice(ds.as_bytes());
        out
    }

    /// Writes llama.cpp's GGUF imatrix (see the module docs) through [`GgufWriter`], without
    /// ingot's integrity keys so the file is exactly what llama-imatrix would write.
    pub fn write_gguf(&self, path: &Path) -> Result<(), InferError> {
        let opts = WriterOptions {
            integrity: false,
            ..WriterOptions::default()
        };
        let mut w = GgufWriter::with_options(path, opts);
        w.add_kv("general.type", "imatrix")?;
        w.add_kv(
            "imatrix.datasets",
            self.datasets
                .iter()
                .map(String::as_str)
                .collect::<Vec<&str>>(),
        )?;
        w.add_kv("imatrix.chunk_count", self.chunk_count)?;
        w.add_kv("imatrix.chunk_size", self.chunk_size)?;
        for (name, e) in &self.entries {
            w.add_tensor(
                &format!("{name}.in_sum2"),
                &[e.sum_sq.len() as u64],
                GgmlType::F32,
            )?;
            w.add_tensor(&format!("{name}.counts"), &[1], GgmlType::F32)?;
        }
        for e in self.entries.values() {
            w.write_tensor(
                &e.sum_sq
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            )?;
            w.write_tensor(&(e.count as f32).to_le_bytes())?;
        }
        w.finish()?;
        Ok(())
    }

    /// Writes the legacy `.dat` format (temp file + rename).
    pub fn write_dat(&self, path: &Path) -> Result<(), InferError> {
        write_atomically(path, &self.to_dat_bytes())
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), InferError> {
    let io = |source| InferError::Io {
        what: "writing the imatrix file",
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_follows_llama_cpp_rules() {
        let mut c = ImatrixCollector::new(false);
        let x: Vec<f32> = (0..16 * 3).map(|i| (i % 5) as f32 - 2.0).collect();
        c.observe("blk.0.attn_q.weight", &x, 16);
        c.observe("blk.0.attn_q.weight", &x[..15 * 3], 15); // too few rows: ignored
        c.observe("output.weight", &x, 16); // not asked for
        c.observe("token_embd.weight", &x, 16);
        assert_eq!(c.entries().len(), 1);
        let e = &c.entries()["blk.0.attn_q.weight"];
        assert_eq!(e.count, 16);
        for j in 0..3 {
            let want: f32 = (0..16).map(|r| x[r * 3 + j].powi(2)).sum();
            assert_eq!(e.sum_sq[j], want);
        }
        let mut c = ImatrixCollector::new(true);
        c.observe("output.weight", &x, 16);
        assert_eq!(c.entries().len(), 1);
    }

    #[test]
    fn dat_layout() {
        let mut m = Imatrix {
            chunk_count: 2,
            chunk_size: 4,
            datasets: vec!["d.txt".into()],
            ..Default::default()
        };
        m.entries.insert(
            "blk.0.a".into(),
            ImatrixEntry {
                sum_sq: vec![8.0, 4.0],
                count: 8,
            },
        );
        let b = m.to_dat_bytes();
        let i32_at = |o: usize| i32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let f32_at = |o: usize| f32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(i32_at(0), 1);
        assert_eq!(i32_at(4), 7);
        assert_eq!(&b[8..15], b"blk.0.a");
        assert_eq!(i32_at(15), 2); // ncall = ceil(8 / 4)
        assert_eq!(i32_at(19), 2);
        assert_eq!(f32_at(23), 2.0); // 8 / 8 * 2
        assert_eq!(f32_at(27), 1.0);
        assert_eq!(i32_at(31), 2);
        assert_eq!(i32_at(35), 5);
        assert_eq!(&b[39..], b"d.txt");
    }
}
