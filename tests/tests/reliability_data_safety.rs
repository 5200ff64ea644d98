//! Data safety of the tools that write model files (`quantize`, `convert`), spawned as the
//! user runs them:
//!
//! * SIGKILL part-way through a write: the destination keeps its exact previous bytes (the
//!   writer only ever renames a complete temp file over it), and the next write into the same
//!   directory removes the dead process's temp file.
//! * Disk full (`ulimit -f`): one clear error line, exit status 1, no output and no temp file.
//! * A flipped byte in a tensor of a file we wrote: `inspect --verify` names that tensor and
//!   exits non-zero. A flipped byte anywhere in the header (metadata, tensor infos): the file
//!   fails to parse or fails `verify()`, never passes.

mod quantize_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ingot_format::{FormatError, GgmlType, GgufFile};
use quantize_common::{dir_entries, tensor_list, write_model, Spec};

/// The `quantize`, `convert` and `inspect` binaries of this build, built once per test
/// process with `cargo build` (a no-op when up to date) into this test's target directory.
fn tool(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/..")
            .to_path_buf();
        let target = profile_dir.parent().expect("target/<profile>");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-q", "-p", "ingot-tools"])
            .args(["--bin", "quantize", "--bin", "convert", "--bin", "inspect"])
            .arg("--target-dir")
            .arg(target)
            .current_dir(ingot_tests::workspace_root());
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build for the tools");
        assert!(status.success(), "building the tools failed");
        profile_dir
    });
    let bin = dir.join(name);
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// Temp files of the writer (`.{name}.ingot-tmp.{pid}.{n}`) in `dir`, with their sizes.
fn temps(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().ok()?.len();
            name.contains(".ingot-tmp.").then_some((name, len))
        })
        .collect()
}

/// Waits until `child` has a temp file in `dir` holding more than 0 and fewer than
/// `max_bytes` bytes (so it is mid-write with most of the file still to come), then SIGKILLs
/// it. Returns the temp file names left behind.
fn kill_mid_write(mut child: Child, dir: &Path, max_bytes: u64) -> Vec<String> {
    let pid = child.id();
    let start = Instant::now();
    loop {
        let t = temps(dir);
        if t.iter().any(|(_, len)| *len > 0 && *len < max_bytes) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the tool finished ({status}) before it could be killed mid-write: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no temp file appeared"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    child.wait().unwrap();
    let left: Vec<String> = temps(dir).into_iter().map(|(n, _)| n).collect();
    let tag = format!(".ingot-tmp.{pid}.");
    assert!(
        left.iter().any(|n| n.contains(&tag)),
        "a killed writer leaves its temp file (else the cleanup below proves nothing): {left:?}"
    );
    left
}

/// Bytes the destination held before the killed run: not a GGUF file, so any change shows.
fn previous_bytes() -> Vec<u8> {
    b"the user's previous file, which must survive byte for byte\n".repeat(1000)
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("spawning a tool");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The f32 llama model of `spec` with cheap deterministic values (the realistic values of
/// `write_model` take seconds to generate at this size, and the test only needs bytes).
fn write_big_model(path: &Path, spec: &Spec) {
    let mut w = ingot_format::GgufWriter::new(path);
    w.add_kv("general.architecture", "llama").unwrap();
    w.add_kv("llama.block_count", spec.n_layer).unwrap();
    let list = tensor_list(spec);
    for (name, shape) in &list {
        w.add_tensor(name, shape, GgmlType::F32).unwrap();
    }
    for (k, (_, shape)) in list.iter().enumerate() {
        let n = shape.iter().product::<u64>() as usize;
        let bytes: Vec<u8> = (0..n)
            .flat_map(|i| (((i * 7 + k) % 13) as f32 * 0.01 - 0.06).to_le_bytes())
            .collect();
        w.write_tensor(&bytes).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn quantize_killed_mid_write_keeps_the_destination_and_the_next_run_cleans_up() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("big.gguf");
    // ~15 M f32 weights (60 MB): Q8_0 output ~16 MB, written in 1 MiB buffered steps.
    let spec = Spec {
        n_layer: 3,
        hidden: 1024,
        ff: 2816,
        kv: 512,
        vocab: 2048,
        tied: false,
        ty: GgmlType::F32,
    };
    write_big_model(&input, &spec);
    let input_len = std::fs::metadata(&input).unwrap().len();
    let dest = dir.path().join("out.gguf");
    std::fs::write(&dest, previous_bytes()).unwrap();

    let child = Command::new(tool("quantize"))
        .args([&input, &dest])
        .args(["Q8_0", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Q8_0 is 34/128 of f32: kill before an eighth of the input size (under half the output).
    kill_mid_write(child, dir.path(), input_len / 8);
    assert_eq!(std::fs::read(&dest).unwrap(), previous_bytes());

    // The next run (another output in the same directory) removes the dead writer's temp.
    let small = dir.path().join("small.gguf");
    write_model(&small, &Spec::small());
    let other = dir.path().join("other.gguf");
    run(Command::new(tool("quantize"))
        .args([&small, &other])
        .arg("Q4_0"));
    assert_eq!(temps(dir.path()), vec![]);
    assert_eq!(std::fs::read(&dest).unwrap(), previous_bytes());
    GgufFile::open(&other).unwrap().verify().unwrap();
}

/// A Hugging Face llama directory of `layers` layers with the tiny model's tokenizer.
fn hf_model(dir: &Path, layers: usize, hidden: usize, ff: usize) -> u64 {
    use safetensors::tensor::TensorView;
    let tiny = ingot_tests::testdata().join("tiny");
    std::fs::create_dir_all(dir).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(tiny.join(f), dir.join(f)).unwrap();
    }
    let (heads, vocab) = (hidden / 64, 1536usize);
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "hidden_size": hidden, "intermediate_size": ff,
        "num_attention_heads": heads, "num_key_value_heads": heads, "num_hidden_layers": layers,
        "vocab_size": vocab, "max_position_embeddings": 512, "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "bos_token_id": 0, "eos_token_id": 0
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut shapes = vec![
        ("model.embed_tokens.weight".to_string(), vec![vocab, hidden]),
        ("model.norm.weight".to_string(), vec![hidden]),
    ];
    for i in 0..layers {
        let l = |s: &str| format!("model.layers.{i}.{s}");
        shapes.extend([
            (l("input_layernorm.weight"), vec![hidden]),
            (l("post_attention_layernorm.weight"), vec![hidden]),
            (l("self_attn.q_proj.weight"), vec![hidden, hidden]),
            (l("self_attn.k_proj.weight"), vec![hidden, hidden]),
            (l("self_attn.v_proj.weight"), vec![hidden, hidden]),
            (l("self_attn.o_proj.weight"), vec![hidden, hidden]),
            (l("mlp.gate_proj.weight"), vec![ff, hidden]),
            (l("mlp.up_proj.weight"), vec![ff, hidden]),
            (l("mlp.down_proj.weight"), vec![hidden, ff]),
        ]);
    }
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            let bytes = (0..n)
                .flat_map(|i| (((i * 7 + k) % 13) as f32 * 0.01 - 0.06).to_le_bytes())
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| {
            let v = TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap();
            (n.clone(), v)
        })
        .collect();
    let path = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    std::fs::metadata(&path).unwrap().len()
}

#[test]
fn convert_killed_mid_write_keeps_the_destination_and_the_next_run_cleans_up() {
    let dir = ingot_tests::temp_dir();
    let model = dir.path().join("hf");
    // ~15 M f32 values (60 MB), converted to f32: the output is as large as the input.
    let input_len = hf_model(&model, 3, 1024, 2816);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let dest = out_dir.join("model.gguf");
    std::fs::write(&dest, previous_bytes()).unwrap();

    let child = Command::new(tool("convert"))
        .args([&model, &dest])
        .args(["--outtype", "f32"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_mid_write(child, &out_dir, input_len / 2);
    assert_eq!(std::fs::read(&dest).unwrap(), previous_bytes());

    // The next conversion into the directory (the tiny model) removes the dead temp.
    let tiny = ingot_tests::testdata().join("tiny");
    let other = out_dir.join("tiny.gguf");
    run(Command::new(tool("convert")).args([&tiny, &other]));
    assert_eq!(temps(&out_dir), vec![]);
    assert_eq!(std::fs::read(&dest).unwrap(), previous_bytes());
    assert!(GgufFile::open(&other).unwrap().n_tensors() > 0);
}

#[test]
fn convert_on_a_full_disk_fails_cleanly_and_leaves_nothing() {
    let dir = ingot_tests::temp_dir();
    let out = dir.path().join("out.gguf");
    let tiny = ingot_tests::testdata().join("tiny");
    // A 64 KiB file-size limit makes writes fail with EFBIG (SIGXFSZ ignored, so the process
    // sees the error instead of being killed).
    let cmd = format!(
        "trap '' XFSZ; ulimit -f 64; exec '{}' '{}' '{}'",
        tool("convert").display(),
        tiny.display(),
        out.display()
    );
    let o = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(errors[0].contains("out.gguf"), "{err}");
    assert!(
        errors[0].contains("File too large") || errors[0].contains("too large"),
        "{err}"
    );
    assert_eq!(dir_entries(dir.path()), Vec::<String>::new());
}

/// Writes a small model with `quantize` (so the file is one the tools really produce).
fn quantized_model(dir: &Path) -> PathBuf {
    let input = dir.join("in.gguf");
    write_model(&input, &Spec::small());
    let out = dir.join("q.gguf");
    run(Command::new(tool("quantize"))
        .args([&input, &out])
        .arg("Q4_K"));
    out
}

/// Writes `bytes` to `path` and runs `inspect --verify` on it.
fn inspect_verify(path: &Path, bytes: &[u8]) -> Output {
    std::fs::write(path, bytes).unwrap();
    Command::new(tool("inspect"))
        .arg(path)
        .arg("--verify")
        .output()
        .unwrap()
}

#[test]
fn a_flipped_tensor_byte_is_named_by_inspect_verify() {
    let dir = ingot_tests::temp_dir();
    let path = quantized_model(dir.path());
    let good = std::fs::read(&path).unwrap();
    let f = GgufFile::from_bytes(good.clone()).unwrap();
    f.verify().unwrap();
    let name = "blk.2.ffn_down.weight";
    let t = f.tensor(name).unwrap();
    let at = (f.data_offset(0).unwrap() + t.info().offset()) as usize + t.bytes().len() / 2;
    let mut bad = good;
    bad[at] ^= 0x10;
    let o = inspect_verify(&path, &bad);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(name), "{err}");
    // Exactly that tensor is named.
    match GgufFile::from_bytes(bad).unwrap().verify() {
        Err(FormatError::IntegrityMismatch {
            tensors,
            data_section: true,
            header: false,
        }) => assert_eq!(tensors, vec![name]),
        r => panic!("{r:?}"),
    }
}

/// Every single-byte change in the header of a file we wrote (magic, counts, every metadata
/// key and value, tensor infos, padding) either stops the file from parsing or fails
/// `verify()`: none passes silently.
#[test]
fn every_flipped_header_byte_fails_to_parse_or_to_verify() {
    let dir = ingot_tests::temp_dir();
    let path = quantized_model(dir.path());
    let good = std::fs::read(&path).unwrap();
    let header_len = GgufFile::from_bytes(good.clone())
        .unwrap()
        .data_offset(0)
        .unwrap() as usize;
    let (mut parse_errors, mut verify_errors) = (0, 0);
    for at in 0..header_len {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        match GgufFile::from_bytes(bad) {
            Err(_) => parse_errors += 1,
            Ok(f) => match f.verify() {
                Err(_) => verify_errors += 1,
                Ok(()) => panic!("flipping header byte {at} of {header_len} passed verify()"),
            },
        }
    }
    // Both kinds occur: the sweep really reached files that parse.
    assert!(parse_errors > 0 && verify_errors > 0);

    // And inspect --verify on one such file (a metadata string value) exits non-zero.
    let needle = b"synthetic";
    let at = good
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    let mut bad = good;
    bad[at] = b'S';
    let o = inspect_verify(&path, &bad);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("header digest differs"));
}

/// A reader that has a file mapped keeps seeing the old, complete file while a writer replaces
/// it with a much shorter one: the writer renames a new inode over the path instead of
/// truncating in place (which would make touching the old pages raise SIGBUS and kill this
/// test process). See formats/container.md, "Mapped files changed underneath a reader".
#[test]
fn a_mapped_reader_survives_the_file_being_replaced_by_a_shorter_one() {
    let dir = ingot_tests::temp_dir();
    let path = dir.path().join("m.gguf");
    let write = |n: u64, byte: u8| {
        let mut w = ingot_format::GgufWriter::new(&path);
        w.add_tensor("t", &[n], GgmlType::F32).unwrap();
        w.write_tensor(&vec![byte; 4 * n as usize]).unwrap();
        w.finish().unwrap();
    };
    write(1 << 20, 1); // 4 MiB of data
    let old = GgufFile::open(&path).unwrap();
    write(8, 2); // 32 bytes: the path now names a file far shorter than the map
    let bytes = old.tensor("t").unwrap().bytes();
    assert_eq!(bytes.len(), 4 << 20);
    assert!(bytes.iter().all(|&b| b == 1), "old pages changed");
    old.verify().unwrap();
    let new = GgufFile::open(&path).unwrap();
    assert_eq!(new.tensor("t").unwrap().bytes(), &[2u8; 32][..]);
}
