//! Every fast kernel, by name and level, against the scalar reference (memchr/matrixmultiply
//! style): random, adversarial (extreme scales, all ±max codes, zero blocks) and odd-count
//! inputs.
//!
//! What "equal" means:
//! - integer accumulation: with unit scales (d = dmin = 1, activation d = 1, bounded codes so
//!   every partial sum stays below 2²⁴) the fast result must be bit-identical to the scalar
//!   one — any lost or extra product would show;
//! - float reductions (random or extreme scales): |fast − scalar| ≤ 1e-5 · Σ_b |d_w·d_a|·Σ|c·a|
//!   (+ Σ|m·s| for q4_1/q5_1), i.e. a relative error a few hundred ulps wide on the magnitude;
//! - dequantization and activation quantization: bit-identical, always.
//!
//! A guard test fails if a level this CPU supports (detected independently here) was skipped
//! or silently replaced, or if `INGOT_KERNEL` forced a level that is not the one running.

use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};
use ingot_infer::kernels::{self, scalar, Dot, Kernels, Level, Quantize};
use ingot_quant::blocks::*;

fn fast_levels() -> Vec<&'static Kernels> {
    let v: Vec<_> = Level::ALL
        .into_iter()
        .filter(|&l| l != Level::Scalar && l.is_supported())
        .map(|l| Kernels::for_level(l).unwrap())
        .collect();
    v
}

fn scalar_k() -> &'static Kernels {
    Kernels::for_level(Level::Scalar).unwrap()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next() as u8;
        }
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.unit()).sum::<f32>() * 1.7 - 3.4
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Unit scales, bounded codes: results must be exact.
    Unit,
    /// Random codes and scales.
    Random,
    /// Largest finite / tiny scales, every code at its extreme.
    Extreme,
    /// All-zero blocks.
    Zero,
}

const MODES: [Mode; 4] = [Mode::Unit, Mode::Random, Mode::Extreme, Mode::Zero];

fn rand_f16(r: &mut Rng) -> f16 {
    f16::from_f32(r.normal() * 0.05)
}

/// Activation blocks: codes in [-127, 127] (in ±63 for Unit), consistent q8_1 sums and q8_K
/// bsums, as the quantizers produce.
trait Act: Pod + Zeroable {
    fn make(r: &mut Rng, mode: Mode) -> Self;
    fn codes_scale(&self) -> (&[i8], f64);
}

fn act_codes(r: &mut Rng, qs: &mut [i8], mode: Mode) {
    for q in qs.iter_mut() {
        *q = match mode {
            Mode::Unit => (r.next() % 127) as i8 - 63,
            Mode::Random => ((r.next() % 255) as i16 - 127) as i8,
            Mode::Extreme => {
                if r.next() % 2 == 0 {
                    127
                } else {
                    -127
                }
            }
            Mode::Zero => 0,
        };
    }
}

fn act_scale(r: &mut Rng, mode: Mode) -> f32 {
    match mode {
        Mode::Unit => 1.0,
        Mode::Random => r.normal() * 0.02,
        Mode::Extreme => 1e4,
        Mode::Zero => 0.0,
    }
}

impl Act for BlockQ8_0 {
    fn make(r: &mut Rng, mode: Mode) -> Self {
        let mut b = BlockQ8_0::zeroed();
        act_codes(r, &mut b.qs, mode);
        b.d = f16::from_f32(act_scale(r, mode));
        b
    }
    fn codes_scale(&self) -> (&[i8], f64) {
        (&self.qs, self.d.to_f64())
    }
}

impl Act for BlockQ8_1 {
    fn make(r: &mut Rng, mode: Mode) -> Self {
        let mut b = BlockQ8_1::zeroed();
        act_codes(r, &mut b.qs, mode);
        let d = act_scale(r, mode);
        b.d = f16::from_f32(d);
        let sum: i32 = b.qs.iter().map(|&q| q as i32).sum();
        b.s = f16::from_f32(d * sum as f32);
        b
    }
    fn codes_scale(&self) -> (&[i8], f64) {
        (&self.qs, self.d.to_f64())
    }
}

impl Act for BlockQ8K {
    fn make(r: &mut Rng, mode: Mode) -> Self {
        let mut b = BlockQ8K::zeroed();
        act_codes(r, &mut b.qs, mode);
        b.d = act_scale(r, mode);
        for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *s = g.iter().map(|&q| q as i16).sum();
        }
        b
    }
    fn codes_scale(&self) -> (&[i8], f64) {
        (&self.qs, self.d as f64)
    }
}

/// Weight blocks: random bytes, then scale fields and (for Unit) code bounds set per mode.
trait Weight: Pod + Zeroable {
    const ELEMS: usize;
    fn fix(&mut self, r: &mut Rng, mode: Mode);
}

fn fill<W: Weight>(r: &mut Rng, mode: Mode) -> W {
    let mut w = W::zeroed();
    if mode != Mode::Zero {
        let bytes: &mut [u8] = bytemuck::bytes_of_mut(&mut w);
        if mode == Mode::Extreme {
            // Every code at an extreme: all bits set, none set, or the sign bit alone.
            let pat = [0xffu8, 0x00, 0x80, 0x7f][(r.next() % 4) as usize];
            bytes.fill(pat);
        } else {
            r.bytes(bytes);
        }
    }
    w.fix(r, mode);
    w
}

fn scale_for(r: &mut Rng, mode: Mode) -> f16 {
    match mode {
        Mode::Unit => f16::ONE,
        Mode::Random => rand_f16(r),
        Mode::Extreme => {
            if r.next() % 2 == 0 {
                f16::MAX
            } else {
                f16::from_bits(1) // smallest subnormal
            }
        }
        Mode::Zero => f16::ZERO,
    }
}

impl Weight for BlockQ8_0 {
    const ELEMS: usize = QK;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
    }
}
impl Weight for BlockQ4_0 {
    const ELEMS: usize = QK;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
    }
}
impl Weight for BlockQ5_0 {
    const ELEMS: usize = QK;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
    }
}
impl Weight for BlockQ4_1 {
    const ELEMS: usize = QK;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
        self.m = scale_for(r, mode);
    }
}
impl Weight for BlockQ5_1 {
    const ELEMS: usize = QK;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
        self.m = scale_for(r, mode);
    }
}
fn fix_k_scales(scales: &mut [u8; 12], mode: Mode) {
    if mode == Mode::Unit {
        // Keep every 6-bit scale and min ≤ 15 so sums stay exact in f32.
        for s in scales.iter_mut() {
            *s &= 0x0f;
        }
    }
}
impl Weight for BlockQ4K {
    const ELEMS: usize = QK_K;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
        self.dmin = scale_for(r, mode);
        fix_k_scales(&mut self.scales, mode);
    }
}
impl Weight for BlockQ5K {
    const ELEMS: usize = QK_K;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
        self.dmin = scale_for(r, mode);
        fix_k_scales(&mut self.scales, mode);
    }
}
impl Weight for BlockQ6K {
    const ELEMS: usize = QK_K;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = scale_for(r, mode);
        if mode == Mode::Unit {
            for s in self.scales.iter_mut() {
                *s = (*s as i16 % 16) as i8;
            }
        }
        if mode == Mode::Extreme && r.next() % 2 == 0 {
            self.scales = [-128; 16];
        }
    }
}
impl Weight for BlockQ8K {
    const ELEMS: usize = QK_K;
    fn fix(&mut self, r: &mut Rng, mode: Mode) {
        self.d = match mode {
            Mode::Unit => 1.0,
            Mode::Random => r.normal() * 0.01,
            // Largest scale whose products cannot overflow f32 (lane order would then
            // decide between inf and NaN).
            Mode::Extreme => 1e27,
            Mode::Zero => 0.0,
        };
        if mode == Mode::Unit {
            for q in self.qs.iter_mut() {
                *q /= 2;
            }
        }
    }
}

/// Upper bound on the magnitude of the exact result (Σ |dequantized w · dequantized a|).
fn magnitude<W: Weight, A: Act>(scalar_deq: &Dot<W, A>, w: &[W], a: &[A]) -> f64 {
    let mut deq = vec![0.0f32; W::ELEMS];
    let mut m = 0.0f64;
    for (wb, ab) in w.iter().zip(a) {
        scalar_deq.dequantize(std::slice::from_ref(wb), &mut deq);
        let (qs, d) = ab.codes_scale();
        for (x, &q) in deq.iter().zip(qs.iter().cycle()) {
            m += (*x as f64 * q as f64 * d).abs();
        }
    }
    m
}

// 16, 17 and 23 blocks: whole 8-block chunks of the 512-bit bodies plus 0, 1 and 7 tail blocks.
const LEGACY_COUNTS: [usize; 7] = [1, 2, 3, 7, 16, 17, 23];
const K_COUNTS: [usize; 4] = [1, 2, 3, 5];

fn check_dot<W: Weight, A: Act>(name: &str, get: impl Fn(&Kernels) -> Dot<W, A>, counts: &[usize]) {
    let s = get(scalar_k());
    let levels = fast_levels();
    for (li, k) in levels.iter().enumerate() {
        let f = get(k);
        let mut r = Rng(0x1234_5678 + li as u64);
        for mode in MODES {
            for &n in counts {
                // Unit mode with 3 K blocks could exceed 2²⁴: exactness only up to 2.
                let exact = mode == Mode::Unit && (W::ELEMS == QK || n <= 2);
                for rep in 0..8 {
                    let w: Vec<W> = (0..n).map(|_| fill(&mut r, mode)).collect();
                    let acts: Vec<Vec<A>> = (0..4)
                        .map(|_| (0..n).map(|_| A::make(&mut r, mode)).collect())
                        .collect();
                    let a4 = [&acts[0][..], &acts[1][..], &acts[2][..], &acts[3][..]];
                    let x4 = f.dot_x4(&w, a4);
                    for t in 0..4 {
                        let want = s.dot(&w, &acts[t]);
                        let got = f.dot(&w, &acts[t]);
                        let ctx = format!("{} {name} {mode:?} n={n} rep={rep} t={t}", k.variant());
                        if exact {
                            assert_eq!(got.to_bits(), want.to_bits(), "{ctx}: {got} vs {want}");
                            assert_eq!(
                                x4[t].to_bits(),
                                want.to_bits(),
                                "{ctx} x4: {} vs {want}",
                                x4[t]
                            );
                        } else {
                            let mut tol = 1e-5 * magnitude(&s, &w, &acts[t]);
                            if name.ends_with("_1") {
                                // + Σ|m·s| (m = min, s = activation sum), both f16.
                                tol += 1e-5 * 32.0 * 127.0 * n as f64 * 65504.0 * 1e4;
                            }
                            for (label, g) in [("dot", got), ("x4", x4[t])] {
                                if want.is_finite() {
                                    let err = (g as f64 - want as f64).abs();
                                    assert!(err <= tol, "{ctx} {label}: {g} vs {want} (tol {tol})");
                                } else {
                                    assert!(
                                        !g.is_finite() || mode == Mode::Extreme,
                                        "{ctx} {label}: {g} vs {want}"
                                    );
                                }
                            }
                        }
                    }
                    // Four rows against one activation row: each row's dot, bit for bit.
                    let more: Vec<Vec<W>> = (0..3)
                        .map(|_| (0..n).map(|_| fill(&mut r, mode)).collect())
                        .collect();
                    let rows = [&w[..], &more[0][..], &more[1][..], &more[2][..]];
                    let r4 = f.dot_4rows(rows, &acts[0], 4096 * rep);
                    for (i, row) in rows.iter().enumerate() {
                        let one = f.dot(row, &acts[0]);
                        assert!(
                            r4[i].to_bits() == one.to_bits() || (r4[i].is_nan() && one.is_nan()),
                            "{} {name} {mode:?} n={n} rep={rep} 4rows[{i}]: {} vs dot {one}",
                            k.variant(),
                            r4[i]
                        );
                    }
                    // Dequantization: bit for bit.
                    let mut o1 = vec![0.0f32; n * W::ELEMS];
                    let mut o2 = vec![1.0f32; n * W::ELEMS];
                    s.dequantize(&w, &mut o1);
                    f.dequantize(&w, &mut o2);
                    for (i, (p, q)) in o1.iter().zip(&o2).enumerate() {
                        assert!(
                            p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                            "{} {name} dequant {mode:?} n={n} value {i}: {q} vs {p}",
                            k.variant()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn q8_0_fast_matches_scalar() {
    check_dot::<BlockQ8_0, BlockQ8_0>("q8_0", |k| k.q8_0, &LEGACY_COUNTS);
}
#[test]
fn q4_0_fast_matches_scalar() {
    check_dot::<BlockQ4_0, BlockQ8_0>("q4_0", |k| k.q4_0, &LEGACY_COUNTS);
}
#[test]
fn q5_0_fast_matches_scalar() {
    check_dot::<BlockQ5_0, BlockQ8_0>("q5_0", |k| k.q5_0, &LEGACY_COUNTS);
}
#[test]
fn q4_1_fast_matches_scalar() {
    check_dot::<BlockQ4_1, BlockQ8_1>("q4_1", |k| k.q4_1, &LEGACY_COUNTS);
}
#[test]
fn q5_1_fast_matches_scalar() {
    check_dot::<BlockQ5_1, BlockQ8_1>("q5_1", |k| k.q5_1, &LEGACY_COUNTS);
}
#[test]
fn q4_k_fast_matches_scalar() {
    check_dot::<BlockQ4K, BlockQ8K>("q4_K", |k| k.q4_k, &K_COUNTS);
}
#[test]
fn q5_k_fast_matches_scalar() {
    check_dot::<BlockQ5K, BlockQ8K>("q5_K", |k| k.q5_k, &K_COUNTS);
}
#[test]
fn q6_k_fast_matches_scalar() {
    check_dot::<BlockQ6K, BlockQ8K>("q6_K", |k| k.q6_k, &K_COUNTS);
}
#[test]
fn q8_k_fast_matches_scalar() {
    check_dot::<BlockQ8K, BlockQ8K>("q8_K", |k| k.q8_k, &K_COUNTS);
}

fn check_float<W: Copy + PartialEq + 'static>(
    name: &str,
    conv: impl Fn(f32) -> W,
    to: impl Fn(W) -> f64,
    get: impl Fn(&Kernels) -> Dot<W, f32>,
) {
    let s = get(scalar_k());
    let mut r = Rng(99);
    for k in fast_levels() {
        let f = get(k);
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 100, 257] {
            let w: Vec<W> = (0..n).map(|_| conv(r.normal())).collect();
            let a: Vec<Vec<f32>> = (0..4)
                .map(|_| (0..n).map(|_| r.normal()).collect())
                .collect();
            let x4 = f.dot_x4(&w, [&a[0], &a[1], &a[2], &a[3]]);
            for t in 0..4 {
                let mag: f64 = w
                    .iter()
                    .zip(&a[t])
                    .map(|(&x, &y)| (to(x) * y as f64).abs())
                    .sum();
                let want = s.dot(&w, &a[t]) as f64;
                let tol = 1e-5 * mag;
                for g in [f.dot(&w, &a[t]) as f64, x4[t] as f64] {
                    assert!(
                        (g - want).abs() <= tol,
                        "{} {name} n={n}: {g} vs {want}",
                        k.variant()
                    );
                }
            }
            let mut o1 = vec![0.0; n];
            let mut o2 = vec![1.0; n];
            s.dequantize(&w, &mut o1);
            f.dequantize(&w, &mut o2);
            assert_eq!(o1, o2, "{} {name} dequant n={n}", k.variant());
        }
    }
}

#[test]
fn float_dots_fast_match_scalar_at_odd_lengths() {
    check_float("f32", |v| v, |v| v as f64, |k| k.f32);
    check_float("f16", f16::from_f32, |v| v.to_f64(), |k| k.f16);
    check_float("bf16", bf16::from_f32, |v| v.to_f64(), |k| k.bf16);
}

/// Inputs for the quantizers: normal, ties at exactly .5 after scaling, zero blocks, huge and
/// tiny magnitudes, one-hot blocks.
fn quant_inputs(blocks: usize, block: usize, r: &mut Rng) -> Vec<Vec<f32>> {
    let n = blocks * block;
    let mut v = vec![
        (0..n).map(|_| r.normal()).collect::<Vec<f32>>(),
        vec![0.0; n],
    ];
    // amax = 127 → multiplier exactly 1 → every k + 0.5 is a tie.
    v.push(
        (0..n)
            .map(|i| {
                if i % block == 0 {
                    127.0
                } else {
                    (i % 50) as f32 - 25.5
                }
            })
            .collect(),
    );
    v.push(
        (0..n)
            .map(|i| {
                if i % block == 3 {
                    -127.0
                } else {
                    (i % 7) as f32 + 0.5
                }
            })
            .collect(),
    );
    v.push((0..n).map(|_| r.normal() * 1e30).collect());
    v.push((0..n).map(|_| r.normal() * 1e-30).collect());
    v.push(
        (0..n)
            .map(|i| if i % block == 5 { -3.0 } else { 0.0 })
            .collect(),
    );
    // Equal magnitudes of both signs: the first one fixes q8_K's sign.
    v.push(
        (0..n)
            .map(|i| if i % 2 == 0 { -2.0 } else { 2.0 })
            .collect(),
    );
    v
}

fn check_quant<A: Pod + Zeroable + PartialEq + std::fmt::Debug + 'static>(
    name: &str,
    block: usize,
    get: impl Fn(&Kernels) -> Quantize<A>,
) {
    let s = get(scalar_k());
    let mut r = Rng(7);
    for k in fast_levels() {
        let f = get(k);
        for blocks in [1usize, 3, 8] {
            for (case, x) in quant_inputs(blocks, block, &mut r).iter().enumerate() {
                let mut o1 = vec![A::zeroed(); blocks];
                let mut o2 = vec![A::zeroed(); blocks];
                s.quantize(x, &mut o1);
                f.quantize(x, &mut o2);
                assert_eq!(o1, o2, "{} {name} case {case} blocks {blocks}", k.variant());
            }
        }
    }
}

#[test]
fn quantizers_fast_match_scalar_bit_for_bit() {
    check_quant::<BlockQ8_0>("q8_0", QK, |k| k.quantize_q8_0);
    check_quant::<BlockQ8_1>("q8_1", QK, |k| k.quantize_q8_1);
    check_quant::<BlockQ8K>("q8_K", QK_K, |k| k.quantize_q8_k);
}

/// The activation invariant the SIMD dots rely on: no quantizer ever emits −128.
#[test]
fn quantizers_never_emit_minus_128() {
    let x: Vec<f32> = (0..QK_K * 2)
        .map(|i| if i % 3 == 0 { -1e38 } else { 1e-3 * i as f32 })
        .collect();
    let mut all = vec![scalar_k()];
    all.extend(fast_levels());
    for k in all {
        let mut q0 = vec![BlockQ8_0::zeroed(); x.len() / QK];
        k.quantize_q8_0.quantize(&x, &mut q0);
        assert!(
            q0.iter().all(|b| b.qs.iter().all(|&q| q != -128)),
            "{}",
            k.variant()
        );
        let mut qk = vec![BlockQ8K::zeroed(); x.len() / QK_K];
        k.quantize_q8_k.quantize(&x, &mut qk);
        assert!(
            qk.iter().all(|b| b.qs.iter().all(|&q| q != -128)),
            "{}",
            k.variant()
        );
    }
}

#[test]
fn scalar_reference_functions_are_the_scalar_table() {
    // The public scalar module and the scalar table agree (the table is what tests compare).
    let mut r = Rng(5);
    let w: Vec<BlockQ4_0> = (0..5).map(|_| fill(&mut r, Mode::Random)).collect();
    let a: Vec<BlockQ8_0> = (0..5)
        .map(|_| BlockQ8_0::make(&mut r, Mode::Random))
        .collect();
    assert_eq!(
        scalar::vec_dot_q4_0_q8_0(&w, &a),
        scalar_k().q4_0.dot(&w, &a)
    );
}

/// The AVX-512 VNNI q4_K and q6_K bodies (`simd512k`) add the same integers into the same
/// eight lanes as the 256-bit bodies and then do the same float steps: every result, whatever
/// the scales, must equal the AVX2 level's bit for bit (so switching level never changes a
/// model's logits through these types).
#[test]
fn k_dots_512_equal_256_bit_for_bit() {
    let (Ok(k2), Ok(k5)) = (
        Kernels::for_level(Level::Avx2),
        Kernels::for_level(Level::Avx512),
    ) else {
        eprintln!("skipped: this CPU lacks AVX2 or AVX-512 (the guard test checks detection)");
        return;
    };
    fn same<W: Weight>(
        name: &str,
        get: impl Fn(&Kernels) -> Dot<W, BlockQ8K>,
        a: &Kernels,
        b: &Kernels,
    ) {
        let mut r = Rng(0x5eed_0512);
        for mode in MODES {
            for n in [1, 2, 3, 8] {
                for rep in 0..16 {
                    let w: Vec<W> = (0..n).map(|_| fill(&mut r, mode)).collect();
                    let y: Vec<BlockQ8K> = (0..n).map(|_| BlockQ8K::make(&mut r, mode)).collect();
                    let (p, q) = (get(a).dot(&w, &y), get(b).dot(&w, &y));
                    assert!(
                        p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()),
                        "{name} {mode:?} n={n} rep={rep}: {} {p} vs {} {q}",
                        a.variant(),
                        b.variant()
                    );
                }
            }
        }
    }
    same::<BlockQ4K>("q4_k", |k| k.q4_k, k2, k5);
    same::<BlockQ6K>("q6_k", |k| k.q6_k, k2, k5);
}

/// Guard: a forced level must be the one running, and every level this CPU supports (detected
/// here independently of the crate) must be available under its own name.
#[test]
fn guard_forced_level_was_not_skipped() {
    if let Ok(v) = std::env::var(kernels::KERNEL_ENV) {
        let want = Level::parse(&v).expect("INGOT_KERNEL names a level");
        let got = kernels::try_kernels().expect("forced level is available on this CPU");
        assert_eq!(
            got.level(),
            want,
            "INGOT_KERNEL={v} but {} runs",
            got.variant()
        );
    } else {
        assert_eq!(kernels::kernels().level(), Level::best());
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma") && has!("f16c");
        let avx512 = avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl");
        for (level, present) in [(Level::Avx2, avx2), (Level::Avx512, avx512)] {
            assert_eq!(level.is_supported(), present, "{level}");
            if present {
                let k = Kernels::for_level(level).unwrap();
                assert_eq!(k.level(), level);
                if level == Level::Avx512 && has!("avx512vnni") {
                    assert_eq!(k.variant(), "avx512-vnni");
                }
            } else {
                assert!(matches!(
                    Kernels::for_level(level),
                    Err(ingot_infer::InferError::KernelUnavailable { .. })
                ));
            }
        }
        if avx2 {
            assert!(
                !fast_levels().is_empty(),
                "this CPU has AVX2 but no fast level ran"
            );
        }
    }
}
