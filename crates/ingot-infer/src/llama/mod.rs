//! The llama-family forward pass (llama, mistral, qwen2) over weights borrowed from a GGUF map.
//!
//! Per block `l`, for a batch of `n` tokens at positions `p0..p0+n` (llama.cpp's
//! `llm_build_llama` / `llm_build_qwen2`):
//!
//! ```text
//! h  = rms_norm(x) ⊙ attn_norm
//! q  = Wq·h (+bq), k = Wk·h (+bk), v = Wv·h (+bv)      one GEMM each (GEMV when n = 1)
//! q, k = rope(q, k)                                     normal pairs (llama) or NEOX (qwen2)
//! cache[l][p0..p0+n] = k, v
//! a  = softmax(q·Kᵀ/√d, causal)·V  per head, KV head = head / (n_head / n_head_kv)
//! x  = x + Wo·a
//! h  = rms_norm(x) ⊙ ffn_norm
//! x  = x + Wdown·(silu(Wgate·h) ⊙ Wup·h)
//! ```
//! then `logits = Wout·(rms_norm(x) ⊙ output_norm)`, where `Wout` is `output.weight` or, when
//! the file has none, the tied `token_embd.weight`. As llama.cpp does, the last block's FFN and
//! the output head run only for the rows whose logits are requested.
//!
//! Matrix weights are [`QMatrix`] views into the file's bytes (never copied); norm vectors are
//! borrowed when they are F32 and suitably aligned. The KV cache stores f32, optionally rounded to
//! f16 precision ([`KvPrecision::F16`], llama.cpp's default cache type). Attention follows
//! llama.cpp's tiled CPU flash attention ([`attention`]); the SIMD builds of it are in `arch`.
//!
//! Threads: a whole forward call runs inside the rayon pool (one hand-over from the calling
//! thread per call), so the many short parallel loops of a pass (one per matmul) fork from a
//! worker and never park the caller; a 1-thread pool then runs everything inline.

mod arch;
pub mod attention;
pub mod config;
pub mod ops;

use std::borrow::Cow;

use half::f16;
use ingot_format::{GgmlType, GgufFile};
use rayon::prelude::*;

pub use config::{Arch, LlamaConfig};
use ops::{RopeStyle, RopeTable};

use ingot_quant::QuantError;

use crate::kernels;
use crate::matmul::{matmul, matmul_multi, MatmulScratch, QMatrix};
use crate::InferError;

/// Largest number of tokens pushed through the layers at once; longer inputs are split.
pub const MAX_UBATCH: usize = 512;

/// Receives the input of every matrix multiplication (used by imatrix collection).
///
/// `Send` because the forward pass runs on a rayon worker thread.
pub trait MatmulObserver: Send {
    /// `x` holds `n` rows of the weight's input columns; `weight` is the GGUF tensor name.
    fn observe(&mut self, weight: &str, x: &[f32], n: usize);
}

/// The observer used when the caller gives none.
struct NoObserver;

impl MatmulObserver for NoObserver {
    fn observe(&mut self, _: &str, _: &[f32], _: usize) {}
}

/// Precision of cached keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvPrecision {
    /// Round K and V to f16 as llama.cpp's default F16 cache does (matches its logits best).
    #[default]
    F16,
    /// Keep full f32 (matches a float reference implementation best).
    F32,
}

/// A token embedding table: one row of `n_embd` elements per token, in any supported type.
#[derive(Debug, Clone, Copy)]
struct Embedding<'a> {
    ty: GgmlType,
    row_bytes: usize,
    data: &'a [u8],
    /// The same table as a matmul operand, when the kernels support its type: used for rows
    /// of types ingot-quant's dispatch does not dequantize.
    mat: Option<QMatrix<'a>>,
}

struct Layer<'a> {
    attn_norm: Cow<'a, [f32]>,
    ffn_norm: Cow<'a, [f32]>,
    wq: Mat<'a>,
    wk: Mat<'a>,
    wv: Mat<'a>,
    wo: Mat<'a>,
    bq: Option<Cow<'a, [f32]>>,
    bk: Option<Cow<'a, [f32]>>,
    bv: Option<Cow<'a, [f32]>>,
    w_gate: Mat<'a>,
    w_up: Mat<'a>,
    w_down: Mat<'a>,
}

/// A weight matrix with the name the imatrix records it under.
struct Mat<'a> {
    name: String,
    m: QMatrix<'a>,
}

/// A llama-family model whose weights borrow from a [`GgufFile`].
pub struct LlamaModel<'a> {
    config: LlamaConfig,
    embd: Embedding<'a>,
    layers: Vec<Layer<'a>>,
    output_norm: Cow<'a, [f32]>,
    output: Mat<'a>,
    rope_freqs: Option<Cow<'a, [f32]>>,
}

fn shape_matches(shape: &[u64], want: &[usize]) -> bool {
    // GGUF shapes may carry trailing 1s; compare the significant dimensions.
    let trimmed: Vec<u64> = {
        let mut s = shape.to_vec();
        while s.len() > want.len() && s.last() == Some(&1) {
            s.pop();
        }
        s
    };
    trimmed.len() == want.len() && trimmed.iter().zip(want).all(|(&a, &b)| a == b as u64)
}

fn check_shape(name: &str, shape: &[u64], want: &[usize]) -> Result<(), InferError> {
    if shape_matches(shape, want) {
        Ok(())
    } else {
        Err(InferError::TensorShape {
            name: name.to_string(),
            expected: want.iter().map(|&d| d as u64).collect(),
            found: shape.to_vec(),
        })
    }
}

fn vector<'a>(file: &'a GgufFile, name: &str, len: usize) -> Result<Cow<'a, [f32]>, InferError> {
    let t = file.tensor(name).ok_or_else(|| InferError::MissingTensor {
        name: name.to_string(),
    })?;
    check_shape(name, t.shape(), &[len])?;
    let bytes = t.bytes();
    if t.ggml_type() == GgmlType::F32 {
        if let Ok(v) = bytemuck::try_cast_slice::<u8, f32>(bytes) {
            return Ok(Cow::Borrowed(v));
        }
    }
    let mut out = vec![0.0f32; len];
    ingot_quant::dequantize_row(t.ggml_type(), bytes, &mut out).map_err(|source| {
        InferError::Dequantize {
            name: name.to_string(),
            source,
        }
    })?;
    Ok(Cow::Owned(out))
}

fn optional_vector<'a>(
    file: &'a GgufFile,
    name: &str,
    len: usize,
) -> Result<Option<Cow<'a, [f32]>>, InferError> {
    if file.tensor(name).is_none() {
        return Ok(None);
    }
    vector(file, name, len).map(Some)
}

fn matrix<'a>(
    file: &'a GgufFile,
    name: &str,
    rows: usize,
    cols: usize,
) -> Result<Mat<'a>, InferError> {
    let t = file.tensor(name).ok_or_else(|| InferError::MissingTensor {
        name: name.to_string(),
    })?;
    check_shape(name, t.shape(), &[cols, rows])?;
    let m = QMatrix::new(t.ggml_type(), rows, cols, t.bytes())?;
    Ok(Mat {
        name: name.to_string(),
        m,
    })
}

impl<'a> LlamaModel<'a> {
    /// Builds the model from a GGUF file: reads the configuration and finds every tensor,
    /// checking its shape. Nothing is copied except small non-F32 vectors.
    pub fn from_gguf(file: &'a GgufFile) -> Result<Self, InferError> {
        let config = LlamaConfig::from_gguf(file)?;
        let c = &config;
        let embd_t = file
            .tensor("token_embd.weight")
            .ok_or_else(|| InferError::MissingTensor {
                name: "token_embd.weight".to_string(),
            })?;
        check_shape("token_embd.weight", embd_t.shape(), &[c.n_embd, c.n_vocab])?;
        let embd_ty = embd_t.ggml_type();
        let row_bytes = embd_ty
            .row_bytes(c.n_embd as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(InferError::InvalidConfig {
                key: "token_embd.weight".to_string(),
                reason: "row size is not a whole number of blocks",
            })?;
        let mat = QMatrix::new(embd_ty, c.n_vocab, c.n_embd, embd_t.bytes()).ok();
        let embd = Embedding {
            ty: embd_ty,
            row_bytes,
            data: embd_t.bytes(),
            mat,
        };

        let mut layers = Vec::with_capacity(c.n_layer);
        for l in 0..c.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}");
            layers.push(Layer {
                attn_norm: vector(file, &n("attn_norm.weight"), c.n_embd)?,
                ffn_norm: vector(file, &n("ffn_norm.weight"), c.n_embd)?,
                wq: matrix(file, &n("attn_q.weight"), c.q_dim(), c.n_embd)?,
                wk: matrix(file, &n("attn_k.weight"), c.kv_dim(), c.n_embd)?,
                wv: matrix(file, &n("attn_v.weight"), c.kv_dim(), c.n_embd)?,
                wo: matrix(file, &n("attn_output.weight"), c.n_embd, c.q_dim())?,
                bq: optional_vector(file, &n("attn_q.bias"), c.q_dim())?,
                bk: optional_vector(file, &n("attn_k.bias"), c.kv_dim())?,
                bv: optional_vector(file, &n("attn_v.bias"), c.kv_dim())?,
                w_gate: matrix(file, &n("ffn_gate.weight"), c.n_ff, c.n_embd)?,
                w_up: matrix(file, &n("ffn_up.weight"), c.n_ff, c.n_embd)?,
                w_down: matrix(file, &n("ffn_down.weight"), c.n_embd, c.n_ff)?,
            });
        }
        let output_norm = vector(file, "output_norm.weight", c.n_embd)?;
        let output_name = if file.tensor("output.weight").is_some() {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        let output = matrix(file, output_name, c.n_vocab, c.n_embd)?;
        let rope_freqs = optional_vector(file, "rope_freqs.weight", c.n_rot / 2)?;
        Ok(Self {
            config,
            embd,
            layers,
            output_norm,
            output,
            rope_freqs,
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// A fresh, empty cache for up to `n_ctx` positions.
    pub fn new_cache(&self, n_ctx: usize, precision: KvPrecision) -> KvCache {
        KvCache::new(&self.config, n_ctx, precision)
    }

    /// Runs `tokens` at the cache's next positions and returns the logits of rows
    /// `output_from..tokens.len()` (`n_vocab` each, row-major).
    ///
    /// The batch goes through the layers in pieces of at most [`MAX_UBATCH`] tokens; every
    /// matrix multiplication's input is shown to `observer` when one is given.
    pub fn forward(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        output_from: usize,
        observer: Option<&mut dyn MatmulObserver>,
    ) -> Result<Vec<f32>, InferError> {
        let mut logits = Vec::new();
        self.forward_into(cache, tokens, output_from, observer, &mut logits)?;
        Ok(logits)
    }

    /// [`LlamaModel::forward`] writing the logits into `logits` (cleared first), so a caller
    /// that decodes many batches reuses one buffer (perplexity: 256 rows × 49,152 logits per
    /// window for SmolLM2, 48 MiB). Only rows `output_from..` are computed through the last
    /// layer's FFN and the output head: ask for the rows you need (the last one for
    /// generation, the scored half of a window for perplexity).
    pub fn forward_into(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        output_from: usize,
        observer: Option<&mut dyn MatmulObserver>,
        logits: &mut Vec<f32>,
    ) -> Result<(), InferError> {
        logits.clear();
        // Run the whole pass on a pool thread: see the module docs.
        rayon::scope(|_| self.forward_in_pool(cache, tokens, output_from, observer, logits))
    }

    fn forward_in_pool(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        output_from: usize,
        observer: Option<&mut dyn MatmulObserver>,
        logits: &mut Vec<f32>,
    ) -> Result<(), InferError> {
        let mut none = NoObserver;
        let observer: &mut dyn MatmulObserver = match observer {
            Some(o) => o,
            None => &mut none,
        };
        let n = tokens.len();
        if output_from > n {
            return Err(InferError::InvalidArgument {
                name: "output_from",
                reason: "exceeds the number of tokens",
            });
        }
        if cache.len + n > cache.capacity {
            return Err(InferError::ContextFull {
                needed: cache.len + n,
                capacity: cache.capacity,
            });
        }
        for &t in tokens {
            if t as usize >= self.config.n_vocab {
                return Err(InferError::TokenOutOfRange {
                    token: t,
                    n_vocab: self.config.n_vocab,
                });
            }
        }
        let mut start = 0;
        while start < n {
            let end = (start + MAX_UBATCH).min(n);
            let from = output_from.clamp(start, end) - start;
            self.forward_ubatch(cache, &tokens[start..end], from, &mut *observer, logits)?;
            start = end;
        }
        Ok(())
    }

    fn embed(&self, tokens: &[u32], x: &mut [f32]) -> Result<(), InferError> {
        let d = self.config.n_embd;
        for (&t, row) in tokens.iter().zip(x.chunks_exact_mut(d)) {
            let off = t as usize * self.embd.row_bytes;
            let bytes = self.embd.data.get(off..off + self.embd.row_bytes).ok_or(
                InferError::TokenOutOfRange {
                    token: t,
                    n_vocab: self.config.n_vocab,
                },
            )?;
            match (
                ingot_quant::dequantize_row(self.embd.ty, bytes, row),
                &self.embd.mat,
            ) {
                (Ok(()), _) => {}
                (Err(QuantError::Unsupported { .. }), Some(m)) => {
                    m.dequantize_row(kernels::try_kernels()?, t as usize, row)
                }
                (Err(source), _) => {
                    return Err(InferError::Dequantize {
                        name: "token_embd.weight".to_string(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn forward_ubatch(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        output_from: usize,
        observer: &mut dyn MatmulObserver,
        logits: &mut Vec<f32>,
    ) -> Result<(), InferError> {
        let c = &self.config;
        let (d, qd, kvd, hd, ff) = (c.n_embd, c.q_dim(), c.kv_dim(), c.head_dim, c.n_ff);
        let n = tokens.len();
        let p0 = cache.len;
        let round = cache.precision == KvPrecision::F16;

        let KvCache {
            kv, scratch, bufs, ..
        } = cache;
        // Every buffer is fully written before it is read.
        let [x, h, q, k, v, att, o, gate, up] = bufs.take([
            n * d,
            n * d,
            n * qd,
            n * kvd,
            n * kvd,
            n * qd,
            n * d,
            n * ff,
            n * ff,
        ]);
        self.embed(tokens, x)?;
        let rope = RopeTable::new(
            p0..p0 + n,
            c.n_rot,
            c.rope_base,
            c.rope_freq_scale,
            self.rope_freqs.as_deref(),
        );
        let style: RopeStyle = c.arch.rope_style();
        let scale = 1.0 / (hd as f32).sqrt();
        let level = kernels::try_kernels()?.level;
        let group = c.n_head / c.n_head_kv;

        let mut n_cur = n;
        for (l, layer) in self.layers.iter().enumerate() {
            ops::rms_norm(
                &x[..n_cur * d],
                &layer.attn_norm,
                c.rms_eps,
                &mut h[..n_cur * d],
            );
            // One call for the three: the activations are quantized once.
            run(
                [&layer.wq, &layer.wk, &layer.wv],
                h,
                n,
                [&mut *q, &mut *k, &mut *v],
                observer,
                scratch,
            )?;
            if let Some(b) = &layer.bq {
                ops::add_bias(q, b);
            }
            if let Some(b) = &layer.bk {
                ops::add_bias(k, b);
            }
            if let Some(b) = &layer.bv {
                ops::add_bias(v, b);
            }
            arch::rope(level, &rope, q, hd, style);
            arch::rope(level, &rope, k, hd, style);
            if round {
                // The F16 cache stores rounded keys and values; the tiled flash attention
                // keeps the query in f32.
                round_f16(k);
                round_f16(v);
            }
            kv.store(l, p0, k, v);
            let (kc, vc) = (&kv.k[l], &kv.v[l]);
            let (kstride, vstride) = (kv.k_head_len(), kv.v_head_len());
            // One task per (token, KV head): the `group` query heads sharing that KV head are
            // adjacent rows of `q` and `att`.
            att.par_chunks_mut(group * hd)
                .enumerate()
                .for_each(|(i, out)| {
                    let (t, kvh) = (i / c.n_head_kv, i % c.n_head_kv);
                    let kv_len = p0 + t + 1;
                    let kh = &kc[kvh * kstride..(kvh + 1) * kstride];
                    let vh = &vc[kvh * vstride..(kvh + 1) * vstride];
                    let q_rows = &q[t * qd + kvh * group * hd..t * qd + (kvh + 1) * group * hd];
                    arch::attend(level, q_rows, kh, vh, hd, kv_len, scale, out);
                });
            run([&layer.wo], att, n, [&mut *o], observer, scratch)?;
            if l + 1 == self.layers.len() && output_from > 0 {
                // Only the requested rows continue through the last FFN and the head.
                x.copy_within(output_from * d..n * d, 0);
                o.copy_within(output_from * d..n * d, 0);
                n_cur = n - output_from;
            }
            let nd = n_cur * d;
            ops::add_in_place(&mut x[..nd], &o[..nd]);
            ops::rms_norm(&x[..nd], &layer.ffn_norm, c.rms_eps, &mut h[..nd]);
            run(
                [&layer.w_gate, &layer.w_up],
                &h[..nd],
                n_cur,
                [&mut gate[..n_cur * ff], &mut up[..n_cur * ff]],
                observer,
                scratch,
            )?;
            gate[..n_cur * ff]
                .par_chunks_mut(ff)
                .zip(up[..n_cur * ff].par_chunks(ff))
                .for_each(|(g, u)| arch::swiglu(level, g, u));
            run(
                [&layer.w_down],
                &gate[..n_cur * ff],
                n_cur,
                [&mut o[..nd]],
                observer,
                scratch,
            )?;
            ops::add_in_place(&mut x[..nd], &o[..nd]);
        }
        cache.len += n;

        // `n_cur` rows remain; the requested ones are the last `n - output_from` of them.
        let n_out = n - output_from;
        if n_out == 0 {
            return Ok(());
        }
        let first = n_cur - n_out;
        let xs = &x[first * d..n_cur * d];
        ops::rms_norm(xs, &self.output_norm, c.rms_eps, &mut h[..n_out * d]);
        let start = logits.len();
        logits.resize(start + n_out * c.n_vocab, 0.0);
        observer.observe(&self.output.name, &h[..n_out * d], n_out);
        // In slices of rows, bounding the matmul's scratch for large vocabularies (256 rows: a
        // whole scored half-window of perplexity at once, so the weights are repacked once).
        const HEAD_ROWS: usize = 256;
        for (xs, ys) in h[..n_out * d]
            .chunks(HEAD_ROWS * d)
            .zip(logits[start..].chunks_mut(HEAD_ROWS * c.n_vocab))
        {
            matmul(&self.output.m, xs, xs.len() / d, ys, scratch)?;
        }
        Ok(())
    }
}

/// `ys[i] = ws[i]·input` for `rows_n` rows of input, each output exactly `rows_n × rows`;
/// the input is shown to `obs` once per weight. Matrices sharing an input go through one
/// [`matmul_multi`] call, which quantizes the activations once.
fn run<const N: usize>(
    ws: [&Mat<'_>; N],
    input: &[f32],
    rows_n: usize,
    mut ys: [&mut [f32]; N],
    obs: &mut dyn MatmulObserver,
    scratch: &mut MatmulScratch,
) -> Result<(), InferError> {
    for w in ws {
        obs.observe(&w.name, input, rows_n);
    }
    matmul_multi(&ws.map(|w| w.m), input, rows_n, &mut ys, scratch)
}

fn round_f16(x: &mut [f32]) {
    for v in x {
        *v = f16::from_f32(*v).to_f32();
    }
}

/// Keys and values of every past position, per layer: keys `[kv_head][tile][head_dim][64]`
/// (tile-transposed, see [`attention`]), values `[kv_head][position][head_dim]`, so one head's
/// history is contiguous; plus the matmul scratch reused across calls.
pub struct KvCache {
    kv: KvData,
    len: usize,
    capacity: usize,
    precision: KvPrecision,
    scratch: MatmulScratch,
    bufs: Buffers,
}

/// The activations of a forward pass, kept across calls so the token loop allocates nothing
/// once they have grown to the largest batch.
#[derive(Default)]
struct Buffers {
    v: [Vec<f32>; 9],
}

impl Buffers {
    /// The nine buffers, resized to `lens` (contents unspecified).
    fn take(&mut self, lens: [usize; 9]) -> [&mut [f32]; 9] {
        for (b, &len) in self.v.iter_mut().zip(&lens) {
            b.resize(len, 0.0);
        }
        self.v.each_mut().map(|b| b.as_mut_slice())
    }
}

struct KvData {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    capacity: usize,
    n_head_kv: usize,
    head_dim: usize,
}

impl KvCache {
    fn new(c: &LlamaConfig, capacity: usize, precision: KvPrecision) -> Self {
        let tiles = capacity.div_ceil(attention::KV_TILE);
        let k_len = c.n_head_kv * tiles * attention::KV_TILE * c.head_dim;
        let v_len = c.n_head_kv * capacity * c.head_dim;
        Self {
            kv: KvData {
                k: (0..c.n_layer).map(|_| vec![0.0; k_len]).collect(),
                v: (0..c.n_layer).map(|_| vec![0.0; v_len]).collect(),
                capacity,
                n_head_kv: c.n_head_kv,
                head_dim: c.head_dim,
            },
            len: 0,
            capacity,
            precision,
            scratch: MatmulScratch::default(),
            bufs: Buffers::default(),
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every cached position (the next token is at position 0 again).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes held by the cached keys and values.
    pub fn bytes(&self) -> usize {
        self.kv.k.len()
            * (self.kv.k_head_len() + self.kv.v_head_len())
            * self.kv.n_head_kv
            * std::mem::size_of::<f32>()
    }
}

impl KvData {
    /// Elements of one KV head's keys (whole tiles).
    fn k_head_len(&self) -> usize {
        self.capacity.div_ceil(attention::KV_TILE) * attention::KV_TILE * self.head_dim
    }

    /// Elements of one KV head's values.
    fn v_head_len(&self) -> usize {
        self.capacity * self.head_dim
    }

    fn store(&mut self, layer: usize, p0: usize, k: &[f32], v: &[f32]) {
        let hd = self.head_dim;
        let kvd = self.n_head_kv * hd;
        let (kstride, vstride) = (self.k_head_len(), self.v_head_len());
        for (t, (kr, vr)) in k.chunks_exact(kvd).zip(v.chunks_exact(kvd)).enumerate() {
            for h in 0..self.n_head_kv {
                let kh = &mut self.k[layer][h * kstride..(h + 1) * kstride];
                attention::store_key(kh, hd, p0 + t, &kr[h * hd..(h + 1) * hd]);
                let dst = h * vstride + (p0 + t) * hd;
                self.v[layer][dst..dst + hd].copy_from_slice(&vr[h * hd..(h + 1) * hd]);
            }
        }
    }
}
