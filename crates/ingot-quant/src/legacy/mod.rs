//! The legacy 32-element formats ("type 0": x = d·q, "type 1": x = d·q + m).

pub mod q4_0;
pub mod q4_1;
pub mod q5_0;
pub mod q5_1;
pub mod q8_0;
pub mod q8_1;
