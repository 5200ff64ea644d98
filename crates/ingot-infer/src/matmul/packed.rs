//! Weights repacked **once** into 16-row panels, for callers that multiply the same matrix
//! many times and can spend memory on it.
//!
//! Why: the dot kernels read W in the file's layout, one row per call, and spend most of
//! their instructions on per-block bookkeeping (scale conversion, nibble unpacking, the
//! horizontal sum) rather than on `vpdpbusd`. In a panel (layout in [`crate::kernels::panel`])
//! one `vpdpbusd` serves 16 rows with the activation bytes broadcast, and the scales of 16
//! rows are one vector. The batched matmul already builds panels per call; a
//! [`PackedMatrix`] keeps them, so a GEMV (one activation column) can use them too: measured
//! on 576×1536 (1 thread, data in L2), q8_0 from ≈25 to ≈110 GiB/s of the original weight
//! bytes and q4_K from ≈19 to ≈56 (benches/README.md).
//!
//! The cost is memory and bandwidth: panels hold one byte per code (and K panels i32
//! sub-block scales), so they are 1.06× (q8_0) to 2.4× (q4_K) the original bytes. When W
//! streams from DRAM (a matrix larger than the caches, used once per token) that extra
//! traffic can outweigh the saved instructions, which is why [`super::QMatrix`] (borrowed,
//! zero-copy) stays the default and packing is the caller's choice — the same trade as
//! llama.cpp's weight repacking and candle-core's `QMatMul`, which both repack at load.
//!
//! Results: per output the packed kernels perform the same integer sums as the panel GEMM
//! and the same float operations in the same order, so a packed matmul equals the panel GEMM
//! of [`super::matmul`] bit for bit for n ≥ its panel threshold, and agrees with the dot
//! kernels within the summation-order tolerance of `formats/kernels.md` otherwise.

use bytemuck::Zeroable;
use ingot_quant::blocks::BlockQ8K;
use rayon::prelude::*;

use super::{
    grown, pack_panels, panel_columns, quantize_acts, side_table, view_acts, Blocks, MatmulScratch,
    Multiply, QMatrix, WeightType, Weights,
};
use crate::kernels::panel::{
    self, KKind, KPanel, KWeight, LegacyActBlock, LegacyPanel, LegacyWeight, PanelGemm,
    PANEL_MIN_N, PANEL_ROWS,
};
use crate::kernels::{Kernels, Quantize};

/// Panels per GEMV task: 2 × 16 rows, so a 576-row matrix still gives two threads 18 tasks.
const GEMV_MIN_PANELS: usize = 2;

/// A weight matrix repacked into 16-row panels, owned (see the module docs for when this
/// pays). Built by [`PackedMatrix::pack`]; multiplied by [`super::matmul`] like a
/// [`QMatrix`].
#[derive(Clone, Debug)]
pub struct PackedMatrix {
    ty: WeightType,
    rows: usize,
    cols: usize,
    /// Blocks per row (32 or 256 elements each).
    nb: usize,
    panels: Panels,
}

#[derive(Clone, Debug)]
enum Panels {
    /// q8_0/q4_0/q5_0 (`type1 == false`, activations q8_0) or q4_1/q5_1 (q8_1), with the
    /// unsigned-code offset the activation side table corrects for.
    Legacy {
        panels: Vec<LegacyPanel>,
        type1: bool,
        offset: i32,
    },
    /// q4_K/q5_K/q6_K, activations q8_K.
    K { panels: Vec<KPanel>, kind: KKind },
}

impl PackedMatrix {
    /// Repacks `w` (in parallel over panels, on the current rayon pool). `None` for the
    /// types without panel kernels (q8_K and the float types), which keep using
    /// [`super::matmul`] on the borrowed matrix.
    pub fn pack(w: &QMatrix<'_>) -> Option<PackedMatrix> {
        let (rows, nb) = (w.rows, w.cols / w.ty.block_elems());
        let panels = match w.blocks {
            Blocks::Q8_0(b) => pack_legacy(b, rows, nb),
            Blocks::Q4_0(b) => pack_legacy(b, rows, nb),
            Blocks::Q5_0(b) => pack_legacy(b, rows, nb),
            Blocks::Q4_1(b) => pack_legacy(b, rows, nb),
            Blocks::Q5_1(b) => pack_legacy(b, rows, nb),
            Blocks::Q4K(b) => pack_k(b, rows, nb),
            Blocks::Q5K(b) => pack_k(b, rows, nb),
            Blocks::Q6K(b) => pack_k(b, rows, nb),
            Blocks::Q8K(_) | Blocks::F16(_) | Blocks::BF16(_) | Blocks::F32(_) => return None,
        };
        Some(PackedMatrix {
            ty: w.ty,
            rows,
            cols: w.cols,
            nb,
            panels,
        })
    }

    /// The weight type it was packed from.
    pub fn weight_type(&self) -> WeightType {
        self.ty
    }

    /// Bytes the panels occupy (compare with the original matrix's to see the expansion).
    pub fn size_bytes(&self) -> usize {
        match &self.panels {
            Panels::Legacy { panels, .. } => size_of_val(panels.as_slice()),
            Panels::K { panels, .. } => size_of_val(panels.as_slice()),
        }
    }
}

/// Panels of `rows` rows of `nb` blocks (`ceil(rows / 16)` panels of `nb` panel blocks).
fn panel_vec<W: Sync, P: Zeroable + Clone + Send>(
    w: &[W],
    rows: usize,
    nb: usize,
    pack: impl Fn(&[W], usize, &mut [P]) + Sync,
) -> Vec<P> {
    let mut out = vec![P::zeroed(); rows.div_ceil(PANEL_ROWS) * nb];
    pack_panels(w, rows, nb, &mut out, pack);
    out
}

fn pack_legacy<W: LegacyWeight>(w: &[W], rows: usize, nb: usize) -> Panels {
    Panels::Legacy {
        panels: panel_vec(w, rows, nb, panel::pack_legacy),
        type1: W::TYPE1,
        offset: W::OFFSET,
    }
}

fn pack_k<W: KWeight>(w: &[W], rows: usize, nb: usize) -> Panels {
    Panels::K {
        panels: panel_vec(w, rows, nb, panel::pack_k),
        kind: W::KIND,
    }
}

impl Multiply for PackedMatrix {
    /// A level without SIMD panel kernels (AVX2) runs the portable panel reference:
    /// correct, but slow — pack only where [`Kernels::panel_gemm`] is `Some`.
    fn multiply(
        &self,
        k: &Kernels,
        x: &[f32],
        n: usize,
        y: &mut [f32],
        scratch: &mut MatmulScratch,
    ) {
        if n == 0 || self.rows == 0 {
            return;
        }
        if self.nb == 0 {
            y.fill(0.0);
            return;
        }
        let g: &PanelGemm = k.panel_gemm().unwrap_or(&panel::SCALAR_PANEL);
        let w = self;
        match &self.panels {
            Panels::Legacy {
                panels,
                type1: false,
                offset,
            } => legacy(w, panels, *offset, g, k.quantize_q8_0, false, x, y, scratch),
            Panels::Legacy {
                panels,
                type1: true,
                offset,
            } => legacy(w, panels, *offset, g, k.quantize_q8_1, true, x, y, scratch),
            Panels::K { panels, kind } => {
                let (rows, nb) = (w.rows, w.nb);
                let MatmulScratch {
                    act,
                    yt,
                    panels: ps,
                } = scratch;
                let a: &mut [BlockQ8K] = view_acts(act, n * nb);
                quantize_acts(k.quantize_q8_k, x, w.cols, a);
                let side = side_table(a, &mut ps.k_acts, |q| panel::k_side(q, *kind));
                run(panels, nb, rows, side, y, yt, |p, at, out, ld, valid| {
                    g.k(*kind, p, at, out, ld, valid)
                });
            }
        }
    }
}

/// A legacy packed matmul with activations of type `A` (q8_0 or q8_1).
#[allow(clippy::too_many_arguments)]
fn legacy<A: LegacyActBlock>(
    w: &PackedMatrix,
    panels: &[LegacyPanel],
    offset: i32,
    g: &PanelGemm,
    quant: Quantize<A>,
    type1: bool,
    x: &[f32],
    y: &mut [f32],
    scratch: &mut MatmulScratch,
) {
    let MatmulScratch {
        act,
        yt,
        panels: ps,
    } = scratch;
    let a: &mut [A] = view_acts(act, x.len() / w.cols * w.nb);
    quantize_acts(quant, x, w.cols, a);
    let side = side_table(a, &mut ps.legacy_acts, |q| q.side(offset));
    run(
        panels,
        w.nb,
        w.rows,
        side,
        y,
        yt,
        |p, at, out, ld, valid| g.legacy(type1, p, at, out, ld, valid),
    );
}

/// Runs `kernel(panel, acts, out, ld, valid)` over every panel and column:
/// - n = 1 (GEMV): tasks of [`GEMV_MIN_PANELS`]+ panels, each writing its rows of `y`;
/// - 1 < n < [`PANEL_MIN_N`]: the same split, each panel writing a 16 × n tile of `yt` that
///   is then transposed into `y`;
/// - otherwise: column blocks across threads, as the per-call panel GEMM.
fn run<P: Sync, A: Sync>(
    panels: &[P],
    nb: usize,
    rows: usize,
    acts: &[A],
    y: &mut [f32],
    yt: &mut Vec<f32>,
    kernel: impl Fn(&[P], &[A], &mut [f32], usize, usize) + Sync,
) {
    let n = acts.len() / nb;
    if n == 1 {
        y.par_chunks_mut(PANEL_ROWS)
            .zip(panels.par_chunks(nb))
            .with_min_len(GEMV_MIN_PANELS)
            .for_each(|(out, p)| kernel(p, acts, out, PANEL_ROWS, out.len()));
    } else if n < PANEL_MIN_N {
        let tile = PANEL_ROWS * n;
        let np = rows.div_ceil(PANEL_ROWS);
        let t = grown(yt, np * tile);
        t.par_chunks_mut(tile)
            .zip(panels.par_chunks(nb))
            .enumerate()
            .with_min_len(GEMV_MIN_PANELS)
            .for_each(|(i, (out, p))| {
                let valid = PANEL_ROWS.min(rows - i * PANEL_ROWS);
                kernel(p, acts, out, PANEL_ROWS, valid)
            });
        let t: &[f32] = t;
        y.par_chunks_mut(rows).enumerate().for_each(|(c, yc)| {
            for (r, v) in yc.iter_mut().enumerate() {
                *v = t[(r / PANEL_ROWS) * tile + c * PANEL_ROWS + r % PANEL_ROWS];
            }
        });
    } else {
        panel_columns(panels, nb, rows, acts, y, |p, at, out, valid| {
            kernel(p, at, out, rows, valid)
        });
    }
}

impl Weights for PackedMatrix {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
}
