//! Runtime dispatch of the legacy row quantizers: one table of safe function pointers per
//! instruction-set level. The only place in `legacy` with `unsafe` (in [`x86_64`]).
//!
//! ```text
//! level = INGOT_QUANT_KERNEL (scalar | avx2 | avx512) if set, else the best the CPU has
//! table = SCALAR | x86_64::table(level)   (handed out only after is_x86_feature_detected!)
//! cached once in a OnceLock; active() returns &'static Kernels
//! ```
//!
//! Every level runs the *same* `#[inline(always)]` row bodies of the type modules; the x86-64
//! levels compile them inside `#[target_feature]` wrappers, where LLVM vectorises their
//! fixed-size lane loops with AVX2 or AVX-512 registers. The bodies use only IEEE additions,
//! multiplications, divisions and comparisons in a fixed order (Rust never contracts `a·b + c`
//! into an FMA, nor reassociates sums), so every level produces the same bytes: the reference
//! quantizers stay bit-identical to ggml's, and the search gives the same blocks on any CPU.
//! The tests below check exactly that, level by level.

use std::sync::OnceLock;

use super::Effort;
use crate::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1};

#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use crate::level::{Level, LEVEL_ENV};

/// Row quantizer without importance weights.
pub type RefRow<B> = fn(&[f32], &mut [B]);
/// Row quantizer with optional importance weights and the effort for blocks without.
pub type SearchRow<B> = fn(&[f32], Option<&[f32]>, Effort, &mut [B]);

/// The legacy row quantizers of one level. The functions have the contracts of the type
/// modules' public functions (`x.len() == out.len() · 32`, weights as long as `x`; checked
/// there, before dispatch).
#[derive(Clone, Copy)]
pub struct Kernels {
    level: Level,
    /// ggml's `quantize_row_q8_0_ref`.
    pub q8_0_ref: RefRow<BlockQ8_0>,
    /// ggml's `quantize_row_q8_1_ref`.
    pub q8_1_ref: RefRow<BlockQ8_1>,
    /// ggml's `quantize_row_q4_0_ref`.
    pub q4_0_ref: RefRow<BlockQ4_0>,
    /// ggml's `quantize_row_q4_1_ref`.
    pub q4_1_ref: RefRow<BlockQ4_1>,
    /// ggml's `quantize_row_q5_0_ref`.
    pub q5_0_ref: RefRow<BlockQ5_0>,
    /// ggml's `quantize_row_q5_1_ref`.
    pub q5_1_ref: RefRow<BlockQ5_1>,
    /// ingot's Q4_0 search.
    pub q4_0: SearchRow<BlockQ4_0>,
    /// ingot's Q4_1 search.
    pub q4_1: SearchRow<BlockQ4_1>,
    /// ingot's Q5_0 search.
    pub q5_0: SearchRow<BlockQ5_0>,
    /// ingot's Q5_1 search.
    pub q5_1: SearchRow<BlockQ5_1>,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Kernels {
    /// The level these functions run at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The table of one level, or `None` if this CPU (or target) lacks it.
    pub fn for_level(level: Level) -> Option<&'static Kernels> {
        match level {
            Level::Scalar => Some(&SCALAR),
            #[cfg(target_arch = "x86_64")]
            _ => x86_64::table(level),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    /// The best level this CPU runs.
    pub fn best() -> &'static Kernels {
        Level::ALL
            .into_iter()
            .rev()
            .find_map(Kernels::for_level)
            .unwrap_or(&SCALAR)
    }
}

/// The process-wide table: [`LEVEL_ENV`]'s level if set, else the best this CPU runs.
///
/// # Panics
/// If [`LEVEL_ENV`] names an unknown level or one this CPU lacks: a forced level is never
/// silently replaced by another (a benchmark or test forced to `avx512` measures AVX-512 or
/// fails).
pub fn active() -> &'static Kernels {
    static ACTIVE: OnceLock<Result<&'static Kernels, String>> = OnceLock::new();
    let chosen = ACTIVE.get_or_init(|| match std::env::var(LEVEL_ENV) {
        Err(_) => Ok(Kernels::best()),
        Ok(v) => match Level::parse(&v) {
            None => Err(format!(
                "{LEVEL_ENV}={v:?}: unknown level (scalar, avx2 or avx512)"
            )),
            Some(level) => Kernels::for_level(level)
                .ok_or_else(|| format!("{LEVEL_ENV}={v:?}: this CPU cannot run that level")),
        },
    });
    match chosen {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    }
}

/// The portable table: the bodies compiled for the target's baseline.
static SCALAR: Kernels = Kernels {
    level: Level::Scalar,
    q8_0_ref: |x, o| super::q8_0::ref_row_body(x, o),
    q8_1_ref: |x, o| super::q8_1::ref_row_body(x, o),
    q4_0_ref: |x, o| super::q4_0::ref_row_body(x, o),
    q4_1_ref: |x, o| super::q4_1::ref_row_body(x, o),
    q5_0_ref: |x, o| super::q5_0::ref_row_body(x, o),
    q5_1_ref: |x, o| super::q5_1::ref_row_body(x, o),
    q4_0: |x, w, e, o| super::q4_0::search_row_body(x, w, e, o),
    q4_1: |x, w, e, o| super::q4_1::search_row_body(x, w, e, o),
    q5_0: |x, w, e, o| super::q5_0::search_row_body(x, w, e, o),
    q5_1: |x, w, e, o| super::q5_1::search_row_body(x, w, e, o),
};

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;

    use super::*;

    /// Deterministic uniform values in [−½, ½) (xorshift64*).
    fn uniform(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    /// Blocks that stress each step: ties at ±½ of a level, signed zeros, subnormals, ±65504,
    /// a lone outlier, constant and all-zero blocks, and ordinary data at several scales.
    fn blocks() -> Vec<[f32; 32]> {
        let mut next = uniform(0x2545_F491_4F6C_DD1D);
        let mut blocks: Vec<[f32; 32]> = Vec::new();
        for scale in [1e-6f32, 0.02, 1.0, 300.0] {
            for _ in 0..3 {
                blocks.push(std::array::from_fn(|_| next() * scale));
            }
        }
        blocks.push(std::array::from_fn(|j| (j as f32 - 16.0) * 0.5)); // ties
        blocks.push(std::array::from_fn(|j| (j as f32 + 0.5) / 7.5)); // ties of 15 levels
        blocks.push(std::array::from_fn(|j| if j % 3 == 0 { -0.0 } else { 0.0 }));
        blocks.push([0.0; 32]);
        blocks.push([0.7; 32]);
        blocks.push(std::array::from_fn(|j| f32::from_bits(1 + 997 * j as u32)));
        blocks.push(std::array::from_fn(|j| {
            if j % 2 == 0 {
                65504.0
            } else {
                -65504.0
            }
        }));
        blocks.push(std::array::from_fn(|j| {
            if j == 9 {
                -40.0
            } else {
                0.01 * next()
            }
        }));
        blocks.push(std::array::from_fn(|j| if j == 30 { 3.0 } else { 0.0 }));
        blocks.push(std::array::from_fn(|_| next().abs() + 10.0)); // offset, positive
        blocks.push(std::array::from_fn(|j| if j == 5 { 1e30 } else { -3e29 })); // f16 overflow
        blocks.push(std::array::from_fn(|j| if j < 16 { 1e-9 } else { -0.0 }));
        // Zero extremes of both signs, where only ggml's order decides which one is kept (on
        // the exact blocks, the stored min of Q4_1 shows it).
        for (a, b) in [(0.0f32, -0.0f32), (-0.0, 0.0)] {
            blocks.push(std::array::from_fn(|j| match j {
                0 => a,
                17 => b,
                _ => (j % 16) as f32,
            }));
        }
        for sign in [1.0f32, -1.0] {
            blocks.push(std::array::from_fn(|j| match j {
                0 => 0.0,
                9 => -0.0,
                _ => sign * (1.0 + j as f32),
            }));
            blocks.push(std::array::from_fn(|j| match j {
                3 => -0.0,
                20 => 0.0,
                _ => sign * (0.5 + j as f32),
            }));
        }
        blocks
    }

    /// Rows of 1, 3 and 7 blocks of [`blocks`].
    fn inputs() -> Vec<Vec<f32>> {
        let blocks = blocks();
        let mut rows = Vec::new();
        for (at, len) in [1usize, 3, 7].iter().cycle().take(12).enumerate() {
            let row: Vec<f32> = (0..*len)
                .flat_map(|k| blocks[(at + k * 5) % blocks.len()])
                .collect();
            rows.push(row);
        }
        rows
    }

    /// Weights for a row: none, random positive, with zero stretches, or with whole zero
    /// blocks (which fall back to plain error).
    fn weights(len: usize) -> Vec<Option<Vec<f32>>> {
        let random: Vec<f32> = (0..len)
            .map(|j| ((j * 7919 % 101) as f32 / 10.0).exp2() * 0.01)
            .collect();
        let holes: Vec<f32> = (0..len)
            .map(|j| if j % 32 < 20 { 0.0 } else { 1.0 + j as f32 })
            .collect();
        let zero_blocks: Vec<f32> = (0..len)
            .map(|j| {
                if (j / 32) % 5 == 2 {
                    0.0
                } else {
                    0.5 + (j % 7) as f32
                }
            })
            .collect();
        vec![None, Some(random), Some(holes), Some(zero_blocks)]
    }

    fn run_ref<B: bytemuck::Pod + Zeroable>(f: RefRow<B>, x: &[f32]) -> Vec<u8> {
        let mut out = vec![B::zeroed(); x.len() / 32];
        f(x, &mut out);
        bytemuck::cast_slice(&out).to_vec()
    }

    fn run_search<B: bytemuck::Pod + Zeroable>(
        f: SearchRow<B>,
        x: &[f32],
        w: Option<&[f32]>,
        effort: Effort,
    ) -> Vec<u8> {
        let mut out = vec![B::zeroed(); x.len() / 32];
        f(x, w, effort, &mut out);
        bytemuck::cast_slice(&out).to_vec()
    }

    fn same_search<B: bytemuck::Pod + Zeroable>(
        a: SearchRow<B>,
        b: SearchRow<B>,
        x: &[f32],
        w: Option<&[f32]>,
        what: &str,
    ) {
        for e in [Effort::Fast, Effort::Thorough] {
            assert_eq!(
                run_search(a, x, w, e),
                run_search(b, x, w, e),
                "{what} {e:?}"
            );
        }
    }

    /// Every function of `level` gives the scalar table's bytes.
    fn check_level(level: Level) {
        let Some(k) = Kernels::for_level(level) else {
            eprintln!("{}: not supported by this CPU, skipped", level.name());
            return;
        };
        assert_eq!(k.level(), level);
        let s = &SCALAR;
        for x in inputs() {
            let name = level.name();
            assert_eq!(
                run_ref(k.q8_0_ref, &x),
                run_ref(s.q8_0_ref, &x),
                "{name} q8_0"
            );
            assert_eq!(
                run_ref(k.q8_1_ref, &x),
                run_ref(s.q8_1_ref, &x),
                "{name} q8_1"
            );
            assert_eq!(
                run_ref(k.q4_0_ref, &x),
                run_ref(s.q4_0_ref, &x),
                "{name} q4_0"
            );
            assert_eq!(
                run_ref(k.q4_1_ref, &x),
                run_ref(s.q4_1_ref, &x),
                "{name} q4_1"
            );
            assert_eq!(
                run_ref(k.q5_0_ref, &x),
                run_ref(s.q5_0_ref, &x),
                "{name} q5_0"
            );
            assert_eq!(
                run_ref(k.q5_1_ref, &x),
                run_ref(s.q5_1_ref, &x),
                "{name} q5_1"
            );
            for w in weights(x.len()) {
                let w = w.as_deref();
                let tag = format!("{name} search, weights {}", w.is_some());
                same_search(k.q4_0, s.q4_0, &x, w, &format!("q4_0 {tag}"));
                same_search(k.q5_0, s.q5_0, &x, w, &format!("q5_0 {tag}"));
                same_search(k.q4_1, s.q4_1, &x, w, &format!("q4_1 {tag}"));
                same_search(k.q5_1, s.q5_1, &x, w, &format!("q5_1 {tag}"));
            }
        }
    }

    /// Rows long enough for the batched kernels (groups of 16 blocks plus a remainder): the
    /// edge-case blocks of [`blocks`] scattered among ordinary ones at several scales.
    fn long_rows() -> Vec<Vec<f32>> {
        let edge = blocks();
        let mut next = uniform(0x51_7CC1_B727_220A);
        let mut rows = Vec::new();
        for (r, n_blocks) in [16usize, 18, 33, 48, 64, 97].into_iter().enumerate() {
            let mut row = Vec::new();
            for b in 0..n_blocks {
                if (b + r) % 3 == 0 {
                    row.extend_from_slice(&edge[(b * 7 + r) % edge.len()]);
                } else {
                    let scale = [1e-3f32, 0.05, 1.0, 40.0][(b + r) % 4];
                    row.extend((0..32).map(|_| (next() + next() + next()) * scale));
                }
            }
            rows.push(row);
        }
        rows
    }

    /// The AVX-512 kernels (Q8_0, Q4_0, Q5_0, Q4_1 and Q5_1, batched by 16 blocks) against the
    /// scalar table on long rows.
    #[test]
    fn avx512_kernels_equal_scalar_on_long_rows() {
        let Some(k) = Kernels::for_level(Level::Avx512) else {
            eprintln!("avx512: not supported by this CPU, skipped");
            return;
        };
        let s = &SCALAR;
        for (r, x) in long_rows().iter().enumerate() {
            assert_eq!(
                run_ref(k.q8_0_ref, x),
                run_ref(s.q8_0_ref, x),
                "q8_0 row {r}"
            );
            assert_eq!(
                run_ref(k.q4_0_ref, x),
                run_ref(s.q4_0_ref, x),
                "q4_0 ref row {r}"
            );
            assert_eq!(
                run_ref(k.q5_0_ref, x),
                run_ref(s.q5_0_ref, x),
                "q5_0 ref row {r}"
            );
            for w in weights(x.len()) {
                let w = w.as_deref();
                let tag = format!("row {r}, weights {}", w.is_some());
                same_search(k.q4_0, s.q4_0, x, w, &format!("q4_0 {tag}"));
                same_search(k.q5_0, s.q5_0, x, w, &format!("q5_0 {tag}"));
                same_search(k.q4_1, s.q4_1, x, w, &format!("q4_1 {tag}"));
                same_search(k.q5_1, s.q5_1, x, w, &format!("q5_1 {tag}"));
            }
        }
    }

    #[test]
    fn avx2_equals_scalar() {
        check_level(Level::Avx2);
    }

    #[test]
    fn avx512_equals_scalar() {
        check_level(Level::Avx512);
    }

    /// A forced level is the one running, never silently another.
    #[test]
    fn forced_level_is_the_active_one() {
        if let Ok(v) = std::env::var(LEVEL_ENV) {
            let want = Level::parse(&v).expect("INGOT_QUANT_KERNEL names a level");
            assert_eq!(active().level(), want);
        } else {
            assert_eq!(active().level(), Kernels::best().level());
        }
    }

    #[test]
    fn level_names_round_trip() {
        for l in Level::ALL {
            assert_eq!(
                Level::parse(&format!(" {} ", l.name().to_uppercase())),
                Some(l)
            );
        }
        assert_eq!(Level::parse("sse9"), None);
    }
}
