//! The `inspect` binary, spawned on files written into a temp dir: text and JSON output,
//! `--verify` success and failure, one-line errors with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ingot_format::{GgmlType, GgufFile, GgufWriter};

fn inspect(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inspect"))
        .args(args)
        .output()
        .expect("running inspect")
}

fn write_sample(dir: &Path) -> PathBuf {
    let path = dir.join("sample.gguf");
    let mut w = GgufWriter::new(&path);
    w.add_kv("general.architecture", "llama").unwrap();
    w.add_kv("llama.block_count", 2u32).unwrap();
    w.add_kv("tokenizer.ggml.scores", vec![0.5f32; 20]).unwrap();
    w.add_tensor("tok.weight", &[32, 4], GgmlType::Q8_0)
        .unwrap();
    w.add_tensor("norm.weight", &[32], GgmlType::F32).unwrap();
    w.write_tensor(&[3u8; 4 * 34]).unwrap();
    w.write_tensor(&[0u8; 128]).unwrap();
    w.finish().unwrap();
    path
}

#[test]
fn text_report_has_header_metadata_tensors_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_sample(dir.path());
    let out = inspect(&[p.as_os_str()]);
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.contains("GGUF v3, alignment 32, 6 metadata keys, 2 tensors"),
        "{s}"
    );
    assert!(s.contains("llama.block_count"));
    assert!(
        s.contains("... (20 elements)]"),
        "long array abbreviated: {s}"
    );
    assert!(s.contains("tok.weight") && s.contains("q8_0") && s.contains("[32, 4]"));
    // 4·34 bytes for 128 elements = 8.5 bpw; f32 = 32 bpw; total (136+128)·8/160 = 13.2.
    assert!(s.contains("8.5000 bpw") && s.contains("32.0000 bpw") && s.contains("13.2000 bpw"));
}

#[test]
fn json_report_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_sample(dir.path());
    let out = inspect(&[p.as_os_str(), "--json".as_ref(), "--verify".as_ref()]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["version"], 3);
    assert_eq!(j["tensors"][0]["name"], "tok.weight");
    assert_eq!(j["tensors"][0]["bytes"], 136);
    assert_eq!(j["tensors"][1]["offset"], 160);
    assert_eq!(j["totals"]["elements"], 160);
    assert_eq!(j["metadata"][2]["value"]["len"], 20);
    assert_eq!(j["metadata"][2]["value"]["truncated"], true);
    assert_eq!(j["verify"]["ok"], true);
}

#[test]
fn verify_failure_exits_non_zero_and_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_sample(dir.path());
    let f = GgufFile::open(&p).unwrap();
    let at =
        (f.data_offset(0).unwrap() + f.tensor("norm.weight").unwrap().info().offset()) as usize;
    drop(f);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[at + 3] = 0x42;
    std::fs::write(&p, bytes).unwrap();
    let out = inspect(&[p.as_os_str(), "--verify".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("norm.weight") && !err.contains("tok.weight"),
        "{err}"
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("verify: FAILED"));
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00\x01").unwrap();
    let out = inspect(&[bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("inspect: error: ") && err.contains("truncated"),
        "{err}"
    );

    let missing = dir.path().join("missing.gguf");
    let out = inspect(&[missing.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);

    let out = inspect(&["--no-such-flag".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
}
