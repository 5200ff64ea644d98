//! Run-time selected SIMD bodies for the f16 → f32 row conversion, the hot loop of quantizing
//! an F16 model (every weight passes through it once).
//!
//! ```text
//! level = INGOT_FLOAT_ARCH (scalar | f16c) if set, else the best the CPU has:
//!         f16c    AVX + F16C vcvtph2ps, 8 values per instruction
//!         scalar  half::f16::to_f32 per value
//! detected once into a OnceLock table of safe function pointers
//! ```
//!
//! `vcvtph2ps` is exact for every input (each f16 is an f32; subnormals are converted, not
//! flushed — the instruction ignores MXCSR.DAZ; NaNs keep their payload with the quiet bit
//! set, while the scalar path keeps a signalling NaN's payload unchanged: the only difference,
//! and one the quantize pipeline never sees because it rejects non-finite input). The SIMD
//! body handles the tail shorter than its width with the scalar loop. One 8-wide conversion
//! per cycle is far more than memory delivers, so no AVX-512 level is needed (its intrinsics
//! would also need a newer Rust than the workspace's `rust-version`).

use std::sync::OnceLock;

/// Environment variable that forces a level (for tests and comparisons).
pub const FLOAT_ARCH_ENV: &str = "INGOT_FLOAT_ARCH";

/// An instruction-set level of the conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Portable Rust, one value at a time.
    Scalar,
    /// x86-64 AVX + F16C, 8 values at a time.
    F16c,
}

impl Level {
    /// The name `INGOT_FLOAT_ARCH` uses.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::F16c => "f16c",
        }
    }

    /// Every level, slowest first.
    pub const ALL: [Level; 2] = [Level::Scalar, Level::F16c];

    /// Whether this CPU can run the level.
    pub fn is_available(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::F16c => {
                std::arch::is_x86_feature_detected!("avx")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The f16 → f32 row conversion of this level, or `None` when the CPU lacks it.
    pub fn f16_to_f32(self) -> Option<F16ToF32> {
        if !self.is_available() {
            return None;
        }
        Some(match self {
            Level::Scalar => f16_to_f32_scalar,
            #[cfg(target_arch = "x86_64")]
            Level::F16c => x86::f16_to_f32_f16c,
            #[cfg(not(target_arch = "x86_64"))]
            _ => return None,
        })
    }
}

/// A row conversion: f16 bits in, f32 out, equal lengths.
pub type F16ToF32 = fn(&[u16], &mut [f32]);

/// The selected level and its function.
struct Table {
    level: Level,
    f16_to_f32: F16ToF32,
}

static TABLE: OnceLock<Table> = OnceLock::new();

fn table() -> &'static Table {
    TABLE.get_or_init(|| {
        let forced = std::env::var(FLOAT_ARCH_ENV).ok();
        let level = match forced.as_deref() {
            // A forced level the CPU lacks falls back to the best available; the tests'
            // guard (`selected_level`) catches a silently skipped forced path.
            Some(name) => Level::ALL
                .into_iter()
                .find(|l| l.name() == name && l.is_available()),
            None => None,
        }
        .unwrap_or_else(|| {
            Level::ALL
                .into_iter()
                .rev()
                .find(|l| l.is_available())
                .unwrap_or(Level::Scalar)
        });
        Table {
            level,
            f16_to_f32: level.f16_to_f32().unwrap_or(f16_to_f32_scalar),
        }
    })
}

/// The level in use (after `INGOT_FLOAT_ARCH`).
pub fn selected_level() -> Level {
    table().level
}

/// f16 bits → f32 with the selected level. Lengths must be equal (checked by the caller).
#[inline]
pub(super) fn f16_to_f32(x: &[u16], out: &mut [f32]) {
    (table().f16_to_f32)(x, out)
}

/// The portable body (and every SIMD body's tail).
pub fn f16_to_f32_scalar(x: &[u16], out: &mut [f32]) {
    for (o, &h) in out.iter_mut().zip(x) {
        *o = half::f16::from_bits(h).to_f32();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};

    /// AVX + F16C: 8 values per `vcvtph2ps`. Safe to call only through the table / `Level`,
    /// which hand it out when the CPU has both features.
    pub(super) fn f16_to_f32_f16c(x: &[u16], out: &mut [f32]) {
        // SAFETY: this function is only reachable through `Level::f16_to_f32`, which returns it
        // only when `is_x86_feature_detected!("avx")` and `("f16c")` are true.
        unsafe { f16c_body(x, out) }
    }

    #[target_feature(enable = "avx,f16c")]
    unsafe fn f16c_body(x: &[u16], out: &mut [f32]) {
        let n = x.len().min(out.len());
        let whole = n / 8 * 8;
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 8 <= n, so the 16-byte load from x and the 32-byte store to out are
            // in bounds; the unaligned load/store intrinsics need no alignment.
            unsafe {
                let h = _mm_loadu_si128(x.as_ptr().add(i).cast::<__m128i>());
                _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
            }
            i += 8;
        }
        super::f16_to_f32_scalar(&x[whole..n], &mut out[whole..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f16 bit pattern, at odd offsets and lengths, through every available level.
    #[test]
    fn every_level_equals_scalar_on_all_bit_patterns() {
        let all: Vec<u16> = (0..=u16::MAX).collect();
        let mut want = vec![0f32; all.len()];
        f16_to_f32_scalar(&all, &mut want);
        let mut ran = 0;
        for level in Level::ALL {
            let Some(f) = level.f16_to_f32() else {
                continue;
            };
            ran += 1;
            for (start, len) in [(0, all.len()), (1, 37), (3, 15), (5, 16), (7, 1000), (9, 0)] {
                let x = &all[start..start + len];
                let mut got = vec![0f32; len];
                f(x, &mut got);
                for (k, (g, w)) in got.iter().zip(&want[start..start + len]).enumerate() {
                    let h = x[k];
                    let snan = h & 0x7c00 == 0x7c00 && h & 0x03ff != 0 && h & 0x0200 == 0;
                    if snan {
                        // vcvtph2ps quiets a signalling NaN; the scalar path keeps it.
                        assert!(g.is_nan(), "{} {h:#06x}", level.name());
                    } else {
                        assert_eq!(g.to_bits(), w.to_bits(), "{} {h:#06x}", level.name());
                    }
                }
            }
        }
        assert!(ran >= 1);
    }

    /// A forced level must be the one in use: guards against a test run that believes it
    /// exercised a SIMD path but silently ran another.
    #[test]
    fn forced_level_is_not_silently_skipped() {
        if let Ok(name) = std::env::var(FLOAT_ARCH_ENV) {
            assert_eq!(selected_level().name(), name);
        } else {
            let best = Level::ALL.into_iter().rev().find(|l| l.is_available());
            assert_eq!(Some(selected_level()), best);
        }
    }
}
