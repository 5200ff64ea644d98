//! The element-wise and attention operations of the llama forward pass, in plain f32.
//!
//! Each function follows the arithmetic ggml's CPU backend uses for the same operation so that
//! our logits land close to llama.cpp's:
//! - RMSNorm (`ggml_compute_forward_rms_norm_f32`): the sum of squares is accumulated in f64,
//!   `scale = 1 / sqrt(mean + eps)` in f32, then each element is multiplied by the scale and by
//!   the norm weight.
//! - RoPE (`ggml_rope_cache_init` / `rope_yarn` with no YaRN extension): for rotation pair `i`
//!   (`0 ≤ i < n_rot/2`) the angle is `pos · base^(-2i/n_rot) / freq_factor[i]`, the inverse
//!   frequencies being built by repeated f32 multiplication by `base^(-2/n_rot)`. "Normal" rope
//!   (LLAMA_ROPE_TYPE_NORM, llama/mistral) rotates adjacent pairs `(x[2i], x[2i+1])`; NEOX rope
//!   (qwen2) rotates `(x[i], x[i + n_rot/2])`. Dimensions past `n_rot` are left alone.
//! - SiLU: `x / (1 + e^-x)`.
//! - Attention: `softmax(q·kᵀ / sqrt(head_dim))·v` over the cached positions `0..=pos`
//!   (causal), with the softmax maximum subtracted first.

use crate::kernels::Dot;

/// Which elements RoPE rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(x[2i], x[2i+1])`: llama.cpp's LLAMA_ROPE_TYPE_NORM, used for GGUF
    /// llama/mistral whose Q/K rows the converter permuted into this order.
    Normal,
    /// Halves `(x[i], x[i + n_rot/2])`: LLAMA_ROPE_TYPE_NEOX, used for qwen2.
    Neox,
}

/// RMSNorm of every row of `x` (rows of `weight.len()` elements) into `out`.
///
/// # Panics
/// If `x.len() != out.len()` or `x.len()` is not a multiple of `weight.len()` (caller bug).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    assert_eq!(
        x.len(),
        out.len(),
        "rms_norm: input and output lengths differ"
    );
    assert_eq!(x.len() % d, 0, "rms_norm: input is not whole rows");
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let sum: f64 = xr.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let mean = (sum / d as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &w) in or.iter_mut().zip(xr).zip(weight) {
            *o = (v * scale) * w;
        }
    }
}

/// Precomputed rotary angles for a set of positions: `cos`/`sin` tables of `n_rot/2` entries
/// per position.
#[derive(Debug, Clone)]
pub struct RopeTable {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// Angles for `positions`, with `n_rot` rotated dimensions, frequency base `base`, linear
    /// frequency scale `freq_scale` (1.0 = none) and optional per-pair frequency divisors
    /// (llama 3's `rope_freqs.weight`, `n_rot/2` entries).
    pub fn new(
        positions: impl IntoIterator<Item = usize>,
        n_rot: usize,
        base: f32,
        freq_scale: f32,
        freq_factors: Option<&[f32]>,
    ) -> Self {
        let half = n_rot / 2;
        let theta_scale = base.powf(-2.0 / n_rot as f32);
        let mut cos = Vec::new();
        let mut sin = Vec::new();
        for pos in positions {
            let mut theta = pos as f32;
            for i in 0..half {
                let ff = freq_factors.map_or(1.0, |f| f[i]);
                let angle = freq_scale * (theta / ff);
                cos.push(angle.cos());
                sin.push(angle.sin());
                theta *= theta_scale;
            }
        }
        Self { half, cos, sin }
    }

    /// Rotates `x`: `n_pos` rows (one per position, in table order), each made of heads of
    /// `head_dim` elements, in the given pairing style.
    ///
    /// # Panics
    /// If `x` is not `positions × heads × head_dim` for this table (caller bug).
    pub fn apply(&self, x: &mut [f32], head_dim: usize, style: RopeStyle) {
        let Some(n_pos) = self.cos.len().checked_div(self.half).filter(|&n| n > 0) else {
            return;
        };
        assert!(2 * self.half <= head_dim, "rope: n_rot exceeds head_dim");
        assert_eq!(x.len() % (n_pos.max(1) * head_dim), 0, "rope: bad shape");
        let row_len = x.len() / n_pos;
        for (p, row) in x.chunks_exact_mut(row_len).enumerate() {
            let cos = &self.cos[p * self.half..(p + 1) * self.half];
            let sin = &self.sin[p * self.half..(p + 1) * self.half];
            for head in row.chunks_exact_mut(head_dim) {
                for i in 0..self.half {
                    let (a, b) = match style {
                        RopeStyle::Normal => (2 * i, 2 * i + 1),
                        RopeStyle::Neox => (i, i + self.half),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * cos[i] - x1 * sin[i];
                    head[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }
}

/// `gate[i] = silu(gate[i]) * up[i]`, the SwiGLU combination.
pub fn swiglu_in_place(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = x / (1.0 + (-x).exp()) * u;
    }
}

/// Adds `b` to every row of `x` (rows of `b.len()`).
pub fn add_bias(x: &mut [f32], b: &[f32]) {
    for row in x.chunks_exact_mut(b.len()) {
        for (v, &bb) in row.iter_mut().zip(b) {
            *v += bb;
        }
    }
}

/// `x[i] += y[i]`.
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Dot product with eight independent accumulators, so the compiler vectorises it.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = 0.0;
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + s
}

/// `y += a · x`.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (v, &xv) in y.iter_mut().zip(x) {
        *v += a * xv;
    }
}

/// Causal attention of one query head over `n_kv` cached positions.
///
/// `k` and `v` hold `n_kv` rows of `q.len()` elements for this head's KV group; `scores` is
/// scratch of at least `n_kv` elements; the result is written to `out` (`q.len()` elements).
pub fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_kv: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let d = q.len();
    let scores = &mut scores[..n_kv];
    let mut max = f32::NEG_INFINITY;
    for (j, s) in scores.iter_mut().enumerate() {
        *s = dot(q, &k[j * d..(j + 1) * d]) * scale;
        max = max.max(*s);
    }
    let mut sum = 0.0f64;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += f64::from(*s);
    }
    let inv = (1.0 / sum) as f32;
    out.fill(0.0);
    for (j, &s) in scores.iter().enumerate() {
        axpy(out, s * inv, &v[j * d..(j + 1) * d]);
    }
}

/// Causal attention of up to four query heads that share one KV head, over `n_kv` cached
/// positions: each cached key is loaded once for all heads (one `dot_x4`), each cached value
/// once for all heads. `qs` holds 1..=4 query vectors of `head_dim` elements, `outs` the
/// matching output slices; `scores` is scratch of at least `4 × n_kv`.
///
/// # Panics
/// If `qs` is empty or longer than 4, or the slices are shorter than described (caller bug).
#[allow(clippy::too_many_arguments)]
pub fn attend_group(
    dot: &Dot<f32, f32>,
    qs: &[&[f32]],
    k: &[f32],
    v: &[f32],
    n_kv: usize,
    scale: f32,
    scores: &mut [f32],
    outs: &mut [&mut [f32]],
) {
    let g = qs.len();
    assert!(
        (1..=4).contains(&g) && outs.len() == g,
        "attend_group: 1 to 4 heads"
    );
    let d = qs[0].len();
    let q4 = [
        qs[0],
        qs[(1).min(g - 1)],
        qs[(2).min(g - 1)],
        qs[(3).min(g - 1)],
    ];
    let (scores, _) = scores.split_at_mut(4 * n_kv);
    let mut max = [f32::NEG_INFINITY; 4];
    for j in 0..n_kv {
        let s = dot.dot_x4(&k[j * d..(j + 1) * d], q4);
        for h in 0..4 {
            let v = s[h] * scale;
            scores[h * n_kv + j] = v;
            max[h] = max[h].max(v);
        }
    }
    let mut inv = [0.0f32; 4];
    for h in 0..g {
        let row = &mut scores[h * n_kv..(h + 1) * n_kv];
        let mut sum = 0.0f64;
        for s in row.iter_mut() {
            *s = (*s - max[h]).exp();
            sum += f64::from(*s);
        }
        inv[h] = (1.0 / sum) as f32;
    }
    for o in outs.iter_mut() {
        o.fill(0.0);
    }
    for j in 0..n_kv {
        let vj = &v[j * d..(j + 1) * d];
        for (h, o) in outs.iter_mut().enumerate() {
            axpy(o, scores[h * n_kv + j] * inv[h], vj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_definition() {
        let x = [1.0f32, -2.0, 3.0, 4.0, 0.5, 0.25, -0.125, 8.0];
        let w = [1.0f32, 2.0, 0.5, -1.0];
        let mut out = [0.0f32; 8];
        rms_norm(&x, &w, 1e-5, &mut out);
        for r in 0..2 {
            let row = &x[r * 4..r * 4 + 4];
            let ms: f64 = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / 4.0;
            let s = 1.0 / (ms + 1e-5).sqrt();
            for c in 0..4 {
                let want = f64::from(row[c]) * s * f64::from(w[c]);
                assert!((f64::from(out[r * 4 + c]) - want).abs() < 1e-5, "r{r} c{c}");
            }
        }
    }

    #[test]
    fn rope_position_zero_is_identity_and_norm_preserving() {
        let mut x: Vec<f32> = (0..16).map(|i| i as f32 * 0.3 - 2.0).collect();
        let orig = x.clone();
        let t = RopeTable::new([0usize], 8, 10000.0, 1.0, None);
        t.apply(&mut x, 8, RopeStyle::Normal);
        assert_eq!(x, orig);
        let t = RopeTable::new([7usize], 8, 10000.0, 1.0, None);
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let mut y = orig.clone();
            t.apply(&mut y, 8, style);
            assert_ne!(y, orig);
            let n0: f32 = orig.iter().map(|v| v * v).sum();
            let n1: f32 = y.iter().map(|v| v * v).sum();
            assert!(
                (n0 - n1).abs() < 1e-3,
                "{style:?}: rotation changed the norm"
            );
        }
    }

    #[test]
    fn rope_pairs_follow_style() {
        // One head of 4 dims; position 1; base chosen so pair 0 has angle 1 rad, pair 1 0.01.
        let t = RopeTable::new([1usize], 4, 10000.0, 1.0, None);
        let (c0, s0) = (1.0f32.cos(), 1.0f32.sin());
        let (c1, s1) = (0.01f32.cos(), 0.01f32.sin());
        let mut x = vec![1.0f32, 2.0, 3.0, 4.0];
        t.apply(&mut x, 4, RopeStyle::Normal);
        let want = [
            1.0 * c0 - 2.0 * s0,
            1.0 * s0 + 2.0 * c0,
            3.0 * c1 - 4.0 * s1,
            3.0 * s1 + 4.0 * c1,
        ];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-5);
        }
        let mut x = vec![1.0f32, 2.0, 3.0, 4.0];
        t.apply(&mut x, 4, RopeStyle::Neox);
        let want = [
            1.0 * c0 - 3.0 * s0,
            2.0 * c1 - 4.0 * s1,
            1.0 * s0 + 3.0 * c0,
            2.0 * s1 + 4.0 * c1,
        ];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn attention_of_one_position_returns_its_value() {
        let q = [0.3f32, -1.0];
        let k = [5.0f32, 2.0];
        let v = [7.0f32, -3.0];
        let mut s = [0.0; 1];
        let mut out = [0.0; 2];
        attend(&q, &k, &v, 1, 0.7, &mut s, &mut out);
        assert_eq!(out, v);
    }

    #[test]
    fn attention_weights_follow_softmax() {
        let q = [1.0f32, 0.0];
        let k = [1.0f32, 0.0, 2.0, 0.0];
        let v = [1.0f32, 0.0, 0.0, 1.0];
        let mut s = [0.0; 2];
        let mut out = [0.0; 2];
        attend(&q, &k, &v, 2, 1.0, &mut s, &mut out);
        let p1 = 1.0f32.exp() / (1.0f32.exp() + 2.0f32.exp());
        assert!((out[0] - p1).abs() < 1e-6 && (out[1] - (1.0 - p1)).abs() < 1e-6);
    }

    #[test]
    fn grouped_attention_equals_per_head_attention() {
        let k = crate::kernels::kernels();
        let d = 16;
        let n_kv = 7;
        let kc: Vec<f32> = (0..n_kv * d)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.1)
            .collect();
        let vc: Vec<f32> = (0..n_kv * d)
            .map(|i| ((i * 17 % 13) as f32 - 6.0) * 0.2)
            .collect();
        let qs: Vec<Vec<f32>> = (0..3)
            .map(|h| {
                (0..d)
                    .map(|i| ((i + 3 * h) % 5) as f32 * 0.3 - 0.6)
                    .collect()
            })
            .collect();
        let mut outs = vec![vec![0.0f32; d]; 3];
        let mut scores = vec![0.0f32; 4 * n_kv];
        {
            let qrefs: Vec<&[f32]> = qs.iter().map(Vec::as_slice).collect();
            let mut orefs: Vec<&mut [f32]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
            attend_group(
                &k.f32,
                &qrefs,
                &kc,
                &vc,
                n_kv,
                0.25,
                &mut scores,
                &mut orefs,
            );
        }
        for h in 0..3 {
            let mut want = vec![0.0f32; d];
            let mut s = vec![0.0f32; n_kv];
            attend(&qs[h], &kc, &vc, n_kv, 0.25, &mut s, &mut want);
            for (a, b) in outs[h].iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "head {h}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn dot_handles_odd_lengths() {
        for n in [0usize, 1, 7, 8, 9, 33] {
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.5).collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a, &b) - want).abs() <= 1e-3 * want.abs().max(1.0),
                "n={n}"
            );
        }
    }

    #[test]
    fn swiglu_matches_definition() {
        let mut g = [0.0f32, 1.0, -2.0];
        swiglu_in_place(&mut g, &[3.0, 2.0, 0.5]);
        let silu = |x: f32| x / (1.0 + (-x).exp());
        assert_eq!(g, [0.0, silu(1.0) * 2.0, silu(-2.0) * 0.5]);
    }
}
