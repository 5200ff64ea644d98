//! ingot-quant: GGML block layouts and quantizers (reference and importance-weighted).
#![deny(missing_docs)]

pub mod blocks;
pub mod float;
pub mod k_quants;
pub mod legacy;
