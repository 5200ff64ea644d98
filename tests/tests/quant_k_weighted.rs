//! Quality of ingot's K-quant quantizers against llama.cpp on the golden rows
//! (`testdata/golden/blocks`: 24 rows × 2048, `imatrix_weights.f32`, `errors.tsv`).
//!
//! - importance-weighted mode: per row, Σ w·(x − x̂)² ÷ llama.cpp's `imatrix` error; the mean
//!   over rows must be ≤ 1.00, no row may exceed 1.02, rows llama.cpp gets exactly must be
//!   exact for us too;
//! - default mode without weights: plain Σ (x − x̂)² no worse than llama-quantize without an
//!   imatrix (the reference) row by row within 2%, and lower on average;
//! - ingot's copy of llama.cpp's weighted algorithm reproduces `<type>.imatrix.bin`.
//!
//! Each test prints its per-type numbers (run with `--nocapture` to see them).

use ingot_quant::k_quants::{q2_k, q3_k, q4_k, q5_k, q6_k};
use ingot_tests::{golden, read_f32};

const ROWS: usize = 24;
const COLS: usize = 2048;

struct Golden {
    x: Vec<f32>,
    w: Vec<f32>,
    /// (type, mode) → per-row (weighted, plain) error.
    errors: std::collections::HashMap<(String, String), Vec<(f64, f64)>>,
}

fn load() -> Golden {
    let dir = golden().join("blocks");
    let x = read_f32(&dir.join("input.f32"));
    let w = read_f32(&dir.join("imatrix_weights.f32"));
    assert_eq!((x.len(), w.len()), (ROWS * COLS, COLS));
    let tsv = std::fs::read_to_string(dir.join("errors.tsv")).expect("errors.tsv");
    let mut errors = std::collections::HashMap::new();
    for line in tsv.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5, "errors.tsv line {line:?}");
        let row: usize = f[2].parse().expect("row");
        let v: &mut Vec<(f64, f64)> = errors
            .entry((f[0].to_string(), f[1].to_string()))
            .or_insert_with(|| vec![(f64::NAN, f64::NAN); ROWS]);
        v[row] = (
            f[3].parse().expect("weighted"),
            f[4].parse().expect("plain"),
        );
    }
    Golden { x, w, errors }
}

/// (weighted, plain) squared error of a dequantized row, in f64.
fn errors(x: &[f32], y: &[f32], w: &[f32]) -> (f64, f64) {
    let mut we = 0.0f64;
    let mut pe = 0.0f64;
    for i in 0..x.len() {
        let d = x[i] as f64 - y[i] as f64;
        we += w[i] as f64 * d * d;
        pe += d * d;
    }
    (we, pe)
}

fn blocks<B: bytemuck::Pod + bytemuck::Zeroable>(name: &str) -> Vec<B> {
    let bytes = std::fs::read(golden().join("blocks").join(name)).expect("golden file");
    let mut out = vec![B::zeroed(); bytes.len() / size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut out).copy_from_slice(&bytes);
    out
}

/// Ratio of our error to llama.cpp's, with exact (0/0) rows counting as 1.
fn ratio(ours: f64, theirs: f64) -> f64 {
    if theirs == 0.0 {
        if ours == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        ours / theirs
    }
}

macro_rules! quality {
    ($name:ident, $m:ident, $t:literal, $block:ty) => {
        mod $name {
            use super::*;

            fn run(g: &Golden, weights: bool) -> Vec<(f64, f64)> {
                let mut out = Vec::new();
                let mut b = vec![<$block as bytemuck::Zeroable>::zeroed(); COLS / 256];
                let mut y = vec![0f32; COLS];
                for xr in g.x.chunks(COLS) {
                    $m::quantize_row(xr, weights.then_some(&g.w[..]), &mut b);
                    $m::dequantize_row(&b, &mut y);
                    out.push(errors(xr, &y, &g.w));
                }
                out
            }

            #[test]
            fn weighted_beats_llama_cpp() {
                let g = load();
                let theirs = &g.errors[&($t.to_string(), "imatrix".to_string())];
                let ours = run(&g, true);
                let ratios: Vec<f64> = (0..ROWS).map(|r| ratio(ours[r].0, theirs[r].0)).collect();
                let mean = ratios.iter().sum::<f64>() / ROWS as f64;
                let (worst_row, worst) = ratios
                    .iter()
                    .copied()
                    .enumerate()
                    .fold((0, 0.0), |a, (r, v)| if v > a.1 { (r, v) } else { a });
                println!(
                    "{} weighted: mean ratio to llama.cpp imatrix {mean:.4}, worst row {worst_row} \
                     {worst:.4}, best {:.4}",
                    $t,
                    ratios.iter().copied().fold(f64::INFINITY, f64::min)
                );
                for r in 0..ROWS {
                    if theirs[r].0 == 0.0 {
                        assert_eq!(ours[r].0, 0.0, "row {r}: llama.cpp is exact, we are not");
                    }
                    assert!(
                        ratios[r] <= 1.02,
                        "row {r}: weighted error {} vs llama.cpp {} (ratio {})",
                        ours[r].0,
                        theirs[r].0,
                        ratios[r]
                    );
                }
                assert!(mean <= 1.0, "mean ratio {mean}");
            }

            #[test]
            fn default_beats_reference_without_weights() {
                let g = load();
                let theirs = &g.errors[&($t.to_string(), "ref".to_string())];
                let ours = run(&g, false);
                let ratios: Vec<f64> = (0..ROWS).map(|r| ratio(ours[r].1, theirs[r].1)).collect();
                let mean = ratios.iter().sum::<f64>() / ROWS as f64;
                let worst = ratios.iter().copied().fold(0.0, f64::max);
                let total_ours: f64 = ours.iter().map(|e| e.1).sum();
                let total_theirs: f64 = theirs.iter().map(|e| e.1).sum();
                println!(
                    "{} default (no weights): mean plain-error ratio to llama-quantize {mean:.4}, \
                     worst row {worst:.4}",
                    $t
                );
                for r in 0..ROWS {
                    assert!(ratios[r] <= 1.02, "row {r}: ratio {}", ratios[r]);
                }
                assert!(mean < 1.0 || total_ours < total_theirs, "mean ratio {mean}");
            }

            #[test]
            fn ggml_weighted_reproduces_llama_quantize_imatrix() {
                let g = load();
                let want: Vec<$block> = blocks(concat!($t, ".imatrix.bin"));
                let per_row = COLS / 256;
                let mut got = vec![<$block as bytemuck::Zeroable>::zeroed(); want.len()];
                for (xr, or) in g.x.chunks(COLS).zip(got.chunks_mut(per_row)) {
                    $m::quantize_row_ggml_weighted(xr, &g.w, or);
                }
                let bad: Vec<usize> = (0..ROWS)
                    .filter(|&r| got[r * per_row..(r + 1) * per_row] != want[r * per_row..(r + 1) * per_row])
                    .collect();
                assert!(bad.is_empty(), "{} rows differ from llama.cpp's imatrix output: {bad:?}", $t);
            }
        }
    };
}

quality!(q2k, q2_k, "q2_k", q2_k::BlockQ2K);
quality!(q3k, q3_k, "q3_k", q3_k::BlockQ3K);
quality!(q4k, q4_k, "q4_k", q4_k::BlockQ4K);
quality!(q5k, q5_k, "q5_k", q5_k::BlockQ5K);
quality!(q6k, q6_k, "q6_k", q6_k::BlockQ6K);
