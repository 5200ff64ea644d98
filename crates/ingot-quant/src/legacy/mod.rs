//! The legacy 32-element formats ("type 0": x = d·q, "type 1": x = d·q + m).
//!
//! Each module holds one block type, its ggml reference quantizer (`quantize_row_ref`,
//! bit-identical to ggml's `quantize_row_*_ref` in `ggml/src/ggml-quants.c`), ingot's own
//! quantizer (`quantize_row`, importance-weighted when given weights; see [`search`] for the
//! algorithm) and `dequantize_row`. The nibble and bit packing shared by the 4- and 5-bit types
//! lives here, once.
//!
//! Layouts, formulas and sources: `formats/blocks.md`.

pub mod q4_0;
pub mod q4_1;
pub mod q5_0;
pub mod q5_1;
pub mod q8_0;
pub mod q8_1;
pub mod search;

use crate::blocks::QK;

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
/// quantizers pick it: `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`.
#[inline(always)]
pub(crate) fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// Minimum and maximum as ggml's type-1 reference quantizers compute them (starting from
/// ±FLT_MAX, strict comparisons).
#[inline(always)]
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
