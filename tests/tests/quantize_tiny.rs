//! The quantize pipeline on the tiny testdata model (`testdata/tiny`, a trained 3.5 M-parameter
//! Llama stored as F16 safetensors): Hugging Face input quantizes to the same bytes as
//! `convert` followed by `quantize`; per-tensor accuracy of Q8_0 / Q4_0 / Q4_K_M within stated
//! bounds; an importance matrix collected from `testdata/tiny/calib.txt` lowers the
//! imatrix-weighted error on every tensor it covers; `--keep-split` keeps the shard layout.

mod quantize_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ingot_convert::{convert, ConvertError, HfInput, OutType};
use ingot_format::{GgmlType, GgufFile, GgufWriter, SplitPolicy, Value, WriterOptions};
use ingot_infer::imatrix::{collect, ImatrixOptions};
use ingot_infer::llama::{KvPrecision, LlamaModel};
use ingot_quant::imatrix::Imatrix;
use ingot_quant::pipeline::{ModelSource, NoProgress, Prepared, QuantizeOptions};
use ingot_quant::plan::FileType;
use quantize_common::*;

fn tiny_dir() -> PathBuf {
    ingot_tests::testdata().join("tiny")
}

/// `convert testdata/tiny OUT --outtype f16`.
fn tiny_f16(dir: &Path) -> PathBuf {
    let out = dir.join("tiny-f16.gguf");
    convert(&tiny_dir(), &out, OutType::F16, |_| {}).expect("convert");
    out
}

fn run(input: &dyn ModelSource, out: &Path, opts: &QuantizeOptions, im: Option<Imatrix>) {
    Prepared::new(input, im, opts)
        .expect("prepare")
        .write(out, &mut NoProgress)
        .expect("write");
}

/// An importance matrix of the tiny model over 4 windows of 128 tokens of calib.txt (as
/// tools/main-job.sh does with `imatrix -f calib.txt`, shorter), through the legacy `.dat`
/// file format the `imatrix` tool writes.
fn calib_imatrix(f16: &Path, dir: &Path) -> Imatrix {
    let file = GgufFile::open(f16).expect("open");
    let model = LlamaModel::from_gguf(&file).expect("load");
    let tok = ingot_tokenizer::Tokenizer::from_gguf(&file).expect("tokenizer");
    let text = std::fs::read_to_string(tiny_dir().join("calib.txt")).expect("calib.txt");
    let tokens = tok.encode(&text, true, false);
    let opts = ImatrixOptions {
        n_ctx: 128,
        max_chunks: Some(4),
        bos: tok.bos(),
        process_output: false,
        dataset: "calib.txt".into(),
        kv_precision: KvPrecision::F32,
    };
    let run = collect(&model, &tokens, &opts, |_| {}).expect("imatrix");
    let path = dir.join("imatrix.dat");
    run.imatrix.write_legacy(&path).expect("write imatrix");
    Imatrix::open(&path).expect("read imatrix").0
}

#[test]
fn hugging_face_input_equals_convert_then_quantize() {
    let dir = ingot_tests::temp_dir();
    let f16 = tiny_f16(dir.path());
    let im = calib_imatrix(&f16, dir.path());
    let file = GgufFile::open(&f16).unwrap();
    let hf = HfInput::open(&tiny_dir()).expect("HF input");
    assert_eq!(hf.outtype(), OutType::F16);
    let st = HfInput::open_file(&tiny_dir().join("model.safetensors")).expect("safetensors");
    for (ft, with) in [
        (FileType::Q8_0, false),
        (FileType::Q4_K_M, true),
        (FileType::Q4_0, false),
    ] {
        let opts = QuantizeOptions::new(ft);
        let a = dir.path().join(format!("{ft}-hf.gguf"));
        let b = dir.path().join(format!("{ft}-convert.gguf"));
        let c = dir.path().join(format!("{ft}-st.gguf"));
        run(&hf, &a, &opts, with.then(|| im.clone()));
        run(&file, &b, &opts, with.then(|| im.clone()));
        run(&st, &c, &opts, with.then(|| im.clone()));
        let (a, b, c) = (
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            std::fs::read(&c).unwrap(),
        );
        assert!(a == b, "{ft}: HF input differs from convert + quantize");
        assert!(a == c, "{ft}: safetensors-file input differs");
    }
    // A file of the directory that is not its weights.
    match HfInput::open_file(&tiny_dir().join("config.json")) {
        Err(ConvertError::NotModelFile { file, .. }) => assert!(file.ends_with("config.json")),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn cli_detects_the_input_kind_by_content() {
    let dir = ingot_tests::temp_dir();
    let f16 = tiny_f16(dir.path());
    let bin = quantize_bin();
    let mut outs = Vec::new();
    for (name, input) in [
        ("dir", tiny_dir()),
        ("st", tiny_dir().join("model.safetensors")),
        ("gguf", f16.clone()),
    ] {
        let out = dir.path().join(format!("{name}.q8.gguf"));
        let o = Command::new(&bin)
            .arg(&input)
            .arg(&out)
            .args(["q8_0", "--no-progress-bar", "-t", "2"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        outs.push(std::fs::read(&out).unwrap());
    }
    assert!(outs[0] == outs[1] && outs[1] == outs[2]);
    // Content, not extension: a text file named .gguf, and a directory without config.json.
    let fake = dir.path().join("fake.gguf");
    std::fs::write(&fake, "not a model at all").unwrap();
    let empty = dir.path().join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    for input in [&fake, &empty] {
        let out = dir.path().join("never.gguf");
        let o = Command::new(&bin)
            .arg(input)
            .arg(&out)
            .arg("q8_0")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
}

/// Relative RMSE bound per output type on the tiny model's trained weights: about 1.3× the
/// largest value measured over its tensors (Q8_0 0.0056, Q6_K 0.0169, Q4_K 0.0718, Q4_0
/// 0.0842; the test prints every tensor's value).
fn tiny_bound(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::F32 => 0.0,
        GgmlType::Q8_0 => 0.0073,
        GgmlType::Q6_K => 0.022,
        GgmlType::Q4_K => 0.094,
        GgmlType::Q4_0 => 0.11,
        other => panic!("unexpected type {other:?} in the tiny model's plans"),
    }
}

#[test]
fn accuracy_per_tensor_and_imatrix_lowers_weighted_error() {
    let dir = ingot_tests::temp_dir();
    let f16 = tiny_f16(dir.path());
    let im = calib_imatrix(&f16, dir.path());
    let src = GgufFile::open(&f16).unwrap();
    for ft in [FileType::Q8_0, FileType::Q4_0, FileType::Q4_K_M] {
        let plain = dir.path().join(format!("{ft}.gguf"));
        run(&src, &plain, &QuantizeOptions::new(ft), None);
        let plain = GgufFile::open(&plain).unwrap();
        let mut worst = 0f64;
        for t in src.tensor_views() {
            let x = decode(&src, t.name());
            let out = plain.tensor(t.name()).unwrap();
            let e = rel_rmse(&x, &decode(&plain, t.name()));
            let bound = tiny_bound(out.ggml_type());
            eprintln!("{ft} {} {:?}: rel RMSE {e:.5}", t.name(), out.ggml_type());
            assert!(e <= bound, "{ft} {}: {e} > {bound}", t.name());
            if out.ggml_type() != GgmlType::F32 {
                worst = worst.max(e);
            }
        }
        assert!(worst > 0.0, "{ft}: nothing was quantized");
        if ft == FileType::Q8_0 {
            continue;
        }
        // With the imatrix: Σ_j w_j (x − q)² lower on every tensor the imatrix covers.
        let weighted = dir.path().join(format!("{ft}-im.gguf"));
        run(&src, &weighted, &QuantizeOptions::new(ft), Some(im.clone()));
        let weighted = GgufFile::open(&weighted).unwrap();
        let mut covered = 0;
        for (name, entry) in im.entries() {
            let w = entry.means();
            let x = decode(&src, name);
            let e_plain = weighted_err(&x, &decode(&plain, name), &w);
            let e_im = weighted_err(&x, &decode(&weighted, name), &w);
            eprintln!("{ft} {name}: weighted error {e_plain:.4e} -> {e_im:.4e}");
            assert!(e_im < e_plain, "{ft} {name}: {e_im} >= {e_plain}");
            covered += 1;
        }
        assert_eq!(covered, 4 * 7, "the imatrix covers every block matmul");
    }
}

#[test]
fn keep_split_keeps_the_shard_layout() {
    let dir = ingot_tests::temp_dir();
    let f16 = tiny_f16(dir.path());
    let src = GgufFile::open(&f16).unwrap();
    // Re-write the F16 model as shards of at most 10 tensors.
    let split_dir = dir.path().join("split");
    std::fs::create_dir(&split_dir).unwrap();
    let mut w = GgufWriter::with_options(
        split_dir.join("tiny.gguf"),
        WriterOptions {
            integrity: false,
            split: SplitPolicy {
                max_bytes: None,
                max_tensors: Some(10),
            },
        },
    );
    w.copy_metadata_from(&src).unwrap();
    for t in src.tensor_views() {
        w.add_tensor(t.name(), t.shape(), t.ggml_type()).unwrap();
    }
    for t in src.tensor_views() {
        w.write_tensor(t.bytes()).unwrap();
    }
    let shards = w.finish().unwrap();
    assert!(shards.len() >= 3, "{shards:?}");
    let input = GgufFile::open(&shards[0]).unwrap();
    assert_eq!(input.n_shards(), shards.len());

    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut opts = QuantizeOptions::new(FileType::Q4_K_M);
    opts.keep_split = true;
    let out = out_dir.join("tiny-q4k.gguf");
    let summary = Prepared::new(&input, None, &opts)
        .unwrap()
        .write(&out, &mut NoProgress)
        .unwrap();
    assert_eq!(summary.paths.len(), shards.len());
    // Shard i of the output holds exactly the tensors of shard i of the input, in order.
    for (i, (s_in, s_out)) in shards.iter().zip(&summary.paths).enumerate() {
        let name = s_out.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.ends_with(&format!("-{:05}-of-{:05}.gguf", i + 1, shards.len())),
            "{name}"
        );
        let a = GgufFile::open_single(s_in).unwrap();
        let b = GgufFile::open_single(s_out).unwrap();
        let names = |f: &GgufFile| f.tensors().map(|t| t.name().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b), "shard {i}");
        assert!(
            matches!(b.get("split.no"), Some(Value::U16(n)) if usize::from(*n) == i),
            "shard {i}: split.no {:?}",
            b.get("split.no")
        );
    }
    // Our reader opens the set and every tensor equals the unsplit quantization's.
    let whole = dir.path().join("whole.gguf");
    run(&src, &whole, &QuantizeOptions::new(FileType::Q4_K_M), None);
    let whole = GgufFile::open(&whole).unwrap();
    let split = GgufFile::open(&summary.paths[0]).unwrap();
    assert_eq!(split.n_tensors(), whole.n_tensors());
    for t in whole.tensor_views() {
        assert_eq!(
            split.tensor(t.name()).unwrap().bytes(),
            t.bytes(),
            "{}",
            t.name()
        );
    }
    // gguf-py reads each shard: the split keys and the tensor names per shard.
    let script = r#"
import sys, gguf
for i, p in enumerate(sys.argv[1:]):
    r = gguf.GGUFReader(p)
    no = int(r.fields["split.no"].parts[-1][0])
    count = int(r.fields["split.count"].parts[-1][0])
    assert no == i and count == len(sys.argv) - 1, (p, no, count)
    print(" ".join(t.name for t in r.tensors))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&summary.paths)
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = String::from_utf8(o.stdout).unwrap();
    for (line, s_in) in listed.lines().zip(&shards) {
        let a = GgufFile::open_single(s_in).unwrap();
        let want: Vec<_> = a.tensors().map(|t| t.name().to_owned()).collect();
        assert_eq!(line.split(' ').collect::<Vec<_>>(), want);
    }
}
