//! Importance-matrix collection, as `llama-imatrix` does it.
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
//! The result is [`ingot_quant::imatrix::Imatrix`], the one in-memory form `quantize` reads
//! and writes: each entry's `sums` are the raw column sums of squares and `counts` holds one
//! value, the rows seen. Its `write_gguf` / `write_legacy` produce llama.cpp's two file formats
//! (layouts and sources in `formats/imatrix.md`), so there is one writer of each format.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use ingot_quant::imatrix::{Imatrix, ImatrixEntry};
use rayon::prelude::*;

use crate::llama::{KvPrecision, LlamaModel, MatmulObserver};
use crate::perplexity::{log_sum_exp, NllStats};
use crate::InferError;

/// Batches with fewer rows are ignored, as in llama.cpp.
pub const MIN_ROWS: usize = 16;

/// One weight's running sums while collecting; the row count stays an integer until the
/// matrix is built (ggml keeps it as `int64_t` too and writes it as f32).
#[derive(Debug, Clone)]
struct Accum {
    sum_sq: Vec<f32>,
    count: u64,
}

/// A [`MatmulObserver`] that accumulates an [`Imatrix`].
#[derive(Debug, Default)]
pub struct ImatrixCollector {
    accums: BTreeMap<String, Accum>,
    process_output: bool,
}

impl ImatrixCollector {
    /// A collector; `process_output` also collects `output.weight`.
    pub fn new(process_output: bool) -> Self {
        Self {
            accums: BTreeMap::new(),
            process_output,
        }
    }

    /// Whether a weight's inputs are collected.
    pub fn wants(&self, weight: &str) -> bool {
        weight.starts_with("blk.") || (self.process_output && weight == "output.weight")
    }

    /// Number of weights seen so far.
    pub fn len(&self) -> usize {
        self.accums.len()
    }

    /// True before any weight was seen.
    pub fn is_empty(&self) -> bool {
        self.accums.is_empty()
    }

    /// The importance matrix of everything observed: per weight one matrix whose `sums` are
    /// the column sums of squares and whose `counts` is the number of rows, with the run's
    /// chunk count, chunk size (tokens per window) and dataset name.
    pub fn into_imatrix(
        self,
        chunk_count: u32,
        chunk_size: u32,
        dataset: &str,
    ) -> Result<Imatrix, InferError> {
        let mut im = Imatrix::new(chunk_size);
        im.chunk_count = chunk_count;
        im.datasets = vec![dataset.to_owned()];
        for (name, a) in self.accums {
            let entry = ImatrixEntry {
                sums: a.sum_sq,
                counts: vec![a.count as f32],
                activation_sums: None,
            };
            im.insert(name, entry)?;
        }
        Ok(im)
    }
}

impl MatmulObserver for ImatrixCollector {
    fn observe(&mut self, weight: &str, x: &[f32], n: usize) {
        if n < MIN_ROWS || n == 0 || !self.wants(weight) {
            return;
        }
        let cols = x.len() / n;
        if cols == 0 {
            return;
        }
        let e = self
            .accums
            .entry(weight.to_string())
            .or_insert_with(|| Accum {
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
    let chunk_size = u32::try_from(n_ctx).map_err(|_| InferError::InvalidArgument {
        name: "n_ctx",
        reason: "must fit in 32 bits (imatrix.chunk_size)",
    })?;
    let imatrix = collector.into_imatrix(n_chunks as u32, chunk_size, &opts.dataset)?;
    Ok(ImatrixRun {
        imatrix,
        nll,
        elapsed: start.elapsed(),
    })
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
        assert_eq!(c.len(), 1);
        let im = c.into_imatrix(3, 16, "d.txt").expect("imatrix");
        assert_eq!((im.chunk_count, im.chunk_size), (3, 16));
        assert_eq!(im.datasets, ["d.txt"]);
        let e = im.get("blk.0.attn_q.weight").expect("entry");
        assert_eq!(e.counts, [16.0]);
        for j in 0..3 {
            let want: f32 = (0..16).map(|r| x[r * 3 + j].powi(2)).sum();
            assert_eq!(e.sums[j], want);
        }
        let mut c = ImatrixCollector::new(true);
        c.observe("output.weight", &x, 16);
        assert_eq!(c.len(), 1);
    }
}
