//! Legacy block types against llama.cpp's golden vectors (`testdata/golden/blocks`, see its
//! README): reference bytes, dequantization, the no-imatrix files, and the error bar of the
//! importance-weighted and default quantizers.

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};
use ingot_quant::legacy::{q4_0, q4_1, q5_0, q5_1, q8_0, q8_1};
use ingot_tests::{golden, read_f32};

const ROWS: usize = 24;
const COLS: usize = 2048;

fn blocks_dir() -> std::path::PathBuf {
    golden().join("blocks")
}

fn input() -> Vec<f32> {
    let x = read_f32(&blocks_dir().join("input.f32"));
    assert_eq!(x.len(), ROWS * COLS);
    x
}

fn imatrix() -> Vec<f32> {
    let w = read_f32(&blocks_dir().join("imatrix_weights.f32"));
    assert_eq!(w.len(), COLS);
    w
}

fn golden_bytes(name: &str) -> Vec<u8> {
    let p = blocks_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// llama.cpp's errors: (type, mode) → per-row (weighted, plain).
fn golden_errors() -> HashMap<(String, String), Vec<(f64, f64)>> {
    let text = std::fs::read_to_string(blocks_dir().join("errors.tsv")).expect("errors.tsv");
    let mut map: HashMap<(String, String), Vec<(f64, f64)>> = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5, "errors.tsv line {line:?}");
        let row: usize = f[2].parse().expect("row");
        let v = map.entry((f[0].to_owned(), f[1].to_owned())).or_default();
        assert_eq!(v.len(), row, "errors.tsv rows in order");
        v.push((
            f[3].parse().expect("weighted"),
            f[4].parse().expect("plain"),
        ));
    }
    map
}

/// Σ w (x − x̂)² and Σ (x − x̂)² per row, in f64.
fn row_errors(x: &[f32], xhat: &[f32], w: &[f32]) -> Vec<(f64, f64)> {
    x.chunks_exact(COLS)
        .zip(xhat.chunks_exact(COLS))
        .map(|(xr, hr)| {
            let mut ew = 0.0f64;
            let mut ep = 0.0f64;
            for j in 0..COLS {
                let r = f64::from(xr[j]) - f64::from(hr[j]);
                ew += f64::from(w[j]) * r * r;
                ep += r * r;
            }
            (ew, ep)
        })
        .collect()
}

/// Copies file bytes into (aligned) blocks.
fn blocks_from_bytes<B: Pod + Zeroable>(bytes: &[u8]) -> Vec<B> {
    let bs = std::mem::size_of::<B>();
    assert_eq!(bytes.len() % bs, 0, "not a whole number of blocks");
    let mut v = vec![B::zeroed(); bytes.len() / bs];
    bytemuck::cast_slice_mut::<B, u8>(&mut v).copy_from_slice(bytes);
    v
}

/// Which quantizer a check runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Reference,
    Default,
    Thorough,
}

/// One legacy type's row functions, so every check runs over every type the same way.
struct Legacy<B> {
    name: &'static str,
    quantize_ref: fn(&[f32], &mut [B]),
    quantize: fn(&[f32], Option<&[f32]>, &mut [B]),
    /// The thorough search (`QuantMode::Thorough`); `quantize` again where there is none.
    thorough: fn(&[f32], Option<&[f32]>, &mut [B]),
    dequantize: fn(&[B], &mut [f32]),
}

impl<B: Pod + Zeroable> Legacy<B> {
    fn quantize_all(&self, x: &[f32], w: Option<&[f32]>, mode: Mode) -> Vec<B> {
        let mut out = vec![B::zeroed(); x.len() / 32];
        for (xr, or) in x.chunks_exact(COLS).zip(out.chunks_exact_mut(COLS / 32)) {
            match mode {
                Mode::Reference => (self.quantize_ref)(xr, or),
                Mode::Default => (self.quantize)(xr, w, or),
                Mode::Thorough => (self.thorough)(xr, w, or),
            }
        }
        out
    }

    fn dequantize_all(&self, blocks: &[B]) -> Vec<f32> {
        let mut out = vec![0.0f32; blocks.len() * 32];
        (self.dequantize)(blocks, &mut out);
        out
    }

    fn check_reference(&self) {
        let x = input();
        let ours = self.quantize_all(&x, None, Mode::Reference);
        let ours_bytes: &[u8] = bytemuck::cast_slice(&ours);
        for suffix in ["ref.bin", "noimatrix.bin"] {
            let want = golden_bytes(&format!("{}.{suffix}", self.name));
            assert_eq!(ours_bytes.len(), want.len(), "{} {suffix} size", self.name);
            if let Some(i) = ours_bytes.iter().zip(&want).position(|(a, b)| a != b) {
                let bs = std::mem::size_of::<B>();
                panic!(
                    "{} {suffix}: first difference at byte {i} (row {}, block {})",
                    self.name,
                    i / (bs * COLS / 32),
                    (i / bs) % (COLS / 32)
                );
            }
        }
    }

    fn check_dequantize(&self) {
        for mode in ["ref", "imatrix"] {
            let bytes = golden_bytes(&format!("{}.{mode}.bin", self.name));
            let blocks: Vec<B> = blocks_from_bytes(&bytes);
            let ours = self.dequantize_all(&blocks);
            let want = read_f32(&blocks_dir().join(format!("{}.{mode}.dequant.f32", self.name)));
            assert_eq!(ours.len(), want.len());
            for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{} {mode} dequant [{i}]",
                    self.name
                );
            }
        }
    }

    /// The importance-weighted bar: mean ratio ≤ 1, no row > 1.02×, llama.cpp zeros stay zero.
    fn check_weighted(&self, errors: &HashMap<(String, String), Vec<(f64, f64)>>) -> f64 {
        let x = input();
        let w = imatrix();
        let wrow: Vec<f32> = w.clone();
        let mut out = vec![B::zeroed(); x.len() / 32];
        for (xr, or) in x.chunks_exact(COLS).zip(out.chunks_exact_mut(COLS / 32)) {
            (self.quantize)(xr, Some(&wrow), or);
        }
        let ours = row_errors(&x, &self.dequantize_all(&out), &w);
        let theirs = &errors[&(self.name.to_owned(), "imatrix".to_owned())];
        let mut ratios = Vec::new();
        for (row, (o, t)) in ours.iter().zip(theirs).enumerate() {
            if t.0 == 0.0 {
                assert_eq!(
                    o.0, 0.0,
                    "{} row {row}: llama.cpp is exact, ingot is not",
                    self.name
                );
                ratios.push(1.0);
                continue;
            }
            let r = o.0 / t.0;
            assert!(
                r <= 1.02,
                "{} row {row}: weighted error {} vs llama.cpp {} (ratio {r:.4})",
                self.name,
                o.0,
                t.0
            );
            if r > 1.0 {
                println!(
                    "{} row {row}: {:.4} × llama.cpp's weighted error",
                    self.name, r
                );
            }
            ratios.push(r);
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        println!(
            "{}: mean weighted-error ratio ingot / llama.cpp imatrix = {mean:.4} (min {:.4}, max {:.4})",
            self.name,
            ratios.iter().cloned().fold(f64::INFINITY, f64::min),
            ratios.iter().cloned().fold(0.0, f64::max)
        );
        assert!(mean <= 1.0, "{}: mean ratio {mean}", self.name);
        mean
    }

    /// The default (no imatrix) bar: plain error ≤ 1.02× the no-imatrix file's row by row, and
    /// no higher in total (checked for the default and the thorough mode).
    fn check_default(&self, mode: Mode) -> f64 {
        let x = input();
        let ones = vec![1.0f32; COLS];
        let ours = self.quantize_all(&x, None, mode);
        let ours = row_errors(&x, &self.dequantize_all(&ours), &ones);
        let bytes = golden_bytes(&format!("{}.noimatrix.bin", self.name));
        let theirs: Vec<B> = blocks_from_bytes(&bytes);
        let theirs = row_errors(&x, &self.dequantize_all(&theirs), &ones);
        let mut ratios = Vec::new();
        for (row, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                o.1 <= t.1 * 1.02,
                "{} row {row}: plain error {} vs no-imatrix {}",
                self.name,
                o.1,
                t.1
            );
            ratios.push(if t.1 == 0.0 { 1.0 } else { o.1 / t.1 });
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        let (so, st): (f64, f64) = (
            ours.iter().map(|e| e.1).sum(),
            theirs.iter().map(|e| e.1).sum(),
        );
        println!(
            "{}: {mode:?} mode mean plain-error ratio to no-imatrix = {mean:.4}",
            self.name
        );
        assert!(so <= st, "{}: total plain error {so} > {st}", self.name);
        mean
    }
}

fn q8_0() -> Legacy<q8_0::BlockQ8_0> {
    Legacy {
        name: "q8_0",
        quantize_ref: q8_0::quantize_row_ref,
        quantize: q8_0::quantize_row,
        thorough: q8_0::quantize_row,
        dequantize: q8_0::dequantize_row,
    }
}
fn q4_0() -> Legacy<q4_0::BlockQ4_0> {
    Legacy {
        name: "q4_0",
        quantize_ref: q4_0::quantize_row_ref,
        quantize: q4_0::quantize_row,
        thorough: q4_0::quantize_row_thorough,
        dequantize: q4_0::dequantize_row,
    }
}
fn q4_1() -> Legacy<q4_1::BlockQ4_1> {
    Legacy {
        name: "q4_1",
        quantize_ref: q4_1::quantize_row_ref,
        quantize: q4_1::quantize_row,
        thorough: q4_1::quantize_row_thorough,
        dequantize: q4_1::dequantize_row,
    }
}
fn q5_0() -> Legacy<q5_0::BlockQ5_0> {
    Legacy {
        name: "q5_0",
        quantize_ref: q5_0::quantize_row_ref,
        quantize: q5_0::quantize_row,
        thorough: q5_0::quantize_row_thorough,
        dequantize: q5_0::dequantize_row,
    }
}
fn q5_1() -> Legacy<q5_1::BlockQ5_1> {
    Legacy {
        name: "q5_1",
        quantize_ref: q5_1::quantize_row_ref,
        quantize: q5_1::quantize_row,
        thorough: q5_1::quantize_row_thorough,
        dequantize: q5_1::dequantize_row,
    }
}

#[test]
fn reference_bytes_equal_golden_ref_and_noimatrix() {
    q8_0().check_reference();
    q4_0().check_reference();
    q4_1().check_reference();
    q5_0().check_reference();
    q5_1().check_reference();
}

#[test]
fn dequantization_equals_golden() {
    q8_0().check_dequantize();
    q4_0().check_dequantize();
    q4_1().check_dequantize();
    q5_0().check_dequantize();
    q5_1().check_dequantize();
}

#[test]
fn weighted_mode_beats_llama_cpp_imatrix() {
    let errors = golden_errors();
    q4_0().check_weighted(&errors);
    q5_0().check_weighted(&errors);
    q5_1().check_weighted(&errors);
    q4_1().check_weighted(&errors);
}

#[test]
fn default_mode_no_worse_than_noimatrix_files() {
    for mode in [Mode::Default, Mode::Thorough] {
        let ratios = [
            q4_0().check_default(mode),
            q4_1().check_default(mode),
            q5_0().check_default(mode),
            q5_1().check_default(mode),
        ];
        // Both modes improve on llama.cpp's no-imatrix output on average, the thorough one more.
        for r in ratios {
            assert!(r < 1.0, "{mode:?}: mean ratio {r}");
        }
        // Q8_0's default is the reference: equal, ratio exactly 1.
        assert_eq!(q8_0().check_default(mode), 1.0);
    }
}

/// ggml's reference Q8_1 against the golden activations, which ggml's CPU activation quantizer
/// produced (`activations.q8_1.bin`).
#[test]
fn q8_1_reference_matches_golden_activations() {
    let a = read_f32(&blocks_dir().join("activations.f32"));
    let mut ours = vec![q8_1::BlockQ8_1::zeroed(); a.len() / 32];
    q8_1::quantize_row_ref(&a, &mut ours);
    let want = golden_bytes("activations.q8_1.bin");
    let ours_bytes: &[u8] = bytemuck::cast_slice(&ours);
    let diff = ours_bytes.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(diff, 0, "q8_1: {diff} bytes differ");
    let mut ours8 = vec![q8_0::BlockQ8_0::zeroed(); a.len() / 32];
    q8_0::quantize_row_ref(&a, &mut ours8);
    assert_eq!(
        bytemuck::cast_slice::<_, u8>(&ours8),
        &golden_bytes("activations.q8_0.bin")[..]
    );
}
