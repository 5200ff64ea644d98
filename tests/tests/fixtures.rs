//! The fixtures every other test relies on are present and have the sizes their README states,
//! so a broken checkout fails here with a clear message rather than deep inside a conformance test.

use ingot_tests::golden;

/// (type, bytes per block, elements per block) for every type in `golden/blocks`.
const GOLDEN_TYPES: &[(&str, usize, usize)] = &[
    ("q8_0", 34, 32),
    ("q4_0", 18, 32),
    ("q4_1", 20, 32),
    ("q5_0", 22, 32),
    ("q5_1", 24, 32),
    ("q2_k", 84, 256),
    ("q3_k", 110, 256),
    ("q4_k", 144, 256),
    ("q5_k", 176, 256),
    ("q6_k", 210, 256),
    ("q8_k", 292, 256),
];

const ROWS: usize = 24;
const COLS: usize = 2048;

#[test]
fn golden_block_files_have_the_documented_sizes() {
    let dir = golden().join("blocks");
    let input = std::fs::metadata(dir.join("input.f32")).expect("golden input.f32");
    assert_eq!(input.len() as usize, ROWS * COLS * 4);
    for &(name, block_bytes, block_elems) in GOLDEN_TYPES {
        let quantized = ROWS * COLS / block_elems * block_bytes;
        let modes: &[&str] = if name == "q8_k" {
            &["ref"]
        } else {
            &["ref", "imatrix", "noimatrix"]
        };
        for mode in modes {
            let path = dir.join(format!("{name}.{mode}.bin"));
            let len = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .len() as usize;
            assert_eq!(len, quantized, "{}", path.display());
        }
        let dequant = dir.join(format!("{name}.ref.dequant.f32"));
        assert_eq!(
            std::fs::metadata(&dequant).unwrap().len() as usize,
            ROWS * COLS * 4
        );
    }
}

#[test]
fn golden_smollm2_tokens_cover_wiki_test() {
    let tokens = ingot_tests::read_i32(&golden().join("smollm2").join("tokens.i32"));
    assert_eq!(tokens.len(), 304_830);
    assert!(tokens.iter().all(|&t| (0..49_152).contains(&t)));
    let wiki = std::fs::metadata(ingot_tests::wiki_test_raw()).expect("testdata/wiki.test.raw");
    assert_eq!(wiki.len(), 1_290_547);
}
