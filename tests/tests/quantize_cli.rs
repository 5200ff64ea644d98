//! The `quantize` binary: successful runs, `--dry-run`, `--imatrix-convert`, the `gguf`
//! Python package reading our output, and bad input giving one clear line, exit status 1,
//! nothing at OUT and no temp litter.

mod quantize_common;

use std::path::Path;
use std::process::{Command, Output};

use ingot_format::{GgmlType, GgufFile};
use ingot_quant::plan::FileType;
use quantize_common::*;

fn run(args: &[&str]) -> Output {
    Command::new(quantize_bin())
        .args(args)
        .output()
        .expect("running quantize")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed run: status 1, one `quantize: error:` line containing `needle` (besides progress
/// lines for tensors already done and warnings).
fn assert_fails(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("quantize: warning") && !l.starts_with('['))
        .collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("quantize: error: "), "{err}");
    assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn quantizes_and_gguf_python_dequantizes_like_us() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("model.f16.bin"); // any extension: detected by content
    write_model(
        &input,
        &Spec {
            ty: GgmlType::F16,
            ..Spec::small()
        },
    );
    let mut outs = Vec::new();
    for ty in ["q8_0", "Q4_0", "q4_k"] {
        let out = dir.path().join(format!("out-{ty}.gguf"));
        let o = run(&[p(&input), p(&out), ty, "--threads", "2"]);
        assert!(o.status.success(), "{}", stderr(&o));
        // Plain progress lines (stderr is not a terminal) and a summary line.
        let err = stderr(&o);
        assert!(err.contains("blk.0.attn_q.weight"), "{err}");
        assert!(err.contains("bits/weight") && err.contains("MB/s"), "{err}");
        outs.push(out);
    }
    let script = r#"
import sys, numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
r = GGUFReader(sys.argv[1])
for t in r.tensors:
    v = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
    v.tofile(sys.argv[2] + "/" + t.name + ".f32")
"#;
    for out in &outs {
        let npy = tempfile::tempdir_in(dir.path()).unwrap();
        let st = Command::new("python3")
            .args(["-c", script, p(out), p(npy.path())])
            .status()
            .expect("python3 with the gguf package (tests/requirements.txt)");
        assert!(st.success());
        let f = GgufFile::open(out).unwrap();
        for t in f.tensors() {
            let theirs = ingot_tests::read_f32(&npy.path().join(format!("{}.f32", t.name())));
            let ours = decode(&f, t.name());
            assert_eq!(theirs.len(), ours.len(), "{}", t.name());
            let scale = ours.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6 * scale,
                    "{} [{i}]: ours {a} gguf-py {b}",
                    t.name()
                );
            }
        }
    }
}

#[test]
fn dry_run_prints_sizes_equal_to_the_real_output_and_writes_nothing() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    write_model(&input, &Spec::small());
    let o = run(&["--dry-run", p(&input), "Q4_K_M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(dir_entries(dir.path()), ["in.gguf"]);
    let text = String::from_utf8(o.stdout).unwrap();
    let out = dir.path().join("real.gguf");
    assert!(run(&[p(&input), p(&out), "Q4_K_M"]).status.success());
    let f = GgufFile::open(&out).unwrap();
    for t in f.tensors() {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == t.name()))
            .unwrap_or_else(|| panic!("{} not in dry run:\n{text}", t.name()));
        assert!(
            line.contains(&format!(" {} bytes", t.n_bytes())),
            "{line} vs {}",
            t.n_bytes()
        );
        assert!(line.contains(t.ggml_type().name()), "{line}");
    }
    let total: u64 = f.tensors().map(|t| t.n_bytes()).sum();
    assert!(text.contains(&format!("-> {total} bytes")), "{text}");
    assert!(text.contains("bits/weight"));
}

#[test]
fn imatrix_convert_both_ways() {
    let dir = ingot_tests::temp_dir();
    let g = ingot_tests::golden().join("smollm2");
    let gguf = dir.path().join("im.gguf");
    let dat = dir.path().join("im.dat");
    let o = run(&["--imatrix-convert", p(&g.join("imatrix.dat")), p(&gguf)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["--imatrix-convert", p(&gguf), p(&dat)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&dat).unwrap(),
        std::fs::read(g.join("imatrix.dat")).unwrap()
    );
}

#[test]
fn bad_input_one_line_nonzero_exit_nothing_written() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let spec = Spec::small();
    write_model(&input, &spec);
    let out = dir.path().join("out.gguf");
    let before = dir_entries(dir.path());

    let check = |args: &[&str], needle: &str| {
        let o = run(args);
        assert_fails(&o, needle);
        assert!(!out.exists(), "{args:?} left {}", out.display());
        assert_eq!(dir_entries(dir.path()), before, "{args:?} left litter");
    };

    check(
        &[p(&dir.path().join("missing.gguf")), p(&out), "Q4_0"],
        "does not exist",
    );
    check(&[p(&input), p(&out), "Q3_X"], "valid types: Q8_0");
    check(&[p(&input), p(&input), "Q8_0"], "is the input file");
    check(
        &[
            p(&input),
            p(&dir.path().join("no/such/dir/out.gguf")),
            "Q8_0",
        ],
        "does not exist",
    );

    let another = dir.path().join("other.dat");
    synthetic_imatrix(&Spec {
        hidden: 512,
        ..spec
    })
    .write_legacy(&another)
    .unwrap();
    let nonfinite = dir.path().join("nan.dat");
    let mut im = synthetic_imatrix(&spec);
    let mut e = im.get("blk.0.attn_k.weight").unwrap().clone();
    e.sums[3] = f32::NAN;
    im.insert("blk.0.attn_k.weight", e).unwrap();
    im.write_legacy(&nonfinite).unwrap();
    let before = dir_entries(dir.path());
    let check = |args: &[&str], needle: &str| {
        let o = run(args);
        assert_fails(&o, needle);
        assert!(!out.exists());
        assert_eq!(dir_entries(dir.path()), before, "{args:?} left litter");
    };
    check(
        &[p(&input), p(&out), "Q4_0", "--imatrix", p(&another)],
        "has 512 values but the tensor needs 256",
    );
    check(
        &[p(&input), p(&out), "Q4_0", "--imatrix", p(&nonfinite)],
        "blk.0.attn_k.weight",
    );
    check(
        &[p(&input), p(&out), "Q4_0", "--prune-layers", "1,9"],
        "cannot prune layer 9",
    );
    check(
        &[p(&input), p(&out), "Q4_0", "--tensor-type", "attn_v=q9"],
        "unknown tensor type",
    );

    // Not a GGUF file.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let before = dir_entries(dir.path());
    let o = run(&[p(&text), p(&out), "Q8_0"]);
    assert_fails(&o, "is not a GGUF file");
    assert_eq!(dir_entries(dir.path()), before);
}

#[test]
fn disk_full_leaves_nothing_behind() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    write_model(&input, &Spec::small());
    let out = dir.path().join("out.gguf");
    let before = dir_entries(dir.path());
    // A 64 KiB file-size limit makes writes fail with EFBIG (SIGXFSZ ignored, so the process
    // sees the error instead of being killed).
    let cmd = format!(
        "trap '' XFSZ; ulimit -f 64; exec '{}' '{}' '{}' Q8_0",
        quantize_bin().display(),
        p(&input),
        p(&out)
    );
    let o = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    assert_fails(&o, "out.gguf");
    assert!(!out.exists());
    assert_eq!(
        dir_entries(dir.path()),
        before,
        "temp litter after a failed write"
    );
}

#[test]
fn prune_and_output_types_from_the_command_line() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    write_model(&input, &Spec::small());
    let out = dir.path().join("o.gguf");
    let o = run(&[
        p(&input),
        p(&out),
        "Q4_K_S",
        "--prune-layers",
        "0,2",
        "--output-tensor-type",
        "q8_0",
        "--token-embedding-type",
        "F16",
        "--tensor-type",
        "ffn_up=q5_k",
        "--override-kv",
        "general.name=str:pruned",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = GgufFile::open(&out).unwrap();
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 2);
    assert_eq!(
        f.get_u32("general.file_type").unwrap(),
        FileType::Q4_K_S.llama_ftype()
    );
    assert_eq!(
        f.tensor("output.weight").unwrap().ggml_type(),
        GgmlType::Q8_0
    );
    assert_eq!(
        f.tensor("token_embd.weight").unwrap().ggml_type(),
        GgmlType::F16
    );
    assert_eq!(
        f.tensor("blk.1.ffn_up.weight").unwrap().ggml_type(),
        GgmlType::Q5_K
    );
    assert!(f.tensor("blk.2.ffn_up.weight").is_none());
    assert_eq!(f.get_str("general.name").unwrap(), "pruned");
}
