//! Causal attention over the KV cache, computed the way llama.cpp's CPU flash attention does
//! for a batch of 64 or more queries (`ggml_compute_forward_flash_attn_ext_tiled` in
//! ggml-cpu/ops.cpp, with `simd_gemm` from ggml-cpu/simd-gemm.h and `ggml_vec_soft_max_f32` /
//! `ggml_v_expf` from ggml-cpu/vec.h, AVX-512 build), so that our logits follow its roundings.
//!
//! For one query row `q` (f32, after RoPE) that sees keys `0..n_kv` of its KV head:
//!
//! ```text
//! M = -inf, S = 0 (f32), acc[0..d] = 0
//! for each tile of KV_TILE = 64 keys:
//!     s_j  = (fma-chain over c = 0..d of q[c]·k_j[c]) · scale      (masked keys: -inf)
//!     M'   = max(M, max_j s_j);  if M' > M { acc *= expf(M - M'); S *= expf(M - M') }
//!     e_j  = v_expf(s_j - M')                                       ggml_v_expf, AVX-512
//!     S    = f32(f64(S) + Σ_{16-lane group} f64(tree_sum(e[group])))
//!     acc  = fma-chain over the tile's keys j of e_j·v_j            (key order)
//! out = acc · (1 / S)
//! ```
//!
//! Keys and values are the cache's (f16-rounded under [`super::KvPrecision::F16`]); the query
//! stays f32 as in the tiled path. Every operation is an IEEE f32 multiply, add or fused
//! multiply-add in a fixed order, so the scalar body and the SIMD builds of it in
//! `llama::arch` give identical bits; the SIMD levels only vectorise across keys (scores) and
//! across head dimensions (the value sum). llama.cpp runs batches of fewer than 64 queries
//! through a different routine (f16 query, f16 value accumulator); we use this one for every
//! batch size, so our logits do not depend on how a sequence is split into batches.
//!
//! The cache layout makes both products contiguous: keys are stored per tile transposed,
//! `kt[tile][c][j]` (`j < 64`), so the scores of a tile are 64-wide vector FMAs broadcasting
//! `q[c]`; values are row-major `v[pos][c]`.

/// Keys per tile (ggml's `GGML_FA_TILE_KV`).
pub const KV_TILE: usize = 64;

const LANES: usize = 16;

/// ggml's AVX-512 `ggml_v_expf` (ARM optimized-routines' expf): `x = n·ln2 + b`,
/// `2^n · p(b)` with a degree-5 polynomial, flushed to 0 / +inf when `|n| > 192`.
/// Constants from ggml-cpu/vec.h.
#[inline(always)]
pub fn v_expf(x: f32) -> f32 {
    let r = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r); // log2(e)
    let n = z - r;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),
        (-n).mul_add(f32::from_bits(0x3f31_7200), x),
    );
    let u = b * b;
    let j = f32::from_bits(0x3c07_2010)
        .mul_add(b, f32::from_bits(0x3d2b_9f17))
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)),
        )
        .mul_add(u, f32::from_bits(0x3f7f_fff6).mul_add(b, 1.0));
    if n.abs() > 192.0 {
        if n <= 0.0 {
            0.0
        } else {
            f32::INFINITY
        }
    } else {
        scalef(j, n)
    }
}

/// `j · 2^n` rounded once (`_mm512_scalef_ps` for integral `|n| ≤ 192`): two exact scalings by
/// normal powers of two, the second one rounding.
#[inline(always)]
fn scalef(j: f32, n: f32) -> f32 {
    let ni = n as i32;
    let n1 = ni / 2;
    let n2 = ni - n1;
    let pow2 = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    j * pow2(n1) * pow2(n2)
}

/// `_mm512_reduce_add_ps`: halves added pairwise, 16 → 8 → 4 → 2 → 1.
#[inline(always)]
fn tree_sum16(a: &[f32; LANES]) -> f32 {
    let mut t = [0.0f32; 8];
    for i in 0..8 {
        t[i] = a[i + 8] + a[i];
    }
    let u = [t[4] + t[0], t[5] + t[1], t[6] + t[2], t[7] + t[3]];
    (u[0] + u[2]) + (u[1] + u[3])
}

/// One row's softmax step over a tile of scores (`sc`, raw `q·k`): scales and masks keys
/// `valid..`, updates the running maximum `m` and sum `s`, turns `sc` into the unnormalised
/// weights and returns the factor the row's accumulator must first be multiplied by (1 when the
/// maximum did not grow).
#[inline(always)]
fn softmax_tile(
    sc: &mut [f32; KV_TILE],
    valid: usize,
    scale: f32,
    m: &mut f32,
    s: &mut f32,
) -> f32 {
    for a in sc.iter_mut() {
        *a *= scale;
    }
    for a in &mut sc[valid..] {
        *a = f32::NEG_INFINITY;
    }
    // The maximum in 16 lanes, then across them (scores are never NaN, so the order of the
    // comparisons does not matter); written as selects so it vectorises.
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for g in sc.chunks_exact(LANES) {
        for (l, &a) in lanes.iter_mut().zip(g) {
            *l = if a > *l { a } else { *l };
        }
    }
    let tmax = lanes
        .iter()
        .fold(f32::NEG_INFINITY, |m, &a| if a > m { a } else { m });
    let m_new = m.max(tmax);
    let mut ms = 1.0;
    if m_new > *m {
        ms = (*m - m_new).exp();
        *s *= ms;
    }
    *m = m_new;
    for a in sc.iter_mut() {
        *a = v_expf(*a - m_new);
    }
    let mut sum = 0.0f64;
    for g in sc.chunks_exact(LANES) {
        sum += f64::from(tree_sum16(g.try_into().expect("16 lanes")));
    }
    *s = (f64::from(*s) + sum) as f32;
    ms
}

/// The attention body shared by every instruction-set level (inlined into each `arch`
/// wrapper so the compiler vectorises it for that level); called directly, the portable
/// reference.
///
/// `q` and `out`: rows of `head_dim`; `kt`: tiles of `head_dim × KV_TILE` (at least
/// `ceil(n_kv / 64)` of them); `v`: at least `n_kv` rows of `head_dim`.
///
/// Head sizes 64 and 128 run a register-blocked form (up to four rows at once, accumulators
/// in registers); other sizes one row at a time. Both perform the same operations per element
/// in the same order, so the results are identical.
///
/// # Panics
/// If the slices are shorter than described (caller bug) or `n_kv == 0`.
#[inline(always)]
pub fn attend_body(
    q: &[f32],
    kt: &[f32],
    v: &[f32],
    head_dim: usize,
    n_kv: usize,
    scale: f32,
    out: &mut [f32],
) {
    assert!(n_kv > 0, "attention over an empty cache");
    let hd = head_dim;
    assert!(kt.len() >= n_kv.div_ceil(KV_TILE) * hd * KV_TILE && v.len() >= n_kv * hd);
    match hd {
        64 => attend_blocks::<64>(q, kt, v, n_kv, scale, out),
        128 => attend_blocks::<128>(q, kt, v, n_kv, scale, out),
        _ => attend_rows(q, kt, v, hd, n_kv, scale, out),
    }
}

/// Any head size, one row at a time.
#[inline(always)]
fn attend_rows(
    q: &[f32],
    kt: &[f32],
    v: &[f32],
    hd: usize,
    n_kv: usize,
    scale: f32,
    out: &mut [f32],
) {
    let n_tiles = n_kv.div_ceil(KV_TILE);
    for (qr, o) in q.chunks_exact(hd).zip(out.chunks_exact_mut(hd)) {
        o.fill(0.0);
        let (mut m, mut s) = (f32::NEG_INFINITY, 0.0f32);
        for t in 0..n_tiles {
            let valid = (n_kv - t * KV_TILE).min(KV_TILE);
            let tile = &kt[t * hd * KV_TILE..(t + 1) * hd * KV_TILE];
            let mut sc = [0.0f32; KV_TILE];
            for (&qc, row) in qr.iter().zip(tile.chunks_exact(KV_TILE)) {
                for (a, &k) in sc.iter_mut().zip(row) {
                    *a = qc.mul_add(k, *a);
                }
            }
            let ms = softmax_tile(&mut sc, valid, scale, &mut m, &mut s);
            if ms != 1.0 {
                for x in o.iter_mut() {
                    *x *= ms;
                }
            }
            let vt = &v[t * KV_TILE * hd..(t * KV_TILE + valid) * hd];
            for (&e, vj) in sc.iter().zip(vt.chunks_exact(hd)) {
                for (x, &vv) in o.iter_mut().zip(vj) {
                    *x = e.mul_add(vv, *x);
                }
            }
        }
        let inv = 1.0 / s;
        for x in o.iter_mut() {
            *x *= inv;
        }
    }
}

/// Head size `HD`: rows in blocks of four (then the remainder).
#[inline(always)]
fn attend_blocks<const HD: usize>(
    q: &[f32],
    kt: &[f32],
    v: &[f32],
    n_kv: usize,
    scale: f32,
    out: &mut [f32],
) {
    let mut rest = (q, out);
    while !rest.0.is_empty() {
        let rows = (rest.0.len() / HD).min(4);
        let (qb, qn) = rest.0.split_at(rows * HD);
        let (ob, on) = std::mem::take(&mut rest.1).split_at_mut(rows * HD);
        match rows {
            1 => attend_block::<HD, 1>(qb, kt, v, n_kv, scale, ob),
            2 => attend_block::<HD, 2>(qb, kt, v, n_kv, scale, ob),
            3 => attend_block::<HD, 3>(qb, kt, v, n_kv, scale, ob),
            _ => attend_block::<HD, 4>(qb, kt, v, n_kv, scale, ob),
        }
        rest = (qn, on);
    }
}

/// `R` rows of head size `HD` at once: each key-tile row and value row is loaded once for all
/// rows, and the scores and accumulators live in registers.
#[inline(always)]
fn attend_block<const HD: usize, const R: usize>(
    q: &[f32],
    kt: &[f32],
    v: &[f32],
    n_kv: usize,
    scale: f32,
    out: &mut [f32],
) {
    let n_tiles = n_kv.div_ceil(KV_TILE);
    let qs: [&[f32; HD]; R] =
        std::array::from_fn(|r| q[r * HD..(r + 1) * HD].try_into().expect("HD values"));
    let mut acc = [[0.0f32; HD]; R];
    let (mut m, mut s) = ([f32::NEG_INFINITY; R], [0.0f32; R]);
    for t in 0..n_tiles {
        let valid = (n_kv - t * KV_TILE).min(KV_TILE);
        let tile = &kt[t * HD * KV_TILE..(t + 1) * HD * KV_TILE];
        let mut sc = [[0.0f32; KV_TILE]; R];
        for (c, row) in tile.chunks_exact(KV_TILE).enumerate() {
            let row: &[f32; KV_TILE] = row.try_into().expect("a tile row");
            for r in 0..R {
                let qc = qs[r][c];
                for j in 0..KV_TILE {
                    sc[r][j] = qc.mul_add(row[j], sc[r][j]);
                }
            }
        }
        for r in 0..R {
            let ms = softmax_tile(&mut sc[r], valid, scale, &mut m[r], &mut s[r]);
            if ms != 1.0 {
                for x in acc[r].iter_mut() {
                    *x *= ms;
                }
            }
        }
        let vt = &v[t * KV_TILE * HD..(t * KV_TILE + valid) * HD];
        for (j, vj) in vt.chunks_exact(HD).enumerate() {
            let vj: &[f32; HD] = vj.try_into().expect("a value row");
            for r in 0..R {
                let e = sc[r][j];
                for c in 0..HD {
                    acc[r][c] = e.mul_add(vj[c], acc[r][c]);
                }
            }
        }
    }
    for (r, o) in out.chunks_exact_mut(HD).enumerate() {
        let inv = 1.0 / s[r];
        for (x, &a) in o.iter_mut().zip(&acc[r]) {
            *x = a * inv;
        }
    }
}

/// Writes key `k` (one head, `head_dim` values) for position `pos` into a tile-transposed key
/// cache.
pub fn store_key(kt: &mut [f32], head_dim: usize, pos: usize, k: &[f32]) {
    let (tile, j) = (pos / KV_TILE, pos % KV_TILE);
    let base = tile * head_dim * KV_TILE + j;
    for (c, &x) in k.iter().enumerate() {
        kt[base + c * KV_TILE] = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v_expf_is_close_to_exp_and_flushes_like_ggml() {
        for i in -2000..=800 {
            let x = i as f32 * 0.11;
            let want = f64::from(x).exp();
            let got = f64::from(v_expf(x));
            if x < -104.0 {
                assert_eq!(got, 0.0, "x={x}");
            } else if !(-87.0..=88.3).contains(&x) {
                // Subnormal results and the overflow edge: no relative bound.
                continue;
            } else {
                assert!((got - want).abs() <= 3e-7 * want, "x={x}: {got} vs {want}");
            }
        }
        assert_eq!(v_expf(0.0), 1.0);
        assert_eq!(v_expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(v_expf(200.0), f32::INFINITY);
    }

    fn reference(q: &[f32], k: &[Vec<f32>], v: &[Vec<f32>], scale: f64) -> Vec<f64> {
        let s: Vec<f64> = k
            .iter()
            .map(|kr| {
                kr.iter()
                    .zip(q)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        (0..q.len())
            .map(|c| {
                e.iter()
                    .zip(v)
                    .map(|(w, vr)| w * f64::from(vr[c]))
                    .sum::<f64>()
                    / z
            })
            .collect()
    }

    #[test]
    fn matches_float64_softmax_attention_across_tile_boundaries() {
        let hd = 16;
        for n_kv in [1usize, 2, 63, 64, 65, 130, 200] {
            let k: Vec<Vec<f32>> = (0..n_kv)
                .map(|p| {
                    (0..hd)
                        .map(|c| (((p * 7 + c * 3) % 17) as f32 - 8.0) * 0.21)
                        .collect()
                })
                .collect();
            let v: Vec<Vec<f32>> = (0..n_kv)
                .map(|p| {
                    (0..hd)
                        .map(|c| (((p * 5 + c * 11) % 13) as f32 - 6.0) * 0.3)
                        .collect()
                })
                .collect();
            let mut kt = vec![f32::NAN; n_kv.div_ceil(KV_TILE) * hd * KV_TILE];
            // Unused slots of the last tile hold garbage: they must be masked, not read.
            for x in kt.iter_mut() {
                *x = 1e30;
            }
            for (p, kr) in k.iter().enumerate() {
                store_key(&mut kt, hd, p, kr);
            }
            let vf: Vec<f32> = v.iter().flatten().copied().collect();
            let q: Vec<f32> = (0..2 * hd).map(|i| ((i % 9) as f32 - 4.0) * 0.4).collect();
            let mut out = vec![0.0f32; 2 * hd];
            attend_body(&q, &kt, &vf, hd, n_kv, 0.25, &mut out);
            for r in 0..2 {
                let want = reference(&q[r * hd..(r + 1) * hd], &k, &v, 0.25);
                for (c, (&o, w)) in out[r * hd..(r + 1) * hd].iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(o) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "n_kv {n_kv} row {r} col {c}: {o} vs {w}"
                    );
                }
            }
        }
    }

    /// The register-blocked form (head sizes 64 and 128, 1–4 rows at a time) gives the per-row
    /// form's bits exactly.
    #[test]
    fn blocked_rows_equal_single_rows() {
        for hd in [64usize, 128] {
            for n_kv in [1usize, 3, 64, 100, 257] {
                let mut kt = vec![0.0f32; n_kv.div_ceil(KV_TILE) * hd * KV_TILE];
                for p in 0..n_kv {
                    let k: Vec<f32> = (0..hd)
                        .map(|c| ((p * 13 + c * 5) % 29) as f32 * 0.1 - 1.4)
                        .collect();
                    store_key(&mut kt, hd, p, &k);
                }
                let v: Vec<f32> = (0..n_kv * hd)
                    .map(|i| ((i * 3) % 31) as f32 * 0.07 - 1.0)
                    .collect();
                let q: Vec<f32> = (0..7 * hd)
                    .map(|i| ((i * 11) % 17) as f32 * 0.2 - 1.6)
                    .collect();
                let mut want = vec![0.0f32; 7 * hd];
                attend_rows(&q, &kt, &v, hd, n_kv, 0.125, &mut want);
                let mut got = vec![0.0f32; 7 * hd];
                attend_body(&q, &kt, &v, hd, n_kv, 0.125, &mut got);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "hd {hd} n_kv {n_kv}"
                );
            }
        }
    }
}
