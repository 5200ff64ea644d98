//! ingot-infer: CPU kernels (runtime-dispatched SIMD), quantized matmul and the llama-family forward pass.
#![deny(missing_docs)]

mod error;
pub use error::InferError;
pub mod generate;
pub mod imatrix;
pub mod kernels;
pub mod llama;
pub mod matmul;
pub mod perplexity;
pub mod sampling;
