//! The element-wise and attention operations of the llama forward pass, in plain f32.
//!
//! Each function follows the arithmetic ggml's CPU backend uses for the same operation so that
//! our logits land close to llama.cpp's:
//! - RMSNorm (`ggml_compute_forward_rms_norm_f32`): the f32 squares are accumulated in f64,
//!   `scale = 1 / sqrt(mean + eps)` in f32, then each element is multiplied by the scale and by
//!   the norm weight.
//! - RoPE (`ggml_rope_cache_init` / `rope_yarn` with no YaRN extension): for rotation pair `i`
//!   (`0 ≤ i < n_rot/2`) the angle is `pos · base^(-2i/n_rot) / freq_factor[i]`, the inverse
//!   frequencies being built by repeated f32 multiplication by `base^(-2/n_rot)`. "Normal" rope
//!   (LLAMA_ROPE_TYPE_NORM, llama/mistral) rotates adjacent pairs `(x[2i], x[2i+1])`; NEOX rope
//!   (qwen2) rotates `(x[i], x[i + n_rot/2])`. Dimensions past `n_rot` are left alone. The
//!   rotation is `fma(x0, cos, -(x1·sin))`, `fma(x0, sin, x1·cos)`: ggml's C source writes
//!   `x0*cos - x1*sin`, and GCC's default `-ffp-contract=fast` fuses the first product (found
//!   by matching llama.cpp's golden logits bit for bit).
//! - SiLU: `x / (1 + e^-x)`.
//!
//! Attention is in [`super::attention`].

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
        // ggml squares in f32 and accumulates the squares in f64, in order.
        let sum: f64 = xr.iter().map(|&v| f64::from(v * v)).sum();
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
    #[inline(always)]
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
                    // ggml's `rotate_pairs` as GCC compiles it (contracting the first product
                    // of each line into a fused multiply-add).
                    head[a] = x0.mul_add(cos[i], -(x1 * sin[i]));
                    head[b] = x0.mul_add(sin[i], x1 * cos[i]);
                }
            }
        }
    }
}

/// [`RopeTable::apply`] as a free function (the body `arch` builds per instruction set).
#[inline(always)]
pub fn rope_apply(table: &RopeTable, x: &mut [f32], head_dim: usize, style: RopeStyle) {
    table.apply(x, head_dim, style);
}

/// `gate[i] = silu(gate[i]) * up[i]`, the SwiGLU combination, as ggml's
/// `ggml_vec_swiglu_f32` computes it on AVX-512 (`ggml_v_silu`): `x / (1 + v_expf(-x)) · up`
/// with the vectorised exponential [`super::attention::v_expf`]. This is the body shared by
/// every instruction-set level (the forward pass calls the SIMD builds in `arch`, which give
/// the same bits); called directly, the portable reference.
#[inline(always)]
pub fn swiglu_in_place(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = x / (1.0 + super::attention::v_expf(-x)) * u;
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
    fn swiglu_matches_definition() {
        let mut g = [0.0f32, 1.0, -2.0];
        swiglu_in_place(&mut g, &[3.0, 2.0, 0.5]);
        let silu = |x: f32| x / (1.0 + (-x).exp());
        for (got, want) in g.iter().zip([0.0, silu(1.0) * 2.0, silu(-2.0) * 0.5]) {
            assert!((got - want).abs() <= 1e-6, "{got} vs {want}");
        }
    }
}
