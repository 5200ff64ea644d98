//! The GGML tensor type table: one row per type (id, ggml name, elements per block, bytes per
//! block). Everything else (`from_id`, `name`, `row_bytes`, validation of tensor shapes) derives
//! from this single table.
//!
//! Source of the facts: `enum ggml_type` in llama.cpp's `ggml/include/ggml.h`, the
//! `type_traits` table in `ggml/src/ggml.c` (names, `blck_size`, `type_size`), mirrored by
//! `GGMLQuantizationType` / `GGML_QUANT_SIZES` in gguf-py 0.19.0 (`gguf/constants.py`).
//! Ids 4, 5 (Q4_2, Q4_3), 31–33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36–38 (IQ4_NL_4_4,
//! IQ4_NL_4_8, IQ4_NL_8_8) were removed from ggml; files using them are rejected by name.

/// Elements per K-quant super-block (`QK_K` in ggml).
pub const QK_K: usize = 256;

macro_rules! ggml_types {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $block:expr, $bytes:expr; )*) => {
        /// A GGML tensor element type, as stored in a GGUF tensor info.
        ///
        /// Variant names follow ggml's `GGML_TYPE_*` names so they read the same as llama.cpp
        /// and gguf-py; the discriminant is the on-disk id.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        #[non_exhaustive]
        pub enum GgmlType {
            $( $(#[$doc])* $variant = $id, )*
        }

        impl GgmlType {
            /// Every type, in id order.
            pub const ALL: &'static [GgmlType] = &[ $( GgmlType::$variant, )* ];

            /// The type with on-disk id `id`, or `None` if the id is unknown or retired.
            pub const fn from_id(id: u32) -> Option<GgmlType> {
                match id {
                    $( $id => Some(GgmlType::$variant), )*
                    _ => None,
                }
            }

            /// `(name, elements per block, bytes per block)`: the one table row.
            const fn row(self) -> (&'static str, usize, usize) {
                match self {
                    $( GgmlType::$variant => ($name, $block, $bytes), )*
                }
            }
        }
    };
}

ggml_types! {
    /// 32-bit IEEE float.
    F32 = 0, "f32", 1, 4;
    /// 16-bit IEEE half float.
    F16 = 1, "f16", 1, 2;
    /// 4-bit, 32 per block, one f16 scale.
    Q4_0 = 2, "q4_0", 32, 2 + 16;
    /// 4-bit, 32 per block, f16 scale and min.
    Q4_1 = 3, "q4_1", 32, 2 + 2 + 16;
    /// 5-bit, 32 per block, one f16 scale.
    Q5_0 = 6, "q5_0", 32, 2 + 4 + 16;
    /// 5-bit, 32 per block, f16 scale and min.
    Q5_1 = 7, "q5_1", 32, 2 + 2 + 4 + 16;
    /// 8-bit, 32 per block, one f16 scale.
    Q8_0 = 8, "q8_0", 32, 2 + 32;
    /// 8-bit, 32 per block, f16 scale and sum (activation type).
    Q8_1 = 9, "q8_1", 32, 4 + 32;
    /// 2-bit K-quant super-block.
    Q2_K = 10, "q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4;
    /// 3-bit K-quant super-block.
    Q3_K = 11, "q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12;
    /// 4-bit K-quant super-block.
    Q4_K = 12, "q4_K", QK_K, 2 + 2 + QK_K / 2 + 12;
    /// 5-bit K-quant super-block.
    Q5_K = 13, "q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12;
    /// 6-bit K-quant super-block.
    Q6_K = 14, "q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16;
    /// 8-bit K-quant super-block (activation type of the K-quants).
    Q8_K = 15, "q8_K", QK_K, 4 + QK_K + QK_K / 8;
    /// 2.06 bpw i-quant.
    IQ2_XXS = 16, "iq2_xxs", QK_K, 2 + QK_K / 4;
    /// 2.31 bpw i-quant.
    IQ2_XS = 17, "iq2_xs", QK_K, 2 + QK_K / 4 + QK_K / 32;
    /// 3.06 bpw i-quant.
    IQ3_XXS = 18, "iq3_xxs", QK_K, 2 + QK_K / 4 + QK_K / 8;
    /// 1.56 bpw i-quant.
    IQ1_S = 19, "iq1_s", QK_K, 2 + QK_K / 8 + QK_K / 16;
    /// 4-bit non-linear, 32 per block.
    IQ4_NL = 20, "iq4_nl", 32, 2 + 16;
    /// 3.44 bpw i-quant.
    IQ3_S = 21, "iq3_s", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4;
    /// 2.5 bpw i-quant.
    IQ2_S = 22, "iq2_s", QK_K, 2 + QK_K / 4 + QK_K / 16;
    /// 4.25 bpw non-linear super-block.
    IQ4_XS = 23, "iq4_xs", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64;
    /// 8-bit signed integer.
    I8 = 24, "i8", 1, 1;
    /// 16-bit signed integer.
    I16 = 25, "i16", 1, 2;
    /// 32-bit signed integer.
    I32 = 26, "i32", 1, 4;
    /// 64-bit signed integer.
    I64 = 27, "i64", 1, 8;
    /// 64-bit IEEE float.
    F64 = 28, "f64", 1, 8;
    /// 1.75 bpw i-quant.
    IQ1_M = 29, "iq1_m", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32;
    /// bfloat16.
    BF16 = 30, "bf16", 1, 2;
    /// Ternary, 1.69 bpw.
    TQ1_0 = 34, "tq1_0", QK_K, 2 + 4 * 13;
    /// Ternary, 2.06 bpw.
    TQ2_0 = 35, "tq2_0", QK_K, 2 + 64;
    /// Microscaling FP4 (e8m0 scale + 32 e2m1 values).
    MXFP4 = 39, "mxfp4", 32, 1 + 16;
    /// NVIDIA FP4 (four e4m3 scales + 64 e2m1 values).
    NVFP4 = 40, "nvfp4", 64, 4 + 32;
    /// 1-bit, 128 per block, one f16 scale.
    Q1_0 = 41, "q1_0", 128, 2 + 16;
}

/// Ids ggml once assigned and has since removed, with their old names: a file using one was
/// written by an old or forked tool and cannot be read by current llama.cpp either.
const RETIRED: &[(u32, &str)] = &[
    (4, "q4_2"),
    (5, "q4_3"),
    (31, "q4_0_4_4"),
    (32, "q4_0_4_8"),
    (33, "q4_0_8_8"),
    (36, "iq4_nl_4_4"),
    (37, "iq4_nl_4_8"),
    (38, "iq4_nl_8_8"),
];

impl GgmlType {
    /// The on-disk id (`enum ggml_type` value).
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// ggml's name for the type (`ggml_type_name`), e.g. `"q4_K"`.
    pub const fn name(self) -> &'static str {
        self.row().0
    }

    /// Elements per block (`ggml_blck_size`); 1 for plain scalar types.
    pub const fn block_size(self) -> usize {
        self.row().1
    }

    /// Bytes per block (`ggml_type_size`).
    pub const fn type_size(self) -> usize {
        self.row().2
    }

    /// Whether the type is block-quantized (more than one element per block, or not a plain
    /// float/integer type).
    pub const fn is_quantized(self) -> bool {
        !matches!(
            self,
            GgmlType::F32
                | GgmlType::F16
                | GgmlType::BF16
                | GgmlType::F64
                | GgmlType::I8
                | GgmlType::I16
                | GgmlType::I32
                | GgmlType::I64
        )
    }

    /// Bytes taken by `n_elements` consecutive elements (one row, or a whole tensor), or `None`
    /// if `n_elements` is not a multiple of the block size or the size overflows `u64`.
    pub const fn row_bytes(self, n_elements: u64) -> Option<u64> {
        let block = self.block_size() as u64;
        if n_elements % block != 0 {
            return None;
        }
        (n_elements / block).checked_mul(self.type_size() as u64)
    }

    /// Average bits per weight of the type (`8 * type_size / block_size`).
    pub fn bits_per_weight(self) -> f64 {
        8.0 * self.type_size() as f64 / self.block_size() as f64
    }

    /// The type whose ggml name is `name` (case-insensitive, so `"Q4_K"` and `"q4_k"` both
    /// work), or `None`.
    pub fn from_name(name: &str) -> Option<GgmlType> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The old name of a retired id (4, 5, 31–33, 36–38), or `None` if `id` was never retired.
    pub fn retired_name(id: u32) -> Option<&'static str> {
        RETIRED.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_retired_ids_are_unknown() {
        for &t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        for &(id, _) in RETIRED {
            assert_eq!(GgmlType::from_id(id), None);
            assert!(GgmlType::retired_name(id).is_some());
        }
        assert_eq!(GgmlType::ALL.len(), 34);
        assert_eq!(GgmlType::from_id(42), None);
    }

    #[test]
    fn sizes_match_the_block_structs() {
        // Sizes of the block structs in ggml-common.h.
        let expect = [
            (GgmlType::Q4_0, 32, 18),
            (GgmlType::Q4_1, 32, 20),
            (GgmlType::Q5_0, 32, 22),
            (GgmlType::Q5_1, 32, 24),
            (GgmlType::Q8_0, 32, 34),
            (GgmlType::Q8_1, 32, 36),
            (GgmlType::Q2_K, 256, 84),
            (GgmlType::Q3_K, 256, 110),
            (GgmlType::Q4_K, 256, 144),
            (GgmlType::Q5_K, 256, 176),
            (GgmlType::Q6_K, 256, 210),
            (GgmlType::Q8_K, 256, 292),
            (GgmlType::IQ2_XXS, 256, 66),
            (GgmlType::IQ2_XS, 256, 74),
            (GgmlType::IQ3_XXS, 256, 98),
            (GgmlType::IQ1_S, 256, 50),
            (GgmlType::IQ3_S, 256, 110),
            (GgmlType::IQ2_S, 256, 82),
            (GgmlType::IQ4_XS, 256, 136),
            (GgmlType::IQ1_M, 256, 56),
            (GgmlType::TQ1_0, 256, 54),
            (GgmlType::TQ2_0, 256, 66),
            (GgmlType::MXFP4, 32, 17),
            (GgmlType::NVFP4, 64, 36),
            (GgmlType::Q1_0, 128, 18),
        ];
        for (t, b, s) in expect {
            assert_eq!((t.block_size(), t.type_size()), (b, s), "{t}");
        }
    }

    #[test]
    fn row_bytes_checks_multiples_and_overflow() {
        assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4_K.row_bytes(100), None);
        assert_eq!(GgmlType::F32.row_bytes(u64::MAX), None);
        assert_eq!(GgmlType::F32.row_bytes(3), Some(12));
    }
}
