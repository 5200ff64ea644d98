//! Quantized matrix × activations: `y[t][r] = Σ_c W[r][c] · x[t][c]` for `t < n`.
//!
//! ```text
//! quantize x once per call (the weight type's activation type, one row per token)
//! n < 4      (GEMV), the level has a four-row kernel for the type: groups of 4 rows split
//!            across rayon threads; y[t][r..r+4] = dot_4rows(W[r..r+4], xq[t]) (each
//!            activation block loaded once for four rows; bit for bit four dots), the kernel
//!            prefetching the next group as it reads (streaming W from DRAM)
//! n < 4      otherwise: rows split across threads, y[t][r] = dot(W[r], xq[t]), each row
//!            prefetching the row ≥ 2 KiB ahead
//! n ≥ 8 (K-quants: n ≥ 24) and the level has panel kernels (scalar reference, AVX-512 VNNI) and the type is
//!            q8_0/q4_0/q5_0/q4_1/q5_1/q4_K/q5_K/q6_K  (panel GEMM, see kernels::panel):
//!            repack W into 16-row interleaved panels (parallel over panels), build the
//!            activation side table, then column blocks of ≤ 64 tokens split across threads;
//!            each task runs every panel over its columns (16 rows × 8 or 4 columns per
//!            register tile) and writes y directly
//! otherwise  (GEMM): chunks of ROWS_PER_TASK rows split across threads; in each chunk,
//!            for every group of 4 tokens, for every row: dot_x4(W[r], xq[t..t+4])
//!            (each weight block is decoded once for four tokens while in registers),
//!            written to a row-major yᵀ tile, then transposed into y
//! ```
//!
//! W is borrowed (typically from the GGUF memory map); only the per-call panel copy is
//! scratch. A caller that can spend memory may instead pack W once ([`PackedMatrix`],
//! [`matmul_packed`]): the panel kernels then serve the GEMV too (see `matmul/packed.rs`). Scratch space (quantized activations, panels, side tables, yᵀ) lives in
//! [`MatmulScratch`] and only grows, so steady-state calls allocate nothing.

use bytemuck::Pod;
use half::{bf16, f16};
use ingot_format::GgmlType;
use ingot_quant::blocks::{
    BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1, QK, QK_K,
};
use rayon::prelude::*;

use crate::kernels::panel::{
    self, KAct, KPanel, KWeight, LegacyAct, LegacyPanel, LegacyWeight, PanelGemm, PANEL_MIN_N,
    PANEL_ROWS,
};
use crate::kernels::{self, Dot, Kernels, Quantize};
use crate::InferError;

mod packed;
pub use packed::PackedMatrix;

/// Rows per GEMM task: small enough to give two threads many tasks on a 576-row matrix,
/// large enough that the activations streamed per task are amortised over many rows.
const ROWS_PER_TASK: usize = 16;
/// Smallest batch for the K-quant panel GEMM (see [`k_panel_gemm`]).
const PANEL_MIN_N_K: usize = 24;
/// Minimum rows per GEMV task (rayon splits adaptively above this).
const GEMV_MIN_ROWS: usize = 8;
/// Rows per GEMV step: the four-row kernel loads each activation block once for four rows.
const GEMV_ROWS: usize = 4;
/// How far ahead the GEMV prefetches W: the row starting at least this many bytes after the
/// current one. Measured on 4096×4096 from DRAM, 1 thread (formats/kernels.md, "Prefetch"):
/// q4_K from 6.1–6.2 to 9.1–9.8 GiB/s, q4_0 from 6.5–7.2 to 9.1–9.4; 8 KiB ahead is slower.
const GEMV_PREFETCH_BYTES: usize = 2048;
/// Batch size from which the 4-column micro-kernel is used.
const GEMM_MIN_N: usize = 4;

/// A weight type the matmul has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WeightType {
    /// Q8_0.
    Q8_0,
    /// Q4_0.
    Q4_0,
    /// Q4_1.
    Q4_1,
    /// Q5_0.
    Q5_0,
    /// Q5_1.
    Q5_1,
    /// Q4_K.
    Q4K,
    /// Q5_K.
    Q5K,
    /// Q6_K.
    Q6K,
    /// Q8_K.
    Q8K,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// f32.
    F32,
}

impl WeightType {
    /// ggml's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            WeightType::Q8_0 => "q8_0",
            WeightType::Q4_0 => "q4_0",
            WeightType::Q4_1 => "q4_1",
            WeightType::Q5_0 => "q5_0",
            WeightType::Q5_1 => "q5_1",
            WeightType::Q4K => "q4_K",
            WeightType::Q5K => "q5_K",
            WeightType::Q6K => "q6_K",
            WeightType::Q8K => "q8_K",
            WeightType::F16 => "f16",
            WeightType::BF16 => "bf16",
            WeightType::F32 => "f32",
        }
    }

    /// The matmul type of a GGML type, or `None` if there is no kernel for it.
    pub fn from_ggml(ty: GgmlType) -> Option<WeightType> {
        Some(match ty {
            GgmlType::Q8_0 => WeightType::Q8_0,
            GgmlType::Q4_0 => WeightType::Q4_0,
            GgmlType::Q4_1 => WeightType::Q4_1,
            GgmlType::Q5_0 => WeightType::Q5_0,
            GgmlType::Q5_1 => WeightType::Q5_1,
            GgmlType::Q4_K => WeightType::Q4K,
            GgmlType::Q5_K => WeightType::Q5K,
            GgmlType::Q6_K => WeightType::Q6K,
            GgmlType::Q8_K => WeightType::Q8K,
            GgmlType::F16 => WeightType::F16,
            GgmlType::BF16 => WeightType::BF16,
            GgmlType::F32 => WeightType::F32,
            _ => return None,
        })
    }

    /// Elements per block.
    pub fn block_elems(self) -> usize {
        match self {
            WeightType::Q8_0
            | WeightType::Q4_0
            | WeightType::Q4_1
            | WeightType::Q5_0
            | WeightType::Q5_1 => QK,
            WeightType::Q4K | WeightType::Q5K | WeightType::Q6K | WeightType::Q8K => QK_K,
            WeightType::F16 | WeightType::BF16 | WeightType::F32 => 1,
        }
    }
}

/// A borrowed weight slice, typed by block.
#[derive(Clone, Copy, Debug)]
enum Blocks<'a> {
    Q8_0(&'a [BlockQ8_0]),
    Q4_0(&'a [BlockQ4_0]),
    Q4_1(&'a [BlockQ4_1]),
    Q5_0(&'a [BlockQ5_0]),
    Q5_1(&'a [BlockQ5_1]),
    Q4K(&'a [BlockQ4K]),
    Q5K(&'a [BlockQ5K]),
    Q6K(&'a [BlockQ6K]),
    Q8K(&'a [BlockQ8K]),
    F16(&'a [f16]),
    BF16(&'a [bf16]),
    F32(&'a [f32]),
}

/// A quantized weight matrix of `rows` rows of `cols` elements, borrowed from `data`.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    ty: WeightType,
    rows: usize,
    cols: usize,
    blocks: Blocks<'a>,
}

fn cast<B: Pod>(ty: WeightType, data: &[u8]) -> Result<&[B], InferError> {
    bytemuck::try_cast_slice(data).map_err(|_| InferError::Misaligned {
        ty: ty.name(),
        align: align_of::<B>(),
        addr_mod: data.as_ptr() as usize % align_of::<B>(),
    })
}

impl<'a> QMatrix<'a> {
    /// Views `data` as `rows` rows of `cols` elements of GGML type `ty` (row r at
    /// `data[r·row_bytes..]`; `cols` = GGUF ne\[0\], `rows` = ne\[1\]).
    ///
    /// Errors: [`InferError::UnsupportedType`] for a type without kernels (Q2_K, Q3_K, IQ*…),
    /// otherwise as [`QMatrix::with_type`].
    pub fn new(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<QMatrix<'a>, InferError> {
        let wt = WeightType::from_ggml(ty).ok_or(InferError::UnsupportedType { ty: ty.name() })?;
        QMatrix::with_type(wt, rows, cols, data)
    }

    /// Views `data` as `rows` rows of `cols` elements of type `ty` (row r at
    /// `data[r·row_bytes..]`; `cols` = GGUF ne\[0\], `rows` = ne\[1\]).
    ///
    /// Errors: `cols` not a block multiple, `data.len() != rows·row_bytes`, or `data` not
    /// aligned for the block type (GGUF tensor data always is).
    pub fn with_type(
        ty: WeightType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<QMatrix<'a>, InferError> {
        let block = ty.block_elems();
        if !cols.is_multiple_of(block) {
            return Err(InferError::RowNotBlockMultiple {
                ty: ty.name(),
                cols,
                block,
            });
        }
        let block_bytes = match ty {
            WeightType::Q8_0 => size_of::<BlockQ8_0>(),
            WeightType::Q4_0 => size_of::<BlockQ4_0>(),
            WeightType::Q4_1 => size_of::<BlockQ4_1>(),
            WeightType::Q5_0 => size_of::<BlockQ5_0>(),
            WeightType::Q5_1 => size_of::<BlockQ5_1>(),
            WeightType::Q4K => size_of::<BlockQ4K>(),
            WeightType::Q5K => size_of::<BlockQ5K>(),
            WeightType::Q6K => size_of::<BlockQ6K>(),
            WeightType::Q8K => size_of::<BlockQ8K>(),
            WeightType::F16 | WeightType::BF16 => 2,
            WeightType::F32 => 4,
        };
        let expected = (cols / block)
            .checked_mul(block_bytes)
            .and_then(|rb| rb.checked_mul(rows));
        if expected != Some(data.len()) {
            return Err(InferError::WeightSize {
                ty: ty.name(),
                rows,
                cols,
                expected: expected.unwrap_or(usize::MAX),
                actual: data.len(),
            });
        }
        let blocks = match ty {
            WeightType::Q8_0 => Blocks::Q8_0(cast(ty, data)?),
            WeightType::Q4_0 => Blocks::Q4_0(cast(ty, data)?),
            WeightType::Q4_1 => Blocks::Q4_1(cast(ty, data)?),
            WeightType::Q5_0 => Blocks::Q5_0(cast(ty, data)?),
            WeightType::Q5_1 => Blocks::Q5_1(cast(ty, data)?),
            WeightType::Q4K => Blocks::Q4K(cast(ty, data)?),
            WeightType::Q5K => Blocks::Q5K(cast(ty, data)?),
            WeightType::Q6K => Blocks::Q6K(cast(ty, data)?),
            WeightType::Q8K => Blocks::Q8K(cast(ty, data)?),
            WeightType::F16 => Blocks::F16(cast(ty, data)?),
            WeightType::BF16 => Blocks::BF16(cast(ty, data)?),
            WeightType::F32 => Blocks::F32(cast(ty, data)?),
        };
        Ok(QMatrix {
            ty,
            rows,
            cols,
            blocks,
        })
    }

    /// The weight type.
    pub fn weight_type(&self) -> WeightType {
        self.ty
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Elements per row (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Dequantizes row `r` into `out` (`cols` values) with the given kernels.
    ///
    /// # Panics
    /// If `r >= rows` or `out.len() != cols`.
    pub fn dequantize_row(&self, k: &Kernels, r: usize, out: &mut [f32]) {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        let nb = self.cols / self.ty.block_elems();
        let span = r * nb..(r + 1) * nb;
        match self.blocks {
            Blocks::Q8_0(b) => k.q8_0.dequantize(&b[span], out),
            Blocks::Q4_0(b) => k.q4_0.dequantize(&b[span], out),
            Blocks::Q4_1(b) => k.q4_1.dequantize(&b[span], out),
            Blocks::Q5_0(b) => k.q5_0.dequantize(&b[span], out),
            Blocks::Q5_1(b) => k.q5_1.dequantize(&b[span], out),
            Blocks::Q4K(b) => k.q4_k.dequantize(&b[span], out),
            Blocks::Q5K(b) => k.q5_k.dequantize(&b[span], out),
            Blocks::Q6K(b) => k.q6_k.dequantize(&b[span], out),
            Blocks::Q8K(b) => k.q8_k.dequantize(&b[span], out),
            Blocks::F16(b) => k.f16.dequantize(&b[span], out),
            Blocks::BF16(b) => k.bf16.dequantize(&b[span], out),
            Blocks::F32(b) => k.f32.dequantize(&b[span], out),
        }
    }
}

/// Reusable buffers for [`matmul`]: quantized activations and the GEMM output tile. Keep one
/// per thread of control and pass it to every call; it grows to the largest shape seen.
#[derive(Debug, Default)]
pub struct MatmulScratch {
    /// Activation blocks, stored as u32 so every block type (alignment ≤ 4) can be viewed.
    act: Vec<u32>,
    /// yᵀ: rows × n.
    yt: Vec<f32>,
    /// Repacked weights and activation side tables of the panel GEMM.
    panels: PanelScratch,
}

/// The panel GEMM's buffers (see [`kernels::panel`]).
#[derive(Debug, Default)]
struct PanelScratch {
    legacy: Vec<LegacyPanel>,
    k: Vec<KPanel>,
    legacy_acts: Vec<LegacyAct>,
    k_acts: Vec<KAct>,
}

/// `buf[..len]`, growing `buf` with zeroed values if needed.
fn grown<T: bytemuck::Zeroable + Clone>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::zeroed());
    }
    &mut buf[..len]
}

/// Columns per panel-GEMM task: a multiple of 8 (the register tile), at most 64 (so a task's
/// activations stay in L2), small enough to give every thread about two tasks.
fn column_block(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(2 * threads).next_multiple_of(8).clamp(8, 64)
}

/// The panel GEMM: repack the weights into `panels` (one panel of `nb` blocks per 16 rows,
/// in parallel), build the activation side table in `side`, then run `kernel(panel,
/// activations, out, valid)` over column blocks split across threads.
#[allow(clippy::too_many_arguments)]
fn panel_gemm<W: Sync, Q: Sync, P: Send + Sync + bytemuck::Zeroable + Clone, A>(
    w: &[W],
    rows: usize,
    nb: usize,
    a: &[Q],
    y: &mut [f32],
    panels: &mut Vec<P>,
    side: &mut Vec<A>,
    pack: impl Fn(&[W], usize, &mut [P]) + Sync,
    to_side: impl Fn(&Q) -> A + Sync,
    kernel: impl Fn(&[P], &[A], &mut [f32], usize) + Sync,
) where
    A: Send + Sync + bytemuck::Zeroable + Clone,
{
    let panels = grown(panels, rows.div_ceil(PANEL_ROWS) * nb);
    pack_panels(w, rows, nb, panels, pack);
    let acts = side_table(a, side, to_side);
    panel_columns(panels, nb, rows, acts, y, kernel);
}

/// Repacks `rows` rows of `nb` blocks (`w`, row-major) into `out` (`ceil(rows / 16)` panels
/// of `nb` panel blocks), in parallel over panels; `pack(rows_of_w, valid, panel)` packs one.
fn pack_panels<W: Sync, P: Send>(
    w: &[W],
    rows: usize,
    nb: usize,
    out: &mut [P],
    pack: impl Fn(&[W], usize, &mut [P]) + Sync,
) {
    if nb == 0 {
        return;
    }
    out.par_chunks_mut(nb).enumerate().for_each(|(p, dst)| {
        let r0 = p * PANEL_ROWS;
        let valid = PANEL_ROWS.min(rows - r0);
        pack(&w[r0 * nb..(r0 + valid) * nb], valid, dst);
    });
}

/// The activation side table of the panel kernels: `to_side` of every quantized activation
/// block, in `buf` (grown as needed).
fn side_table<'s, Q: Sync, A: Send + Sync + bytemuck::Zeroable + Clone>(
    a: &[Q],
    buf: &'s mut Vec<A>,
    to_side: impl Fn(&Q) -> A + Sync,
) -> &'s [A] {
    let side = grown(buf, a.len());
    side.par_iter_mut()
        .zip(a.par_iter())
        .with_min_len(64)
        .for_each(|(s, q)| *s = to_side(q));
    side
}

/// The compute stage of the panel GEMM: column blocks of `y` (`n` columns of `rows`) split
/// across threads, each running every panel over its columns; `kernel(panel, acts, out,
/// valid)` writes column t of the panel's rows at `out[t·rows..]`.
fn panel_columns<P: Sync, A: Sync>(
    panels: &[P],
    nb: usize,
    rows: usize,
    acts: &[A],
    y: &mut [f32],
    kernel: impl Fn(&[P], &[A], &mut [f32], usize) + Sync,
) {
    let np = rows.div_ceil(PANEL_ROWS);
    let cb = column_block(acts.len() / nb);
    y.par_chunks_mut(cb * rows)
        .enumerate()
        .for_each(|(ci, ych)| {
            let t0 = ci * cb;
            let nc = ych.len() / rows;
            let at = &acts[t0 * nb..(t0 + nc) * nb];
            for p in 0..np {
                let r0 = p * PANEL_ROWS;
                let valid = PANEL_ROWS.min(rows - r0);
                kernel(&panels[p * nb..(p + 1) * nb], at, &mut ych[r0..], valid);
            }
        });
}

/// The panel GEMM of a legacy type (always taken from [`PANEL_MIN_N`] columns).
fn legacy_panel_gemm<W: LegacyWeight>(
    g: &PanelGemm,
    w: &[W],
    rows: usize,
    nb: usize,
    a: &[W::Act],
    y: &mut [f32],
    ps: &mut PanelScratch,
) -> bool {
    panel_gemm(
        w,
        rows,
        nb,
        a,
        y,
        &mut ps.legacy,
        &mut ps.legacy_acts,
        panel::pack_legacy,
        panel::legacy_side::<W>,
        |p, at, out, valid| g.legacy(W::TYPE1, p, at, out, rows, valid),
    );
    true
}

/// The panel GEMM of a K-quant type, from [`PANEL_MIN_N_K`] columns: the K dot micro-kernels
/// are fast enough that repacking (≈ 0.2 ns per weight) pays off only from about 20 columns
/// (measured on 576×1536: x4 path 48 G MAC/s of CPU time, panel ≈ 100).
fn k_panel_gemm<W: KWeight>(
    g: &PanelGemm,
    w: &[W],
    rows: usize,
    nb: usize,
    a: &[BlockQ8K],
    y: &mut [f32],
    ps: &mut PanelScratch,
) -> bool {
    if a.len() / nb < PANEL_MIN_N_K {
        return false;
    }
    panel_gemm(
        w,
        rows,
        nb,
        a,
        y,
        &mut ps.k,
        &mut ps.k_acts,
        panel::pack_k,
        |x| panel::k_side(x, W::KIND),
        |p, at, out, valid| g.k(W::KIND, p, at, out, rows, valid),
    );
    true
}

impl MatmulScratch {
    /// Empty scratch (buffers grow on first use).
    pub fn new() -> MatmulScratch {
        MatmulScratch::default()
    }
}

/// Views the first `count` activation blocks of the u32 buffer, growing it if needed.
fn view_acts<A: Pod>(buf: &mut Vec<u32>, count: usize) -> &mut [A] {
    let bytes = count * size_of::<A>();
    let words = bytes.div_ceil(4);
    if buf.len() < words {
        buf.resize(words, 0);
    }
    let raw: &mut [u8] = bytemuck::cast_slice_mut(buf.as_mut_slice());
    bytemuck::cast_slice_mut(&mut raw[..bytes])
}

/// Quantizes the `n` rows of `cols` values in `x` into `a` (`n` rows of `nb` blocks), in
/// parallel over rows when there are several.
fn quantize_acts<A: Send>(quant: Quantize<A>, x: &[f32], cols: usize, a: &mut [A]) {
    if x.len() == cols {
        quant.quantize(x, a);
    } else {
        let nb = a.len() / (x.len() / cols);
        a.par_chunks_mut(nb)
            .zip(x.par_chunks(cols))
            .for_each(|(at, xt)| quant.quantize(xt, at));
    }
}

/// One weight block type with its activation type and kernels.
trait Pair: Pod + Sync {
    type A: Pod + Send + Sync + 'static;
    const BLOCK: usize;
    fn dot(k: &Kernels) -> Dot<Self, Self::A>;
    fn quantize(k: &Kernels) -> Quantize<Self::A>;
    /// Runs the panel GEMM (weights `w`, quantized activations `a`) if this type has one;
    /// returns whether it did.
    #[allow(clippy::too_many_arguments)]
    fn panel_gemm(
        _g: &PanelGemm,
        _w: &[Self],
        _rows: usize,
        _nb: usize,
        _a: &[Self::A],
        _y: &mut [f32],
        _ps: &mut PanelScratch,
    ) -> bool {
        false
    }
}

macro_rules! pair {
    ($w:ty, $a:ty, $block:expr, $dot:ident, $q:expr) => {
        pair!($w, $a, $block, $dot, $q, {});
    };
    ($w:ty, $a:ty, $block:expr, $dot:ident, $q:expr, panel $run:ident) => {
        pair!($w, $a, $block, $dot, $q, {
            fn panel_gemm(
                g: &PanelGemm,
                w: &[$w],
                rows: usize,
                nb: usize,
                a: &[$a],
                y: &mut [f32],
                ps: &mut PanelScratch,
            ) -> bool {
                $run(g, w, rows, nb, a, y, ps)
            }
        });
    };
    ($w:ty, $a:ty, $block:expr, $dot:ident, $q:expr, { $($extra:tt)* }) => {
        impl Pair for $w {
            type A = $a;
            const BLOCK: usize = $block;
            fn dot(k: &Kernels) -> Dot<$w, $a> {
                k.$dot
            }
            fn quantize(k: &Kernels) -> Quantize<$a> {
                #[allow(clippy::redundant_closure_call)]
                ($q)(k)
            }
            $($extra)*
        }
    };
}

fn copy_f32(x: &[f32], out: &mut [f32]) {
    out.copy_from_slice(x);
}
const COPY: Quantize<f32> = Quantize { f: copy_f32 };

pair!(BlockQ8_0, BlockQ8_0, QK, q8_0, |k: &Kernels| k.quantize_q8_0, panel legacy_panel_gemm);
pair!(BlockQ4_0, BlockQ8_0, QK, q4_0, |k: &Kernels| k.quantize_q8_0, panel legacy_panel_gemm);
pair!(BlockQ5_0, BlockQ8_0, QK, q5_0, |k: &Kernels| k.quantize_q8_0, panel legacy_panel_gemm);
pair!(BlockQ4_1, BlockQ8_1, QK, q4_1, |k: &Kernels| k.quantize_q8_1, panel legacy_panel_gemm);
pair!(BlockQ5_1, BlockQ8_1, QK, q5_1, |k: &Kernels| k.quantize_q8_1, panel legacy_panel_gemm);
pair!(BlockQ4K, BlockQ8K, QK_K, q4_k, |k: &Kernels| k.quantize_q8_k, panel k_panel_gemm);
pair!(BlockQ5K, BlockQ8K, QK_K, q5_k, |k: &Kernels| k.quantize_q8_k, panel k_panel_gemm);
pair!(BlockQ6K, BlockQ8K, QK_K, q6_k, |k: &Kernels| k.quantize_q8_k, panel k_panel_gemm);
pair!(BlockQ8K, BlockQ8K, QK_K, q8_k, |k: &Kernels| k
    .quantize_q8_k);
pair!(f16, f32, 1, f16, |_: &Kernels| COPY);
pair!(bf16, f32, 1, bf16, |_: &Kernels| COPY);
pair!(f32, f32, 1, f32, |_: &Kernels| COPY);

/// A weight matrix [`matmul`] multiplies: borrowed ([`QMatrix`], zero-copy) or packed once
/// ([`PackedMatrix`]). Sealed: the two kinds this crate has kernels for.
pub trait Weights: Multiply {
    /// Rows (outputs).
    fn rows(&self) -> usize;
    /// Elements per row (inputs).
    fn cols(&self) -> usize;
}

mod sealed {
    use super::{Kernels, MatmulScratch};

    /// The product itself, on shapes [`super::matmul_with`] has checked.
    pub trait Multiply {
        fn multiply(
            &self,
            k: &Kernels,
            x: &[f32],
            n: usize,
            y: &mut [f32],
            scratch: &mut MatmulScratch,
        );
    }
}
use sealed::Multiply;

impl Weights for QMatrix<'_> {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
}

impl Multiply for QMatrix<'_> {
    fn multiply(
        &self,
        k: &Kernels,
        x: &[f32],
        n: usize,
        y: &mut [f32],
        scratch: &mut MatmulScratch,
    ) {
        run(k, self, x, n, y, scratch, None);
    }
}

/// `y[t·rows + r] = Σ_c W[r][c] · x[t·cols + c]` for `t < n`, with the process-wide kernels
/// ([`kernels::try_kernels`]). `n = 1` is a GEMV.
///
/// Errors: `x.len() != n·cols` or `y.len() != n·rows` ([`InferError::ShapeMismatch`]), or a
/// bad `INGOT_KERNEL`.
pub fn matmul<W: Weights + ?Sized>(
    w: &W,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
) -> Result<(), InferError> {
    matmul_with(kernels::try_kernels()?, w, x, n, y, scratch)
}

/// [`matmul`] with explicit kernels (tests and benches run every level by name).
pub fn matmul_with<W: Weights + ?Sized>(
    k: &Kernels,
    w: &W,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
) -> Result<(), InferError> {
    check_dims(w.rows(), w.cols(), x, n, y)?;
    w.multiply(k, x, n, y, scratch);
    Ok(())
}

/// Several matrices applied to the **same** input `x` (e.g. the q, k and v projections, or
/// gate and up): `ys[i] = ws[i]·x`. The activations are quantized once and reused by every
/// following matrix that needs the same activation type and row length (consecutive in
/// `ws`), instead of once per matrix. Results equal separate [`matmul`] calls exactly.
///
/// Errors: `ws.len() != ys.len()` or any shape mismatch ([`InferError::ShapeMismatch`],
/// checked for all matrices before any work), or a bad `INGOT_KERNEL`.
pub fn matmul_multi(
    ws: &[QMatrix<'_>],
    x: &[f32],
    n: usize,
    ys: &mut [&mut [f32]],
    scratch: &mut MatmulScratch,
) -> Result<(), InferError> {
    matmul_multi_with(kernels::try_kernels()?, ws, x, n, ys, scratch)
}

/// [`matmul_multi`] with explicit kernels.
pub fn matmul_multi_with(
    k: &Kernels,
    ws: &[QMatrix<'_>],
    x: &[f32],
    n: usize,
    ys: &mut [&mut [f32]],
    scratch: &mut MatmulScratch,
) -> Result<(), InferError> {
    if ws.len() != ys.len() {
        return Err(InferError::ShapeMismatch {
            operand: "ys",
            expected: ws.len(),
            actual: ys.len(),
        });
    }
    for (w, y) in ws.iter().zip(ys.iter()) {
        check_dims(w.rows, w.cols, x, n, y)?;
    }
    let mut prev = None;
    for (w, y) in ws.iter().zip(ys.iter_mut()) {
        prev = run(k, w, x, n, y, scratch, prev);
    }
    Ok(())
}

fn check_dims(rows: usize, cols: usize, x: &[f32], n: usize, y: &[f32]) -> Result<(), InferError> {
    let check = |operand, per: usize, actual: usize| match n.checked_mul(per) {
        Some(e) if e == actual => Ok(()),
        e => Err(InferError::ShapeMismatch {
            operand,
            expected: e.unwrap_or(usize::MAX),
            actual,
        }),
    };
    check("x", cols, x.len())?;
    check("y", rows, y.len())
}

/// Which activations `scratch.act` holds: activation block type and row length.
type ActKey = (std::any::TypeId, usize);

/// Runs one checked matmul; `prev` names the activations already quantized in `scratch` from
/// the same `x` (only [`matmul_multi_with`] passes one). Returns what `scratch` now holds.
fn run(
    k: &Kernels,
    w: &QMatrix<'_>,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
    prev: Option<ActKey>,
) -> Option<ActKey> {
    if n == 0 || w.rows == 0 {
        return prev;
    }
    let (rows, cols) = (w.rows, w.cols);
    let s = scratch;
    match w.blocks {
        Blocks::Q8_0(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q4_0(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q4_1(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q5_0(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q5_1(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q4K(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q5K(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q6K(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::Q8K(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::F16(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::BF16(b) => typed(k, b, rows, cols, x, n, y, s, prev),
        Blocks::F32(b) => typed(k, b, rows, cols, x, n, y, s, prev),
    }
}

#[allow(clippy::too_many_arguments)]
fn typed<P: Pair>(
    k: &Kernels,
    w: &[P],
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    scratch: &mut MatmulScratch,
    prev: Option<ActKey>,
) -> Option<ActKey> {
    let nb = cols / P::BLOCK;
    let dot = P::dot(k);
    let quant = P::quantize(k);
    if nb == 0 {
        y.fill(0.0);
        return prev;
    }
    let key = (std::any::TypeId::of::<P::A>(), cols);
    let MatmulScratch { act, yt, panels } = scratch;
    let a: &mut [P::A] = view_acts(act, n * nb);
    if prev != Some(key) {
        // (Otherwise already quantized from the same x by the previous matrix of a
        // matmul_multi call.)
        quantize_acts(quant, x, cols, a);
    }
    let a: &[P::A] = a;
    let wrow = |r: usize| &w[r * nb..(r + 1) * nb];
    let arow = |t: usize| &a[t * nb..(t + 1) * nb];

    if n >= PANEL_MIN_N {
        if let Some(g) = k.panel_gemm() {
            if P::panel_gemm(g, w, rows, nb, a, y, panels) {
                return Some(key);
            }
        }
    }
    if n < GEMM_MIN_N {
        let row_bytes = nb * size_of::<P>();
        for (t, yt_row) in y.chunks_exact_mut(rows).enumerate() {
            let at = arow(t);
            if dot.has_dot_4rows() {
                // Groups of four rows through the four-row kernel (bit for bit four dots),
                // which prefetches the next group as it reads this one.
                let ahead = GEMV_ROWS * row_bytes;
                yt_row
                    .par_chunks_mut(GEMV_ROWS)
                    .enumerate()
                    .with_min_len(GEMV_MIN_ROWS / GEMV_ROWS)
                    .for_each(|(g, out)| {
                        let r = g * GEMV_ROWS;
                        if let [o0, o1, o2, o3] = out {
                            let four = [wrow(r), wrow(r + 1), wrow(r + 2), wrow(r + 3)];
                            [*o0, *o1, *o2, *o3] = dot.dot_4rows(four, at, ahead);
                        } else {
                            for (i, o) in out.iter_mut().enumerate() {
                                *o = dot.dot(wrow(r + i), at);
                            }
                        }
                    });
            } else {
                // One row at a time, each prefetching the row ≥ GEMV_PREFETCH_BYTES ahead.
                let ahead = GEMV_PREFETCH_BYTES.div_ceil(row_bytes).max(1);
                yt_row
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(GEMV_MIN_ROWS)
                    .for_each(|(r, out)| {
                        if r + ahead < rows {
                            kernels::prefetch(bytemuck::cast_slice(wrow(r + ahead)));
                        }
                        *out = dot.dot(wrow(r), at)
                    });
            }
        }
    } else {
        if yt.len() < rows * n {
            yt.resize(rows * n, 0.0);
        }
        let tile = &mut yt[..rows * n];
        let n4 = n - n % 4;
        tile.par_chunks_mut(ROWS_PER_TASK * n)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let r0 = ci * ROWS_PER_TASK;
                let here = chunk.len() / n;
                for t0 in (0..n4).step_by(4) {
                    let acts = [arow(t0), arow(t0 + 1), arow(t0 + 2), arow(t0 + 3)];
                    for i in 0..here {
                        let out = dot.dot_x4(wrow(r0 + i), acts);
                        chunk[i * n + t0..i * n + t0 + 4].copy_from_slice(&out);
                    }
                }
                for t in n4..n {
                    for i in 0..here {
                        chunk[i * n + t] = dot.dot(wrow(r0 + i), arow(t));
                    }
                }
            });
        let tile: &[f32] = tile;
        y.par_chunks_mut(rows).enumerate().for_each(|(t, yrow)| {
            for (r, out) in yrow.iter_mut().enumerate() {
                *out = tile[r * n + t];
            }
        });
    }
    Some(key)
}
