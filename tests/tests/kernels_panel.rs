//! The panel (repacked) GEMM kernels, by name and level:
//!
//! - the scalar panel reference against the scalar dot products: with unit scales and
//!   integer-valued terms (every partial sum below 2²⁴) the two must be **bit-identical** (a
//!   lost, extra or misplaced product would show); with random scales within
//!   1e-5 · Σ|terms| (the two sum the same terms in a different float order);
//! - every fast panel kernel against the scalar panel reference: **bit-identical**, always
//!   (same integer sums, same float operations in the same order per output), on random and
//!   extreme blocks (every byte 0x00, 0xFF or 0x80: codes at 0, at their maximum, q8_0's
//!   −128), partial panels
//!   (`valid` < 16), odd column counts (register-tile remainders) and strides > 16;
//! - a guard: on a CPU with AVX-512 VNNI the avx512 level must have panel kernels.

use bytemuck::{Pod, Zeroable};
use half::f16;
use ingot_infer::kernels::panel::{
    self, KAct, KKind, KPanel, KWeight, LegacyAct, LegacyPanel, LegacyWeight, PANEL_ROWS,
};
use ingot_infer::kernels::{scalar, Kernels, Level};
use ingot_quant::blocks::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn code(&mut self) -> i8 {
        ((self.next() % 255) as i32 - 127) as i8
    }
    fn scale(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 + 0.1) * 0.02
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Unit scales, random codes: exact integer results.
    Unit,
    /// Random codes and scales.
    Random,
    /// Every weight byte 0x00 or 0xFF (codes at their extremes), activations at ±127.
    Extreme,
}

/// A random block of `W` with its scale fields replaced by `fix`.
fn block<W: Pod>(r: &mut Rng, mode: Mode, fix: impl Fn(&mut W, f32)) -> W {
    let mut w = W::zeroed();
    let bytes: &mut [u8] = bytemuck::bytes_of_mut(&mut w);
    let fill = [0x00, 0xFF, 0x80][(r.next() % 3) as usize];
    for b in bytes.iter_mut() {
        *b = if mode == Mode::Extreme {
            fill
        } else {
            r.next() as u8
        };
    }
    let s = if mode == Mode::Unit { 1.0 } else { r.scale() };
    fix(&mut w, s);
    w
}

fn h(v: f32) -> f16 {
    f16::from_f32(v)
}

/// Weight generators with finite scales (q4_1/q5_1 mins are small integers in unit mode).
trait Gen: Sized {
    fn gen(r: &mut Rng, mode: Mode) -> Self;
}
impl Gen for BlockQ8_0 {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| b.d = h(s))
    }
}
impl Gen for BlockQ4_0 {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| b.d = h(s))
    }
}
impl Gen for BlockQ5_0 {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| b.d = h(s))
    }
}
impl Gen for BlockQ4_1 {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| {
            b.d = h(s);
            b.m = h(-3.0 * s);
        })
    }
}
impl Gen for BlockQ5_1 {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| {
            b.d = h(s);
            b.m = h(-2.0 * s);
        })
    }
}
impl Gen for BlockQ4K {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| {
            b.d = h(s);
            b.dmin = h(s);
        })
    }
}
impl Gen for BlockQ5K {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| {
            b.d = h(s);
            b.dmin = h(s);
        })
    }
}
impl Gen for BlockQ6K {
    fn gen(r: &mut Rng, m: Mode) -> Self {
        block(r, m, |b: &mut Self, s| b.d = h(s))
    }
}

fn act_codes<const N: usize>(r: &mut Rng, mode: Mode) -> [i8; N] {
    std::array::from_fn(|_| match mode {
        Mode::Extreme => {
            if r.next() % 2 == 0 {
                127
            } else {
                -127
            }
        }
        _ => r.code(),
    })
}

fn act_q8_0(r: &mut Rng, mode: Mode) -> BlockQ8_0 {
    let d = if mode == Mode::Unit { 1.0 } else { r.scale() };
    BlockQ8_0 {
        d: h(d),
        qs: act_codes(r, mode),
    }
}

fn act_q8_1(r: &mut Rng, mode: Mode) -> BlockQ8_1 {
    let d = if mode == Mode::Unit { 1.0 } else { r.scale() };
    let qs: [i8; 32] = act_codes(r, mode);
    let sum: i32 = qs.iter().map(|&q| q as i32).sum();
    BlockQ8_1 {
        d: h(d),
        // Unit mode: keep s an exact small integer so m·s is exact too.
        s: if mode == Mode::Unit {
            h((sum % 64) as f32)
        } else {
            h(d * sum as f32)
        },
        qs,
    }
}

fn act_q8_k(r: &mut Rng, mode: Mode) -> BlockQ8K {
    let qs: [i8; 256] = act_codes(r, mode);
    let mut bsums = [0i16; 16];
    for (s, g) in bsums.iter_mut().zip(qs.chunks_exact(16)) {
        *s = g.iter().map(|&q| q as i16).sum();
    }
    BlockQ8K {
        d: if mode == Mode::Unit { 1.0 } else { r.scale() },
        qs,
        bsums,
    }
}

fn fast_panels() -> Vec<&'static Kernels> {
    Level::ALL
        .into_iter()
        .filter(|&l| l != Level::Scalar && l.is_supported())
        .map(|l| Kernels::for_level(l).unwrap())
        .filter(|k| k.panel_gemm().is_some())
        .collect()
}

fn scalar_k() -> &'static Kernels {
    Kernels::for_level(Level::Scalar).unwrap()
}

const NB: usize = 5;
const COLUMNS: [usize; 4] = [1, 7, 8, 13];
const VALID: [usize; 3] = [16, 5, 1];

/// One legacy type: packs random rows, runs every column count / valid / stride through the
/// scalar reference and every fast kernel.
fn check_legacy<W: LegacyWeight + Gen>(
    name: &str,
    act: impl Fn(&mut Rng, Mode) -> W::Act,
    dot: impl Fn(&[W], &[W::Act]) -> f32,
) {
    for mode in [Mode::Unit, Mode::Random, Mode::Extreme] {
        let mut r = Rng(0x1234_5678 ^ name.len() as u64);
        for valid in VALID {
            let w: Vec<W> = (0..valid * NB).map(|_| W::gen(&mut r, mode)).collect();
            let mut panels = vec![LegacyPanel::zeroed(); NB];
            panel::pack_legacy(&w, valid, &mut panels);
            for ncols in COLUMNS {
                let a: Vec<W::Act> = (0..ncols * NB).map(|_| act(&mut r, mode)).collect();
                let side: Vec<LegacyAct> = a.iter().map(panel::legacy_side::<W>).collect();
                let ld = valid + 3;
                let len = (ncols - 1) * ld + valid;
                let mut want = vec![f32::NAN; len];
                let sk = scalar_k().panel_gemm().unwrap();
                sk.legacy(W::TYPE1, &panels, &side, &mut want, ld, valid);
                for t in 0..ncols {
                    for row in 0..valid {
                        let d = dot(&w[row * NB..(row + 1) * NB], &a[t * NB..(t + 1) * NB]);
                        let got = want[t * ld + row];
                        compare_to_dot(name, mode, got, d, t, row);
                    }
                }
                for k in fast_panels() {
                    let mut got = vec![f32::NAN; len];
                    let g = k.panel_gemm().unwrap();
                    g.legacy(W::TYPE1, &panels, &side, &mut got, ld, valid);
                    assert_bits(name, k.variant(), mode, &got, &want, ld, valid);
                }
            }
        }
    }
}

fn check_k<W: KWeight + Gen>(name: &str, dot: impl Fn(&[W], &[BlockQ8K]) -> f32) {
    for mode in [Mode::Unit, Mode::Random, Mode::Extreme] {
        let mut r = Rng(0x9abc_def0 ^ name.len() as u64);
        for valid in VALID {
            let w: Vec<W> = (0..valid * NB).map(|_| W::gen(&mut r, mode)).collect();
            let mut panels = vec![KPanel::zeroed(); NB];
            panel::pack_k(&w, valid, &mut panels);
            for ncols in COLUMNS {
                let a: Vec<BlockQ8K> = (0..ncols * NB).map(|_| act_q8_k(&mut r, mode)).collect();
                let side: Vec<KAct> = a.iter().map(|x| panel::k_side(x, W::KIND)).collect();
                let ld = valid + 3;
                let len = (ncols - 1) * ld + valid;
                let mut want = vec![f32::NAN; len];
                let sk = scalar_k().panel_gemm().unwrap();
                sk.k(W::KIND, &panels, &side, &mut want, ld, valid);
                for t in 0..ncols {
                    for row in 0..valid {
                        let d = dot(&w[row * NB..(row + 1) * NB], &a[t * NB..(t + 1) * NB]);
                        compare_to_dot(name, mode, want[t * ld + row], d, t, row);
                    }
                }
                for k in fast_panels() {
                    let mut got = vec![f32::NAN; len];
                    k.panel_gemm()
                        .unwrap()
                        .k(W::KIND, &panels, &side, &mut got, ld, valid);
                    assert_bits(name, k.variant(), mode, &got, &want, ld, valid);
                }
            }
        }
    }
}

/// Panel reference vs the scalar dot: exact in unit mode, else within 1e-5 of a magnitude
/// bound (the dot's own value plus a floor from the largest possible term).
fn compare_to_dot(name: &str, mode: Mode, got: f32, want: f32, t: usize, row: usize) {
    if mode == Mode::Unit {
        assert_eq!(got, want, "{name} unit: column {t} row {row}");
    } else {
        let tol = 1e-5 * (want.abs() + 1.0) * (NB as f32);
        assert!(
            (got - want).abs() <= tol,
            "{name} {mode:?}: column {t} row {row}: {got} vs {want}"
        );
    }
}

fn assert_bits(
    name: &str,
    variant: &str,
    mode: Mode,
    got: &[f32],
    want: &[f32],
    ld: usize,
    valid: usize,
) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if i % ld < valid {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name} {variant} {mode:?}: output {i} (column {}, row {}): {g} vs {w}",
                i / ld,
                i % ld
            );
        } else {
            assert!(
                g.is_nan(),
                "{name} {variant}: wrote outside the panel at {i}"
            );
        }
    }
}

#[test]
fn panel_q8_0_fast_matches_reference() {
    check_legacy::<BlockQ8_0>("q8_0", act_q8_0, scalar::vec_dot_q8_0_q8_0);
}
#[test]
fn panel_q4_0_fast_matches_reference() {
    check_legacy::<BlockQ4_0>("q4_0", act_q8_0, scalar::vec_dot_q4_0_q8_0);
}
#[test]
fn panel_q5_0_fast_matches_reference() {
    check_legacy::<BlockQ5_0>("q5_0", act_q8_0, scalar::vec_dot_q5_0_q8_0);
}
#[test]
fn panel_q4_1_fast_matches_reference() {
    check_legacy::<BlockQ4_1>("q4_1", act_q8_1, scalar::vec_dot_q4_1_q8_1);
}
#[test]
fn panel_q5_1_fast_matches_reference() {
    check_legacy::<BlockQ5_1>("q5_1", act_q8_1, scalar::vec_dot_q5_1_q8_1);
}
#[test]
fn panel_q4_k_fast_matches_reference() {
    check_k::<BlockQ4K>("q4_K", scalar::vec_dot_q4_k_q8_k);
}
#[test]
fn panel_q5_k_fast_matches_reference() {
    check_k::<BlockQ5K>("q5_K", scalar::vec_dot_q5_k_q8_k);
}
#[test]
fn panel_q6_k_fast_matches_reference() {
    check_k::<BlockQ6K>("q6_K", scalar::vec_dot_q6_k_q8_k);
}

#[test]
fn packing_rejects_bad_shapes_and_zero_pads() {
    let mut r = Rng(77);
    let w: Vec<BlockQ4_0> = (0..3 * 2)
        .map(|_| BlockQ4_0::gen(&mut r, Mode::Random))
        .collect();
    let mut p = vec![LegacyPanel::zeroed(); 2];
    panel::pack_legacy(&w, 3, &mut p);
    for b in &p {
        assert!(b.d[3..].iter().all(|&d| d == half::f16::ZERO));
        assert!(b.codes.iter().all(|g| g[12..].iter().all(|&c| c == 0)));
        assert!(b.codes.iter().all(|g| g[..12].iter().all(|&c| c < 16)));
    }
    assert!(std::panic::catch_unwind(move || {
        let mut p = vec![LegacyPanel::zeroed(); 2];
        panel::pack_legacy(&w[..5], 3, &mut p)
    })
    .is_err());
    let kinds = [
        <BlockQ4K as KWeight>::KIND,
        <BlockQ5K as KWeight>::KIND,
        <BlockQ6K as KWeight>::KIND,
    ];
    assert_eq!(kinds, [KKind::Q45, KKind::Q45, KKind::Q6]);
    assert_eq!(PANEL_ROWS, 16);
}

/// Guard: the avx512 level must carry panel kernels when the CPU has VNNI (so the
/// comparisons above cannot silently test nothing on such a CPU).
#[test]
fn guard_vnni_level_has_panel_kernels() {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if Level::Avx512.is_supported() && has!("avx512vnni") {
            let k = Kernels::for_level(Level::Avx512).unwrap();
            assert!(
                k.panel_gemm().is_some(),
                "{} has no panel kernels",
                k.variant()
            );
            assert!(!fast_panels().is_empty());
        }
    }
    assert!(scalar_k().panel_gemm().is_some());
}
