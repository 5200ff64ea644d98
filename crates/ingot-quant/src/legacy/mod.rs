//! The legacy 32-element formats ("type 0": x = d·q, "type 1": x = d·q + m).
//!
//! Each module holds one block type, its ggml reference quantizer (`quantize_row_ref`,
//! bit-identical to ggml's `quantize_row_*_ref` in `ggml/src/ggml-quants.c`), ingot's own
//! quantizer (`quantize_row`, importance-weighted when given weights; see [`search`] for the
//! algorithm) and `dequantize_row`. The nibble and bit packing shared by the 4- and 5-bit types
//! lives here, once.
//!
//! Layouts, formulas and sources: `formats/blocks.md`.

pub mod arch;
pub mod q4_0;
pub mod q4_1;
pub mod q5_0;
pub mod q5_1;
pub mod q8_0;
pub mod q8_1;
pub mod search;

use crate::blocks::QK;

/// How hard ingot's quantizer searches a block that has no importance weights (blocks with
/// weights always get the full weighted search of [`search`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Effort {
    /// One least-squares step from ggml's reference block (then f16 rounding), kept only if
    /// better: on the golden rows 4 % (Q4_0), 7 % (Q5_0), 11 % (Q4_1, Q5_1) lower plain
    /// error than the reference, at ~⅓ of the thorough search's cost in the generic bodies
    /// (the AVX-512 kernels of `arch` run it for 16 blocks at once: ~25 ns per type-0 block,
    /// ~40 ns per type-1 block on one core).
    #[default]
    Fast,
    /// The candidate-grid search of [`search`]: 8 % (Q4_0), 10 % (Q5_0), 20 % (Q4_1),
    /// 21 % (Q5_1) lower plain error than the reference on the golden rows.
    Thorough,
}

/// Checks the contract shared by every row function: `x.len()` is `n_blocks · 32`.
///
/// # Panics
/// On a mismatch, which is a caller bug (the crate-level dispatch validates untrusted sizes).
#[inline]
#[track_caller]
pub(crate) fn assert_row(what: &str, n_values: usize, n_blocks: usize) {
    assert!(
        n_values == n_blocks * QK,
        "{what}: {n_values} values do not fill {n_blocks} blocks of {QK}"
    );
}

/// Checks that importance weights, when given, cover the row.
///
/// # Panics
/// If their length differs from the row's (a caller bug).
#[inline]
#[track_caller]
pub(crate) fn assert_weights(what: &str, n_values: usize, weights: Option<&[f32]>) {
    if let Some(w) = weights {
        assert!(
            w.len() == n_values,
            "{what}: {} weights for {n_values} values",
            w.len()
        );
    }
}

/// Packs 32 four-bit values: element j in the low nibble of byte j (j < 16), element j + 16 in
/// its high nibble (ggml's order for every legacy 4- and 5-bit type).
#[inline(always)]
pub(crate) fn pack_nibbles(q: &[u8; QK]) -> [u8; QK / 2] {
    let mut out = [0u8; QK / 2];
    for j in 0..QK / 2 {
        out[j] = (q[j] & 0x0F) | ((q[j + QK / 2] & 0x0F) << 4);
    }
    out
}

/// Inverse of [`pack_nibbles`] (without the fifth bits).
#[inline(always)]
pub(crate) fn unpack_nibbles(qs: &[u8; QK / 2]) -> [u8; QK] {
    let mut out = [0u8; QK];
    for j in 0..QK / 2 {
        out[j] = qs[j] & 0x0F;
        out[j + QK / 2] = qs[j] >> 4;
    }
    out
}

/// The fifth bits of 32 five-bit values: bit j of the little-endian u32 is bit 4 of element j.
#[inline(always)]
pub(crate) fn pack_high_bits(q: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= u32::from((v >> 4) & 1) << j;
    }
    qh.to_le_bytes()
}

/// Inverse of [`pack_nibbles`] + [`pack_high_bits`]: the 32 five-bit values.
#[inline(always)]
pub(crate) fn unpack_five_bits(qs: &[u8; QK / 2], qh: &[u8; 4]) -> [u8; QK] {
    let high = u32::from_le_bytes(*qh);
    let mut out = unpack_nibbles(qs);
    for (j, v) in out.iter_mut().enumerate() {
        *v |= (((high >> j) & 1) as u8) << 4;
    }
    out
}

/// Signed value with the largest magnitude (the first one on ties), as ggml's reference
/// quantizers pick it: `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`. Returns
/// (amax, max); (0, +0) for an all-zero block, like ggml's initial values.
///
/// Computed as a lane-wise maximum, then a bit mask of the elements reaching it (both
/// vectorise); its lowest set bit is the element the sequential loop ends on.
#[inline(always)]
pub(crate) fn signed_absmax(x: &[f32; QK]) -> (f32, f32) {
    let mut lanes = [0.0f32; 8];
    for c in x.chunks_exact(8) {
        for i in 0..8 {
            let a = c[i].abs();
            lanes[i] = if a > lanes[i] { a } else { lanes[i] };
        }
    }
    let amax = lanes.iter().fold(0.0f32, |m, &a| if a > m { a } else { m });
    if amax == 0.0 {
        return (0.0, 0.0);
    }
    let mut hits = 0u32;
    for (j, v) in x.iter().enumerate() {
        hits |= u32::from(v.abs() == amax) << j;
    }
    (amax, x[hits.trailing_zeros() as usize % QK])
}

/// Minimum and maximum as ggml's type-1 reference quantizers compute them (starting from
/// ±FLT_MAX, strict comparisons, so among equal values the first wins).
///
/// Lane-wise (vectorisable); only ±0 can tie with a different bit pattern, so a zero result
/// is recomputed in ggml's order.
#[inline(always)]
pub(crate) fn min_max(x: &[f32; QK]) -> (f32, f32) {
    let mut lo = [f32::MAX; 8];
    let mut hi = [-f32::MAX; 8];
    for c in x.chunks_exact(8) {
        for i in 0..8 {
            lo[i] = if c[i] < lo[i] { c[i] } else { lo[i] };
            hi[i] = if c[i] > hi[i] { c[i] } else { hi[i] };
        }
    }
    let min = lo.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
    let max = hi.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    if min == 0.0 || max == 0.0 {
        return min_max_sequential(x);
    }
    (min, max)
}

#[inline(never)]
fn min_max_sequential(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// 1.5 · 2²³: for an f32 r with |r| < 2²², `r + MAGIC` rounds r to the nearest integer (ties
/// to even) and, when r is already an integer, holds it in the low mantissa bits.
pub(crate) const MAGIC: f32 = 12_582_912.0;

/// The low byte of an integral f32 in [−128, 255], through [`MAGIC`] (a bit operation, so
/// loops of it vectorise, unlike Rust's saturating float → int `as`).
#[inline(always)]
fn low_byte(r: f32) -> u8 {
    ((r + MAGIC).to_bits() & 0xFF) as u8
}

/// Exactly `v as u8` (truncation, NaN and negatives → 0, saturating at 255), computed in f32
/// so that loops of it vectorise.
#[inline(always)]
pub(crate) fn trunc_u8(v: f32) -> u8 {
    let c = if v > 0.0 { v } else { 0.0 };
    let c = if c < 255.0 { c } else { 255.0 };
    let r = (c + MAGIC) - MAGIC;
    low_byte(if r > c { r - 1.0 } else { r })
}

/// `roundf` to i8, saturating (huge or infinite products, e.g. from a subnormal scale, must not
/// wrap; ggml's behaviour there is undefined C and never reached by finite, normal data); NaN
/// (0 · inf) gives 0.
///
/// Equal to `roundf(v)` clamped to [−128, 127] for every input: clamp in f32 (NaN passes),
/// truncate towards zero through [`MAGIC`], then add ±1 when the exact remainder reaches ±½.
/// Only f32 arithmetic and bit operations, so loops of it vectorise.
#[inline(always)]
pub(crate) fn round_to_i8(v: f32) -> i8 {
    let c = v.clamp(-128.0, 127.0);
    let r = (c + MAGIC) - MAGIC;
    let t = if c >= 0.0 {
        if r > c {
            r - 1.0
        } else {
            r
        }
    } else if r < c {
        r + 1.0
    } else {
        r
    };
    let f = c - t;
    let q = t + if f >= 0.5 { 1.0 } else { 0.0 } - if f <= -0.5 { 1.0 } else { 0.0 };
    let q = if c.is_nan() { 0.0 } else { q };
    low_byte(q) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunc_u8_equals_as_u8() {
        let mut b = 0u32;
        while b < 0xFFFF_FFFF - 4099 {
            let v = f32::from_bits(b);
            assert_eq!(trunc_u8(v), v as u8, "{v:e}");
            b += 4099;
        }
        for v in [
            0.0f32, -0.0, 0.5, 1.0, 14.999_999, 15.0, 254.9, 255.0, 255.5, 1e9,
        ] {
            assert_eq!(trunc_u8(v), v as u8, "{v}");
        }
    }

    #[test]
    fn nibble_and_high_bit_packing_round_trip() {
        let mut q = [0u8; QK];
        for (j, v) in q.iter_mut().enumerate() {
            *v = ((j * 7 + 3) % 32) as u8;
        }
        let qs = pack_nibbles(&q);
        let qh = pack_high_bits(&q);
        assert_eq!(unpack_five_bits(&qs, &qh), q);
        // Element 0 low nibble of byte 0, element 16 high nibble of byte 0.
        assert_eq!(qs[0], (q[0] & 15) | ((q[16] & 15) << 4));
        // Element 31's fifth bit is bit 31 of qh.
        assert_eq!((u32::from_le_bytes(qh) >> 31) & 1, u32::from(q[31] >> 4));
    }

    /// f32::round is C's `roundf` (half away from zero); `as i8` of the clamped value is the
    /// saturating conversion with NaN → 0.
    #[test]
    fn round_to_i8_equals_clamped_roundf() {
        let mut b = 0u32;
        while b < 0xFFFF_FFFF - 4099 {
            let v = f32::from_bits(b);
            assert_eq!(
                round_to_i8(v),
                v.round().clamp(-128.0, 127.0) as i8,
                "{v:e}"
            );
            b += 4099;
        }
        for v in [
            0.5f32,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_97,
            -0.499_999_97,
            126.5,
            -127.5,
            127.5,
            -128.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            assert_eq!(round_to_i8(v), v.round().clamp(-128.0, 127.0) as i8, "{v}");
        }
        assert_eq!(round_to_i8(f32::NAN), 0);
    }

    #[test]
    fn extrema_match_ggml_order_including_signed_zeros() {
        let mut x = [0.0f32; QK];
        x[3] = -0.0;
        x[7] = 2.0;
        x[20] = -2.0;
        assert_eq!(signed_absmax(&x), (2.0, 2.0));
        x[1] = -2.0;
        assert_eq!(signed_absmax(&x), (2.0, -2.0));
        let z = [-0.0f32; QK];
        let (a, m) = signed_absmax(&z);
        assert_eq!((a.to_bits(), m.to_bits()), (0, 0));
        let mut y = [1.0f32; QK];
        y[2] = -0.0;
        y[9] = 0.0;
        let (mn, mx) = min_max(&y);
        assert_eq!((mn.to_bits(), mx), ((-0.0f32).to_bits(), 1.0));
        y[2] = 0.0;
        y[9] = -0.0;
        assert_eq!(min_max(&y).0.to_bits(), 0);
    }
}
