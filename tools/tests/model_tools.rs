//! The `perplexity`, `imatrix` and `generate` binaries on the tiny testdata model (converted to
//! GGUF in a temp dir): their output, their files, and one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn tiny(dir: &Path) -> PathBuf {
    let out = dir.join("tiny.gguf");
    ingot_convert::convert(
        &testdata().join("tiny"),
        &out,
        ingot_convert::OutType::F16,
        |_| {},
    )
    .expect("converting the tiny model");
    out
}

fn run(bin: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .expect("spawning the tool")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn perplexity_reports_ppl_and_kl_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let eval = testdata().join("tiny/eval.txt");
    let base = dir.path().join("base.kld");
    let out = run(
        env!("CARGO_BIN_EXE_perplexity"),
        &[
            "-m".as_ref(),
            model.as_os_str(),
            "-f".as_ref(),
            eval.as_os_str(),
            "-c".as_ref(),
            "128".as_ref(),
            "--chunks".as_ref(),
            "3".as_ref(),
            "--kl-divergence-base".as_ref(),
            base.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("[1]") && s.contains("[3]"), "{s}");
    assert!(
        s.contains("Final estimate: PPL = ") && s.contains("3 chunks of 128 tokens, 189 scored"),
        "{s}"
    );
    assert!(s.contains("tokens/s"), "{s}");
    assert!(base.is_file());

    // Without -f the tokens come from the base file.
    let out = run(
        env!("CARGO_BIN_EXE_perplexity"),
        &[
            "-m".as_ref(),
            model.as_os_str(),
            "--kl-divergence".as_ref(),
            "--kl-divergence-base".as_ref(),
            base.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("Mean KLD") && s.contains("Same top p"), "{s}");
}

#[test]
fn imatrix_writes_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let calib = testdata().join("tiny/calib.txt");
    for (fmt, name) in [("gguf", "im.gguf"), ("dat", "im.dat")] {
        let out_path = dir.path().join(name);
        let out = run(
            env!("CARGO_BIN_EXE_imatrix"),
            &[
                "-m".as_ref(),
                model.as_os_str(),
                "-f".as_ref(),
                calib.as_os_str(),
                "-o".as_ref(),
                out_path.as_os_str(),
                "-c".as_ref(),
                "64".as_ref(),
                "--chunks".as_ref(),
                "2".as_ref(),
                "--output-format".as_ref(),
                fmt.as_ref(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("wrote 28 entries"),
            "{}",
            text(&out.stdout)
        );
        let bytes = std::fs::read(&out_path).unwrap();
        if fmt == "gguf" {
            let f = ingot_format::GgufFile::from_bytes(bytes).unwrap();
            assert_eq!(f.get_u32("imatrix.chunk_count").unwrap(), 2);
            assert_eq!(f.n_tensors(), 56);
        } else {
            assert_eq!(i32::from_le_bytes(bytes[..4].try_into().unwrap()), 28);
        }
    }
}

#[test]
fn generate_streams_and_reports_speed() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny(dir.path());
    let args = [
        "-m".as_ref(),
        model.as_os_str(),
        "-p".as_ref(),
        "The game".as_ref(),
        "-n".as_ref(),
        "12".as_ref(),
        "--temp".as_ref(),
        "0.9".as_ref(),
        "--seed".as_ref(),
        "7".as_ref(),
    ];
    let a = run(env!("CARGO_BIN_EXE_generate"), &args);
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert!(text(&a.stdout).starts_with("The game"));
    assert!(
        text(&a.stdout).len() > "The game".len() + 4,
        "{}",
        text(&a.stdout)
    );
    assert!(
        text(&a.stderr).contains("generation: 12 tokens"),
        "{}",
        text(&a.stderr)
    );
    // The same seed reproduces the same text.
    let b = run(env!("CARGO_BIN_EXE_generate"), &args);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn tools_fail_with_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.gguf");
    let out = run(
        env!("CARGO_BIN_EXE_perplexity"),
        &[
            "-m".as_ref(),
            missing.as_os_str(),
            "-f".as_ref(),
            missing.as_os_str(),
        ],
    );
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.starts_with("perplexity: error: opening ") && e.lines().count() == 1,
        "{e}"
    );

    // Too little text for two windows.
    let model = tiny(dir.path());
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "just a few words").unwrap();
    let out = run(
        env!("CARGO_BIN_EXE_perplexity"),
        &[
            "-m".as_ref(),
            model.as_os_str(),
            "-f".as_ref(),
            short.as_os_str(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("at least 1024 are needed"),
        "{}",
        text(&out.stderr)
    );
}
