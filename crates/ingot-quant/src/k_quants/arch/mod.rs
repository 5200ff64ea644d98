//! Run-time choice of the instruction set the K-quant quantizers are compiled for.
//!
//! The quantizer bodies are ordinary safe Rust, `#[inline(always)]`, written over small arrays
//! (one sub-block per lane, see [`super::lanes`]). This module holds one table of safe function
//! pointers per level: [`Level::Scalar`] calls the bodies as compiled for the baseline target;
//! the x86-64 levels call the same bodies compiled inside `#[target_feature]` functions, where
//! the lane loops become AVX2 or AVX-512 vectors. Every level produces the same bytes (the lane
//! code performs the scalar operations in the scalar order, and Rust never fuses `a·b + c`):
//! the tests check each level by name against the scalar one.
//!
//! ```text
//! kernels() = OnceLock { INGOT_QUANT_KERNEL set ? that level (panics if unknown/unsupported)
//!                                                : the best level the CPU supports }
//! ```

use std::sync::OnceLock;

use super::lanes::Portable;
use super::{q2_k, q3_k, q4_k, q5_k, q6_k};

#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use crate::level::{Level, LEVEL_ENV as KERNEL_ENV};

/// Row quantizer without weights.
pub(crate) type RowFn<B> = fn(&[f32], &mut [B]);
/// Row quantizer with required importance weights.
pub(crate) type WeightedFn<B> = fn(&[f32], &[f32], &mut [B]);
/// Row quantizer with optional importance weights.
pub(crate) type BestFn<B> = fn(&[f32], Option<&[f32]>, &mut [B]);

/// One level's quantizers (row bodies, lengths already checked by the public wrappers).
pub struct Kernels {
    level: Level,
    pub(crate) q2k_ref: RowFn<q2_k::BlockQ2K>,
    pub(crate) q2k_best: BestFn<q2_k::BlockQ2K>,
    pub(crate) q3k_ref: RowFn<q3_k::BlockQ3K>,
    pub(crate) q3k_best: BestFn<q3_k::BlockQ3K>,
    pub(crate) q4k_ref: RowFn<q4_k::BlockQ4K>,
    pub(crate) q4k_ggml_weighted: WeightedFn<q4_k::BlockQ4K>,
    pub(crate) q4k_best: BestFn<q4_k::BlockQ4K>,
    pub(crate) q5k_ref: RowFn<q5_k::BlockQ5K>,
    pub(crate) q5k_ggml_weighted: WeightedFn<q5_k::BlockQ5K>,
    pub(crate) q5k_best: BestFn<q5_k::BlockQ5K>,
    pub(crate) q6k_ref: RowFn<q6_k::BlockQ6K>,
    pub(crate) q6k_ggml_weighted: WeightedFn<q6_k::BlockQ6K>,
    pub(crate) q6k_best: BestFn<q6_k::BlockQ6K>,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

/// Lists every row body once, as `field => body, (signature);`, and passes the list (after
/// any leading tokens given) to the macro `$m`: the scalar table, the x86-64 wrappers and their
/// tables are all generated from this one list.
macro_rules! for_each_body {
    ($m:ident { $($lead:tt)* }) => {
        $m! { $($lead)*;
            q2k_ref => q2_k::row_ref_body, (x: &[f32], o: &mut [q2_k::BlockQ2K]);
            q2k_best => q2_k::row_best_body,
                (x: &[f32], w: Option<&[f32]>, o: &mut [q2_k::BlockQ2K]);
            q3k_ref => q3_k::row_ref_body, (x: &[f32], o: &mut [q3_k::BlockQ3K]);
            q3k_best => q3_k::row_best_body,
                (x: &[f32], w: Option<&[f32]>, o: &mut [q3_k::BlockQ3K]);
            q4k_ref => q4_k::row_ref_body, (x: &[f32], o: &mut [q4_k::BlockQ4K]);
            q4k_ggml_weighted => q4_k::row_ggml_weighted_body,
                (x: &[f32], w: &[f32], o: &mut [q4_k::BlockQ4K]);
            q4k_best => q4_k::row_best_body,
                (x: &[f32], w: Option<&[f32]>, o: &mut [q4_k::BlockQ4K]);
            q5k_ref => q5_k::row_ref_body, (x: &[f32], o: &mut [q5_k::BlockQ5K]);
            q5k_ggml_weighted => q5_k::row_ggml_weighted_body,
                (x: &[f32], w: &[f32], o: &mut [q5_k::BlockQ5K]);
            q5k_best => q5_k::row_best_body,
                (x: &[f32], w: Option<&[f32]>, o: &mut [q5_k::BlockQ5K]);
            q6k_ref => q6_k::row_ref_body, (x: &[f32], o: &mut [q6_k::BlockQ6K]);
            q6k_ggml_weighted => q6_k::row_ggml_weighted_body,
                (x: &[f32], w: &[f32], o: &mut [q6_k::BlockQ6K]);
            q6k_best => q6_k::row_best_body,
                (x: &[f32], w: Option<&[f32]>, o: &mut [q6_k::BlockQ6K]);
        }
    };
}
use for_each_body;

/// The table whose entries are the bodies themselves (`$level` then the body list).
macro_rules! body_table {
    ($level:expr; $($name:ident => $body:path, ($($a:ident: $t:ty),*);)*) => {
        Kernels { level: $level, $($name: |$($a),*| $body(Portable, $($a),*),)* }
    };
}

static SCALAR: Kernels = for_each_body!(body_table { Level::Scalar });

impl Kernels {
    /// The level these quantizers run at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The table of `level`, or `None` when this CPU (or this build's architecture) lacks it.
    pub fn for_level(level: Level) -> Option<&'static Kernels> {
        match level {
            Level::Scalar => Some(&SCALAR),
            #[cfg(target_arch = "x86_64")]
            _ => x86_64::table(level),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    /// The fastest level this CPU supports.
    pub fn best() -> &'static Kernels {
        Level::ALL
            .into_iter()
            .rev()
            .find_map(Kernels::for_level)
            .unwrap_or(&SCALAR)
    }
}

/// The process-wide quantizers: [`KERNEL_ENV`]'s level if set, else [`Kernels::best`].
///
/// # Panics
/// If [`KERNEL_ENV`] names an unknown level or one this CPU lacks (a forced level must never be
/// skipped silently: tests rely on it).
pub fn kernels() -> &'static Kernels {
    static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();
    ACTIVE.get_or_init(|| match std::env::var(KERNEL_ENV) {
        Err(_) => Kernels::best(),
        Ok(v) => {
            let level = Level::parse(&v).unwrap_or_else(|| {
                panic!("{KERNEL_ENV}={v:?}: expected one of scalar, avx2, avx512")
            });
            Kernels::for_level(level)
                .unwrap_or_else(|| panic!("{KERNEL_ENV}={v}: this CPU does not support it"))
        }
    })
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;

    use super::*;

    /// Rows that exercise every branch of the searches: smooth data with outliers, all-zero,
    /// constant (positive and negative), denormal, f16-extreme and single-outlier blocks, and
    /// rows where every sub-block is constant but one.
    fn rows() -> Vec<Vec<f32>> {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32 - 0.5
        };
        let mut rows = Vec::new();
        let mut smooth: Vec<f32> = (0..1024).map(|_| uniform() * 0.1).collect();
        smooth[77] = 3.0;
        smooth[600] = -5.0;
        rows.push(smooth);
        rows.push(vec![0.0; 256]);
        rows.push(vec![0.75; 256]);
        rows.push(vec![-0.25; 256]);
        rows.push((0..256).map(|i| (i as f32 - 128.0) * 1e-40).collect());
        rows.push(
            (0..256)
                .map(|i| if i % 2 == 0 { 65504.0 } else { -65504.0 })
                .collect(),
        );
        let mut one = vec![0.0; 256];
        one[200] = 1.0;
        rows.push(one);
        let mut mixed: Vec<f32> = (0..512).map(|i| ((i / 32) as f32) * 0.01).collect();
        for (i, v) in mixed[300..332].iter_mut().enumerate() {
            *v = uniform() * (i as f32);
        }
        rows.push(mixed);
        rows.push((0..256).map(|_| uniform().abs() + 2.0).collect());
        rows
    }

    fn weights(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 0.05 + ((i * 37) % 101) as f32 / 7.0)
            .collect()
    }

    /// Runs every entry of `k` and of the scalar table on every test row and compares bytes.
    fn matches_scalar(k: &Kernels) {
        let sc = Kernels::for_level(Level::Scalar).expect("scalar always exists");
        macro_rules! check {
            ($block:ty, $field:ident, ref) => {
                for x in rows() {
                    let mut a = vec![<$block>::zeroed(); x.len() / 256];
                    let mut b = a.clone();
                    (k.$field)(&x, &mut a);
                    (sc.$field)(&x, &mut b);
                    assert_eq!(a, b, "{} on {:?}", stringify!($field), k.level());
                }
            };
            ($block:ty, $field:ident, weighted) => {
                for x in rows() {
                    let w = weights(x.len());
                    let mut a = vec![<$block>::zeroed(); x.len() / 256];
                    let mut b = a.clone();
                    (k.$field)(&x, &w, &mut a);
                    (sc.$field)(&x, &w, &mut b);
                    assert_eq!(a, b, "{} on {:?}", stringify!($field), k.level());
                }
            };
            ($block:ty, $field:ident, best) => {
                for x in rows() {
                    let w = weights(x.len());
                    for wo in [None, Some(&w[..])] {
                        let mut a = vec![<$block>::zeroed(); x.len() / 256];
                        let mut b = a.clone();
                        (k.$field)(&x, wo, &mut a);
                        (sc.$field)(&x, wo, &mut b);
                        assert_eq!(a, b, "{} on {:?}", stringify!($field), k.level());
                    }
                }
            };
        }
        check!(q2_k::BlockQ2K, q2k_ref, ref);
        check!(q2_k::BlockQ2K, q2k_best, best);
        check!(q3_k::BlockQ3K, q3k_ref, ref);
        check!(q3_k::BlockQ3K, q3k_best, best);
        check!(q4_k::BlockQ4K, q4k_ref, ref);
        check!(q4_k::BlockQ4K, q4k_ggml_weighted, weighted);
        check!(q4_k::BlockQ4K, q4k_best, best);
        check!(q5_k::BlockQ5K, q5k_ref, ref);
        check!(q5_k::BlockQ5K, q5k_ggml_weighted, weighted);
        check!(q5_k::BlockQ5K, q5k_best, best);
        check!(q6_k::BlockQ6K, q6k_ref, ref);
        check!(q6_k::BlockQ6K, q6k_ggml_weighted, weighted);
        check!(q6_k::BlockQ6K, q6k_best, best);
    }

    /// Runs `matches_scalar` for `level`, or explains the skip; a level forced through
    /// [`KERNEL_ENV`] must never be skipped.
    fn level_matches_scalar(level: Level) {
        match Kernels::for_level(level) {
            Some(k) => {
                assert_eq!(k.level(), level);
                matches_scalar(k);
            }
            None => {
                let forced = std::env::var(KERNEL_ENV).ok();
                assert!(
                    forced.as_deref().and_then(Level::parse) != Some(level),
                    "{KERNEL_ENV} forces {level:?} but this CPU lacks it"
                );
                eprintln!("skipped: this CPU lacks {level:?}");
            }
        }
    }

    #[test]
    fn avx2_matches_scalar() {
        level_matches_scalar(Level::Avx2);
    }

    #[test]
    fn avx512_matches_scalar() {
        level_matches_scalar(Level::Avx512);
    }

    #[test]
    fn forced_level_is_the_active_one() {
        if let Ok(v) = std::env::var(KERNEL_ENV) {
            assert_eq!(Some(kernels().level()), Level::parse(&v));
        } else {
            assert_eq!(kernels().level(), Kernels::best().level());
        }
    }

    #[test]
    fn level_names_round_trip() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.name()), Some(l));
            assert_eq!(Level::parse(&l.name().to_uppercase()), Some(l));
        }
        assert_eq!(Level::parse("sse9"), None);
    }
}
