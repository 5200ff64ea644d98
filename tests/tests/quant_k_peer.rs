//! Peer conformance with the `gguf` Python package (gguf-py, llama.cpp's own Python reader):
//! `gguf.quants.dequantize` of ingot's Q2_K…Q6_K data must equal ingot's dequantization bit
//! for bit. The data come from ingot's default and importance-weighted quantizers on random
//! rows, so every scale/min/code field takes many values. Needs `python3` with `gguf` and
//! `numpy` (`tests/requirements.txt`).

use std::process::Command;

use ingot_quant::k_quants::{q2_k, q3_k, q4_k, q5_k, q6_k};
use ingot_tests::{read_f32, temp_dir};

const ROWS: usize = 6;
const COLS: usize = 1024;

/// Deterministic test rows: a different scale per 32 values, a few outliers, one shifted row.
fn rows() -> (Vec<f32>, Vec<f32>) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let mut x = Vec::with_capacity(ROWS * COLS);
    for r in 0..ROWS {
        let mut group_scale = 1.0f32;
        for c in 0..COLS {
            if c % 32 == 0 {
                group_scale = 10f32.powf(2.0 * next());
            }
            let mut v = next() * group_scale;
            if c % 97 == 13 {
                v *= 20.0;
            }
            if r == 3 {
                v += 2.0;
            }
            x.push(v);
        }
    }
    let w = (0..COLS).map(|_| (2.0 * next()).exp()).collect();
    (x, w)
}

macro_rules! peer {
    ($name:ident, $m:ident, $block:ty, $gguf:literal) => {
        #[test]
        fn $name() {
            let (x, w) = rows();
            let per_row = COLS / 256;
            let mut blocks = vec![<$block as bytemuck::Zeroable>::zeroed(); 2 * ROWS * per_row];
            for (r, xr) in x.chunks(COLS).enumerate() {
                let (a, b) = blocks.split_at_mut(ROWS * per_row);
                $m::quantize_row(xr, None, &mut a[r * per_row..(r + 1) * per_row]);
                $m::quantize_row(xr, Some(&w), &mut b[r * per_row..(r + 1) * per_row]);
            }
            let mut ours = vec![0f32; blocks.len() * 256];
            $m::dequantize_row(&blocks, &mut ours);

            let dir = temp_dir();
            let src = dir.path().join("blocks.bin");
            let dst = dir.path().join("dequant.f32");
            std::fs::write(&src, bytemuck::cast_slice::<$block, u8>(&blocks)).expect("write");
            let script = concat!(
                "import sys, numpy as np\n",
                "from gguf import GGMLQuantizationType as T\n",
                "from gguf.quants import dequantize\n",
                "data = np.fromfile(sys.argv[1], dtype=np.uint8)\n",
                "out = dequantize(data, T.",
                $gguf,
                ").astype(np.float32).reshape(-1)\n",
                "out.tofile(sys.argv[2])\n",
            );
            let status = Command::new("python3")
                .arg("-c")
                .arg(script)
                .arg(&src)
                .arg(&dst)
                .status()
                .expect("running python3 (needs the gguf and numpy packages)");
            assert!(status.success(), "gguf.quants.dequantize failed: {status}");
            let theirs = read_f32(&dst);
            assert_eq!(theirs.len(), ours.len());
            let diff = (0..ours.len()).find(|&i| ours[i].to_bits() != theirs[i].to_bits());
            if let Some(i) = diff {
                panic!(
                    "{}: value {i} (block {}) ingot {} gguf-py {}",
                    $gguf,
                    i / 256,
                    ours[i],
                    theirs[i]
                );
            }
        }
    };
}

peer!(q2_k_matches_gguf_py, q2_k, q2_k::BlockQ2K, "Q2_K");
peer!(q3_k_matches_gguf_py, q3_k, q3_k::BlockQ3K, "Q3_K");
peer!(q4_k_matches_gguf_py, q4_k, q4_k::BlockQ4K, "Q4_K");
peer!(q5_k_matches_gguf_py, q5_k, q5_k::BlockQ5K, "Q5_K");
peer!(q6_k_matches_gguf_py, q6_k, q6_k::BlockQ6K, "Q6_K");
