//! The K-quants: 256-element super-blocks with per-sub-block scales (and mins).

pub mod q2_k;
pub mod q3_k;
pub mod q4_k;
pub mod q5_k;
pub mod q6_k;
pub mod q8_k;
