//! AVX-512 VNNI panel kernels: the 512-bit bodies of the batched matmul over repacked weight
//! panels (layout and algorithm in `kernels::panel`).
//!
//! ```text
//! for each group of NC columns:
//!     acc[t] = 0                                 (16 f32 lanes = 16 rows, per column t)
//!     for each block b:
//!         w[g] = panel[b].codes[g]                (loaded once, used for NC columns)
//!         for t < NC:
//!             s = corr[t][b]                       (i32 broadcast)
//!             s = vpdpbusd(s, w[g], bcast(a_t[4g..4g+4]))   for every group g
//!             acc[t] = fma(f32(s), d_w · d_a, acc[t])      (+ fma(m_w, s_a) for type 1)
//!     masked store of the `valid` rows of every column
//! ```
//!
//! No closures here: a closure does not inherit the target features of the function around
//! it, so intrinsics inside one become out-of-line calls.
//!
//! The float operations are the reference's (`panel::legacy_ref`/`k_ref`), lane by lane, in
//! the same order, so results are bit-identical to it.

use core::arch::x86_64::*;

use crate::kernels::panel::{
    check_panel_args, KAct, KPanel, LegacyAct, LegacyPanel, PanelGemm, PANEL_ROWS,
};

/// Columns per register tile of the legacy kernel.
const NC_LEGACY: usize = 8;
/// Columns per register tile of the K kernels.
const NC_K: usize = 4;

/// Four activation bytes at `p` as one broadcast i32.
///
/// # Safety
/// `p` readable for 4 bytes; AVX-512F.
#[inline(always)]
unsafe fn bcast4(p: *const i8) -> __m512i {
    // SAFETY: 4 readable bytes per the contract; unaligned read.
    unsafe { _mm512_set1_epi32(p.cast::<i32>().read_unaligned()) }
}

/// 64 bytes at `p` (panel data is 64-byte aligned, but unaligned loads cost nothing extra).
///
/// # Safety
/// `p` readable for 64 bytes; AVX-512F.
#[inline(always)]
unsafe fn ld512(p: *const u8) -> __m512i {
    // SAFETY: 64 readable bytes per the contract.
    unsafe { _mm512_loadu_si512(p.cast()) }
}

/// NC columns of a legacy panel, starting at column `t0`.
///
/// # Safety
/// AVX-512F/BW/VL + VNNI; `acts` holds ≥ (t0 + NC)·nb blocks, `out` ≥ (t0 + NC − 1)·ld + 16
/// values or `mask` limits the stores to `out`'s bounds (checked by the caller).
#[inline(always)]
unsafe fn legacy_tile<const NC: usize, const T1: bool>(
    panel: &[LegacyPanel],
    acts: &[LegacyAct],
    t0: usize,
    out: *mut f32,
    ld: usize,
    mask: __mmask16,
) {
    let nb = panel.len();
    // SAFETY: every load is inside a panel block or an activation block; stores are masked
    // to the `valid` rows of the columns the caller checked.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); NC];
        for (b, p) in panel.iter().enumerate() {
            let mut w = [_mm512_setzero_si512(); 8];
            for (wg, c) in w.iter_mut().zip(&p.codes) {
                *wg = ld512(c.as_ptr());
            }
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(p.d.as_ptr().cast()));
            let mw = _mm512_cvtph_ps(_mm256_loadu_si256(p.m.as_ptr().cast()));
            // Raw pointers, no bounds checks: they would keep LLVM from unrolling the column
            // loop and the accumulators would live on the stack.
            let ap = acts.as_ptr().add(t0 * nb + b);
            for (t, acc_t) in acc.iter_mut().enumerate() {
                let a = &*ap.add(t * nb);
                let mut s = _mm512_set1_epi32(a.corr);
                for (g, wg) in w.iter().enumerate() {
                    s = _mm512_dpbusd_epi32(s, *wg, bcast4(a.qs.as_ptr().add(4 * g)));
                }
                let dd = _mm512_mul_ps(dw, _mm512_set1_ps(a.d));
                *acc_t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), dd, *acc_t);
                if T1 {
                    *acc_t = _mm512_fmadd_ps(mw, _mm512_set1_ps(a.s), *acc_t);
                }
            }
        }
        for (t, acc_t) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add((t0 + t) * ld), mask, *acc_t);
        }
    }
}

/// NC columns of a K panel, starting at column `t0`.
///
/// # Safety
/// As [`legacy_tile`].
#[inline(always)]
unsafe fn k_tile<const NC: usize, const Q6: bool>(
    panel: &[KPanel],
    acts: &[KAct],
    t0: usize,
    out: *mut f32,
    ld: usize,
    mask: __mmask16,
) {
    let nb = panel.len();
    let (nsub, per) = if Q6 { (16, 4) } else { (8, 8) };
    // SAFETY: as in `legacy_tile`.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); NC];
        for (b, p) in panel.iter().enumerate() {
            let ap = acts.as_ptr().add(t0 * nb + b);
            let a: [&KAct; NC] = std::array::from_fn(|t| &*ap.add(t * nb));
            let mut sumi = [_mm512_setzero_si512(); NC];
            for s in 0..nsub {
                let sc = _mm512_loadu_si512(p.scales[s].as_ptr().cast());
                let mut w = [_mm512_setzero_si512(); 8];
                for (g, wg) in w.iter_mut().enumerate().take(per) {
                    *wg = ld512(p.codes[per * s + g].as_ptr());
                }
                for t in 0..NC {
                    let mut x = if Q6 {
                        _mm512_set1_epi32(a[t].corr[s])
                    } else {
                        _mm512_setzero_si512()
                    };
                    for (g, wg) in w.iter().enumerate().take(per) {
                        let q = a[t].qs.as_ptr().add(4 * (per * s + g));
                        x = _mm512_dpbusd_epi32(x, *wg, bcast4(q));
                    }
                    sumi[t] = _mm512_add_epi32(sumi[t], _mm512_mullo_epi32(x, sc));
                }
            }
            let dw = _mm512_loadu_ps(p.d.as_ptr());
            for t in 0..NC {
                let dd = _mm512_mul_ps(dw, _mm512_set1_ps(a[t].d));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), dd, acc[t]);
            }
            if !Q6 {
                let mut mins = [_mm512_setzero_si512(); 4];
                for (mq, src) in mins.iter_mut().zip(&p.mins) {
                    *mq = _mm512_loadu_si512(src.as_ptr().cast());
                }
                let ndm = _mm512_loadu_ps(p.neg_dmin.as_ptr());
                for t in 0..NC {
                    let mut m = _mm512_setzero_si512();
                    for (q, mq) in mins.iter().enumerate() {
                        let pair = bcast4(a[t].bsum_pairs.as_ptr().add(2 * q).cast());
                        m = _mm512_dpwssd_epi32(m, *mq, pair);
                    }
                    let dd = _mm512_mul_ps(ndm, _mm512_set1_ps(a[t].d));
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), dd, acc[t]);
                }
            }
        }
        for (t, acc_t) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add((t0 + t) * ld), mask, *acc_t);
        }
    }
}

/// Defines a safe panel kernel: argument checks, then the `#[target_feature]` body over full
/// tiles of `$nc` columns and single columns for the rest.
macro_rules! panel_entry {
    ($name:ident, $panel:ty, $act:ty, $tile:ident, $nc:expr, $flag:expr) => {
        fn $name(panel: &[$panel], acts: &[$act], out: &mut [f32], ld: usize, valid: usize) {
            let ncols = check_panel_args(panel.len(), acts.len(), out.len(), ld, valid);
            #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
            unsafe fn tf(
                panel: &[$panel],
                acts: &[$act],
                ncols: usize,
                out: &mut [f32],
                ld: usize,
                valid: usize,
            ) {
                let mask: __mmask16 = ((1u32 << valid) - 1) as __mmask16;
                let full = ncols - ncols % $nc;
                let o = out.as_mut_ptr();
                // SAFETY: features enabled here; check_panel_args proved that column t's
                // `valid` masked lanes at t·ld lie inside `out` for every t < ncols, and
                // `acts` holds ncols·nb blocks.
                unsafe {
                    for t0 in (0..full).step_by($nc) {
                        $tile::<{ $nc }, { $flag }>(panel, acts, t0, o, ld, mask);
                    }
                    for t0 in full..ncols {
                        $tile::<1, { $flag }>(panel, acts, t0, o, ld, mask);
                    }
                }
            }
            if ncols == 0 || valid == 0 {
                return;
            }
            debug_assert!(valid <= PANEL_ROWS);
            // SAFETY: reachable only through `PANEL_VNNI`, handed out with the VNNI table,
            // i.e. after every feature above was detected.
            unsafe { tf(panel, acts, ncols, out, ld, valid) }
        }
    };
}

panel_entry!(
    legacy0,
    LegacyPanel,
    LegacyAct,
    legacy_tile,
    NC_LEGACY,
    false
);
panel_entry!(
    legacy1,
    LegacyPanel,
    LegacyAct,
    legacy_tile,
    NC_LEGACY,
    true
);
panel_entry!(k45, KPanel, KAct, k_tile, NC_K, false);
panel_entry!(k6, KPanel, KAct, k_tile, NC_K, true);

/// The AVX-512 VNNI panel kernels.
pub(crate) const PANEL_VNNI: PanelGemm = PanelGemm {
    legacy0,
    legacy1,
    k45,
    k6,
};
