//! The real llama.cpp file SmolLM2-135M-Instruct.Q4_1.gguf: opens, every tensor's byte length
//! matches the type table, metadata getters work, and rewriting it is byte-identical.

use ingot_format::{GgmlType, GgufFile, GgufWriter, Value, WriterOptions};

#[test]
fn smollm2_opens_and_tensor_sizes_match_the_type_table() {
    let path = ingot_tests::smollm2_path();
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(file.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(file.get_u32("llama.embedding_length").unwrap(), 576);
    let tokens = file.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49_152);
    assert!(
        file.get_f32("llama.attention.layer_norm_rms_epsilon")
            .unwrap()
            > 0.0
    );
    assert_eq!(file.n_tensors(), 272);

    let mut total = 0u64;
    let mut types = std::collections::BTreeSet::new();
    for view in file.tensor_views() {
        let ty = view.ggml_type();
        let n = view.n_elements();
        let expect = n / ty.block_size() as u64 * ty.type_size() as u64;
        assert_eq!(view.bytes().len() as u64, expect, "{}", view.name());
        assert_eq!(n % ty.block_size() as u64, 0);
        total += expect;
        types.insert(ty);
    }
    assert!(types.contains(&GgmlType::Q4_1), "{types:?}");
    assert_eq!(total, file.total_tensor_bytes());
    // The data section ends at most one alignment unit after the last tensor.
    let size = std::fs::metadata(&path).unwrap().len();
    let data = file.data_offset(0).unwrap();
    assert!(data + total <= size);

    let emb = file.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.shape(), &[576, 49_152]);
    assert_eq!(emb.ggml_type(), GgmlType::Q8_0);
    // A Q8_0 block is 34 bytes: view the tensor as [u8; 34] chunks, zero-copy.
    let blocks = emb.blocks::<[u8; 34]>().unwrap();
    assert_eq!(blocks.len() as u64, emb.n_elements() / 32);
    assert_eq!(blocks.as_ptr() as *const u8, emb.bytes().as_ptr());
    // The wrong block size is an error, not a panic.
    assert!(matches!(
        emb.blocks::<[u8; 20]>(),
        Err(ingot_format::FormatError::BlockCast {
            block_bytes: 20,
            ..
        })
    ));
    let q41 = file
        .tensor_views()
        .find(|v| v.ggml_type() == GgmlType::Q4_1)
        .unwrap();
    assert_eq!(
        q41.blocks::<[u8; 20]>().unwrap().len() as u64,
        q41.n_elements() / 32
    );
}

#[test]
fn smollm2_rewrite_is_byte_identical() {
    let path = ingot_tests::smollm2_path();
    let file = GgufFile::open(&path).unwrap();
    let dir = ingot_tests::temp_dir();
    let out = dir.path().join("copy.gguf");
    let opts = WriterOptions {
        integrity: false,
        ..WriterOptions::default()
    };
    let mut w = GgufWriter::with_options(&out, opts);
    for (k, v) in file.metadata() {
        w.add_kv(k, v.clone()).unwrap();
    }
    for t in file.tensors() {
        w.add_tensor(t.name(), t.shape(), t.ggml_type()).unwrap();
    }
    for v in file.tensor_views() {
        w.write_tensor(v.bytes()).unwrap();
    }
    w.finish().unwrap();
    let a = std::fs::read(&path).unwrap();
    let b = std::fs::read(&out).unwrap();
    assert_eq!(a.len(), b.len());
    let first_diff = a.iter().zip(&b).position(|(x, y)| x != y);
    assert_eq!(first_diff, None);
}

#[test]
fn smollm2_rewrite_with_integrity_verifies_and_reads_equal() {
    let path = ingot_tests::smollm2_path();
    let file = GgufFile::open(&path).unwrap();
    let dir = ingot_tests::temp_dir();
    let out = dir.path().join("checked.gguf");
    let mut w = GgufWriter::new(&out);
    w.copy_metadata_from(&file).unwrap();
    for t in file.tensors() {
        w.add_tensor(t.name(), t.shape(), t.ggml_type()).unwrap();
    }
    for v in file.tensor_views() {
        // Stream through a reader to exercise that path.
        w.write_tensor_from(v.bytes()).unwrap();
    }
    w.finish().unwrap();
    let copy = GgufFile::open(&out).unwrap();
    copy.verify().unwrap();
    assert_eq!(copy.metadata_len(), file.metadata_len() + 3);
    for (k, v) in file.metadata() {
        assert_eq!(copy.get(k), Some(v), "{k}");
    }
    for (a, b) in file.tensor_views().zip(copy.tensor_views()) {
        assert_eq!(a.name(), b.name());
        assert_eq!(a.bytes(), b.bytes());
    }
    assert!(matches!(
        copy.get(ingot_format::integrity::TENSOR_XXH3_KEY),
        Some(Value::Array(_))
    ));
}
