//! The crate-level API: byte-level dispatch, one test per error variant, and the rayon tensor
//! quantizer (identical bytes for 1 and 3 threads, NaN/inf rejected naming tensor and row).

use ingot_format::GgmlType;
use ingot_quant::{
    dequantize_row, quantize_row, quantize_tensor, quantize_tensor_to_vec, row_bytes, QuantError,
    QuantMode,
};

const LEGACY: [GgmlType; 6] = [
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
];

fn signal(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t =
                (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) as f32 / u32::MAX as f32;
            ((i as f32 * 0.37).sin() + (t - 0.5)) * (1.0 + (i % 64) as f32 / 16.0)
        })
        .collect()
}

#[test]
fn dispatch_matches_module_functions_and_round_trips() {
    let x = signal(256, 1);
    let w: Vec<f32> = (0..256).map(|i| 0.5 + (i % 7) as f32).collect();
    for ty in LEGACY
        .into_iter()
        .chain([GgmlType::F32, GgmlType::F16, GgmlType::BF16])
    {
        let n = row_bytes(ty, x.len()).expect("row bytes");
        assert_eq!(n, x.len() / ty.block_size() * ty.type_size());
        let mut r = vec![0u8; n];
        let mut d = vec![0u8; n];
        quantize_row(ty, &x, Some(&w), QuantMode::Reference, &mut r).expect("quantize ref");
        quantize_row(ty, &x, Some(&w), QuantMode::Default, &mut d).expect("quantize default");
        let mut back = vec![0.0; x.len()];
        dequantize_row(ty, &d, &mut back).expect("dequantize");
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() <= amax / 7.0, "{}: {a} vs {b}", ty.name());
        }
        // Unaligned buffers take the copy path and give the same bytes.
        let mut unaligned = vec![0u8; n + 1];
        quantize_row(ty, &x, Some(&w), QuantMode::Default, &mut unaligned[1..]).expect("unaligned");
        assert_eq!(&unaligned[1..], &d[..], "{}", ty.name());
        let mut back2 = vec![0.0; x.len()];
        dequantize_row(ty, &unaligned[1..], &mut back2).expect("dequantize unaligned");
        assert_eq!(back, back2);
    }
    // Reference mode through the dispatch is the module's reference quantizer.
    let mut bytes = vec![0u8; row_bytes(GgmlType::Q4_0, x.len()).expect("size")];
    quantize_row(GgmlType::Q4_0, &x, None, QuantMode::Reference, &mut bytes).expect("q4_0");
    let mut blocks = vec![
        ingot_quant::blocks::BlockQ4_0 {
            d: half::f16::ZERO,
            qs: [0; 16]
        };
        8
    ];
    ingot_quant::legacy::q4_0::quantize_row_ref(&x, &mut blocks);
    assert_eq!(bytemuck::cast_slice::<_, u8>(&blocks), &bytes[..]);
}

#[test]
fn error_unsupported() {
    let x = vec![0.0f32; 256];
    let mut out = vec![0u8; row_bytes(GgmlType::IQ2_XXS, 256).expect("size")];
    assert_eq!(
        quantize_row(GgmlType::IQ2_XXS, &x, None, QuantMode::Default, &mut out),
        Err(QuantError::Unsupported {
            ty: GgmlType::IQ2_XXS,
            op: "quantize"
        })
    );
    let mut y = vec![0.0f32; 256];
    assert_eq!(
        dequantize_row(GgmlType::IQ2_XXS, &out, &mut y),
        Err(QuantError::Unsupported {
            ty: GgmlType::IQ2_XXS,
            op: "dequantize"
        })
    );
}

#[test]
fn error_partial_block() {
    let x = vec![0.0f32; 33];
    let mut out = vec![0u8; 40];
    assert_eq!(
        quantize_row(GgmlType::Q4_0, &x, None, QuantMode::Default, &mut out),
        Err(QuantError::PartialBlock {
            ty: GgmlType::Q4_0,
            len: 33,
            block_size: 32
        })
    );
    let mut y = vec![0.0f32; 33];
    assert!(matches!(
        dequantize_row(GgmlType::Q8_0, &out, &mut y),
        Err(QuantError::PartialBlock { len: 33, .. })
    ));
}

#[test]
fn error_byte_length() {
    let x = vec![0.0f32; 64];
    let mut out = vec![0u8; 35];
    assert_eq!(
        quantize_row(GgmlType::Q4_0, &x, None, QuantMode::Default, &mut out),
        Err(QuantError::ByteLength {
            ty: GgmlType::Q4_0,
            elements: 64,
            expected: 36,
            actual: 35
        })
    );
    let mut y = vec![0.0f32; 64];
    assert_eq!(
        dequantize_row(GgmlType::Q8_0, &out, &mut y),
        Err(QuantError::ByteLength {
            ty: GgmlType::Q8_0,
            elements: 64,
            expected: 68,
            actual: 35
        })
    );
}

#[test]
fn error_weights() {
    let x = vec![1.0f32; 64];
    let mut out = vec![0u8; 36];
    let short = vec![1.0f32; 63];
    assert_eq!(
        quantize_row(
            GgmlType::Q4_0,
            &x,
            Some(&short),
            QuantMode::Default,
            &mut out
        ),
        Err(QuantError::WeightsLength {
            expected: 64,
            actual: 63
        })
    );
    for bad in [-1.0f32, f32::NAN, f32::INFINITY] {
        let mut w = vec![1.0f32; 64];
        w[9] = bad;
        let err = quantize_row(GgmlType::Q4_0, &x, Some(&w), QuantMode::Reference, &mut out);
        assert!(
            matches!(err, Err(QuantError::InvalidWeight { index: 9, value }) if value.to_bits() == bad.to_bits()),
            "{err:?}"
        );
    }
}

#[test]
fn error_non_finite_row() {
    let mut x = vec![1.0f32; 64];
    x[40] = f32::NEG_INFINITY;
    let mut out = vec![0u8; 36];
    assert_eq!(
        quantize_row(GgmlType::Q4_0, &x, None, QuantMode::Default, &mut out),
        Err(QuantError::NonFiniteValue {
            index: 40,
            value: f32::NEG_INFINITY
        })
    );
}

#[test]
fn error_non_finite_tensor_names_tensor_row_and_column_and_writes_nothing() {
    let cols = 96;
    let mut x = signal(cols * 50, 3);
    x[37 * cols + 5] = f32::NAN;
    x[41 * cols] = f32::INFINITY;
    let mut out = vec![0xAAu8; row_bytes(GgmlType::Q5_1, cols).expect("size") * 50];
    let err = quantize_tensor(
        "blk.3.ffn_up.weight",
        GgmlType::Q5_1,
        &x,
        cols,
        None,
        QuantMode::Default,
        &mut out,
    )
    .expect_err("NaN must be rejected");
    match err {
        QuantError::NonFiniteTensor {
            tensor,
            row,
            column,
            value,
        } => {
            assert_eq!(tensor, "blk.3.ffn_up.weight");
            assert_eq!((row, column), (37, 5));
            assert!(value.is_nan());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(out.iter().all(|&b| b == 0xAA), "nothing may be written");
}

#[test]
fn error_tensor_shape() {
    let x = vec![0.0f32; 100];
    assert_eq!(
        quantize_tensor_to_vec("t", GgmlType::Q8_0, &x, 64, None, QuantMode::Default),
        Err(QuantError::TensorShape {
            tensor: "t".into(),
            len: 100,
            n_per_row: 64
        })
    );
    assert!(matches!(
        quantize_tensor_to_vec("t", GgmlType::Q8_0, &x, 0, None, QuantMode::Default),
        Err(QuantError::TensorShape { n_per_row: 0, .. })
    ));
    let mut out = vec![0u8; 10];
    assert!(matches!(
        quantize_tensor(
            "t",
            GgmlType::Q8_0,
            &x[..64],
            64,
            None,
            QuantMode::Default,
            &mut out
        ),
        Err(QuantError::ByteLength {
            expected: 68,
            actual: 10,
            ..
        })
    ));
}

#[test]
fn tensor_output_identical_for_1_and_3_threads_and_equals_row_by_row() {
    let cols = 576; // SmolLM2's hidden size: not a multiple of 256
    let rows = 40;
    let x = signal(cols * rows, 7);
    let w: Vec<f32> = (0..cols).map(|i| 0.1 + ((i * 13) % 17) as f32).collect();
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("pool")
    };
    let (p1, p3) = (pool(1), pool(3));
    for ty in LEGACY {
        for (mode, weights) in [
            (QuantMode::Reference, None),
            (QuantMode::Default, None),
            (QuantMode::Default, Some(&w[..])),
        ] {
            let a = p1
                .install(|| quantize_tensor_to_vec("t", ty, &x, cols, weights, mode))
                .expect("1 thread");
            let b = p3
                .install(|| quantize_tensor_to_vec("t", ty, &x, cols, weights, mode))
                .expect("3 threads");
            assert_eq!(
                a,
                b,
                "{} {mode:?}: thread count changed the bytes",
                ty.name()
            );
            let rb = row_bytes(ty, cols).expect("size");
            for (r, chunk) in a.chunks_exact(rb).enumerate() {
                let mut one = vec![0u8; rb];
                quantize_row(ty, &x[r * cols..(r + 1) * cols], weights, mode, &mut one)
                    .expect("row");
                assert_eq!(chunk, &one[..], "{} row {r}", ty.name());
            }
        }
    }
}
