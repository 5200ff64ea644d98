//! ingot-convert on the tiny model and on synthetic Qwen2 / Mistral directories, checked by an
//! independent reader: `convert_check.py` parses the safetensors with numpy, applies llama.cpp's
//! rules (name map, Q/K permutation, type rules) written out again, reads the GGUF with gguf-py
//! and compares every tensor bit for bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ingot_convert::{convert, ConvertError, OutType};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value};

fn tiny() -> PathBuf {
    ingot_tests::testdata().join("tiny")
}

fn check_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("convert_check.py")
}

/// Runs the independent checker and returns its JSON summary.
fn py_check(gguf: &Path, hf: &Path, outtype: &str) -> Value {
    let out = Command::new("python3")
        .arg(check_script())
        .arg(gguf)
        .arg(hf)
        .arg(outtype)
        .output()
        .expect("running python3 convert_check.py");
    assert!(
        out.status.success(),
        "convert_check.py failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("checker prints JSON")
}

fn copy_meta_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
    ] {
        if from.join(f).is_file() {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
}

#[test]
fn tiny_f32_and_f16_match_the_safetensors_and_gguf_py_reads_them() {
    let tmp = ingot_tests::temp_dir();
    for (outtype, name) in [(OutType::F32, "f32"), (OutType::F16, "f16")] {
        let out = tmp.path().join(format!("tiny-{name}.gguf"));
        let mut seen = 0;
        let summary = convert(&tiny(), &out, outtype, |p| {
            seen += 1;
            assert_eq!(p.done, seen);
        })
        .unwrap();
        // 4 blocks × 9 tensors + token_embd + output_norm (tied: no output.weight).
        assert_eq!(summary.n_tensors, 38);
        assert_eq!(seen, 38);
        assert_eq!(summary.n_params, 3_541_248);
        let report = py_check(&out, &tiny(), name);
        assert_eq!(report["n_tensors"], 38);
        let m = &report["metadata"];
        assert_eq!(m["general.architecture"], "llama");
        assert_eq!(m["general.type"], "model");
        assert_eq!(m["general.name"], "Tiny");
        assert_eq!(m["general.size_label"], "3.5M");
        assert_eq!(m["general.file_type"], outtype.file_type());
        assert_eq!(m["general.quantization_version"], 2);
        assert_eq!(m["llama.block_count"], 4);
        assert_eq!(m["llama.context_length"], 256);
        assert_eq!(m["llama.embedding_length"], 256);
        assert_eq!(m["llama.feed_forward_length"], 768);
        assert_eq!(m["llama.attention.head_count"], 4);
        assert_eq!(m["llama.attention.head_count_kv"], 2);
        assert_eq!(m["llama.attention.key_length"], 64);
        assert_eq!(m["llama.attention.value_length"], 64);
        assert_eq!(m["llama.rope.freq_base"], 10000.0);
        assert!(
            (m["llama.attention.layer_norm_rms_epsilon"]
                .as_f64()
                .unwrap()
                - 1e-5)
                .abs()
                < 1e-10
        );
        assert_eq!(m["llama.vocab_size"], 1536);
        assert_eq!(m["llama.rope.dimension_count"], 64);
        assert_eq!(m["tokenizer.ggml.model"], "gpt2");
        assert_eq!(m["tokenizer.ggml.pre"], "gpt-2");
        assert_eq!(m["tokenizer.ggml.tokens"]["len"], 1536);
        assert_eq!(m["tokenizer.ggml.tokens"]["head"][0], "<|endoftext|>");
        assert_eq!(m["tokenizer.ggml.token_type"]["head"], json!([3, 1, 1, 1]));
        assert_eq!(m["tokenizer.ggml.merges"]["len"], 1536 - 257);
        assert_eq!(m["tokenizer.ggml.merges"]["head"][0], "Ġ t");
        assert_eq!(m["tokenizer.ggml.bos_token_id"], 0);
        assert_eq!(m["tokenizer.ggml.eos_token_id"], 0);
        assert_eq!(m["tokenizer.ggml.unknown_token_id"], 0);
        assert_eq!(m["tokenizer.ggml.add_bos_token"], true);
        assert_eq!(m["tokenizer.ggml.add_eos_token"], false);
        assert!(m["tokenizer.chat_template"]
            .as_str()
            .unwrap()
            .contains("add_generation_prompt"));
        // Key order as convert_hf_to_gguf.py writes it.
        let order: Vec<&str> = report["order"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| !k.starts_with("GGUF."))
            .collect();
        assert_eq!(
            order[..4],
            [
                "general.architecture",
                "general.type",
                "general.name",
                "general.size_label"
            ]
        );
        assert_eq!(order.last(), Some(&"tokenizer.chat_template"));
        let pos = |k: &str| order.iter().position(|x| *x == k).unwrap();
        assert!(pos("llama.block_count") < pos("general.file_type"));
        assert!(pos("general.file_type") < pos("llama.vocab_size"));
        assert_eq!(
            pos("general.quantization_version") + 1,
            pos("tokenizer.ggml.model")
        );
        assert!(pos("tokenizer.ggml.model") < pos("tokenizer.ggml.pre"));
        assert!(pos("tokenizer.ggml.token_type") < pos("tokenizer.ggml.merges"));
        assert!(pos("tokenizer.ggml.merges") < pos("tokenizer.ggml.bos_token_id"));
    }
}

#[test]
fn tiny_q8_0_matches_gguf_py_quantizer() {
    let tmp = ingot_tests::temp_dir();
    let out = tmp.path().join("tiny-q8_0.gguf");
    convert(&tiny(), &out, OutType::Q8_0, |_| {}).unwrap();
    let report = py_check(&out, &tiny(), "q8_0");
    assert_eq!(report["metadata"]["general.file_type"], 7);
}

/// Splits a single-file model into `n` shards (contiguous runs of the sorted names) with an
/// index, in `dst`.
fn shard(src: &Path, dst: &Path, n: usize) {
    copy_meta_files(src, dst);
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let per = names.len().div_ceil(n);
    let mut weight_map = serde_json::Map::new();
    for (k, chunk) in names.chunks(per).enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", k + 1, n);
        let views: Vec<(String, TensorView<'_>)> = chunk
            .iter()
            .map(|name| (name.clone(), st.tensor(name).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dst.join(&file)).unwrap();
        for name in chunk {
            weight_map.insert(name.clone(), Value::String(file.clone()));
        }
    }
    let index = json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(
        dst.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn sharded_input_converts_to_the_same_file() {
    let tmp = ingot_tests::temp_dir();
    // Same directory name, so general.name agrees.
    let single = tmp.path().join("a").join("tiny");
    copy_meta_files(&tiny(), &single);
    std::fs::copy(
        tiny().join("model.safetensors"),
        single.join("model.safetensors"),
    )
    .unwrap();
    let sharded = tmp.path().join("b").join("tiny");
    shard(&tiny(), &sharded, 3);
    let out1 = tmp.path().join("single.gguf");
    let out2 = tmp.path().join("sharded.gguf");
    convert(&single, &out1, OutType::F16, |_| {}).unwrap();
    convert(&sharded, &out2, OutType::F16, |_| {}).unwrap();
    let a = std::fs::read(&out1).unwrap();
    let b = std::fs::read(&out2).unwrap();
    assert_eq!(a.len(), b.len());
    assert!(
        a == b,
        "sharded conversion differs from single-file conversion"
    );
    py_check(&out2, &sharded, "f16");
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: each gives its own error, and nothing is left at OUT.

fn expect_err(dir: &Path, tmp: &Path) -> ConvertError {
    let out = tmp.join("bad.gguf");
    let err = convert(dir, &out, OutType::F32, |_| {}).expect_err("conversion must fail");
    assert!(!out.exists(), "a failed conversion left {}", out.display());
    let leftovers: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    err
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut Value)) {
    let p = dir.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn bad_inputs_each_give_their_error() {
    let tmp = ingot_tests::temp_dir();
    let t = tmp.path();
    let fresh = |name: &str| {
        let d = t.join(name);
        shard(&tiny(), &d, 2);
        d
    };

    let d = fresh("no-config");
    std::fs::remove_file(d.join("config.json")).unwrap();
    assert!(
        matches!(expect_err(&d, t), ConvertError::MissingFile { path } if path.ends_with("config.json"))
    );

    let d = fresh("no-tokenizer");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    assert!(
        matches!(expect_err(&d, t), ConvertError::MissingFile { path } if path.ends_with("tokenizer.json"))
    );

    let d = fresh("bad-json");
    std::fs::write(d.join("config.json"), "{\"architectures\": [").unwrap();
    assert!(matches!(expect_err(&d, t), ConvertError::Json { .. }));

    let d = fresh("arch");
    edit_config(&d, |v| v["architectures"] = json!(["GPTNeoXForCausalLM"]));
    match expect_err(&d, t) {
        ConvertError::UnsupportedArchitecture { found, supported } => {
            assert_eq!(found, "GPTNeoXForCausalLM");
            assert!(supported.contains(&"Qwen2ForCausalLM"));
        }
        other => panic!("{other:?}"),
    }

    let d = fresh("missing-shard");
    std::fs::remove_file(d.join("model-00002-of-00002.safetensors")).unwrap();
    assert!(
        matches!(expect_err(&d, t), ConvertError::MissingShard { path } if path.ends_with("model-00002-of-00002.safetensors"))
    );

    let d = fresh("truncated");
    let p = d.join("model-00001-of-00002.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    assert!(matches!(expect_err(&d, t), ConvertError::Safetensors { path, .. } if path == p));

    let d = fresh("shape");
    edit_config(&d, |v| v["intermediate_size"] = json!(512));
    match expect_err(&d, t) {
        ConvertError::ShapeMismatch {
            tensor,
            expected,
            found,
        } => {
            assert!(tensor.contains("mlp."), "{tensor}");
            assert!(expected.contains(&512) && found.contains(&768));
        }
        other => panic!("{other:?}"),
    }

    let d = fresh("layers");
    edit_config(&d, |v| v["num_hidden_layers"] = json!(5));
    assert!(
        matches!(expect_err(&d, t), ConvertError::MissingTensor { tensor } if tensor.starts_with("model.layers.4."))
    );

    let d = fresh("index");
    let idx = d.join("model.safetensors.index.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&idx).unwrap()).unwrap();
    v["weight_map"]["model.norm.weight"] = json!("model-00001-of-00002.safetensors");
    v["weight_map"]["model.embed_tokens.weight"] = json!("model-00002-of-00002.safetensors");
    std::fs::write(&idx, v.to_string()).unwrap();
    assert!(matches!(
        expect_err(&d, t),
        ConvertError::IndexMismatch { .. }
    ));

    let d = fresh("vocab");
    edit_config(&d, |v| v["vocab_size"] = json!(1000));
    assert!(
        matches!(expect_err(&d, t), ConvertError::ShapeMismatch { tensor, .. } if tensor == "model.embed_tokens.weight")
    );

    let d = fresh("pre");
    let p = d.join("tokenizer.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v["pre_tokenizer"] = json!({"type": "Whitespace"});
    std::fs::write(&p, v.to_string()).unwrap();
    assert!(matches!(
        expect_err(&d, t),
        ConvertError::UnknownPreTokenizer { .. }
    ));

    // An existing OUT is left untouched by a failed conversion.
    let d = fresh("keep-out");
    edit_config(&d, |v| v["hidden_size"] = json!(7));
    let out = t.join("existing.gguf");
    std::fs::write(&out, b"previous").unwrap();
    assert!(convert(&d, &out, OutType::F32, |_| {}).is_err());
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}

// ---------------------------------------------------------------------------------------------
// Synthetic Qwen2 (q/k/v biases, not permuted) and Mistral (permuted) directories.

/// Deterministic pseudo-random values in [-0.5, 0.5).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn synthetic(dir: &Path, arch: &str, dtype: Dtype, bias: bool, tied: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(tiny().join(f), dir.join(f)).unwrap();
    }
    let (e, ff, nh, nkv, layers, vocab) = (64usize, 128usize, 4usize, 2usize, 2usize, 1536usize);
    let hd = e / nh;
    let config = json!({
        "architectures": [arch], "hidden_size": e, "intermediate_size": ff,
        "num_attention_heads": nh, "num_key_value_heads": nkv, "num_hidden_layers": layers,
        "vocab_size": vocab, "max_position_embeddings": 512, "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": tied, "bos_token_id": 0, "eos_token_id": 0
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, e]),
        ("model.norm.weight".into(), vec![e]),
    ];
    if !tied {
        shapes.push(("lm_head.weight".into(), vec![vocab, e]));
    }
    for i in 0..layers {
        let l = |s: &str| format!("model.layers.{i}.{s}");
        shapes.extend([
            (l("input_layernorm.weight"), vec![e]),
            (l("post_attention_layernorm.weight"), vec![e]),
            (l("self_attn.q_proj.weight"), vec![nh * hd, e]),
            (l("self_attn.k_proj.weight"), vec![nkv * hd, e]),
            (l("self_attn.v_proj.weight"), vec![nkv * hd, e]),
            (l("self_attn.o_proj.weight"), vec![e, nh * hd]),
            (l("mlp.gate_proj.weight"), vec![ff, e]),
            (l("mlp.up_proj.weight"), vec![ff, e]),
            (l("mlp.down_proj.weight"), vec![e, ff]),
            (l("self_attn.rotary_emb.inv_freq"), vec![hd / 2]),
        ]);
        if bias {
            shapes.extend([
                (l("self_attn.q_proj.bias"), vec![nh * hd]),
                (l("self_attn.k_proj.bias"), vec![nkv * hd]),
                (l("self_attn.v_proj.bias"), vec![nkv * hd]),
            ]);
        }
    }
    let mut data: HashMap<String, (Vec<u8>, Vec<usize>)> = HashMap::new();
    for (k, (name, shape)) in shapes.into_iter().enumerate() {
        let v = values(shape.iter().product(), k as u64 + 1);
        let bytes: Vec<u8> = match dtype {
            Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Dtype::BF16 => v
                .iter()
                .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                .collect(),
            Dtype::F16 => v
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect(),
            _ => unreachable!("test uses float types only"),
        };
        data.insert(name, (bytes, shape));
    }
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, (b, s))| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

#[test]
fn synthetic_qwen2_with_biases_converts() {
    let tmp = ingot_tests::temp_dir();
    let d = tmp.path().join("qwen2");
    synthetic(&d, "Qwen2ForCausalLM", Dtype::BF16, true, false);
    for (outtype, name) in [(OutType::F32, "f32"), (OutType::Bf16, "bf16")] {
        let out = tmp.path().join(format!("qwen2-{name}.gguf"));
        let s = convert(&d, &out, outtype, |_| {}).unwrap();
        // 2 blocks × 12 + embd + norm + output.
        assert_eq!(s.n_tensors, 27);
        let r = py_check(&out, &d, name);
        let m = &r["metadata"];
        assert_eq!(m["general.architecture"], "qwen2");
        assert_eq!(m["qwen2.block_count"], 2);
        assert_eq!(m["qwen2.rope.freq_base"], 1000000.0);
        assert!(
            m.get("qwen2.vocab_size").is_none(),
            "Qwen2Model writes no vocab_size"
        );
        assert_eq!(m["general.file_type"], outtype.file_type());
    }
    // Qwen2 needs its biases.
    let d2 = tmp.path().join("qwen2-nobias");
    synthetic(&d2, "Qwen2ForCausalLM", Dtype::F32, false, true);
    let err = convert(&d2, &tmp.path().join("x.gguf"), OutType::F32, |_| {}).unwrap_err();
    assert!(
        matches!(err, ConvertError::MissingTensor { tensor } if tensor.ends_with("_proj.bias") && tensor.contains("self_attn"))
    );
}

#[test]
fn synthetic_mistral_converts_with_permutation() {
    let tmp = ingot_tests::temp_dir();
    let d = tmp.path().join("mistral");
    synthetic(&d, "MistralForCausalLM", Dtype::F32, false, true);
    for (outtype, name) in [(OutType::F16, "f16"), (OutType::Q8_0, "q8_0")] {
        let out = tmp.path().join(format!("mistral-{name}.gguf"));
        let s = convert(&d, &out, outtype, |_| {}).unwrap();
        assert_eq!(s.n_tensors, 2 * 9 + 2);
        let r = py_check(&out, &d, name);
        let m = &r["metadata"];
        assert_eq!(m["general.architecture"], "llama");
        assert_eq!(m["llama.rope.dimension_count"], 16);
        assert_eq!(m["llama.attention.head_count_kv"], 2);
        // No head_dim in config.json: MistralConfig's default (hidden/heads), as llama.cpp
        // sees it through AutoConfig.
        assert_eq!(m["llama.attention.key_length"], 16);
        assert_eq!(m["llama.context_length"], 512);
    }
}

// ---------------------------------------------------------------------------------------------
// GGUF → Hugging Face → GGUF.

fn assert_same_gguf(a: &Path, b: &Path) {
    let fa = ingot_format::GgufFile::open(a).unwrap();
    let fb = ingot_format::GgufFile::open(b).unwrap();
    assert_eq!(fa.n_tensors(), fb.n_tensors());
    for (ta, tb) in fa.tensor_views().zip(fb.tensor_views()) {
        assert_eq!(ta.name(), tb.name());
        assert_eq!(ta.shape(), tb.shape(), "{}", ta.name());
        assert_eq!(ta.ggml_type(), tb.ggml_type(), "{}", ta.name());
        assert!(
            ta.bytes() == tb.bytes(),
            "{}: tensor data differs",
            ta.name()
        );
    }
    assert_eq!(fa.metadata_len(), fb.metadata_len());
    for (k, v) in fa.metadata() {
        assert_eq!(fb.get(k), Some(v), "metadata key {k}");
    }
}

#[test]
fn gguf_to_safetensors_to_gguf_round_trips() {
    let tmp = ingot_tests::temp_dir();
    let first = tmp.path().join("first.gguf");
    convert(&tiny(), &first, OutType::F16, |_| {}).unwrap();
    // Same directory name as the source so general.name agrees.
    let hf = tmp.path().join("out").join("tiny");
    std::fs::create_dir_all(hf.parent().unwrap()).unwrap();
    let s = ingot_convert::export(&first, &hf).unwrap();
    assert_eq!(s.architecture, "LlamaForCausalLM");
    assert_eq!(s.n_tensors, 38);
    // The exported weights are the original safetensors bit for bit (un-permuted Q/K).
    let orig = std::fs::read(tiny().join("model.safetensors")).unwrap();
    let back = std::fs::read(hf.join("model.safetensors")).unwrap();
    let (orig, back) = (
        SafeTensors::deserialize(&orig).unwrap(),
        SafeTensors::deserialize(&back).unwrap(),
    );
    assert_eq!(orig.len(), back.len());
    for (name, t) in orig.iter() {
        let u = back.tensor(name).unwrap();
        // Norms were F16 in the source and F32 in the GGUF: compare values there.
        if t.dtype() == u.dtype() {
            assert!(t.data() == u.data(), "{name} differs after export");
        } else {
            assert_eq!((t.dtype(), u.dtype()), (Dtype::F16, Dtype::F32), "{name}");
            let a: Vec<f32> = t
                .data()
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect();
            let b: Vec<f32> = u
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert_eq!(a, b, "{name}");
        }
    }
    let second = tmp.path().join("second.gguf");
    convert(&hf, &second, OutType::F16, |_| {}).unwrap();
    assert_same_gguf(&first, &second);

    // Qwen2 (biases, no permutation), BF16 and F32 tensors.
    let q = tmp.path().join("q").join("qwen2");
    synthetic(&q, "Qwen2ForCausalLM", Dtype::BF16, true, false);
    let q1 = tmp.path().join("q1.gguf");
    convert(&q, &q1, OutType::Bf16, |_| {}).unwrap();
    let q_hf = tmp.path().join("q-out").join("qwen2");
    std::fs::create_dir_all(q_hf.parent().unwrap()).unwrap();
    assert_eq!(
        ingot_convert::export(&q1, &q_hf).unwrap().architecture,
        "Qwen2ForCausalLM"
    );
    let q2 = tmp.path().join("q2.gguf");
    convert(&q_hf, &q2, OutType::Bf16, |_| {}).unwrap();
    assert_same_gguf(&q1, &q2);
}

#[test]
fn export_refuses_quantized_tensors_and_leaves_nothing() {
    let tmp = ingot_tests::temp_dir();
    let g = tmp.path().join("q8.gguf");
    convert(&tiny(), &g, OutType::Q8_0, |_| {}).unwrap();
    let out = tmp.path().join("exported");
    let err = ingot_convert::export(&g, &out).unwrap_err();
    assert!(
        matches!(err, ConvertError::UnsupportedExport { .. }),
        "{err:?}"
    );
    assert!(!out.exists());
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "left behind: {names:?}");
    let err = ingot_convert::export(&tmp.path().join("absent.gguf"), &out).unwrap_err();
    assert!(matches!(err, ConvertError::Gguf { .. }), "{err:?}");
}

/// A minimal SentencePiece `ModelProto`: field 1 = pieces {1: text, 2: score, 3: type}.
fn sentencepiece_model(pieces: &[(&str, f32, u64)]) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    for (text, score, kind) in pieces {
        let mut m = vec![0x0a];
        varint(text.len() as u64, &mut m);
        m.extend_from_slice(text.as_bytes());
        m.push(0x15);
        m.extend_from_slice(&score.to_le_bytes());
        m.push(0x18);
        varint(*kind, &mut m);
        out.push(0x0a);
        varint(m.len() as u64, &mut out);
        out.extend_from_slice(&m);
    }
    out
}

#[test]
fn sentencepiece_tokenizer_model_gives_llama_vocab_with_scores() {
    let tmp = ingot_tests::temp_dir();
    let d = tmp.path().join("spm");
    synthetic(&d, "MistralForCausalLM", Dtype::F16, false, true);
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    std::fs::write(
        d.join("tokenizer_config.json"),
        r#"{"add_bos_token": true, "add_eos_token": false, "add_prefix_space": true,
            "added_tokens_decoder": {"3": {"content": "<0x00>", "special": false}}}"#,
    )
    .unwrap();
    let mut pieces = vec![("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)];
    let bytes: Vec<String> = (0..256).map(|b| format!("<0x{b:02X}>")).collect();
    pieces.extend(bytes.iter().map(|b| (b.as_str(), 0.0, 6)));
    pieces.extend([("▁t", -1.0, 1), ("he", -2.0, 1), ("▁the", -3.0, 1)]);
    std::fs::write(d.join("tokenizer.model"), sentencepiece_model(&pieces)).unwrap();
    let out = tmp.path().join("spm.gguf");
    convert(&d, &out, OutType::F16, |_| {}).unwrap();
    let r = py_check(&out, &d, "f16");
    let m = &r["metadata"];
    assert_eq!(m["tokenizer.ggml.model"], "llama");
    assert_eq!(m["tokenizer.ggml.pre"], "default");
    assert_eq!(m["tokenizer.ggml.tokens"]["len"], 1536);
    assert_eq!(
        m["tokenizer.ggml.tokens"]["head"],
        json!(["<unk>", "<s>", "</s>", "<0x00>"])
    );
    // <0x00> is overridden by added_tokens_decoder as user-defined (llama.cpp's rule).
    assert_eq!(m["tokenizer.ggml.token_type"]["head"], json!([2, 3, 3, 4]));
    assert_eq!(m["tokenizer.ggml.scores"]["len"], 1536);
    assert_eq!(
        m["tokenizer.ggml.scores"]["head"],
        json!([0.0, 0.0, 0.0, -1000.0])
    );
    assert_eq!(m["tokenizer.ggml.bos_token_id"], 0);
    assert_eq!(m["tokenizer.ggml.add_bos_token"], true);
    assert_eq!(m["tokenizer.ggml.add_space_prefix"], true);
    let f = ingot_format::GgufFile::open(&out).unwrap();
    let scores = f.get_f32_array("tokenizer.ggml.scores").unwrap();
    assert_eq!(scores[259..262], [-1.0, -2.0, -3.0]);
    assert_eq!(scores[262], -10000.0);
    let types = f.get_i32_array("tokenizer.ggml.token_type").unwrap();
    assert_eq!((types[4], types[259], types[262]), (6, 1, 5));
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap()[262],
        "[PAD262]"
    );
    // A truncated tokenizer.model is an error naming the file.
    let model = std::fs::read(d.join("tokenizer.model")).unwrap();
    std::fs::write(d.join("tokenizer.model"), &model[..model.len() - 3]).unwrap();
    let err = convert(&d, &tmp.path().join("bad.gguf"), OutType::F16, |_| {}).unwrap_err();
    assert!(
        matches!(err, ConvertError::BadField { ref file, .. } if file == "tokenizer.model"),
        "{err:?}"
    );
}

/// sha256 of the files llama.cpp's own `convert_hf_to_gguf.py` (llama.cpp vendored in
/// llama-cpp-python 0.3.36; pre-tokenizer hash check answered `gpt-2`) wrote for
/// `testdata/tiny`, one per `--outtype`. ingot must write the same bytes.
const LLAMA_CPP_SHA256: [(OutType, &str); 4] = [
    (
        OutType::F32,
        "ee19e1838509170f6aa8ba60ddd6f502eaed6b6ddcedcff40679f6e4f095c5c1",
    ),
    (
        OutType::F16,
        "38725021915312ed087d20ac35209d0b2bdf6a04d87925f0a60cb54395cb0ea7",
    ),
    (
        OutType::Bf16,
        "dd4e40e14e79ffc6d7f854eb2ac030dd59870711f0db8ef1b5c49aa28b606db3",
    ),
    (
        OutType::Q8_0,
        "895dbd79373918df469a70dd15d22676aa0f47be4d6e8fd805a3bbc2151838ad",
    ),
];

#[test]
fn tiny_conversion_is_byte_identical_to_llama_cpp() {
    let tmp = ingot_tests::temp_dir();
    for (outtype, want) in LLAMA_CPP_SHA256 {
        let out = tmp.path().join(format!("tiny-{}.gguf", outtype.name()));
        convert(&tiny(), &out, outtype, |_| {}).unwrap();
        let got = Command::new("python3")
            .args([
                "-c",
                "import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
            ])
            .arg(&out)
            .output()
            .expect("running python3");
        assert!(got.status.success());
        assert_eq!(
            String::from_utf8_lossy(&got.stdout).trim(),
            want,
            "{} differs from llama.cpp's conversion",
            outtype.name()
        );
    }
}
