//! Whole-tensor quantization, row-parallel with rayon.
//!
//! Rows are independent (every block's quantization reads only its own row and the per-column
//! weights), so the output is byte-identical for any number of threads: rayon only decides
//! which thread computes which rows. The whole input is scanned for NaN/inf first, so a bad
//! tensor is rejected with its first bad row and column and nothing is written.

use ingot_format::GgmlType;
use rayon::prelude::*;

use crate::dispatch::{check_weights, quantize_row_checked, row_bytes, QuantMode};
use crate::error::QuantError;

/// Work per rayon task of at least this many elements, so tiny rows do not drown in
/// scheduling overhead.
const MIN_ELEMENTS_PER_TASK: usize = 8192;

/// Whether a row holds NaN or ±inf: the largest exponent-and-mantissa bit pattern, an integer
/// maximum that vectorises (unlike a short-circuiting `any`), reaches the all-ones exponent.
fn has_non_finite(r: &[f32]) -> bool {
    r.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7FFF_FFFF)) >= 0x7F80_0000
}

/// Quantizes a 2-D (or flattened higher-dimensional) tensor of `x.len() / n_per_row` rows into
/// `out`, row-parallel on the current rayon pool.
///
/// `weights`, when given, are per-column importance weights (one imatrix row, `n_per_row`
/// values, finite and ≥ 0) applied to every row. `name` is only used in errors.
pub fn quantize_tensor(
    name: &str,
    ty: GgmlType,
    x: &[f32],
    n_per_row: usize,
    weights: Option<&[f32]>,
    mode: QuantMode,
    out: &mut [u8],
) -> Result<(), QuantError> {
    if n_per_row == 0 || !x.len().is_multiple_of(n_per_row) {
        return Err(QuantError::TensorShape {
            tensor: name.to_owned(),
            len: x.len(),
            n_per_row,
        });
    }
    let rb = row_bytes(ty, n_per_row)?;
    let n_rows = x.len() / n_per_row;
    let expected = rb.checked_mul(n_rows).ok_or(QuantError::TensorShape {
        tensor: name.to_owned(),
        len: x.len(),
        n_per_row,
    })?;
    if out.len() != expected {
        return Err(QuantError::ByteLength {
            ty,
            elements: x.len(),
            expected,
            actual: out.len(),
        });
    }
    check_weights(n_per_row, weights)?;
    let min_rows = MIN_ELEMENTS_PER_TASK.div_ceil(n_per_row).max(1);
    let bad_row = x
        .par_chunks(n_per_row)
        .with_min_len(min_rows)
        .position_first(has_non_finite);
    if let Some(row) = bad_row {
        let r = &x[row * n_per_row..(row + 1) * n_per_row];
        let column = r.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(QuantError::NonFiniteTensor {
            tensor: name.to_owned(),
            row,
            column,
            value: r[column],
        });
    }
    if rb == 0 {
        return Ok(());
    }
    out.par_chunks_mut(rb)
        .zip(x.par_chunks(n_per_row))
        .with_min_len(min_rows)
        .try_for_each(|(o, r)| quantize_row_checked(ty, r, weights, mode, o))
}

/// [`quantize_tensor`] into a new buffer.
pub fn quantize_tensor_to_vec(
    name: &str,
    ty: GgmlType,
    x: &[f32],
    n_per_row: usize,
    weights: Option<&[f32]>,
    mode: QuantMode,
) -> Result<Vec<u8>, QuantError> {
    if n_per_row == 0 || !x.len().is_multiple_of(n_per_row) {
        return Err(QuantError::TensorShape {
            tensor: name.to_owned(),
            len: x.len(),
            n_per_row,
        });
    }
    let size = row_bytes(ty, n_per_row)?
        .checked_mul(x.len() / n_per_row)
        .ok_or(QuantError::TensorShape {
            tensor: name.to_owned(),
            len: x.len(),
            n_per_row,
        })?;
    let mut out = vec![0u8; size];
    quantize_tensor(name, ty, x, n_per_row, weights, mode, &mut out)?;
    Ok(out)
}
