//! K-quant golden conformance: ingot's reference quantizers reproduce llama.cpp's bytes, and its
//! dequantizers reproduce llama.cpp's floats exactly (`testdata/golden/blocks`, produced by
//! ggml; see its README).

use ingot_quant::k_quants::{q2_k, q3_k, q4_k, q5_k, q6_k, q8_k};
use ingot_tests::{golden, read_f32};

const ROWS: usize = 24;
const COLS: usize = 2048;

fn input() -> Vec<f32> {
    let x = read_f32(&golden().join("blocks/input.f32"));
    assert_eq!(x.len(), ROWS * COLS);
    x
}

fn blocks<B: bytemuck::Pod + bytemuck::Zeroable>(name: &str) -> Vec<B> {
    let bytes = std::fs::read(golden().join("blocks").join(name)).expect("golden file");
    assert_eq!(bytes.len() % size_of::<B>(), 0, "{name}: partial block");
    let mut out = vec![B::zeroed(); bytes.len() / size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut out).copy_from_slice(&bytes);
    out
}

/// Compares two f32 slices bit for bit and names the first difference.
fn assert_bits_eq(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!(
            "{what}: value {i} (row {}, col {}) is {} want {}",
            i / COLS,
            i % COLS,
            got[i],
            want[i]
        );
    }
}

/// Counts the rows whose blocks differ, naming the first differing block.
fn block_mismatches<B: PartialEq + std::fmt::Debug>(what: &str, got: &[B], want: &[B]) -> usize {
    assert_eq!(got.len(), want.len(), "{what}: block count");
    let per_row = got.len() / ROWS;
    let mut bad_rows = 0;
    for r in 0..ROWS {
        let range = r * per_row..(r + 1) * per_row;
        if let Some(b) = range.clone().find(|&b| got[b] != want[b]) {
            if bad_rows == 0 {
                eprintln!(
                    "{what}: first mismatch row {r} block {}:\n got  {:?}\n want {:?}",
                    b - r * per_row,
                    got[b],
                    want[b]
                );
            }
            bad_rows += 1;
        }
    }
    bad_rows
}

macro_rules! golden_type {
    ($name:ident, $m:ident, $file:literal, $block:ty, $has_noimatrix:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn dequantize_matches_golden() {
                let b: Vec<$block> = blocks(concat!($file, ".ref.bin"));
                let want = read_f32(&golden().join(concat!("blocks/", $file, ".ref.dequant.f32")));
                let mut got = vec![0f32; want.len()];
                $m::dequantize_row(&b, &mut got);
                assert_bits_eq(concat!($file, " dequant"), &got, &want);
            }

            #[test]
            fn reference_matches_golden() {
                let x = input();
                let want: Vec<$block> = blocks(concat!($file, ".ref.bin"));
                let mut got = vec![<$block as bytemuck::Zeroable>::zeroed(); want.len()];
                for (xr, or) in x.chunks(COLS).zip(got.chunks_mut(COLS / 256)) {
                    $m::quantize_row_ref(xr, or);
                }
                let bad = block_mismatches(concat!($file, " ref"), &got, &want);
                assert_eq!(
                    bad, 0,
                    "{} of {ROWS} rows differ from ggml's reference",
                    bad
                );
                if $has_noimatrix {
                    // llama-quantize without an imatrix writes the reference quantization.
                    let noim: Vec<$block> = blocks(concat!($file, ".noimatrix.bin"));
                    let bad = block_mismatches(concat!($file, " noimatrix"), &got, &noim);
                    assert_eq!(bad, 0, "{} rows differ from llama-quantize's output", bad);
                }
            }
        }
    };
}

golden_type!(q2k, q2_k, "q2_k", q2_k::BlockQ2K, true);
golden_type!(q3k, q3_k, "q3_k", q3_k::BlockQ3K, true);
golden_type!(q4k, q4_k, "q4_k", q4_k::BlockQ4K, true);
golden_type!(q5k, q5_k, "q5_k", q5_k::BlockQ5K, true);
golden_type!(q6k, q6_k, "q6_k", q6_k::BlockQ6K, true);
golden_type!(q8k, q8_k, "q8_k", q8_k::BlockQ8K, false);
