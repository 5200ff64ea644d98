//! Instruction-set builds of the attention body ([`super::attention::attend_body`]), SwiGLU
//! ([`super::ops::swiglu_in_place`]) and RoPE ([`super::ops::rope_apply`]); the only place in
//! `llama` with `unsafe`.
//!
//! Each level is the same `#[inline(always)]` body compiled inside a `#[target_feature]`
//! function, so the compiler vectorises it with that level's registers and fused multiply-add;
//! the arithmetic (and so every bit of the result) is the same as the portable build. The
//! level follows the matmul kernels' choice ([`crate::kernels::Level`], `INGOT_KERNEL`), and
//! each call checks the CPU features again before entering a `#[target_feature]` function.

use crate::kernels::Level;

use super::attention::attend_body;
use super::ops::{rope_apply, swiglu_in_place, RopeStyle, RopeTable};

/// Calls the `$avx512` or `$avx2` build of `x86_64` when `level` asks for it and the CPU has
/// its features, else the portable `$portable`.
macro_rules! dispatch {
    ($level:expr, $avx512:ident, $avx2:ident, $portable:path, ($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        match $level {
            Level::Avx512 if x86_64::has_avx512() => {
                // SAFETY: `has_avx512` just confirmed avx512f, avx2 and fma, the features every
                // `*_avx512` build in `x86_64` is compiled with.
                return unsafe { x86_64::$avx512($($arg),*) };
            }
            Level::Avx2 | Level::Avx512 if x86_64::has_avx2() => {
                // SAFETY: `has_avx2` just confirmed avx2 and fma, the features every `*_avx2`
                // build in `x86_64` is compiled with.
                return unsafe { x86_64::$avx2($($arg),*) };
            }
            _ => {}
        }
        let _ = $level;
        $portable($($arg),*)
    }};
}

/// `gate = silu(gate) ⊙ up` ([`swiglu_in_place`]) with the build for `level`.
pub fn swiglu(level: Level, gate: &mut [f32], up: &[f32]) {
    dispatch!(
        level,
        swiglu_avx512,
        swiglu_avx2,
        swiglu_in_place,
        (gate, up)
    )
}

/// RoPE ([`RopeTable::apply`]) with the build for `level`.
pub fn rope(level: Level, table: &RopeTable, x: &mut [f32], head_dim: usize, style: RopeStyle) {
    dispatch!(
        level,
        rope_avx512,
        rope_avx2,
        rope_apply,
        (table, x, head_dim, style)
    )
}

/// Attention of `q`'s rows over `n_kv` cached keys (layouts as in
/// [`super::attention::attend_body`]) with the build for `level`, falling back to the portable
/// build when the CPU lacks the level's features.
#[allow(clippy::too_many_arguments)]
pub fn attend(
    level: Level,
    q: &[f32],
    kt: &[f32],
    v: &[f32],
    head_dim: usize,
    n_kv: usize,
    scale: f32,
    out: &mut [f32],
) {
    dispatch!(
        level,
        attend_avx512,
        attend_avx2,
        attend_body,
        (q, kt, v, head_dim, n_kv, scale, out)
    )
}

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use super::{attend_body, rope_apply, swiglu_in_place, RopeStyle, RopeTable};

    pub(super) fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    pub(super) fn has_avx512() -> bool {
        has_avx2() && is_x86_feature_detected!("avx512f")
    }

    /// Defines `$name`: `$body` compiled with the target features `$features`.
    macro_rules! build {
        ($name:ident, $features:literal, $body:ident($($arg:ident: $ty:ty),*)) => {
            #[doc = concat!("[`", stringify!($body), "`] built with ", $features, ".")]
            #[target_feature(enable = $features)]
            pub(super) fn $name($($arg: $ty),*) {
                $body($($arg),*)
            }
        };
    }

    macro_rules! attend_build {
        ($name:ident, $features:literal) => {
            build!($name, $features, attend_body(q: &[f32], kt: &[f32], v: &[f32],
                head_dim: usize, n_kv: usize, scale: f32, out: &mut [f32]));
        };
    }

    attend_build!(attend_avx2, "avx2,fma");
    attend_build!(attend_avx512, "avx512f,avx2,fma");
    build!(swiglu_avx2, "avx2,fma", swiglu_in_place(gate: &mut [f32], up: &[f32]));
    build!(swiglu_avx512, "avx512f,avx2,fma", swiglu_in_place(gate: &mut [f32], up: &[f32]));
    build!(rope_avx2, "avx2,fma", rope_apply(t: &RopeTable, x: &mut [f32], head_dim: usize,
        style: RopeStyle));
    build!(rope_avx512, "avx512f,avx2,fma", rope_apply(t: &RopeTable, x: &mut [f32],
        head_dim: usize, style: RopeStyle));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::attention::{store_key, KV_TILE};

    /// Every level the CPU has gives the portable build's bits exactly (same operations in the
    /// same order); odd head sizes and lengths around the tile edges included.
    #[test]
    fn every_level_equals_the_portable_build() {
        let mut ran = 0;
        for level in Level::ALL {
            if !level.is_supported() {
                continue;
            }
            ran += 1;
            for hd in [8usize, 24, 64, 128] {
                for n_kv in [1usize, 5, 64, 65, 129, 300] {
                    let n_tiles = n_kv.div_ceil(KV_TILE);
                    let mut kt = vec![0.0f32; n_tiles * hd * KV_TILE];
                    for p in 0..n_kv {
                        let k: Vec<f32> = (0..hd)
                            .map(|c| ((p * 31 + c * 7) % 23) as f32 * 0.17 - 1.9)
                            .collect();
                        store_key(&mut kt, hd, p, &k);
                    }
                    let v: Vec<f32> = (0..n_kv * hd)
                        .map(|i| ((i * 13) % 19) as f32 * 0.23 - 2.0)
                        .collect();
                    let q: Vec<f32> = (0..7 * hd)
                        .map(|i| ((i * 5) % 11) as f32 * 0.3 - 1.5)
                        .collect();
                    let mut want = vec![0.0f32; 7 * hd];
                    attend_body(&q, &kt, &v, hd, n_kv, 0.125, &mut want);
                    let mut got = vec![0.0f32; 7 * hd];
                    attend(level, &q, &kt, &v, hd, n_kv, 0.125, &mut got);
                    assert_eq!(
                        got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        "{level} hd {hd} n_kv {n_kv}"
                    );
                }
            }
        }
        assert!(ran >= 1);
    }

    #[test]
    fn every_level_swiglu_equals_the_portable_build() {
        let x: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) * 0.037).collect();
        let u: Vec<f32> = (0..1001)
            .map(|i| ((i * 7) % 13) as f32 * 0.2 - 1.1)
            .collect();
        let mut want = x.clone();
        swiglu_in_place(&mut want, &u);
        for level in Level::ALL.into_iter().filter(|l| l.is_supported()) {
            let mut got = x.clone();
            swiglu(level, &mut got, &u);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{level}"
            );
        }
    }

    #[test]
    fn every_level_rope_equals_the_portable_build() {
        let t = RopeTable::new(0..37usize, 64, 100000.0, 1.0, None);
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let x: Vec<f32> = (0..37 * 3 * 64)
                .map(|i| ((i * 7) % 23) as f32 * 0.3 - 3.0)
                .collect();
            let mut want = x.clone();
            t.apply(&mut want, 64, style);
            for level in Level::ALL.into_iter().filter(|l| l.is_supported()) {
                let mut got = x.clone();
                rope(level, &t, &mut got, 64, style);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{level} {style:?}"
                );
            }
        }
    }
}
