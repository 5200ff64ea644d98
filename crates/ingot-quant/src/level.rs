//! The instruction-set levels the quantizers are compiled for, shared by the legacy and the
//! K-quant dispatch tables (each table says which levels it has on this CPU).

/// Environment variable that forces a level (`scalar`, `avx2`, `avx512`) for every quantizer
/// family, for tests and benchmarks. A forced level the CPU lacks is never silently replaced.
pub const LEVEL_ENV: &str = "INGOT_QUANT_KERNEL";

/// An instruction-set level, from slowest to fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Portable Rust, compiled for the target's baseline; available everywhere.
    Scalar,
    /// x86-64 AVX2 + FMA (256-bit vectors).
    Avx2,
    /// x86-64 AVX-512 F/BW/DQ/VL on top of AVX2.
    Avx512,
}

impl Level {
    /// Every level, slowest first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    /// The name [`LEVEL_ENV`] uses.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a [`LEVEL_ENV`] value (ASCII case-insensitive, surrounding space ignored).
    pub fn parse(value: &str) -> Option<Level> {
        let v = value.trim();
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(v))
    }
}
