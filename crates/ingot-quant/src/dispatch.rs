//! Crate-level entry points over raw bytes: one `match` on [`GgmlType`] per operation.
//!
//! These validate everything a caller might get from a file or a user (lengths, block
//! multiples, weights, non-finite input) and return [`QuantError`]; then they view the bytes as
//! the type's blocks and call the type's row function. Bytes that are not aligned for the block
//! type (blocks holding f16 need 2-byte alignment) go through an aligned scratch copy, so no
//! `unsafe` is needed.
//!
//! Adding a type = one arm in [`quantize_row`] and one in [`dequantize_row`].

use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};
use ingot_format::GgmlType;

use crate::error::QuantError;
use crate::float;
use crate::k_quants::{q2_k, q3_k, q4_k, q5_k, q6_k, q8_k};
use crate::legacy::{q4_0, q4_1, q5_0, q5_1, q8_0, q8_1};

/// Which quantizer [`quantize_row`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum QuantMode {
    /// ggml's reference quantizer (`quantize_row_*_ref`): byte-identical to llama.cpp without
    /// an imatrix. Importance weights are validated, then ignored.
    Reference,
    /// ingot's quantizer: importance-weighted with weights; without, a cheap improvement on
    /// the reference for the legacy types (`legacy::Effort::Fast`: one least-squares step
    /// from ggml's block) and the type's search for the K-quants. Never worse than
    /// `Reference` under its objective.
    #[default]
    Default,
    /// As `Default`, but blocks of the legacy types without weights also get the full
    /// candidate-grid search (`legacy::Effort::Thorough`): lower plain error, ~2–3× the time.
    /// The K-quants and Q8 types treat it as `Default`.
    Thorough,
}

/// Bytes of quantized data for `n_elements` of `ty`, or the error explaining why not.
pub fn row_bytes(ty: GgmlType, n_elements: usize) -> Result<usize, QuantError> {
    let block_size = ty.block_size();
    if block_size == 0 || !n_elements.is_multiple_of(block_size) {
        return Err(QuantError::PartialBlock {
            ty,
            len: n_elements,
            block_size,
        });
    }
    (n_elements / block_size)
        .checked_mul(ty.type_size())
        .ok_or(QuantError::PartialBlock {
            ty,
            len: n_elements,
            block_size,
        })
}

pub(crate) fn check_bytes(ty: GgmlType, elements: usize, actual: usize) -> Result<(), QuantError> {
    let expected = row_bytes(ty, elements)?;
    if expected != actual {
        return Err(QuantError::ByteLength {
            ty,
            elements,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Checks importance weights: one per element, finite and non-negative.
pub(crate) fn check_weights(n: usize, weights: Option<&[f32]>) -> Result<(), QuantError> {
    if let Some(w) = weights {
        if w.len() != n {
            return Err(QuantError::WeightsLength {
                expected: n,
                actual: w.len(),
            });
        }
        if let Some((index, &value)) = w
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(QuantError::InvalidWeight { index, value });
        }
    }
    Ok(())
}

/// Runs `f` on `out` viewed as blocks of `B` (through an aligned copy if `out` is unaligned).
fn with_blocks_mut<B: Pod + Zeroable>(out: &mut [u8], f: impl FnOnce(&mut [B])) {
    match bytemuck::try_cast_slice_mut::<u8, B>(out) {
        Ok(blocks) => f(blocks),
        Err(_) => {
            let mut tmp = vec![B::zeroed(); out.len() / size_of::<B>()];
            f(&mut tmp);
            out.copy_from_slice(bytemuck::cast_slice(&tmp));
        }
    }
}

/// Runs `f` on `bytes` viewed as blocks of `B` (through an aligned copy if unaligned).
fn with_blocks<B: Pod + Zeroable>(bytes: &[u8], f: impl FnOnce(&[B])) {
    match bytemuck::try_cast_slice::<u8, B>(bytes) {
        Ok(blocks) => f(blocks),
        Err(_) => {
            let mut tmp = vec![B::zeroed(); bytes.len() / size_of::<B>()];
            bytemuck::cast_slice_mut::<B, u8>(&mut tmp).copy_from_slice(bytes);
            f(&tmp);
        }
    }
}

/// The quantizer a mode selects, for one block type.
type RefFn<B> = fn(&[f32], &mut [B]);
/// ingot's quantizer for one block type.
type DefaultFn<B> = fn(&[f32], Option<&[f32]>, &mut [B]);

/// The quantizers of one block type, per mode.
struct Quantizers<B> {
    reference: RefFn<B>,
    default: DefaultFn<B>,
    thorough: DefaultFn<B>,
}

impl<B> Quantizers<B> {
    /// A type whose `Thorough` mode is its `Default`.
    fn two(reference: RefFn<B>, default: DefaultFn<B>) -> Self {
        Quantizers {
            reference,
            default,
            thorough: default,
        }
    }
}

fn quantize_as<B: Pod + Zeroable>(
    out: &mut [u8],
    x: &[f32],
    weights: Option<&[f32]>,
    mode: QuantMode,
    q: Quantizers<B>,
) {
    with_blocks_mut(out, |b| match mode {
        QuantMode::Reference => (q.reference)(x, b),
        QuantMode::Default => (q.default)(x, weights, b),
        QuantMode::Thorough => (q.thorough)(x, weights, b),
    });
}

/// Quantizes one row of f32 into `ty`'s bytes.
///
/// `weights` are per-element importance weights (an imatrix row): finite and ≥ 0. `x` must be
/// finite (NaN/inf would make a block meaningless, so it is rejected, never written). For
/// F32/F16/BF16 the "quantizer" is the (ggml-exact) conversion and ignores mode and weights.
pub fn quantize_row(
    ty: GgmlType,
    x: &[f32],
    weights: Option<&[f32]>,
    mode: QuantMode,
    out: &mut [u8],
) -> Result<(), QuantError> {
    check_bytes(ty, x.len(), out.len())?;
    check_weights(x.len(), weights)?;
    if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(QuantError::NonFiniteValue { index, value });
    }
    quantize_row_checked(ty, x, weights, mode, out)
}

/// [`quantize_row`] after validation (lengths, weights, finiteness): the tensor quantizer
/// validates once per tensor and calls this per row.
pub(crate) fn quantize_row_checked(
    ty: GgmlType,
    x: &[f32],
    weights: Option<&[f32]>,
    mode: QuantMode,
    out: &mut [u8],
) -> Result<(), QuantError> {
    match ty {
        GgmlType::F32 => out.copy_from_slice(bytemuck::cast_slice(x)),
        GgmlType::F16 => with_blocks_mut::<f16>(out, |o| float::f32_to_f16_row(x, o)),
        GgmlType::BF16 => with_blocks_mut::<bf16>(out, |o| float::f32_to_bf16_row(x, o)),
        GgmlType::Q8_0 => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q8_0::quantize_row_ref, q8_0::quantize_row),
        ),
        GgmlType::Q8_1 => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q8_1::quantize_row_ref, q8_1::quantize_row),
        ),
        GgmlType::Q4_0 => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers {
                reference: q4_0::quantize_row_ref,
                default: q4_0::quantize_row,
                thorough: q4_0::quantize_row_thorough,
            },
        ),
        GgmlType::Q4_1 => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers {
                reference: q4_1::quantize_row_ref,
                default: q4_1::quantize_row,
                thorough: q4_1::quantize_row_thorough,
            },
        ),
        GgmlType::Q5_0 => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers {
                reference: q5_0::quantize_row_ref,
                default: q5_0::quantize_row,
                thorough: q5_0::quantize_row_thorough,
            },
        ),
        GgmlType::Q5_1 => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers {
                reference: q5_1::quantize_row_ref,
                default: q5_1::quantize_row,
                thorough: q5_1::quantize_row_thorough,
            },
        ),
        GgmlType::Q2_K => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q2_k::quantize_row_ref, q2_k::quantize_row),
        ),
        GgmlType::Q3_K => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q3_k::quantize_row_ref, q3_k::quantize_row),
        ),
        GgmlType::Q4_K => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q4_k::quantize_row_ref, q4_k::quantize_row),
        ),
        GgmlType::Q5_K => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q5_k::quantize_row_ref, q5_k::quantize_row),
        ),
        GgmlType::Q6_K => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q6_k::quantize_row_ref, q6_k::quantize_row),
        ),
        GgmlType::Q8_K => quantize_as(
            out,
            x,
            weights,
            mode,
            Quantizers::two(q8_k::quantize_row_ref, q8_k::quantize_row),
        ),
        other => {
            return Err(QuantError::Unsupported {
                ty: other,
                op: "quantize",
            })
        }
    }
    Ok(())
}

/// Dequantizes `ty`'s bytes into `out.len()` f32 values.
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    check_bytes(ty, out.len(), bytes.len())?;
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => with_blocks::<f16>(bytes, |b| float::f16_to_f32_row(b, out)),
        GgmlType::BF16 => with_blocks::<bf16>(bytes, |b| float::bf16_to_f32_row(b, out)),
        GgmlType::Q8_0 => with_blocks(bytes, |b| q8_0::dequantize_row(b, out)),
        GgmlType::Q8_1 => with_blocks(bytes, |b| q8_1::dequantize_row(b, out)),
        GgmlType::Q4_0 => with_blocks(bytes, |b| q4_0::dequantize_row(b, out)),
        GgmlType::Q4_1 => with_blocks(bytes, |b| q4_1::dequantize_row(b, out)),
        GgmlType::Q5_0 => with_blocks(bytes, |b| q5_0::dequantize_row(b, out)),
        GgmlType::Q5_1 => with_blocks(bytes, |b| q5_1::dequantize_row(b, out)),
        GgmlType::Q2_K => with_blocks(bytes, |b| q2_k::dequantize_row(b, out)),
        GgmlType::Q3_K => with_blocks(bytes, |b| q3_k::dequantize_row(b, out)),
        GgmlType::Q4_K => with_blocks(bytes, |b| q4_k::dequantize_row(b, out)),
        GgmlType::Q5_K => with_blocks(bytes, |b| q5_k::dequantize_row(b, out)),
        GgmlType::Q6_K => with_blocks(bytes, |b| q6_k::dequantize_row(b, out)),
        GgmlType::Q8_K => with_blocks(bytes, |b| q8_k::dequantize_row(b, out)),
        other => {
            return Err(QuantError::Unsupported {
                ty: other,
                op: "dequantize",
            })
        }
    }
    Ok(())
}
