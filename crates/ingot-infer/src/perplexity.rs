//! Perplexity and KL divergence, computed the way `llama-perplexity` does.
//!
//! Method (llama.cpp `tools/perplexity/perplexity.cpp`, function `perplexity`):
//! 1. the whole text is tokenized once (the caller does that);
//! 2. it is cut into `n_chunk = min(--chunks, n_tokens / n_ctx)` non-overlapping windows of
//!    `n_ctx` tokens; each window is evaluated from an empty KV cache, with its first token
//!    replaced by BOS when the vocabulary adds BOS;
//! 3. only the second half of each window is scored: with `first = n_ctx / 2`, the logits at
//!    positions `first ..= n_ctx - 2` predict tokens `first + 1 ..= n_ctx - 1`
//!    (`n_ctx - 1 - first` tokens per window);
//! 4. each scored token contributes `nll = log Σ exp(logit - max) + max - logit[token]`
//!    (sum of exponentials in f64); `PPL = exp(mean nll)` and its standard error is
//!    `PPL · sqrt((mean(nll²) - mean(nll)²) / (count - 1))`.
//!
//! KL divergence uses our own base file (see `formats/kl-divergence.md`): the base run stores
//! every scored position's log-probabilities as f16; a later run reads them back and reports
//! `KL(base ‖ current) = Σ p_base (log p_base - log p_current)` per position, the change of
//! the probability of the correct token (Δp), and how often both runs rank the same token
//! first, with llama.cpp's summary statistics (`kl_divergence` in the same file).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use half::f16;
use rayon::prelude::*;

use crate::llama::{KvPrecision, LlamaModel};
use crate::InferError;

/// Settings of a perplexity run.
#[derive(Debug, Clone)]
pub struct PerplexityOptions {
    /// Window size in tokens (llama.cpp's `-c`).
    pub n_ctx: usize,
    /// At most this many windows (llama.cpp's `--chunks`); `None` = all whole windows.
    pub max_chunks: Option<usize>,
    /// BOS token put in the first position of every window (when the vocabulary adds BOS).
    pub bos: Option<u32>,
    /// KV cache precision.
    pub kv_precision: KvPrecision,
}

impl Default for PerplexityOptions {
    fn default() -> Self {
        Self {
            n_ctx: 512,
            max_chunks: None,
            bos: None,
            kv_precision: KvPrecision::F16,
        }
    }
}

/// Running negative log-likelihood sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NllStats {
    /// Σ nll.
    pub sum: f64,
    /// Σ nll².
    pub sum_sq: f64,
    /// Number of scored tokens.
    pub count: usize,
}

impl NllStats {
    /// Adds one token's negative log-likelihood.
    pub fn push(&mut self, nll: f64) {
        self.sum += nll;
        self.sum_sq += nll * nll;
        self.count += 1;
    }

    /// Merges another partial sum.
    pub fn merge(&mut self, other: &NllStats) {
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.count += other.count;
    }

    /// `exp(mean nll)`.
    pub fn ppl(&self) -> f64 {
        (self.sum / self.count as f64).exp()
    }

    /// Standard error of the PPL estimate, as llama.cpp prints it after `+/-`
    /// (`PPL · sqrt(var(nll) / (count - 1))`); 0 when it cannot be estimated.
    pub fn ppl_error(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        let var = self.sum_sq / n - mean * mean;
        if var > 0.0 {
            (var / (n - 1.0)).sqrt() * self.ppl()
        } else {
            0.0
        }
    }
}

/// `log Σ_i exp(logits[i])` computed as llama.cpp does (max subtracted, sum in f64), and the
/// index of the largest logit.
pub fn log_sum_exp(logits: &[f32]) -> (f64, usize) {
    let mut max = f32::NEG_INFINITY;
    let mut imax = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > max {
            max = v;
            imax = i;
        }
    }
    let sum: f64 = logits.iter().map(|&v| f64::from((v - max).exp())).sum();
    (f64::from(max) + sum.ln(), imax)
}

/// Negative log-likelihood of `token` under `logits`.
pub fn nll(logits: &[f32], token: usize) -> f64 {
    let (lse, _) = log_sum_exp(logits);
    lse - f64::from(logits[token])
}

/// Progress after each window.
#[derive(Debug, Clone, Copy)]
pub struct ChunkReport {
    /// Windows done.
    pub chunk: usize,
    /// Windows in the run.
    pub n_chunks: usize,
    /// PPL so far.
    pub ppl: f64,
    /// Its standard error.
    pub ppl_error: f64,
    /// Wall time so far.
    pub elapsed: Duration,
}

/// What to do about KL divergence during a run.
pub enum KlMode<'w> {
    /// Nothing.
    None,
    /// Save this run's log-probabilities as the base.
    SaveBase(&'w mut dyn Write),
    /// Compare against a base saved earlier.
    Compare(&'w mut dyn Read),
}

/// Result of a perplexity run.
#[derive(Debug, Clone)]
pub struct PerplexityResult {
    /// Windows evaluated.
    pub n_chunks: usize,
    /// NLL sums over every scored token.
    pub nll: NllStats,
    /// Tokens evaluated (windows × n_ctx).
    pub n_tokens_evaluated: usize,
    /// Wall time of the evaluation.
    pub elapsed: Duration,
    /// KL statistics when compared against a base.
    pub kl: Option<KlStats>,
}

impl PerplexityResult {
    /// Final PPL.
    pub fn ppl(&self) -> f64 {
        self.nll.ppl()
    }

    /// Tokens evaluated per second.
    pub fn tokens_per_second(&self) -> f64 {
        self.n_tokens_evaluated as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

const KL_MAGIC: &[u8; 8] = b"INGOTKLD";
const KL_VERSION: u32 = 1;

/// Runs llama.cpp's perplexity over `tokens`, calling `on_chunk` after each window.
pub fn perplexity(
    model: &LlamaModel<'_>,
    tokens: &[u32],
    opts: &PerplexityOptions,
    mut kl: KlMode<'_>,
    mut on_chunk: impl FnMut(&ChunkReport),
) -> Result<PerplexityResult, InferError> {
    let n_ctx = opts.n_ctx;
    if n_ctx < 4 {
        return Err(InferError::InvalidArgument {
            name: "n_ctx",
            reason: "must be at least 4",
        });
    }
    if tokens.len() < 2 * n_ctx {
        return Err(InferError::NotEnoughTokens {
            have: tokens.len(),
            need: 2 * n_ctx,
        });
    }
    let n_chunk_max = tokens.len() / n_ctx;
    let n_chunks = opts.max_chunks.map_or(n_chunk_max, |c| c.min(n_chunk_max));
    if n_chunks == 0 {
        return Err(InferError::InvalidArgument {
            name: "chunks",
            reason: "must be at least 1",
        });
    }
    let n_vocab = model.config().n_vocab;
    let first = n_ctx / 2;
    let n_scored = n_ctx - 1 - first;

    let mut klacc = None;
    match &mut kl {
        KlMode::None => {}
        KlMode::SaveBase(w) => {
            write_kl_header(
                *w,
                n_vocab,
                n_ctx,
                n_chunks,
                first,
                &tokens[..n_chunks * n_ctx],
            )?;
        }
        KlMode::Compare(r) => {
            read_kl_header(
                *r,
                n_vocab,
                n_ctx,
                n_chunks,
                first,
                &tokens[..n_chunks * n_ctx],
            )?;
            klacc = Some(KlAccumulator::default());
        }
    }

    let mut cache = model.new_cache(n_ctx, opts.kv_precision);
    let mut stats = NllStats::default();
    let start = Instant::now();
    let mut base_buf: Vec<u8> = Vec::new();
    let mut logits = Vec::new();
    for chunk in 0..n_chunks {
        let mut window = tokens[chunk * n_ctx..(chunk + 1) * n_ctx].to_vec();
        if let Some(bos) = opts.bos {
            window[0] = bos;
        }
        cache.clear();
        // Logits for positions first..n_ctx-1; the last one predicts nothing and is dropped.
        model.forward_into(&mut cache, &window, first, None, &mut logits)?;
        let targets = &tokens[chunk * n_ctx + first + 1..(chunk + 1) * n_ctx];
        let rows: Vec<&[f32]> = logits.chunks_exact(n_vocab).take(n_scored).collect();
        let per_pos: Vec<(f64, f64, usize)> = rows
            .par_iter()
            .zip(targets.par_iter())
            .map(|(row, &t)| {
                let (lse, imax) = log_sum_exp(row);
                (lse, lse - f64::from(row[t as usize]), imax)
            })
            .collect();
        for &(_, v, _) in &per_pos {
            stats.push(v);
        }
        match &mut kl {
            KlMode::None => {}
            KlMode::SaveBase(w) => {
                base_buf.clear();
                base_buf.reserve(n_scored * n_vocab * 2);
                for (row, &(lse, _, _)) in rows.iter().zip(&per_pos) {
                    for &v in row.iter() {
                        let lp = (f64::from(v) - lse).max(-65504.0) as f32;
                        base_buf.extend_from_slice(&f16::from_f32(lp).to_le_bytes());
                    }
                }
                w.write_all(&base_buf).map_err(|e| InferError::Io {
                    what: "writing the KL base file",
                    source: e,
                })?;
            }
            KlMode::Compare(r) => {
                base_buf.resize(n_scored * n_vocab * 2, 0);
                r.read_exact(&mut base_buf).map_err(|e| InferError::Io {
                    what: "reading the KL base file",
                    source: e,
                })?;
                let acc = klacc.as_mut().expect("set up with the Compare mode");
                let per: Vec<KlPosition> = rows
                    .par_iter()
                    .zip(per_pos.par_iter())
                    .zip(targets.par_iter())
                    .zip(base_buf.par_chunks_exact(n_vocab * 2))
                    .map(|(((row, &(lse, v, imax)), &t), base)| {
                        kl_position(row, lse, v, imax, t as usize, base)
                    })
                    .collect();
                for p in per {
                    acc.push(p);
                }
            }
        }
        on_chunk(&ChunkReport {
            chunk: chunk + 1,
            n_chunks,
            ppl: stats.ppl(),
            ppl_error: stats.ppl_error(),
            elapsed: start.elapsed(),
        });
    }
    Ok(PerplexityResult {
        n_chunks,
        nll: stats,
        n_tokens_evaluated: n_chunks * n_ctx,
        elapsed: start.elapsed(),
        kl: klacc.map(KlAccumulator::finish),
    })
}

fn io_write(w: &mut dyn Write, b: &[u8]) -> Result<(), InferError> {
    w.write_all(b).map_err(|e| InferError::Io {
        what: "writing the KL base file",
        source: e,
    })
}

fn write_kl_header(
    w: &mut dyn Write,
    n_vocab: usize,
    n_ctx: usize,
    n_chunks: usize,
    first: usize,
    tokens: &[u32],
) -> Result<(), InferError> {
    io_write(w, KL_MAGIC)?;
    for v in [KL_VERSION as usize, n_vocab, n_ctx, n_chunks, first] {
        io_write(w, &(v as u32).to_le_bytes())?;
    }
    let mut buf = Vec::with_capacity(tokens.len() * 4);
    for t in tokens {
        buf.extend_from_slice(&t.to_le_bytes());
    }
    io_write(w, &buf)
}

/// The header of a KL base file: what was evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KlBaseHeader {
    /// Vocabulary size of the base model.
    pub n_vocab: usize,
    /// Window size.
    pub n_ctx: usize,
    /// Windows stored.
    pub n_chunks: usize,
    /// First scored position in each window.
    pub first: usize,
    /// The `n_chunks × n_ctx` evaluated tokens (before BOS substitution).
    pub tokens: Vec<u32>,
}

impl KlBaseHeader {
    /// Reads the header; the reader is left at the first window's log-probabilities.
    pub fn read(r: &mut dyn Read) -> Result<Self, InferError> {
        let rd = |r: &mut dyn Read, buf: &mut [u8]| {
            r.read_exact(buf).map_err(|e| InferError::Io {
                what: "reading the KL base file header",
                source: e,
            })
        };
        let mut magic = [0u8; 8];
        rd(r, &mut magic)?;
        if &magic != KL_MAGIC {
            return Err(InferError::KlBaseMismatch {
                field: "magic",
                expected: u64::from_le_bytes(*KL_MAGIC),
                found: u64::from_le_bytes(magic),
            });
        }
        let mut fields = [0u32; 5];
        for f in fields.iter_mut() {
            let mut b = [0u8; 4];
            rd(r, &mut b)?;
            *f = u32::from_le_bytes(b);
        }
        let [version, n_vocab, n_ctx, n_chunks, first] = fields.map(|v| v as usize);
        if version != KL_VERSION as usize {
            return Err(InferError::KlBaseMismatch {
                field: "version",
                expected: u64::from(KL_VERSION),
                found: version as u64,
            });
        }
        if n_ctx < 4 || first >= n_ctx {
            return Err(InferError::KlBaseMismatch {
                field: "first",
                expected: (n_ctx / 2) as u64,
                found: first as u64,
            });
        }
        // Cap the token table by what a sane file can hold before allocating it.
        let n_tok = n_chunks
            .checked_mul(n_ctx)
            .filter(|&n| n <= 1 << 28)
            .ok_or(InferError::KlBaseMismatch {
                field: "n_chunks",
                expected: ((1usize << 28) / n_ctx) as u64,
                found: n_chunks as u64,
            })?;
        let mut buf = vec![0u8; n_tok * 4];
        rd(r, &mut buf)?;
        let tokens = buf
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self {
            n_vocab,
            n_ctx,
            n_chunks,
            first,
            tokens,
        })
    }
}

fn read_kl_header(
    r: &mut dyn Read,
    n_vocab: usize,
    n_ctx: usize,
    n_chunks: usize,
    first: usize,
    tokens: &[u32],
) -> Result<(), InferError> {
    let h = KlBaseHeader::read(r)?;
    let checks = [
        ("n_vocab", n_vocab as u64, h.n_vocab as u64),
        ("n_ctx", n_ctx as u64, h.n_ctx as u64),
        ("first", first as u64, h.first as u64),
    ];
    for (field, expected, found) in checks {
        if expected != found {
            return Err(InferError::KlBaseMismatch {
                field,
                expected,
                found,
            });
        }
    }
    if h.n_chunks < n_chunks {
        return Err(InferError::KlBaseMismatch {
            field: "n_chunks",
            expected: n_chunks as u64,
            found: h.n_chunks as u64,
        });
    }
    for (i, (&bt, &t)) in h.tokens.iter().zip(tokens).enumerate() {
        if bt != t {
            return Err(InferError::KlBaseTokenMismatch {
                index: i,
                expected: bt,
                found: t,
            });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct KlPosition {
    kl: f64,
    dp: f64,
    same_top: bool,
    nll_base: f64,
    nll: f64,
}

fn kl_position(
    row: &[f32],
    lse: f64,
    nll: f64,
    imax: usize,
    token: usize,
    base: &[u8],
) -> KlPosition {
    let mut kl = 0.0f64;
    let mut imax_base = 0;
    let mut lp_base_max = f64::NEG_INFINITY;
    let mut lp_base_tok = 0.0;
    for (i, (b, &logit)) in base.chunks_exact(2).zip(row).enumerate() {
        let lpb = f64::from(f16::from_le_bytes([b[0], b[1]]).to_f32());
        if lpb > lp_base_max {
            lp_base_max = lpb;
            imax_base = i;
        }
        if i == token {
            lp_base_tok = lpb;
        }
        let lp = f64::from(logit) - lse;
        kl += lpb.exp() * (lpb - lp);
    }
    let nll_base = -lp_base_tok;
    KlPosition {
        kl,
        dp: (-nll).exp() - (-nll_base).exp(),
        same_top: imax == imax_base,
        nll_base,
        nll,
    }
}

#[derive(Default)]
struct KlAccumulator {
    kl: Vec<f64>,
    dp: Vec<f64>,
    same_top: usize,
    base: NllStats,
    cur: NllStats,
    cross: f64,
}

impl KlAccumulator {
    fn push(&mut self, p: KlPosition) {
        self.kl.push(p.kl);
        self.dp.push(p.dp);
        self.same_top += usize::from(p.same_top);
        self.base.push(p.nll_base);
        self.cur.push(p.nll);
        self.cross += p.nll * p.nll_base;
    }

    fn finish(self) -> KlStats {
        let n = self.kl.len() as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
        let err = |v: &[f64]| {
            let m = mean(v);
            let var = v.iter().map(|x| x * x).sum::<f64>() / n - m * m;
            if n > 1.0 && var > 0.0 {
                (var / (n - 1.0)).sqrt()
            } else {
                0.0
            }
        };
        let mut kl_sorted = self.kl.clone();
        kl_sorted.sort_by(f64::total_cmp);
        let mut dp_sorted = self.dp.clone();
        dp_sorted.sort_by(f64::total_cmp);
        let pct = |v: &[f64], p: f64| percentile(v, p);
        // Pearson correlation of the two runs' per-token log-probabilities.
        let (mb, mc) = (self.base.sum / n, self.cur.sum / n);
        let cov = self.cross / n - mb * mc;
        let vb = self.base.sum_sq / n - mb * mb;
        let vc = self.cur.sum_sq / n - mc * mc;
        KlStats {
            count: self.kl.len(),
            mean_kl: mean(&self.kl),
            mean_kl_error: err(&self.kl),
            kl_percentiles: KL_PERCENTILES.map(|p| (p, pct(&kl_sorted, p))),
            max_kl: kl_sorted.last().copied().unwrap_or(0.0),
            mean_dp: mean(&self.dp),
            mean_dp_error: err(&self.dp),
            rms_dp: (self.dp.iter().map(|x| x * x).sum::<f64>() / n).sqrt(),
            dp_percentiles: DP_PERCENTILES.map(|p| (p, pct(&dp_sorted, p))),
            same_top: self.same_top as f64 / n,
            ppl_base: self.base.ppl(),
            ppl: self.cur.ppl(),
            logprob_correlation: if vb > 0.0 && vc > 0.0 {
                cov / (vb * vc).sqrt()
            } else {
                1.0
            },
        }
    }
}

/// KL percentiles reported (llama.cpp's list).
pub const KL_PERCENTILES: [f64; 7] = [99.9, 99.0, 95.0, 90.0, 50.0, 10.0, 5.0];
/// Δp percentiles reported (llama.cpp's list).
pub const DP_PERCENTILES: [f64; 11] = [
    99.9, 99.0, 95.0, 90.0, 75.0, 50.0, 25.0, 10.0, 5.0, 1.0, 0.1,
];

/// Linear-interpolated percentile of sorted values (`p` in 0..=100), llama.cpp's definition.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let x = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = x.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = x - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Summary of a KL-divergence comparison.
#[derive(Debug, Clone)]
pub struct KlStats {
    /// Positions compared.
    pub count: usize,
    /// Mean KL(base ‖ current) in nats.
    pub mean_kl: f64,
    /// Standard error of the mean KL.
    pub mean_kl_error: f64,
    /// (percentile, KL) pairs.
    pub kl_percentiles: [(f64, f64); 7],
    /// Largest KL.
    pub max_kl: f64,
    /// Mean of p_current(correct) − p_base(correct).
    pub mean_dp: f64,
    /// Its standard error.
    pub mean_dp_error: f64,
    /// Root mean square of Δp.
    pub rms_dp: f64,
    /// (percentile, Δp) pairs.
    pub dp_percentiles: [(f64, f64); 11],
    /// Fraction of positions where both runs rank the same token first.
    pub same_top: f64,
    /// PPL of the base run over the compared positions.
    pub ppl_base: f64,
    /// PPL of this run over the same positions.
    pub ppl: f64,
    /// Pearson correlation of the two runs' log-probabilities of the correct token.
    pub logprob_correlation: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppl_and_error_follow_llama_cpp_formula() {
        let vals = [1.0, 2.0, 3.0, 2.5];
        let mut s = NllStats::default();
        for v in vals {
            s.push(v);
        }
        let mean = 8.5 / 4.0;
        assert!((s.ppl() - f64::exp(mean)).abs() < 1e-12);
        let var: f64 = vals.iter().map(|v| v * v).sum::<f64>() / 4.0 - mean * mean;
        assert!((s.ppl_error() - (var / 3.0).sqrt() * f64::exp(mean)).abs() < 1e-12);
    }

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let logits = vec![0.25f32; 1000];
        assert!((nll(&logits, 17) - (1000f64).ln()).abs() < 1e-9);
        let (lse, imax) = log_sum_exp(&[0.0, 3.0, 1.0]);
        assert_eq!(imax, 1);
        assert!((lse - (1.0f64 + 3f64.exp() + 1f64.exp()).ln()).abs() < 1e-6);
    }

    #[test]
    fn percentile_interpolates() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), 2.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert!((percentile(&v, 90.0) - 3.6).abs() < 1e-12);
    }

    #[test]
    fn kl_of_identical_distributions_is_zero() {
        let row = [0.5f32, -1.0, 2.0, 0.0];
        let (lse, imax) = log_sum_exp(&row);
        let base: Vec<u8> = row
            .iter()
            .flat_map(|&v| f16::from_f32((f64::from(v) - lse) as f32).to_le_bytes())
            .collect();
        let p = kl_position(&row, lse, lse - 0.5, imax, 0, &base);
        assert!(p.kl.abs() < 2e-3, "{}", p.kl);
        assert!(p.same_top);
        assert!(p.dp.abs() < 2e-3);
        // A different distribution has positive KL.
        let other = [2.0f32, -1.0, 0.5, 0.0];
        let (lse2, imax2) = log_sum_exp(&other);
        let q = kl_position(&other, lse2, lse2 - 2.0, imax2, 0, &base);
        assert!(q.kl > 0.1);
        assert!(!q.same_top);
    }
}
