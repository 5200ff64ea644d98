//! Instruction-set specific kernels. The only place in the crate with `unsafe`.

use super::{Kernels, Level};

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// The first CPU feature `level` needs that this CPU lacks (the architecture itself on
/// non-x86-64 targets).
pub(crate) fn missing_feature(level: Level) -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::missing_feature(level)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        match level {
            Level::Scalar => None,
            _ => Some("x86_64"),
        }
    }
}

/// The table of an arch level, only if this CPU runs it.
pub(crate) fn table(level: Level) -> Option<&'static Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::table(level)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        None
    }
}

/// Asks the caches for `bytes` ahead of use, one prefetch per 64-byte line (a no-op where
/// there is no prefetch instruction we use).
#[inline]
pub(crate) fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::prefetch(bytes)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = bytes;
    }
}
