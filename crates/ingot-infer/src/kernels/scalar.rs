//! Portable scalar kernels: the reference every SIMD path is tested against, and the path
//! used on CPUs (and architectures) without one.
//!
//! Each quantized dot product follows ggml's generic C kernels (`ggml_vec_dot_<w>_<a>_generic`
//! in `ggml-cpu/quants.c`): per block, an exact integer sum of code products, then one float
//! multiply by the product of the two block scales, accumulated in f32:
//!
//! ```text
//! for each block b:  sumi = Σ_j qw[j]·qa[j]        (i32, exact)
//!                    sumf += (d_w·d_a) · sumi        (f32)
//! ```
//!
//! with the type-specific twists documented on each function (the `− 8` / `− 16` / `− 32`
//! offsets, Q4_1/Q5_1's `+ m·s` term, the K-quants' sub-block scales and the `dmin·Σ m·bsums`
//! correction). The activation quantizers round as ggml's x86 CPU quantizer does (the golden
//! files were made by it; see `formats/kernels.md`).
//!
//! Invariant relied on by the SIMD paths: activation codes are in `[-127, 127]` (never −128),
//! because every activation quantizer here clamps to that range.

use bytemuck::Zeroable;
use half::{bf16, f16};
use ingot_quant::blocks::{
    BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1, QK, QK_K,
};

/// Unpacks Q4_K/Q5_K's twelve bytes of 6-bit scales and mins into eight of each
/// (ggml's `get_scale_min_k4`, done four at a time on u32 lanes):
/// j < 4: `sc = q[j] & 63`, `m = q[j+4] & 63`;
/// j ≥ 4: `sc = (q[j+4] & 15) | (q[j-4] >> 6) << 4`, `m = (q[j+4] >> 4) | (q[j] >> 6) << 4`.
#[inline(always)]
pub fn unpack_scales_mins_k4(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let a = u32::from_le_bytes([q[0], q[1], q[2], q[3]]);
    let b = u32::from_le_bytes([q[4], q[5], q[6], q[7]]);
    let c = u32::from_le_bytes([q[8], q[9], q[10], q[11]]);
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let sc_lo = a & LOW6;
    let m_lo = b & LOW6;
    let sc_hi = (c & LOW4) | (((a >> 6) & LOW2) << 4);
    let m_hi = ((c >> 4) & LOW4) | (((b >> 6) & LOW2) << 4);
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    sc[..4].copy_from_slice(&sc_lo.to_le_bytes());
    sc[4..].copy_from_slice(&sc_hi.to_le_bytes());
    m[..4].copy_from_slice(&m_lo.to_le_bytes());
    m[4..].copy_from_slice(&m_hi.to_le_bytes());
    (sc, m)
}

/// Q4_0/Q4_1/Q5_x nibble order: element j < 16 is the low nibble of `qs[j]`, element
/// j ≥ 16 the high nibble of `qs[j − 16]`.
#[inline(always)]
pub(crate) fn nibble(qs: &[u8; QK / 2], j: usize) -> i32 {
    if j < QK / 2 {
        (qs[j] & 0x0f) as i32
    } else {
        (qs[j - QK / 2] >> 4) as i32
    }
}

/// Q5_0/Q5_1's fifth bit of element j (bit j of the little-endian u32 `qh`), as 0 or 16.
#[inline(always)]
pub(crate) fn fifth_bit(qh: &[u8; 4], j: usize) -> i32 {
    (((u32::from_le_bytes(*qh) >> j) & 1) << 4) as i32
}

/// Q4_K element `e` (0..256) of a block: 64-element chunks; in chunk c the first 32 are the low
/// nibbles of `qs[32c..32c+32]`, the next 32 their high nibbles. Sub-block = e / 32.
#[inline(always)]
pub(crate) fn q4k_code(qs: &[u8; QK_K / 2], e: usize) -> i32 {
    let (c, r) = (e / 64, e % 64);
    let byte = qs[32 * c + r % 32];
    if r < 32 {
        (byte & 0x0f) as i32
    } else {
        (byte >> 4) as i32
    }
}

/// Q5_K element `e`: the Q4_K nibble plus 16 × bit `e / 32` of `qh[e % 32]`.
#[inline(always)]
pub(crate) fn q5k_code(qs: &[u8; QK_K / 2], qh: &[u8; QK_K / 8], e: usize) -> i32 {
    q4k_code(qs, e) + ((((qh[e % 32] >> (e / 32)) & 1) as i32) << 4)
}

/// Q6_K element `e` (0..256), as the unsigned code 0..63 (value = code − 32). 128-element
/// halves h; within one, `l = e % 32` and quarter `k = (e % 128) / 32`: low four bits from
/// `ql[64h + l + 32·(k & 1)]` (low nibble for k < 2, high otherwise), high two bits from
/// bits `2k..2k+2` of `qh[32h + l]`. Sub-block (scale index) = e / 16.
#[inline(always)]
pub(crate) fn q6k_code(ql: &[u8; QK_K / 2], qh: &[u8; QK_K / 4], e: usize) -> i32 {
    let (h, r) = (e / 128, e % 128);
    let (k, l) = (r / 32, r % 32);
    let lbyte = ql[64 * h + l + 32 * (k & 1)];
    let low = if k < 2 { lbyte & 0x0f } else { lbyte >> 4 };
    let high = (qh[32 * h + l] >> (2 * k)) & 3;
    (low | (high << 4)) as i32
}

#[inline(always)]
fn check_len(w: usize, a: usize) {
    assert_eq!(
        w, a,
        "dot product of {w} weight blocks with {a} activation blocks"
    );
}

/// q8_0 · q8_0: Σ_b d_w·d_a·Σ_j w_j·a_j.
///
/// # Panics
/// If the slices differ in length (a caller bug).
pub fn vec_dot_q8_0_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 =
            x.qs.iter()
                .zip(&y.qs)
                .map(|(&p, &q)| p as i32 * q as i32)
                .sum();
        sumf += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
    }
    sumf
}

/// q4_0 · q8_0: codes are nibble − 8.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q4_0_q8_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..QK)
            .map(|j| (nibble(&x.qs, j) - 8) * y.qs[j] as i32)
            .sum();
        sumf += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
    }
    sumf
}

/// q4_1 · q8_1: Σ_b (d_w·d_a)·Σ_j q_j·a_j + m_w·s_a, where `s_a` = d_a·Σ a_j stored in f16.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q4_1_q8_1(w: &[BlockQ4_1], a: &[BlockQ8_1]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..QK).map(|j| nibble(&x.qs, j) * y.qs[j] as i32).sum();
        sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
    }
    sumf
}

/// q5_0 · q8_0: codes are (nibble | fifth bit · 16) − 16.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q5_0_q8_0(w: &[BlockQ5_0], a: &[BlockQ8_0]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..QK)
            .map(|j| (nibble(&x.qs, j) + fifth_bit(&x.qh, j) - 16) * y.qs[j] as i32)
            .sum();
        sumf += sumi as f32 * (x.d.to_f32() * y.d.to_f32());
    }
    sumf
}

/// q5_1 · q8_1: like q4_1 with five-bit codes.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q5_1_q8_1(w: &[BlockQ5_1], a: &[BlockQ8_1]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 = (0..QK)
            .map(|j| (nibble(&x.qs, j) + fifth_bit(&x.qh, j)) * y.qs[j] as i32)
            .sum();
        sumf += (x.d.to_f32() * y.d.to_f32()) * sumi as f32 + x.m.to_f32() * y.s.to_f32();
    }
    sumf
}

/// q4_K · q8_K: per super-block, `d·d_a·Σ_s sc_s·Σ_j q_j·a_j − dmin·d_a·Σ_s m_s·Σ_j a_j`,
/// the second sum taken from the activation's `bsums` (two groups of 16 per sub-block of 32).
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q4_k_q8_k(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let (sc, m) = unpack_scales_mins_k4(&x.scales);
        let mut sumi = 0i32;
        for (s, &scale) in sc.iter().enumerate() {
            let sub: i32 = (32 * s..32 * s + 32)
                .map(|e| q4k_code(&x.qs, e) * y.qs[e] as i32)
                .sum();
            sumi += scale as i32 * sub;
        }
        let summ: i32 = (0..8)
            .map(|s| m[s] as i32 * (y.bsums[2 * s] as i32 + y.bsums[2 * s + 1] as i32))
            .sum();
        sumf += x.d.to_f32() * y.d * sumi as f32 - x.dmin.to_f32() * y.d * summ as f32;
    }
    sumf
}

/// q5_K · q8_K: q4_K with a fifth bit per code.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q5_k_q8_k(w: &[BlockQ5K], a: &[BlockQ8K]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let (sc, m) = unpack_scales_mins_k4(&x.scales);
        let mut sumi = 0i32;
        for (s, &scale) in sc.iter().enumerate() {
            let sub: i32 = (32 * s..32 * s + 32)
                .map(|e| q5k_code(&x.qs, &x.qh, e) * y.qs[e] as i32)
                .sum();
            sumi += scale as i32 * sub;
        }
        let summ: i32 = (0..8)
            .map(|s| m[s] as i32 * (y.bsums[2 * s] as i32 + y.bsums[2 * s + 1] as i32))
            .sum();
        sumf += x.d.to_f32() * y.d * sumi as f32 - x.dmin.to_f32() * y.d * summ as f32;
    }
    sumf
}

/// q6_K · q8_K: `d·d_a·Σ_s sc_s·Σ_j (q_j − 32)·a_j` over sixteen sub-blocks of 16 with
/// signed 8-bit scales.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q6_k_q8_k(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let mut sumi = 0i32;
        for s in 0..16 {
            let sub: i32 = (16 * s..16 * s + 16)
                .map(|e| (q6k_code(&x.ql, &x.qh, e) - 32) * y.qs[e] as i32)
                .sum();
            sumi += x.scales[s] as i32 * sub;
        }
        sumf += x.d.to_f32() * y.d * sumi as f32;
    }
    sumf
}

/// q8_K · q8_K: Σ_b d_w·d_a·Σ_j w_j·a_j (f32 scales).
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_q8_k_q8_k(w: &[BlockQ8K], a: &[BlockQ8K]) -> f32 {
    check_len(w.len(), a.len());
    let mut sumf = 0.0f32;
    for (x, y) in w.iter().zip(a) {
        let sumi: i32 =
            x.qs.iter()
                .zip(&y.qs)
                .map(|(&p, &q)| p as i32 * q as i32)
                .sum();
        sumf += sumi as f32 * (x.d * y.d);
    }
    sumf
}

/// f16 · f32, accumulated in f32 in order.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_f16_f32(w: &[f16], a: &[f32]) -> f32 {
    check_len(w.len(), a.len());
    w.iter().zip(a).map(|(x, y)| x.to_f32() * y).sum()
}

/// bf16 · f32, accumulated in f32 in order.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_bf16_f32(w: &[bf16], a: &[f32]) -> f32 {
    check_len(w.len(), a.len());
    w.iter().zip(a).map(|(x, y)| x.to_f32() * y).sum()
}

/// f32 · f32, accumulated in f32 in order.
///
/// # Panics
/// If the slices differ in length.
pub fn vec_dot_f32_f32(w: &[f32], a: &[f32]) -> f32 {
    check_len(w.len(), a.len());
    w.iter().zip(a).map(|(x, y)| x * y).sum()
}

/// Absolute maximum, d = amax/127 and the multiplier 127/amax (0 for an all-zero block), as
/// ggml's x86 `quantize_row_q8_0`/`q8_1` compute them (the scalar reference divides by `d`
/// instead, which rounds differently in the last place).
#[inline(always)]
fn q8_scale(x: &[f32]) -> (f32, f32) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    (d, id)
}

/// Rounds to nearest, ties to even (the x86 `cvtps2dq` default), clamped to ±127 so the
/// activation-code invariant holds even for NaN or infinite input.
#[inline(always)]
fn round_q8(v: f32) -> i8 {
    v.round_ties_even().clamp(-127.0, 127.0) as i8
}

/// Activations f32 → q8_0 (the activation type of q8_0, q4_0 and q5_0 weights).
///
/// # Panics
/// If `out.len() * 32 != x.len()`.
pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    assert_eq!(
        x.len(),
        out.len() * QK,
        "q8_0: {} values into {} blocks",
        x.len(),
        out.len()
    );
    for (xb, yb) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (d, id) = q8_scale(xb);
        yb.d = f16::from_f32(d);
        for (q, &v) in yb.qs.iter_mut().zip(xb) {
            *q = round_q8(v * id);
        }
    }
}

/// Activations f32 → q8_1 (for q4_1 and q5_1 weights): q8_0 plus `s = f16(d·Σq)`.
///
/// # Panics
/// If `out.len() * 32 != x.len()`.
pub fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    assert_eq!(
        x.len(),
        out.len() * QK,
        "q8_1: {} values into {} blocks",
        x.len(),
        out.len()
    );
    for (xb, yb) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (d, id) = q8_scale(xb);
        yb.d = f16::from_f32(d);
        let mut sum = 0i32;
        for (q, &v) in yb.qs.iter_mut().zip(xb) {
            *q = round_q8(v * id);
            sum += *q as i32;
        }
        yb.s = f16::from_f32(d * sum as f32);
    }
}

/// Activations f32 → q8_K (for the K-quants), as ggml's `quantize_row_q8_K_ref`: the value of
/// largest magnitude (first one on ties) sets `iscale = −127/max`, codes round to nearest
/// (ties to even) and clamp to ±127, `d = 1/iscale`, and `bsums` hold each group of 16's sum.
///
/// # Panics
/// If `out.len() * 256 != x.len()`.
pub fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    assert_eq!(
        x.len(),
        out.len() * QK_K,
        "q8_K: {} values into {} blocks",
        x.len(),
        out.len()
    );
    for (xb, yb) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let (max, amax) = signed_absmax(xb);
        if amax == 0.0 {
            *yb = BlockQ8K::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in yb.qs.iter_mut().zip(xb) {
            *q = round_q8(iscale * v);
        }
        for (s, g) in yb.bsums.iter_mut().zip(yb.qs.chunks_exact(16)) {
            *s = g.iter().map(|&q| q as i16).sum();
        }
        yb.d = 1.0 / iscale;
    }
}

/// The first value of largest magnitude and that magnitude (ggml's loop: strictly greater
/// replaces, so the first of equal magnitudes wins).
#[inline(always)]
pub(crate) fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

#[inline(always)]
fn check_deq(blocks: usize, per: usize, out: usize) {
    assert_eq!(
        blocks * per,
        out,
        "dequantize {blocks} blocks into {out} values"
    );
}

/// Q8_0 → f32: `d·q`.
///
/// # Panics
/// If `out.len() != 32 * blocks.len()` (likewise for every dequantizer).
pub fn dequantize_row_q8_0(blocks: &[BlockQ8_0], out: &mut [f32]) {
    check_deq(blocks.len(), QK, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (y, &q) in o.iter_mut().zip(&b.qs) {
            *y = q as f32 * d;
        }
    }
}

/// Q4_0 → f32: `(q − 8)·d`.
pub fn dequantize_row_q4_0(blocks: &[BlockQ4_0], out: &mut [f32]) {
    check_deq(blocks.len(), QK, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (j, y) in o.iter_mut().enumerate() {
            *y = (nibble(&b.qs, j) - 8) as f32 * d;
        }
    }
}

/// Q4_1 → f32: `q·d + m` (ggml's x86 build fuses this into one FMA; so do we, to match it
/// bit for bit).
pub fn dequantize_row_q4_1(blocks: &[BlockQ4_1], out: &mut [f32]) {
    check_deq(blocks.len(), QK, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for (j, y) in o.iter_mut().enumerate() {
            *y = (nibble(&b.qs, j) as f32).mul_add(d, m);
        }
    }
}

/// Q5_0 → f32: `(q − 16)·d`.
pub fn dequantize_row_q5_0(blocks: &[BlockQ5_0], out: &mut [f32]) {
    check_deq(blocks.len(), QK, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (j, y) in o.iter_mut().enumerate() {
            *y = (nibble(&b.qs, j) + fifth_bit(&b.qh, j) - 16) as f32 * d;
        }
    }
}

/// Q5_1 → f32: `q·d + m` (fused, as Q4_1).
pub fn dequantize_row_q5_1(blocks: &[BlockQ5_1], out: &mut [f32]) {
    check_deq(blocks.len(), QK, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for (j, y) in o.iter_mut().enumerate() {
            *y = ((nibble(&b.qs, j) + fifth_bit(&b.qh, j)) as f32).mul_add(d, m);
        }
    }
}

/// Q4_K → f32: `(d·sc)·q − dmin·m` per sub-block of 32 (fused as ggml's x86 build does).
pub fn dequantize_row_q4_k(blocks: &[BlockQ4K], out: &mut [f32]) {
    check_deq(blocks.len(), QK_K, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let (sc, m) = unpack_scales_mins_k4(&b.scales);
        let (d, dmin) = (b.d.to_f32(), b.dmin.to_f32());
        for (e, y) in o.iter_mut().enumerate() {
            let s = e / 32;
            let (d1, m1) = (d * sc[s] as f32, dmin * m[s] as f32);
            *y = d1.mul_add(q4k_code(&b.qs, e) as f32, -m1);
        }
    }
}

/// Q5_K → f32: as Q4_K with five-bit codes.
pub fn dequantize_row_q5_k(blocks: &[BlockQ5K], out: &mut [f32]) {
    check_deq(blocks.len(), QK_K, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let (sc, m) = unpack_scales_mins_k4(&b.scales);
        let (d, dmin) = (b.d.to_f32(), b.dmin.to_f32());
        for (e, y) in o.iter_mut().enumerate() {
            let s = e / 32;
            let (d1, m1) = (d * sc[s] as f32, dmin * m[s] as f32);
            *y = d1.mul_add(q5k_code(&b.qs, &b.qh, e) as f32, -m1);
        }
    }
}

/// Q6_K → f32: `(d·sc)·(q − 32)` per sub-block of 16.
pub fn dequantize_row_q6_k(blocks: &[BlockQ6K], out: &mut [f32]) {
    check_deq(blocks.len(), QK_K, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        for (e, y) in o.iter_mut().enumerate() {
            *y = d * b.scales[e / 16] as f32 * (q6k_code(&b.ql, &b.qh, e) - 32) as f32;
        }
    }
}

/// Q8_K → f32: `d·q`.
pub fn dequantize_row_q8_k(blocks: &[BlockQ8K], out: &mut [f32]) {
    check_deq(blocks.len(), QK_K, out.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        for (y, &q) in o.iter_mut().zip(&b.qs) {
            *y = b.d * q as f32;
        }
    }
}

/// f16 → f32.
pub fn dequantize_row_f16(w: &[f16], out: &mut [f32]) {
    check_deq(w.len(), 1, out.len());
    for (y, x) in out.iter_mut().zip(w) {
        *y = x.to_f32();
    }
}

/// bf16 → f32.
pub fn dequantize_row_bf16(w: &[bf16], out: &mut [f32]) {
    check_deq(w.len(), 1, out.len());
    for (y, x) in out.iter_mut().zip(w) {
        *y = x.to_f32();
    }
}

/// f32 → f32 (a copy; here so every weight type has a dequantizer).
pub fn dequantize_row_f32(w: &[f32], out: &mut [f32]) {
    check_deq(w.len(), 1, out.len());
    out.copy_from_slice(w);
}
