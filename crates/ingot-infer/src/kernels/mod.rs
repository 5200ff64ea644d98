//! Runtime-dispatched CPU kernels: quantized dot products, activation quantizers and row
//! dequantizers, as one table of safe function pointers per instruction-set level.
//!
//! ```text
//! level  = INGOT_KERNEL (scalar | avx2 | avx512) if set, else the best the CPU has
//! table  = SCALAR | arch::x86_64::avx2::table() | arch::x86_64::avx512::table()
//!          (an arch table is only handed out after is_x86_feature_detected! said yes)
//! cached once in a OnceLock; kernels() returns &'static Kernels
//! ```
//!
//! A level the CPU lacks is an error ([`InferError::KernelUnavailable`]), never a silent
//! fallback: a benchmark forced to `avx512` measures AVX-512 or fails.
//!
//! Each weight type is paired with the activation type ggml's CPU backend uses for it
//! (`vec_dot_type` in `ggml-cpu.c`'s type traits): q8_0, q4_0, q5_0 → q8_0; q4_1, q5_1 →
//! q8_1; the K-quants → q8_K; f16, bf16, f32 → f32. [`scalar`] holds the references; the
//! SIMD paths live in `arch/` (the only place with `unsafe`, besides none at all here).

use std::sync::OnceLock;

use half::{bf16, f16};
use ingot_quant::blocks::{
    BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1,
};

use crate::InferError;

pub(crate) mod arch;
pub mod panel;
pub mod scalar;

/// Name of the environment variable that forces a kernel level.
pub const KERNEL_ENV: &str = "INGOT_KERNEL";

/// An instruction-set level, from slowest to fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Portable Rust; available everywhere.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL on top of AVX2 (using VNNI's `vpdpbusd` when the CPU has it).
    Avx512,
}

impl Level {
    /// Every level, slowest first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    /// The name `INGOT_KERNEL` uses.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses an `INGOT_KERNEL` value (ASCII case-insensitive, surrounding space ignored).
    pub fn parse(value: &str) -> Result<Level, InferError> {
        let v = value.trim();
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(v))
            .ok_or_else(|| InferError::UnknownKernelLevel {
                value: value.to_owned(),
            })
    }

    /// The first CPU feature this level needs and this CPU lacks, or `None` if it can run.
    pub fn missing_feature(self) -> Option<&'static str> {
        match self {
            Level::Scalar => None,
            Level::Avx2 | Level::Avx512 => arch::missing_feature(self),
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        self.missing_feature().is_none()
    }

    /// The fastest level this CPU supports.
    pub fn best() -> Level {
        *Level::ALL
            .iter()
            .rev()
            .find(|l| l.is_supported())
            .expect("the scalar level is always supported")
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A four-row GEMV kernel: four weight rows, one activation row, prefetch distance in bytes.
pub(crate) type Dot4Rows<W, A> = fn([&[W]; 4], &[A], usize) -> [f32; 4];

/// One weight type's kernels against its activation type `A`.
pub struct Dot<W: 'static, A: 'static> {
    pub(crate) dot: fn(&[W], &[A]) -> f32,
    pub(crate) dot_x4: fn(&[W], [&[A]; 4]) -> [f32; 4],
    pub(crate) dot_4rows: Option<Dot4Rows<W, A>>,
    pub(crate) dequantize: fn(&[W], &mut [f32]),
}

impl<W, A> Clone for Dot<W, A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W, A> Copy for Dot<W, A> {}

impl<W, A> Dot<W, A> {
    /// Dot product of one weight row with one activation row (same number of blocks).
    ///
    /// # Panics
    /// If the lengths differ (a caller bug; [`crate::matmul`] validates shapes first).
    #[inline]
    pub fn dot(&self, w: &[W], a: &[A]) -> f32 {
        (self.dot)(w, a)
    }

    /// One weight row against four activation rows: the GEMM micro-kernel, which decodes each
    /// weight block once for four columns.
    ///
    /// # Panics
    /// If any length differs from `w.len()`.
    #[inline]
    pub fn dot_x4(&self, w: &[W], a: [&[A]; 4]) -> [f32; 4] {
        (self.dot_x4)(w, a)
    }

    /// Whether this level has a dedicated four-row kernel for the type (see
    /// [`Dot::dot_4rows`]).
    #[inline]
    pub fn has_dot_4rows(&self) -> bool {
        self.dot_4rows.is_some()
    }

    /// Four weight rows against one activation row: the GEMV micro-kernel, which loads each
    /// activation block once for four rows. Result r equals `dot(w[r], a)` bit for bit, so a
    /// GEMV gives the same numbers whichever of the two it calls.
    ///
    /// As it reads each weight block, the kernel asks for the bytes `prefetch_ahead` further
    /// on to be brought into L2 (0: no prefetch). A GEMV over contiguous rows passes four
    /// rows' bytes, so the next group streams in from DRAM, spread over this group's work,
    /// instead of in one burst. Prefetching has no effect on the results.
    ///
    /// Without a dedicated kernel ([`Dot::has_dot_4rows`] is false) this is four [`Dot::dot`]
    /// calls, with no prefetch.
    ///
    /// # Panics
    /// If any `w[r].len()` differs from `a.len()`.
    #[inline]
    pub fn dot_4rows(&self, w: [&[W]; 4], a: &[A], prefetch_ahead: usize) -> [f32; 4] {
        match self.dot_4rows {
            Some(f) => f(w, a, prefetch_ahead),
            None => w.map(|wr| (self.dot)(wr, a)),
        }
    }

    /// Dequantizes a row of blocks into `out` (block elements × `w.len()` values).
    ///
    /// # Panics
    /// If `out` has the wrong length.
    #[inline]
    pub fn dequantize(&self, w: &[W], out: &mut [f32]) {
        (self.dequantize)(w, out)
    }
}

/// An activation quantizer f32 → `A`.
pub struct Quantize<A: 'static> {
    pub(crate) f: fn(&[f32], &mut [A]),
}

impl<A> Clone for Quantize<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A> Copy for Quantize<A> {}

impl<A> Quantize<A> {
    /// Quantizes `x` (block elements × `out.len()` values) into `out`.
    ///
    /// # Panics
    /// If the lengths do not match.
    #[inline]
    pub fn quantize(&self, x: &[f32], out: &mut [A]) {
        (self.f)(x, out)
    }
}

/// Every kernel of one level. Obtained from [`kernels`], [`try_kernels`] or
/// [`Kernels::for_level`]; cannot be built outside this crate, so an arch table is only
/// reachable on a CPU that runs it.
pub struct Kernels {
    pub(crate) level: Level,
    pub(crate) variant: &'static str,
    /// q8_0 · q8_0.
    pub q8_0: Dot<BlockQ8_0, BlockQ8_0>,
    /// q4_0 · q8_0.
    pub q4_0: Dot<BlockQ4_0, BlockQ8_0>,
    /// q4_1 · q8_1.
    pub q4_1: Dot<BlockQ4_1, BlockQ8_1>,
    /// q5_0 · q8_0.
    pub q5_0: Dot<BlockQ5_0, BlockQ8_0>,
    /// q5_1 · q8_1.
    pub q5_1: Dot<BlockQ5_1, BlockQ8_1>,
    /// q4_K · q8_K.
    pub q4_k: Dot<BlockQ4K, BlockQ8K>,
    /// q5_K · q8_K.
    pub q5_k: Dot<BlockQ5K, BlockQ8K>,
    /// q6_K · q8_K.
    pub q6_k: Dot<BlockQ6K, BlockQ8K>,
    /// q8_K · q8_K.
    pub q8_k: Dot<BlockQ8K, BlockQ8K>,
    /// f16 · f32 (element "blocks").
    pub f16: Dot<f16, f32>,
    /// bf16 · f32.
    pub bf16: Dot<bf16, f32>,
    /// f32 · f32.
    pub f32: Dot<f32, f32>,
    /// f32 → q8_0 activations.
    pub quantize_q8_0: Quantize<BlockQ8_0>,
    /// f32 → q8_1 activations.
    pub quantize_q8_1: Quantize<BlockQ8_1>,
    /// f32 → q8_K activations (with bsums).
    pub quantize_q8_k: Quantize<BlockQ8K>,
    /// Panel (repacked) GEMM kernels, where this level has them (scalar: the reference;
    /// AVX-512 with VNNI: 512-bit bodies). `None`: matmul uses the dot micro-kernels.
    pub(crate) panel: Option<panel::PanelGemm>,
}

impl Kernels {
    /// The level these kernels run at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// A finer name for logs and benches (e.g. `avx512-vnni`).
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// The panel GEMM kernels of this level, if it has them (see [`panel`]).
    pub fn panel_gemm(&self) -> Option<&panel::PanelGemm> {
        self.panel.as_ref()
    }

    /// The table of one level, or [`InferError::KernelUnavailable`] if the CPU lacks it.
    pub fn for_level(level: Level) -> Result<&'static Kernels, InferError> {
        if let Some(missing) = level.missing_feature() {
            return Err(InferError::KernelUnavailable { level, missing });
        }
        Ok(match level {
            Level::Scalar => &SCALAR,
            _ => arch::table(level).ok_or(InferError::KernelUnavailable {
                level,
                missing: "architecture support",
            })?,
        })
    }
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels")
            .field("level", &self.level)
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

/// Prefetches `bytes` into the caches without waiting for them: the GEMV calls it on a row a
/// few rows ahead, because a dot kernel alone leaves too few misses in flight to stream W
/// from DRAM at full bandwidth.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    arch::prefetch(bytes)
}

/// Chooses the level from an `INGOT_KERNEL` value (`None` = unset: the best supported).
pub fn select(env_value: Option<&str>) -> Result<&'static Kernels, InferError> {
    match env_value {
        None => Kernels::for_level(Level::best()),
        Some(v) => Kernels::for_level(Level::parse(v)?),
    }
}

/// A cached selection failure: the bad env value, or the unavailable level and missing feature
/// (`InferError` itself is not `Clone`).
type Cached = Result<&'static Kernels, (Option<String>, Level, &'static str)>;

/// The cached choice: the env var is read once per process.
fn cached() -> &'static Cached {
    static ACTIVE: OnceLock<Cached> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        let value = std::env::var(KERNEL_ENV).ok();
        select(value.as_deref()).map_err(|e| match e {
            InferError::UnknownKernelLevel { value } => (Some(value), Level::Scalar, ""),
            InferError::KernelUnavailable { level, missing } => (None, level, missing),
            _ => (None, Level::Scalar, "unexpected selection error"),
        })
    })
}

/// The process-wide kernels: `INGOT_KERNEL`'s level if set, else the best the CPU runs.
pub fn try_kernels() -> Result<&'static Kernels, InferError> {
    match cached() {
        Ok(k) => Ok(k),
        Err((Some(value), _, _)) => Err(InferError::UnknownKernelLevel {
            value: value.clone(),
        }),
        Err((None, level, missing)) => Err(InferError::KernelUnavailable {
            level: *level,
            missing,
        }),
    }
}

/// Like [`try_kernels`], for callers that treat a bad `INGOT_KERNEL` as fatal.
///
/// # Panics
/// If `INGOT_KERNEL` names an unknown level or one this CPU lacks.
pub fn kernels() -> &'static Kernels {
    match try_kernels() {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    }
}

/// Defines a four-column kernel as four single dot products (for types without a dedicated
/// micro-kernel).
macro_rules! x4_via_dot {
    ($name:ident, $dot:path, $w:ty, $a:ty) => {
        fn $name(w: &[$w], a: [&[$a]; 4]) -> [f32; 4] {
            a.map(|ai| $dot(w, ai))
        }
    };
}
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_imports))]
pub(crate) use x4_via_dot;

x4_via_dot!(q8_0_x4, scalar::vec_dot_q8_0_q8_0, BlockQ8_0, BlockQ8_0);
x4_via_dot!(q4_0_x4, scalar::vec_dot_q4_0_q8_0, BlockQ4_0, BlockQ8_0);
x4_via_dot!(q4_1_x4, scalar::vec_dot_q4_1_q8_1, BlockQ4_1, BlockQ8_1);
x4_via_dot!(q5_0_x4, scalar::vec_dot_q5_0_q8_0, BlockQ5_0, BlockQ8_0);
x4_via_dot!(q5_1_x4, scalar::vec_dot_q5_1_q8_1, BlockQ5_1, BlockQ8_1);
x4_via_dot!(q4_k_x4, scalar::vec_dot_q4_k_q8_k, BlockQ4K, BlockQ8K);
x4_via_dot!(q5_k_x4, scalar::vec_dot_q5_k_q8_k, BlockQ5K, BlockQ8K);
x4_via_dot!(q6_k_x4, scalar::vec_dot_q6_k_q8_k, BlockQ6K, BlockQ8K);
x4_via_dot!(q8_k_x4, scalar::vec_dot_q8_k_q8_k, BlockQ8K, BlockQ8K);
x4_via_dot!(f16_x4, scalar::vec_dot_f16_f32, f16, f32);
x4_via_dot!(bf16_x4, scalar::vec_dot_bf16_f32, bf16, f32);
x4_via_dot!(f32_x4, scalar::vec_dot_f32_f32, f32, f32);

/// The portable table.
pub(crate) static SCALAR: Kernels = Kernels {
    level: Level::Scalar,
    variant: "scalar",
    q8_0: Dot {
        dot: scalar::vec_dot_q8_0_q8_0,
        dot_x4: q8_0_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q8_0,
    },
    q4_0: Dot {
        dot: scalar::vec_dot_q4_0_q8_0,
        dot_x4: q4_0_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q4_0,
    },
    q4_1: Dot {
        dot: scalar::vec_dot_q4_1_q8_1,
        dot_x4: q4_1_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q4_1,
    },
    q5_0: Dot {
        dot: scalar::vec_dot_q5_0_q8_0,
        dot_x4: q5_0_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q5_0,
    },
    q5_1: Dot {
        dot: scalar::vec_dot_q5_1_q8_1,
        dot_x4: q5_1_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q5_1,
    },
    q4_k: Dot {
        dot: scalar::vec_dot_q4_k_q8_k,
        dot_x4: q4_k_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q4_k,
    },
    q5_k: Dot {
        dot: scalar::vec_dot_q5_k_q8_k,
        dot_x4: q5_k_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q5_k,
    },
    q6_k: Dot {
        dot: scalar::vec_dot_q6_k_q8_k,
        dot_x4: q6_k_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q6_k,
    },
    q8_k: Dot {
        dot: scalar::vec_dot_q8_k_q8_k,
        dot_x4: q8_k_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_q8_k,
    },
    f16: Dot {
        dot: scalar::vec_dot_f16_f32,
        dot_x4: f16_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_f16,
    },
    bf16: Dot {
        dot: scalar::vec_dot_bf16_f32,
        dot_x4: bf16_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_bf16,
    },
    f32: Dot {
        dot: scalar::vec_dot_f32_f32,
        dot_x4: f32_x4,
        dot_4rows: None,
        dequantize: scalar::dequantize_row_f32,
    },
    quantize_q8_0: Quantize {
        f: scalar::quantize_row_q8_0,
    },
    quantize_q8_1: Quantize {
        f: scalar::quantize_row_q8_1,
    },
    quantize_q8_k: Quantize {
        f: scalar::quantize_row_q8_k,
    },
    panel: Some(panel::SCALAR_PANEL),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_levels_and_reject_unknown() {
        assert_eq!(Level::parse(" scalar ").unwrap(), Level::Scalar);
        assert_eq!(Level::parse("AVX2").unwrap(), Level::Avx2);
        assert_eq!(Level::parse("avx512").unwrap(), Level::Avx512);
        assert!(matches!(
            Level::parse("sse9"),
            Err(InferError::UnknownKernelLevel { value }) if value == "sse9"
        ));
        assert!(matches!(
            select(Some("neon")),
            Err(InferError::UnknownKernelLevel { .. })
        ));
    }

    #[test]
    fn for_level_matches_support() {
        for level in Level::ALL {
            match Kernels::for_level(level) {
                Ok(k) => {
                    assert!(level.is_supported());
                    assert_eq!(k.level(), level, "asked {level}, got {}", k.level());
                }
                Err(InferError::KernelUnavailable { level: l, missing }) => {
                    assert_eq!(l, level);
                    assert_eq!(level.missing_feature(), Some(missing));
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(select(None).unwrap().level(), Level::best());
    }
}
