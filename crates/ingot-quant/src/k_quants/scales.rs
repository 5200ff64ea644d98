//! Sub-block scale packing shared by several K-quants.
//!
//! Q4_K and Q5_K store eight 6-bit scales and eight 6-bit mins in 12 bytes
//! (`get_scale_min_k4` in llama.cpp `ggml-quants.c`): for sub-block j < 4 the scale is the low
//! six bits of byte j and the min the low six bits of byte j + 4; for j ≥ 4 the low four bits
//! come from the two nibbles of byte j + 4 (scale low, min high) and the high two bits from the
//! top two bits of byte j − 4 (scale) and byte j (min).
//!
//! Q3_K stores sixteen 6-bit scales biased by 32 in 12 bytes (`quantize_row_q3_K_ref`):
//! the low nibble of scale j is the low (j < 8) or high (j ≥ 8) nibble of byte j mod 8, and its
//! two high bits are bits 2·(j / 4) … of byte 8 + j mod 4.

use crate::blocks::K_SCALE_SIZE;

/// Reads the 6-bit scale and min of sub-block `j` (0..8) from Q4_K/Q5_K packed scales.
#[inline(always)]
pub fn get_scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Packs eight 6-bit scales and mins (each 0..=63) into the 12-byte Q4_K/Q5_K layout; the
/// exact inverse of [`get_scale_min_k4`].
///
/// # Panics
/// In debug builds, if a scale or min exceeds 63 (a caller bug: quantizers clamp first).
#[inline]
pub fn set_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; K_SCALE_SIZE] {
    let mut q = [0u8; K_SCALE_SIZE];
    for j in 0..8 {
        let (s, m) = (ls[j], lm[j]);
        debug_assert!(s < 64 && m < 64, "6-bit scale {s} / min {m}");
        if j < 4 {
            q[j] |= s;
            q[j + 4] |= m;
        } else {
            q[j + 4] = (s & 0xF) | ((m & 0xF) << 4);
            q[j - 4] |= (s >> 4) << 6;
            q[j] |= (m >> 4) << 6;
        }
    }
    q
}

/// Reads the sixteen Q3_K sub-block scales as signed values in −32..=31.
#[inline]
pub fn get_scales_q3k(q: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { q[j] & 0xF } else { q[j - 8] >> 4 };
        let high = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = ((low | (high << 4)) as i8) - 32;
    }
    out
}

/// Packs sixteen Q3_K scales given biased (0..=63, i.e. scale + 32); inverse of
/// [`get_scales_q3k`].
#[inline]
pub fn set_scales_q3k(biased: &[u8; 16]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for (j, &l) in biased.iter().enumerate() {
        debug_assert!(l < 64, "6-bit biased scale {l}");
        if j < 8 {
            q[j] |= l & 0xF;
        } else {
            q[j - 8] |= (l & 0xF) << 4;
        }
        q[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k4_packing_round_trips_every_value() {
        for base in 0..64u8 {
            let ls: [u8; 8] = std::array::from_fn(|j| (base + 7 * j as u8) % 64);
            let lm: [u8; 8] = std::array::from_fn(|j| ((base as usize * 3 + 11 * j) % 64) as u8);
            let q = set_scale_min_k4(&ls, &lm);
            for j in 0..8 {
                assert_eq!(get_scale_min_k4(j, &q), (ls[j], lm[j]));
            }
        }
    }

    #[test]
    fn q3k_packing_round_trips_every_value() {
        for base in 0..64u8 {
            let l: [u8; 16] = std::array::from_fn(|j| (base + 5 * j as u8) % 64);
            let got = get_scales_q3k(&set_scales_q3k(&l));
            for j in 0..16 {
                assert_eq!(got[j] as i32 + 32, l[j] as i32);
            }
        }
    }
}
