//! Repacked weight panels for the batched matmul (GEMM), their activation side tables, and the
//! scalar reference of the panel kernels.
//!
//! A dot-product GEMM decodes every weight block once per group of columns and keeps one row
//! per SIMD register. For a batch of n ≥ [`PANEL_MIN_N`] columns it pays to decode a *panel*
//! of [`PANEL_ROWS`] = 16 weight rows once per call into an interleaved byte layout in which
//! each 32-bit lane of a 512-bit register belongs to a different row:
//!
//! ```text
//! codes[g][4r + k] = unsigned code of row r, element 4g + k of the block   (u8)
//! for every column t, every group g of 4 elements:
//!     sumi[r] += Σ_k codes[g][4r+k] · a_t[4g+k]     one vpdpbusd for 16 rows, with the
//!                                                   4 activation bytes broadcast
//! acc[r] = fma(f32(sumi[r]), d[r]·d_a,t, acc[r])   one FMA per (panel, column, block)
//! ```
//!
//! Codes are stored **unsigned** (u8 × s8 is what `vpdpbusd` multiplies): a signed code
//! q = u − OFFSET (q8_0: 128, q4_0: 8, q5_0: 16) is corrected exactly in integers by starting
//! the block's sum at `−OFFSET·Σa` (the activation side table's `corr`). Mins are terms of
//! the activation block sums: q4_1/q5_1 add `m·s_a` (q8_1's `s`), q4_K/q5_K subtract
//! `dmin·d_a·Σ_s m_s·(bsums[2s] + bsums[2s+1])` (one `vpdpwssd` over i16 pairs of mins and
//! pair sums), q6_K starts each 16-element sub-block at `−32·bsum_s`. K-quant sub-block
//! scales multiply the i32 sub-block sums (`vpmulld`), so a super-block is one float FMA.
//!
//! The idea of repacking rows so that one vector instruction serves several rows is ggml's
//! (`ggml-cpu/repack.cpp`, `block_q4_0x8` / `block_q4_Kx8` with the `gemm_q4_0_8x8_q8_0`
//! kernels in `ggml-cpu/arch/x86/repack.cpp`); this layout (16 rows × 4-byte groups, activation
//! bytes broadcast, unsigned codes with an integer offset correction) is our own and is
//! documented in `formats/kernels.md`.
//!
//! The functions here are the portable reference: the SIMD panel kernels (in `arch`) must
//! produce **bit-identical** results, because they perform the same integer sums and the same
//! float operations (`mul_add`) in the same order per output.

use bytemuck::{Pod, Zeroable};
use half::f16;
use ingot_quant::blocks::{
    BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1, QK, QK_K,
};

use super::scalar::unpack_scales_mins_k4;

/// Weight rows per panel (one per 32-bit lane of a 512-bit register).
pub const PANEL_ROWS: usize = 16;

/// Smallest batch for which matmul uses the panel GEMM (below it, the repacking costs more
/// than it saves).
pub const PANEL_MIN_N: usize = 8;

/// One 32-element block of a 16-row legacy panel (q8_0, q4_0, q5_0, q4_1, q5_1).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Zeroable, Pod)]
pub struct LegacyPanel {
    /// `codes[g][4r + k]`: unsigned code of row r, element 4g + k.
    pub codes: [[u8; 64]; 8],
    /// Row scales, as stored in the blocks (f16: converting to f32 is exact, so keeping the
    /// block's own format costs nothing in results and saves 64 bytes per panel block —
    /// 576 instead of 640 bytes, which is what a GEMV from DRAM pays for).
    pub d: [f16; 16],
    /// Row mins (q4_1/q5_1; 0 for the others).
    pub m: [f16; 16],
}
const _: () = assert!(size_of::<LegacyPanel>() == 576);

/// One 256-element super-block of a 16-row K-quant panel (q4_K, q5_K, q6_K).
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Zeroable, Pod)]
pub struct KPanel {
    /// `codes[g][4r + k]`: unsigned code of row r, element 4g + k.
    pub codes: [[u8; 64]; 64],
    /// `scales[s][r]`: sub-block s's scale of row r (8 sub-blocks of 32 for q4_K/q5_K, 16 of
    /// 16 for q6_K).
    pub scales: [[i32; 16]; 16],
    /// `mins[p][2r + k]`: min `2p + k` of row r (q4_K/q5_K), i16 pairs for `vpdpwssd`.
    pub mins: [[i16; 32]; 4],
    /// Row super-block scales.
    pub d: [f32; 16],
    /// Row super-block min scales, negated (`−dmin`).
    pub neg_dmin: [f32; 16],
}
const _: () = assert!(size_of::<KPanel>() == 5504);

/// One activation block of a legacy type as the panel kernels read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Zeroable, Pod)]
pub struct LegacyAct {
    /// Codes.
    pub qs: [i8; 32],
    /// Scale.
    pub d: f32,
    /// Integer start of each block sum: `−OFFSET·Σ qs` (0 for q4_1/q5_1).
    pub corr: i32,
    /// q8_1's `s` (f16 `d·Σ qs`, as f32) for q4_1/q5_1; 0 otherwise.
    pub s: f32,
}

/// One activation super-block (q8_K) as the K panel kernels read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Zeroable, Pod)]
pub struct KAct {
    /// Codes.
    pub qs: [i8; 256],
    /// Scale.
    pub d: f32,
    /// q6_K: integer start of sub-block s's sum, `−32·bsums[s]`; 0 for q4_K/q5_K.
    pub corr: [i32; 16],
    /// q4_K/q5_K: `bsums[2s] + bsums[2s + 1]`, the sum of sub-block s's codes.
    pub bsum_pairs: [i16; 8],
}

/// Which K-panel kernel a type uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KKind {
    /// q4_K, q5_K: 8 sub-blocks of 32, mins.
    Q45,
    /// q6_K: 16 sub-blocks of 16, `−32` offset, no mins.
    Q6,
}

/// A legacy weight block the panel GEMM can repack.
pub trait LegacyWeight: Pod + Sync {
    /// Its activation block (q8_0 or q8_1).
    type Act: LegacyActBlock;
    /// Whether the type has a min (q4_1, q5_1).
    const TYPE1: bool;
    /// `code − OFFSET` is the signed code (type 0); 0 for type 1.
    const OFFSET: i32;
    /// The 32 unsigned codes in element order.
    fn unsigned_codes(&self) -> [u8; QK];
    /// Scale and min (0 for type 0), as stored.
    fn scale_min(&self) -> (f16, f16);
}

/// A legacy activation block.
pub trait LegacyActBlock: Pod + Send + Sync {
    /// The side-table entry for weights with the given offset.
    fn side(&self, offset: i32) -> LegacyAct;
}

impl LegacyActBlock for BlockQ8_0 {
    fn side(&self, offset: i32) -> LegacyAct {
        let sum: i32 = self.qs.iter().map(|&q| q as i32).sum();
        LegacyAct {
            qs: self.qs,
            d: self.d.to_f32(),
            corr: -offset * sum,
            s: 0.0,
        }
    }
}

impl LegacyActBlock for BlockQ8_1 {
    fn side(&self, offset: i32) -> LegacyAct {
        let sum: i32 = self.qs.iter().map(|&q| q as i32).sum();
        LegacyAct {
            qs: self.qs,
            d: self.d.to_f32(),
            corr: -offset * sum,
            s: self.s.to_f32(),
        }
    }
}

/// Nibble codes of a legacy block in element order (low nibbles, then high nibbles).
#[inline(always)]
fn nibbles32(qs: &[u8; QK / 2]) -> [u8; QK] {
    let mut c = [0u8; QK];
    for j in 0..QK / 2 {
        c[j] = qs[j] & 0x0f;
        c[j + QK / 2] = qs[j] >> 4;
    }
    c
}

/// Adds Q5's fifth bits (bit j of the little-endian `qh`) as 16 to code j.
#[inline(always)]
fn with_fifth_bits(mut c: [u8; QK], qh: &[u8; 4]) -> [u8; QK] {
    let h = u32::from_le_bytes(*qh);
    for (j, cj) in c.iter_mut().enumerate() {
        *cj |= (((h >> j) & 1) as u8) << 4;
    }
    c
}

/// Implements [`LegacyWeight`]: type, activation, type-1 flag, offset, codes from `$codes`
/// (`|block| [unsigned code; 32]`), and the min.
macro_rules! legacy_weight {
    ($w:ty, $act:ty, $offset:expr, $codes:expr, min) => {
        legacy_weight!($w, $act, true, $offset, $codes, |x: &$w| x.m);
    };
    ($w:ty, $act:ty, $offset:expr, $codes:expr) => {
        legacy_weight!($w, $act, false, $offset, $codes, |_: &$w| f16::ZERO);
    };
    ($w:ty, $act:ty, $t1:expr, $offset:expr, $codes:expr, $min:expr) => {
        impl LegacyWeight for $w {
            type Act = $act;
            const TYPE1: bool = $t1;
            const OFFSET: i32 = $offset;
            #[inline]
            fn unsigned_codes(&self) -> [u8; QK] {
                #[allow(clippy::redundant_closure_call)]
                ($codes)(self)
            }
            #[inline]
            fn scale_min(&self) -> (f16, f16) {
                #[allow(clippy::redundant_closure_call)]
                (self.d, ($min)(self))
            }
        }
    };
}

// q8_0's signed byte q becomes q + 128 (flip the sign bit).
legacy_weight!(BlockQ8_0, BlockQ8_0, 128, |x: &BlockQ8_0| x
    .qs
    .map(|q| q as u8 ^ 0x80));
legacy_weight!(BlockQ4_0, BlockQ8_0, 8, |x: &BlockQ4_0| nibbles32(&x.qs));
legacy_weight!(BlockQ5_0, BlockQ8_0, 16, |x: &BlockQ5_0| with_fifth_bits(
    nibbles32(&x.qs),
    &x.qh
));
legacy_weight!(
    BlockQ4_1,
    BlockQ8_1,
    0,
    |x: &BlockQ4_1| nibbles32(&x.qs),
    min
);
legacy_weight!(
    BlockQ5_1,
    BlockQ8_1,
    0,
    |x: &BlockQ5_1| with_fifth_bits(nibbles32(&x.qs), &x.qh),
    min
);

/// A K-quant weight block the panel GEMM can repack.
pub trait KWeight: Pod + Sync {
    /// The kernel it uses.
    const KIND: KKind;
    /// Writes this block as row `r` of `panel`.
    fn pack_row(&self, r: usize, panel: &mut KPanel);
}

/// Q4_K codes in element order: 64-element chunks c, low nibbles of `qs[32c..32c+32]` then
/// their high nibbles.
#[inline(always)]
fn q4k_codes(qs: &[u8; QK_K / 2]) -> [u8; QK_K] {
    let mut out = [0u8; QK_K];
    for c in 0..4 {
        for l in 0..32 {
            out[64 * c + l] = qs[32 * c + l] & 0x0f;
            out[64 * c + 32 + l] = qs[32 * c + l] >> 4;
        }
    }
    out
}

/// Q5_K codes: Q4_K's plus 16 × bit `e / 32` of `qh[e % 32]`.
#[inline(always)]
fn q5k_codes(qs: &[u8; QK_K / 2], qh: &[u8; QK_K / 8]) -> [u8; QK_K] {
    let mut out = q4k_codes(qs);
    for s in 0..8 {
        for l in 0..32 {
            out[32 * s + l] |= ((qh[l] >> s) & 1) << 4;
        }
    }
    out
}

/// Q6_K codes 0..63: element `128h + 32k + l` has its low four bits in
/// `ql[64h + 32(k & 1) + l]` (low nibble for k < 2) and bits `2k..2k+2` of `qh[32h + l]`.
#[inline(always)]
fn q6k_codes(ql: &[u8; QK_K / 2], qh: &[u8; QK_K / 4]) -> [u8; QK_K] {
    let mut out = [0u8; QK_K];
    for h in 0..2 {
        for l in 0..32 {
            let (lo0, lo1, hb) = (ql[64 * h + l], ql[64 * h + 32 + l], qh[32 * h + l]);
            out[128 * h + l] = (lo0 & 0x0f) | ((hb & 3) << 4);
            out[128 * h + 32 + l] = (lo1 & 0x0f) | (((hb >> 2) & 3) << 4);
            out[128 * h + 64 + l] = (lo0 >> 4) | (((hb >> 4) & 3) << 4);
            out[128 * h + 96 + l] = (lo1 >> 4) | (((hb >> 6) & 3) << 4);
        }
    }
    out
}

/// Writes 256 codes as row `r` of the panel's 4-byte groups.
#[inline(always)]
fn put_codes(codes: &[u8; QK_K], r: usize, p: &mut KPanel) {
    for (group, src) in p.codes.iter_mut().zip(codes.chunks_exact(4)) {
        group[4 * r..4 * r + 4].copy_from_slice(src);
    }
}

/// Q4_K/Q5_K row packing: codes, then scales/mins from the packed 12 bytes.
fn pack_q45k_row(
    codes: &[u8; QK_K],
    scales: &[u8; 12],
    d: f16,
    dmin: f16,
    r: usize,
    p: &mut KPanel,
) {
    put_codes(codes, r, p);
    let (sc, m) = unpack_scales_mins_k4(scales);
    for s in 0..8 {
        p.scales[s][r] = sc[s] as i32;
        p.mins[s / 2][2 * r + s % 2] = m[s] as i16;
    }
    p.d[r] = d.to_f32();
    p.neg_dmin[r] = -dmin.to_f32();
}

impl KWeight for BlockQ4K {
    const KIND: KKind = KKind::Q45;
    fn pack_row(&self, r: usize, p: &mut KPanel) {
        let codes = q4k_codes(&self.qs);
        pack_q45k_row(&codes, &self.scales, self.d, self.dmin, r, p);
    }
}

impl KWeight for BlockQ5K {
    const KIND: KKind = KKind::Q45;
    fn pack_row(&self, r: usize, p: &mut KPanel) {
        let codes = q5k_codes(&self.qs, &self.qh);
        pack_q45k_row(&codes, &self.scales, self.d, self.dmin, r, p);
    }
}

impl KWeight for BlockQ6K {
    const KIND: KKind = KKind::Q6;
    fn pack_row(&self, r: usize, p: &mut KPanel) {
        put_codes(&q6k_codes(&self.ql, &self.qh), r, p);
        for s in 0..16 {
            p.scales[s][r] = self.scales[s] as i32;
        }
        p.d[r] = self.d.to_f32();
    }
}

/// The K side-table entry of one q8_K block for weights of `kind`.
pub fn k_side(a: &BlockQ8K, kind: KKind) -> KAct {
    let mut out = KAct {
        qs: a.qs,
        d: a.d,
        corr: [0; 16],
        bsum_pairs: [0; 8],
    };
    match kind {
        KKind::Q45 => {
            for (s, p) in out.bsum_pairs.iter_mut().enumerate() {
                *p = a.bsums[2 * s].wrapping_add(a.bsums[2 * s + 1]);
            }
        }
        KKind::Q6 => {
            for (c, &b) in out.corr.iter_mut().zip(&a.bsums) {
                *c = -32 * b as i32;
            }
        }
    }
    out
}

/// Repacks `valid` (≤ 16) consecutive rows of `nb` legacy blocks each (`w`, row-major) into
/// `out` (`nb` panel blocks); rows `valid..16` become zero.
///
/// # Panics
/// If `valid > 16`, `w.len() != valid·nb` or `out.len() != nb`.
pub fn pack_legacy<W: LegacyWeight>(w: &[W], valid: usize, out: &mut [LegacyPanel]) {
    let nb = out.len();
    assert!(valid <= PANEL_ROWS && w.len() == valid * nb, "panel shape");
    for (b, p) in out.iter_mut().enumerate() {
        for r in 0..PANEL_ROWS {
            let (codes, (d, m)) = if r < valid {
                let x = &w[r * nb + b];
                (x.unsigned_codes(), x.scale_min())
            } else {
                ([0; QK], (f16::ZERO, f16::ZERO))
            };
            for (g, group) in p.codes.iter_mut().enumerate() {
                group[4 * r..4 * r + 4].copy_from_slice(&codes[4 * g..4 * g + 4]);
            }
            p.d[r] = d;
            p.m[r] = m;
        }
    }
}

/// Repacks `valid` (≤ 16) consecutive rows of `nb` K-quant blocks each into `out` (`nb`
/// panel super-blocks); rows `valid..16` become zero.
///
/// # Panics
/// If `valid > 16`, `w.len() != valid·nb` or `out.len() != nb`.
pub fn pack_k<W: KWeight>(w: &[W], valid: usize, out: &mut [KPanel]) {
    let nb = out.len();
    assert!(valid <= PANEL_ROWS && w.len() == valid * nb, "panel shape");
    for (b, p) in out.iter_mut().enumerate() {
        *p = KPanel::zeroed();
        for r in 0..valid {
            w[r * nb + b].pack_row(r, p);
        }
    }
}

/// Checks a panel kernel's operands; returns the number of columns.
///
/// # Panics
/// On any inconsistency (a caller bug).
#[inline]
pub(crate) fn check_panel_args(
    nb: usize,
    acts: usize,
    out: usize,
    ld: usize,
    valid: usize,
) -> usize {
    assert!(
        nb > 0 && acts.is_multiple_of(nb),
        "{acts} activation blocks for {nb} per column"
    );
    assert!(
        valid <= PANEL_ROWS && valid <= ld,
        "panel of {valid} rows, stride {ld}"
    );
    let ncols = acts / nb;
    if ncols > 0 {
        assert!(
            (ncols - 1) * ld + valid <= out,
            "output of {out} values for {ncols} columns of stride {ld}"
        );
    }
    ncols
}

/// A legacy panel kernel: `out[t·ld + r] = Σ_b panel[b] row r · acts[t·nb + b]` for
/// `r < valid`, every column t (`acts.len() / panel.len()` of them).
pub(crate) type LegacyGemmFn = fn(&[LegacyPanel], &[LegacyAct], &mut [f32], usize, usize);
/// A K panel kernel, as [`LegacyGemmFn`].
pub(crate) type KGemmFn = fn(&[KPanel], &[KAct], &mut [f32], usize, usize);

/// The panel kernels of one level.
#[derive(Clone, Copy)]
pub struct PanelGemm {
    pub(crate) legacy0: LegacyGemmFn,
    pub(crate) legacy1: LegacyGemmFn,
    pub(crate) k45: KGemmFn,
    pub(crate) k6: KGemmFn,
}

impl PanelGemm {
    /// `out[t·ld + r] = Σ_b panel[b]·acts[t·nb + b]` (row r of the panel) for `r < valid`
    /// and every column t; `type1` selects the q4_1/q5_1 kernel (adds `m·s`).
    ///
    /// # Panics
    /// If `acts.len()` is not a multiple of `panel.len()`, `valid > 16` or `> ld`, or `out`
    /// is too short.
    #[inline]
    pub fn legacy(
        &self,
        type1: bool,
        panel: &[LegacyPanel],
        acts: &[LegacyAct],
        out: &mut [f32],
        ld: usize,
        valid: usize,
    ) {
        let f = if type1 { self.legacy1 } else { self.legacy0 };
        f(panel, acts, out, ld, valid)
    }

    /// The K-quant panel kernel of `kind`, as [`PanelGemm::legacy`].
    ///
    /// # Panics
    /// As [`PanelGemm::legacy`].
    #[inline]
    pub fn k(
        &self,
        kind: KKind,
        panel: &[KPanel],
        acts: &[KAct],
        out: &mut [f32],
        ld: usize,
        valid: usize,
    ) {
        let f = match kind {
            KKind::Q45 => self.k45,
            KKind::Q6 => self.k6,
        };
        f(panel, acts, out, ld, valid)
    }
}

/// Reference legacy panel kernel (type 0 or type 1).
fn legacy_ref<const T1: bool>(
    panel: &[LegacyPanel],
    acts: &[LegacyAct],
    out: &mut [f32],
    ld: usize,
    valid: usize,
) {
    let nb = panel.len();
    let ncols = check_panel_args(nb, acts.len(), out.len(), ld, valid);
    for t in 0..ncols {
        let mut acc = [0.0f32; PANEL_ROWS];
        for (p, a) in panel.iter().zip(&acts[t * nb..(t + 1) * nb]) {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let mut s = a.corr;
                for (g, group) in p.codes.iter().enumerate() {
                    for k in 0..4 {
                        s += group[4 * r + k] as i32 * a.qs[4 * g + k] as i32;
                    }
                }
                *acc_r = (s as f32).mul_add(p.d[r].to_f32() * a.d, *acc_r);
                if T1 {
                    *acc_r = p.m[r].to_f32().mul_add(a.s, *acc_r);
                }
            }
        }
        out[t * ld..t * ld + valid].copy_from_slice(&acc[..valid]);
    }
}

/// Reference K panel kernel (`Q6`: q6_K, else q4_K/q5_K).
fn k_ref<const Q6: bool>(
    panel: &[KPanel],
    acts: &[KAct],
    out: &mut [f32],
    ld: usize,
    valid: usize,
) {
    let nb = panel.len();
    let ncols = check_panel_args(nb, acts.len(), out.len(), ld, valid);
    let (nsub, per) = if Q6 { (16, 4) } else { (8, 8) };
    for t in 0..ncols {
        let mut acc = [0.0f32; PANEL_ROWS];
        for (p, a) in panel.iter().zip(&acts[t * nb..(t + 1) * nb]) {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let mut sumi = 0i32;
                for s in 0..nsub {
                    let mut x = a.corr[s];
                    for g in per * s..per * (s + 1) {
                        for k in 0..4 {
                            x += p.codes[g][4 * r + k] as i32 * a.qs[4 * g + k] as i32;
                        }
                    }
                    sumi += x * p.scales[s][r];
                }
                *acc_r = (sumi as f32).mul_add(p.d[r] * a.d, *acc_r);
                if !Q6 {
                    let summ: i32 = (0..8)
                        .map(|s| p.mins[s / 2][2 * r + s % 2] as i32 * a.bsum_pairs[s] as i32)
                        .sum();
                    *acc_r = (summ as f32).mul_add(p.neg_dmin[r] * a.d, *acc_r);
                }
            }
        }
        out[t * ld..t * ld + valid].copy_from_slice(&acc[..valid]);
    }
}

/// The portable panel kernels (the reference for the SIMD ones).
pub(crate) const SCALAR_PANEL: PanelGemm = PanelGemm {
    legacy0: legacy_ref::<false>,
    legacy1: legacy_ref::<true>,
    k45: k_ref::<false>,
    k6: k_ref::<true>,
};

/// The side-table entry of a legacy activation block for weight type `W`.
#[inline]
pub fn legacy_side<W: LegacyWeight>(a: &W::Act) -> LegacyAct {
    a.side(W::OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_unsigned_codes_round_trip_every_byte() {
        let mut b = BlockQ8_0::zeroed();
        for v in [-128i32, -127, -1, 0, 1, 127] {
            b.qs = [v as i8; 32];
            let u = b.unsigned_codes();
            assert!(u.iter().all(|&c| c as i32 - BlockQ8_0::OFFSET == v));
        }
    }
}
