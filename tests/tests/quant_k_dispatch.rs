//! The K-quants through the crate-level byte API (`ingot_quant::{quantize_row,
//! dequantize_row, quantize_tensor}`): golden bytes and floats, unaligned buffers, the default
//! mode's weights, and size errors.

use ingot_format::GgmlType;
use ingot_quant::{dequantize_row, quantize_row, quantize_tensor_to_vec, QuantError, QuantMode};
use ingot_tests::{golden, read_f32};

const ROWS: usize = 24;
const COLS: usize = 2048;
const TYPES: [(GgmlType, &str); 6] = [
    (GgmlType::Q2_K, "q2_k"),
    (GgmlType::Q3_K, "q3_k"),
    (GgmlType::Q4_K, "q4_k"),
    (GgmlType::Q5_K, "q5_k"),
    (GgmlType::Q6_K, "q6_k"),
    (GgmlType::Q8_K, "q8_k"),
];

#[test]
fn reference_bytes_and_dequantization_match_golden_through_the_byte_api() {
    let dir = golden().join("blocks");
    let x = read_f32(&dir.join("input.f32"));
    for (ty, name) in TYPES {
        let want = std::fs::read(dir.join(format!("{name}.ref.bin"))).expect("golden");
        let row_bytes = want.len() / ROWS;
        // One extra leading byte makes every row buffer unaligned for the f16/f32 blocks.
        let mut buf = vec![0u8; row_bytes + 1];
        for r in 0..ROWS {
            let out = &mut buf[1..];
            quantize_row(
                ty,
                &x[r * COLS..(r + 1) * COLS],
                None,
                QuantMode::Reference,
                out,
            )
            .expect("quantize");
            assert!(
                out == &want[r * row_bytes..(r + 1) * row_bytes],
                "{name} row {r}"
            );
        }
        let want_f = read_f32(&dir.join(format!("{name}.ref.dequant.f32")));
        let mut unaligned = vec![0u8; want.len() + 1];
        unaligned[1..].copy_from_slice(&want);
        let mut got = vec![0f32; want_f.len()];
        dequantize_row(ty, &unaligned[1..], &mut got).expect("dequantize");
        assert!(
            got.iter()
                .zip(&want_f)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name} dequantization"
        );
    }
}

#[test]
fn default_mode_is_the_module_quantizer_with_weights() {
    let dir = golden().join("blocks");
    let x = read_f32(&dir.join("input.f32"));
    let w = read_f32(&dir.join("imatrix_weights.f32"));
    let row = &x[..COLS];
    let mut via_api = vec![0u8; ingot_quant::row_bytes(GgmlType::Q4_K, COLS).expect("size")];
    quantize_row(
        GgmlType::Q4_K,
        row,
        Some(&w),
        QuantMode::Default,
        &mut via_api,
    )
    .expect("q");
    let mut blocks =
        vec![<ingot_quant::k_quants::q4_k::BlockQ4K as bytemuck::Zeroable>::zeroed(); COLS / 256];
    ingot_quant::k_quants::q4_k::quantize_row(row, Some(&w), &mut blocks);
    assert_eq!(bytemuck::cast_slice::<_, u8>(&blocks), &via_api[..]);
    // And the weights change the result (they are not ignored).
    let mut unweighted = via_api.clone();
    quantize_row(
        GgmlType::Q4_K,
        row,
        None,
        QuantMode::Default,
        &mut unweighted,
    )
    .expect("q");
    assert_ne!(unweighted, via_api);
}

#[test]
fn tensor_quantizer_handles_k_types_and_names_bad_rows() {
    let x: Vec<f32> = (0..4 * 512)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    for (ty, name) in TYPES {
        let bytes = quantize_tensor_to_vec("t", ty, &x, 512, None, QuantMode::Default)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut y = vec![0f32; x.len()];
        dequantize_row(ty, &bytes, &mut y).expect("dequantize");
        let max_err = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max_err < 0.5, "{name}: max error {max_err}");
    }
    let mut bad = x.clone();
    bad[3 * 512 + 7] = f32::NAN;
    let err = quantize_tensor_to_vec(
        "blk.0.w",
        GgmlType::Q4_K,
        &bad,
        512,
        None,
        QuantMode::Default,
    );
    assert!(
        matches!(err, Err(QuantError::NonFiniteTensor { .. })),
        "{err:?}"
    );
}

#[test]
fn partial_super_block_is_an_error() {
    let x = vec![0.5f32; 300];
    let mut out = vec![0u8; 144 * 2];
    for (ty, _) in TYPES {
        assert!(matches!(
            quantize_row(ty, &x, None, QuantMode::Default, &mut out),
            Err(QuantError::PartialBlock { .. })
        ));
    }
    let mut y = vec![0f32; 256];
    assert!(matches!(
        dequantize_row(GgmlType::Q4_K, &out[..100], &mut y),
        Err(QuantError::ByteLength { .. })
    ));
}
