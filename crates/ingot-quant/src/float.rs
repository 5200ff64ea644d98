//! f32 ↔ f16 and f32 ↔ bf16 conversions, bit-exact with ggml.
//!
//! Every block scale in a GGUF file goes through `GGML_FP32_TO_FP16`, so a single differently
//! rounded scale makes a whole block differ from llama.cpp's output. These functions reproduce
//! ggml's conversions exactly (`ggml/src/ggml-impl.h`):
//!
//! - **f32 → f16** (`ggml_compute_fp32_to_fp16`, after Maratyszcza's FP16 library): round to
//!   nearest, ties to even, including subnormal results; overflow gives ±inf; every NaN becomes
//!   the canonical quiet NaN `0x7E00` with the input's sign. The trick: scaling `|f|` by 2^112
//!   then 2^-110 makes the FPU round the mantissa at exactly the f16 position, by adding a
//!   power-of-two "bias" whose exponent matches the input's (or the f16 subnormal exponent).
//!   It is branch-free, so row loops vectorise.
//! - **f16 → f32**: exact (every f16 is an f32); NaN payloads are kept, as ggml does.
//! - **f32 → bf16** (`ggml_compute_fp32_to_bf16`): NaN → upper half with the quiet bit (0x40)
//!   forced; otherwise round to nearest even by adding `0x7fff + lsb` before truncating.
//!   Subnormals are not flushed.
//! - **bf16 → f32**: the 16 bits shifted up.
//!
//! The f16 → f32 row conversion runs a SIMD body chosen at run time ([`arch`]: F16C or
//! AVX-512 `vcvtph2ps`, exact like the scalar path). [`first_non_finite`] is the
//! branch-free check the quantize pipeline runs on every decoded row.

pub mod arch;

use half::{bf16, f16};

/// Converts one f32 to f16 bits exactly as ggml's `GGML_FP32_TO_FP16` does.
#[inline(always)]
pub fn f32_to_f16_bits(f: f32) -> u16 {
    // 2^112 and 2^-110: together they push the value to where f32 rounding equals f16 rounding
    // and bring overflowing values to infinity.
    const SCALE_TO_INF: f32 = f32::from_bits(0x7780_0000);
    const SCALE_TO_ZERO: f32 = f32::from_bits(0x0880_0000);
    let mut base = (f.abs() * SCALE_TO_INF) * SCALE_TO_ZERO;

    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    // The exponent of the input (or the smallest f16 normal exponent), as a rounding bias.
    let bias = (shl1_w & 0xFF00_0000).max(0x7100_0000);
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7C00;
    let mantissa_bits = bits & 0x0000_0FFF;
    let nonsign = exp_bits + mantissa_bits;
    let magnitude = if shl1_w > 0xFF00_0000 {
        0x7E00
    } else {
        nonsign
    };
    ((sign >> 16) | magnitude) as u16
}

/// Converts one f32 to [`half::f16`] with ggml's rounding (see [`f32_to_f16_bits`]).
#[inline(always)]
pub fn f32_to_f16(f: f32) -> f16 {
    f16::from_bits(f32_to_f16_bits(f))
}

/// Converts one f32 to bf16 bits exactly as ggml's `GGML_FP32_TO_BF16` does.
#[inline(always)]
pub fn f32_to_bf16_bits(f: f32) -> u16 {
    let u = f.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        // NaN: keep sign and top payload bits, force the quiet bit.
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// Converts one f32 to [`half::bf16`] with ggml's rounding (see [`f32_to_bf16_bits`]).
#[inline(always)]
pub fn f32_to_bf16(f: f32) -> bf16 {
    bf16::from_bits(f32_to_bf16_bits(f))
}

/// Converts a row of f32 to f16 (ggml's rounding).
///
/// # Panics
/// If `x.len() != out.len()` (a caller bug).
pub fn f32_to_f16_row(x: &[f32], out: &mut [f16]) {
    assert_eq!(x.len(), out.len(), "f32_to_f16_row: length mismatch");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f32_to_f16(v);
    }
}

/// Converts a row of f16 to f32 (exact).
///
/// # Panics
/// If `x.len() != out.len()` (a caller bug).
pub fn f16_to_f32_row(x: &[f16], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "f16_to_f32_row: length mismatch");
    arch::f16_to_f32(bytemuck::cast_slice(x), out);
}

/// The index and value of the first NaN or infinity in `x`, if any. Checks 64 values at a
/// time without branching inside a group (so the loop vectorises) and looks for the index only
/// when a group holds one.
pub fn first_non_finite(x: &[f32]) -> Option<(usize, f32)> {
    const EXP: u32 = 0x7f80_0000;
    for (g, chunk) in x.chunks(64).enumerate() {
        let any = chunk
            .iter()
            .fold(false, |acc, v| acc | (v.to_bits() & EXP == EXP));
        if any {
            return chunk
                .iter()
                .position(|v| !v.is_finite())
                .map(|i| (g * 64 + i, chunk[i]));
        }
    }
    None
}

/// Converts a row of f32 to bf16 (ggml's rounding).
///
/// # Panics
/// If `x.len() != out.len()` (a caller bug).
pub fn f32_to_bf16_row(x: &[f32], out: &mut [bf16]) {
    assert_eq!(x.len(), out.len(), "f32_to_bf16_row: length mismatch");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f32_to_bf16(v);
    }
}

/// Converts a row of bf16 to f32 (exact: the bits shifted up).
///
/// # Panics
/// If `x.len() != out.len()` (a caller bug).
pub fn bf16_to_f32_row(x: &[bf16], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "bf16_to_f32_row: length mismatch");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f32::from_bits(u32::from(v.to_bits()) << 16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent round-to-nearest-even f32 → f16 written from the IEEE definition with
    /// integer arithmetic, to check the bit-trick against.
    fn f16_rne_model(f: f32) -> u16 {
        let w = f.to_bits();
        let sign = ((w >> 16) & 0x8000) as u16;
        let exp = ((w >> 23) & 0xff) as i32;
        let man = w & 0x007f_ffff;
        if exp == 0xff {
            return if man != 0 {
                sign | 0x7E00
            } else {
                sign | 0x7C00
            };
        }
        // Value = m · 2^(e) with m integer (24-bit with hidden bit).
        let (m, e) = if exp == 0 {
            (man as u64, -149)
        } else {
            ((man | 0x0080_0000) as u64, exp - 150)
        };
        if m == 0 {
            return sign;
        }
        // Target: integer q with value q · 2^(-24) for subnormals, or normal with 11-bit mantissa.
        // Find the f16 exponent: value in [2^E, 2^(E+1)).
        let top = 63 - m.leading_zeros() as i32; // bit index of MSB
        let ev = top + e; // floor(log2(value))
        let shift_exp = if ev < -14 { -24 } else { ev - 10 }; // quantum exponent
        let sh = shift_exp - e; // how many bits to drop (may be negative)
        let q: u64 = if sh <= 0 {
            m << (-sh)
        } else if sh >= 64 {
            0
        } else {
            let q = m >> sh;
            let rem = m & ((1u64 << sh) - 1);
            let half = 1u64 << (sh - 1);
            if rem > half || (rem == half && (q & 1) == 1) {
                q + 1
            } else {
                q
            }
        };
        // Assemble: q · 2^shift_exp.
        if shift_exp == -24 {
            // subnormal (q may have rounded up to 1024 = smallest normal: bits line up anyway)
            return sign | q as u16;
        }
        let mut q = q;
        let mut ex = shift_exp + 10; // unbiased exponent of q's MSB
        if q >= 2048 {
            q >>= 1;
            ex += 1;
        }
        if ex > 15 {
            return sign | 0x7C00;
        }
        sign | (((ex + 15) as u16) << 10) | ((q as u16) & 0x3ff)
    }

    #[test]
    fn f16_matches_rne_model_on_a_sweep_of_bit_patterns() {
        // Every 251st bit pattern (a prime stride hits every exponent, both signs and many
        // mantissa tails) plus the interesting edges.
        let mut checked = 0u64;
        let mut b: u32 = 0;
        loop {
            let f = f32::from_bits(b);
            assert_eq!(
                f32_to_f16_bits(f),
                f16_rne_model(f),
                "bits {b:#010x} ({f:e})"
            );
            checked += 1;
            match b.checked_add(251) {
                Some(n) => b = n,
                None => break,
            }
        }
        assert!(checked > 17_000_000);
    }

    #[test]
    fn f16_edges() {
        let cases: &[(f32, u16)] = &[
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (1.0, 0x3C00),
            (65504.0, 0x7BFF),
            (-65504.0, 0xFBFF),
            (65519.99, 0x7BFF), // rounds down to max
            (65520.0, 0x7C00),  // tie rounds to even → inf
            (f32::INFINITY, 0x7C00),
            (f32::NEG_INFINITY, 0xFC00),
            (5.960_464_5e-8, 0x0001), // smallest subnormal
            (2.980_232_2e-8, 0x0000), // half of it: tie to even → 0
            (2.980_233e-8, 0x0001),   // just above the tie
            (6.103_515_6e-5, 0x0400), // smallest normal
            (1.000_488_3, 0x3C00),    // 1 + 2^-11: tie → even (1.0)
            (1.001_464_8, 0x3C02),    // 1 + 3·2^-11: tie → even (up)
        ];
        for &(f, bits) in cases {
            assert_eq!(f32_to_f16_bits(f), bits, "{f:e}");
        }
        assert_eq!(f32_to_f16_bits(f32::NAN), 0x7E00);
        assert_eq!(f32_to_f16_bits(-f32::NAN), 0xFE00);
        assert_eq!(f32_to_f16_bits(f32::from_bits(0x7f80_0001)), 0x7E00);
    }

    #[test]
    fn f16_agrees_with_half_crate_on_finite_values() {
        // `half` rounds to nearest even too; they differ only in NaN payloads.
        let mut b: u32 = 7;
        while let Some(n) = b.checked_add(65_537) {
            let f = f32::from_bits(b);
            if !f.is_nan() {
                assert_eq!(f32_to_f16_bits(f), f16::from_f32(f).to_bits(), "{b:#x}");
            }
            b = n;
        }
    }

    #[test]
    fn bf16_rounding_and_nan() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3F80);
        // 1 + 2^-8 is a tie between 0x3F80 and 0x3F81: even wins.
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3F80_8000)), 0x3F80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3F81_8000)), 0x3F82);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3F80_8001)), 0x3F81);
        // Max finite f32 rounds up to infinity.
        assert_eq!(f32_to_bf16_bits(f32::MAX), 0x7F80);
        // Subnormals are rounded, not flushed.
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x0000_8000)), 0x0000);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x0001_8000)), 0x0002);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x0001_7fff)), 0x0001);
        // Signalling NaN gets the quiet bit; payload's top bits kept.
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7f80_0001)), 0x7FC0);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0xff81_0000)), 0xFFC1);
        assert_eq!(f32_to_bf16_bits(f32::INFINITY), 0x7F80);
    }

    #[test]
    fn first_non_finite_finds_the_first_one() {
        let mut x = vec![1.5f32; 200];
        assert_eq!(first_non_finite(&x), None);
        x[130] = f32::NEG_INFINITY;
        x[199] = f32::NAN;
        assert_eq!(first_non_finite(&x), Some((130, f32::NEG_INFINITY)));
        x[130] = f32::MAX;
        let (i, v) = first_non_finite(&x).unwrap();
        assert!(i == 199 && v.is_nan());
        assert_eq!(first_non_finite(&[]), None);
    }

    #[test]
    fn rows_round_trip() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) * 0.37).collect();
        let mut h = vec![f16::ZERO; x.len()];
        let mut b = vec![bf16::ZERO; x.len()];
        f32_to_f16_row(&x, &mut h);
        f32_to_bf16_row(&x, &mut b);
        let mut back = vec![0.0; x.len()];
        f16_to_f32_row(&h, &mut back);
        for (a, r) in x.iter().zip(&back) {
            assert!((a - r).abs() <= a.abs() * 2f32.powi(-11));
        }
        bf16_to_f32_row(&b, &mut back);
        for (a, r) in x.iter().zip(&back) {
            assert!((a - r).abs() <= a.abs() * 2f32.powi(-8));
        }
    }
}
