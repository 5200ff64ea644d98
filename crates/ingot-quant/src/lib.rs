//! ingot-quant: GGML block layouts and quantizers (reference and importance-weighted).
//!
//! - [`blocks`]: every block struct, byte for byte as ggml lays it out (`formats/blocks.md`).
//! - [`legacy`] (Q8_0, Q8_1, Q4_0, Q4_1, Q5_0, Q5_1) and [`k_quants`]: one module per block
//!   family with `quantize_row_ref` (ggml-identical), `quantize_row` (ingot's quantizer,
//!   importance-weighted when given weights) and `dequantize_row`.
//! - [`float`]: f32 ↔ f16/bf16 with ggml's exact rounding.
//! - Crate level, over raw bytes and a [`GgmlType`](ingot_format::GgmlType):
//!   [`quantize_row`], [`dequantize_row`] (validating, returning [`QuantError`]) and the
//!   rayon tensor quantizer [`quantize_tensor`] (row-parallel, identical output for any thread
//!   count, NaN/inf rejected with tensor and row).
#![deny(missing_docs)]

pub mod blocks;
mod dispatch;
mod error;
pub mod float;
pub mod imatrix;
pub mod k_quants;
pub mod legacy;
pub mod level;
pub mod pipeline;
pub mod plan;
mod tensor;

pub use dispatch::{dequantize_row, quantize_row, row_bytes, QuantMode};
pub use error::QuantError;
pub use error::Shared;
pub use tensor::{quantize_tensor, quantize_tensor_to_vec};
