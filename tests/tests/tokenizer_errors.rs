//! One test per `TokenizerError` variant a vocabulary can trigger, built from plain data and, for
//! the metadata errors, from GGUF files written to a temporary directory.

use ingot_format::{Array, FormatError, GgufFile, GgufWriter, Value};
use ingot_tokenizer::{keys, Tokenizer, TokenizerError, VocabData};

/// A tiny valid `gpt2` vocabulary: "a", "b", "c", "Ġ", "ab", "abc".
fn bpe() -> VocabData {
    VocabData {
        model: "gpt2".into(),
        pre: Some("gpt-2".into()),
        tokens: ["a", "b", "c", "Ġ", "ab", "abc"].map(String::from).to_vec(),
        merges: Some(vec!["a b".into(), "ab c".into()]),
        ..Default::default()
    }
}

fn err(data: VocabData) -> TokenizerError {
    Tokenizer::new(data).expect_err("the vocabulary is invalid")
}

#[test]
fn the_base_vocabulary_is_valid() {
    let tok = Tokenizer::new(bpe()).unwrap();
    assert_eq!(tok.encode("abc ab", false, false), vec![5, 3, 4]);
    // Defaults of a gpt2 vocabulary: BOS/EOS 11, dropped here because the vocabulary is smaller.
    assert_eq!(tok.bos(), None);
    assert!(!tok.add_bos());
}

#[test]
fn unknown_model() {
    let e = err(VocabData {
        model: "bert".into(),
        ..bpe()
    });
    assert!(matches!(e, TokenizerError::UnknownModel { ref model } if model == "bert"));
}

#[test]
fn unknown_pre_tokenizer() {
    let e = err(VocabData {
        pre: Some("tekken".into()),
        ..bpe()
    });
    assert!(matches!(e, TokenizerError::UnknownPreTokenizer { ref pre } if pre == "tekken"));
}

#[test]
fn empty_vocabulary() {
    let e = err(VocabData {
        tokens: vec![],
        merges: Some(vec![]),
        ..bpe()
    });
    assert!(matches!(e, TokenizerError::EmptyVocab));
}

#[test]
fn token_type_and_score_lengths_must_match() {
    let e = err(VocabData {
        token_types: Some(vec![1; 5]),
        ..bpe()
    });
    assert!(matches!(
        e,
        TokenizerError::LengthMismatch { key, expected: 6, actual: 5 } if key == keys::TOKEN_TYPE
    ));
    let e = err(VocabData {
        scores: Some(vec![0.0; 7]),
        ..bpe()
    });
    assert!(matches!(
        e,
        TokenizerError::LengthMismatch { key, expected: 6, actual: 7 } if key == keys::SCORES
    ));
}

#[test]
fn invalid_token_type() {
    let e = err(VocabData {
        token_types: Some(vec![1, 1, 9, 1, 1, 1]),
        ..bpe()
    });
    assert!(matches!(
        e,
        TokenizerError::InvalidTokenType { id: 2, value: 9 }
    ));
}

#[test]
fn duplicate_token() {
    let mut data = bpe();
    data.tokens.push("ab".into());
    let e = err(data);
    assert!(matches!(
        e,
        TokenizerError::DuplicateToken { ref text, first: 4, second: 6 } if text == "ab"
    ));
}

#[test]
fn gpt2_needs_merges() {
    let e = err(VocabData {
        merges: None,
        ..bpe()
    });
    assert!(matches!(e, TokenizerError::MissingMerges));
}

#[test]
fn malformed_merge() {
    let e = err(VocabData {
        merges: Some(vec!["a b".into(), " ab".into()]),
        ..bpe()
    });
    assert!(matches!(e, TokenizerError::MalformedMerge { index: 1, ref merge } if merge == " ab"));
}

#[test]
fn merge_of_unknown_token() {
    let e = err(VocabData {
        merges: Some(vec!["a b".into(), "ab z".into()]),
        ..bpe()
    });
    assert!(matches!(
        e,
        TokenizerError::MergeUnknownToken { index: 1, ref part, .. } if part == "z"
    ));
}

#[test]
fn special_token_out_of_range() {
    let e = err(VocabData {
        bos_token_id: Some(99),
        ..bpe()
    });
    assert!(matches!(
        e,
        TokenizerError::SpecialTokenOutOfRange { key, id: 99, n_vocab: 6 } if key == keys::BOS_ID
    ));
}

#[test]
fn add_bos_without_bos() {
    let e = err(VocabData {
        add_bos_token: Some(true),
        ..bpe()
    });
    assert!(matches!(
        e,
        TokenizerError::MissingSpecialToken { flag, key } if flag == keys::ADD_BOS && key == keys::BOS_ID
    ));
    let e = err(VocabData {
        add_eos_token: Some(true),
        ..bpe()
    });
    assert!(matches!(e, TokenizerError::MissingSpecialToken { flag, .. } if flag == keys::ADD_EOS));
}

#[test]
fn decoding_unknown_ids() {
    let tok = Tokenizer::new(bpe()).unwrap();
    assert!(matches!(
        tok.try_decode(&[4, 6]),
        Err(TokenizerError::InvalidTokenId { id: 6, n_vocab: 6 })
    ));
    assert_eq!(tok.decode(&[4, 6, 2, u32::MAX]), "ab\u{FFFD}c\u{FFFD}");
    assert_eq!(tok.token_to_piece(6), b"");
    assert_eq!(tok.decode(&[]), "");
}

#[test]
fn empty_tokens_are_renamed_as_llama_cpp_does() {
    let mut data = bpe();
    data.tokens.push(String::new());
    let tok = Tokenizer::new(data).unwrap();
    assert_eq!(tok.token_text(6), Some("[EMPTY_6]"));
}

/// Writes a metadata-only GGUF file with `kvs` and opens it.
fn gguf(kvs: Vec<(&str, Value)>) -> (tempfile::TempDir, GgufFile) {
    let dir = ingot_tests::temp_dir();
    let path = dir.path().join("vocab.gguf");
    let mut w = GgufWriter::new(&path);
    for (k, v) in kvs {
        w.add_kv(k, v).unwrap();
    }
    w.finish().unwrap();
    let file = GgufFile::open(&path).unwrap();
    (dir, file)
}

fn strings(v: &[&str]) -> Value {
    Value::Array(Array::String(v.iter().map(|s| s.to_string()).collect()))
}

fn base_kvs() -> Vec<(&'static str, Value)> {
    vec![
        (keys::MODEL, Value::String("gpt2".into())),
        (keys::PRE, Value::String("llama-bpe".into())),
        (
            keys::TOKENS,
            strings(&["a", "b", "c", "Ġ", "ab", "abc", "<s>"]),
        ),
        (
            keys::TOKEN_TYPE,
            Value::Array(Array::I32(vec![1, 1, 1, 1, 1, 1, 3])),
        ),
        (keys::MERGES, strings(&["a b", "ab c"])),
        (keys::BOS_ID, Value::U32(6)),
    ]
}

#[test]
fn from_gguf_reads_a_written_vocabulary() {
    let (_dir, file) = gguf(base_kvs());
    let tok = Tokenizer::from_gguf(&file).unwrap();
    // llama-bpe adds BOS by default.
    assert!(tok.add_bos());
    assert_eq!(tok.encode("abc", true, false), vec![6, 5]);
    assert_eq!(tok.encode("<s>abc", false, true), vec![6, 5]);
}

#[test]
fn from_gguf_names_missing_and_mistyped_keys() {
    let mut kvs = base_kvs();
    kvs.retain(|(k, _)| *k != keys::MODEL);
    let (_dir, file) = gguf(kvs);
    let e = Tokenizer::from_gguf(&file).unwrap_err();
    assert!(matches!(
        e,
        TokenizerError::Metadata { ref key, source: FormatError::MissingKey { .. } } if key == keys::MODEL
    ));

    let mut kvs = base_kvs();
    kvs.retain(|(k, _)| *k != keys::TOKEN_TYPE);
    kvs.push((keys::TOKEN_TYPE, Value::Array(Array::F32(vec![1.0; 7]))));
    let (_dir, file) = gguf(kvs);
    let e = Tokenizer::from_gguf(&file).unwrap_err();
    assert!(matches!(
        e,
        TokenizerError::Metadata { ref key, source: FormatError::WrongType { .. } } if key == keys::TOKEN_TYPE
    ));

    let mut kvs = base_kvs();
    kvs.retain(|(k, _)| *k != keys::BOS_ID);
    kvs.push((keys::BOS_ID, Value::I32(-1)));
    let (_dir, file) = gguf(kvs);
    let e = Tokenizer::from_gguf(&file).unwrap_err();
    assert!(matches!(
        e,
        TokenizerError::Metadata { ref key, source: FormatError::OutOfRange { .. } } if key == keys::BOS_ID
    ));
}

#[test]
fn from_gguf_rejects_an_unknown_model() {
    let mut kvs = base_kvs();
    kvs[0].1 = Value::String("rwkv".into());
    let (_dir, file) = gguf(kvs);
    assert!(matches!(
        Tokenizer::from_gguf(&file),
        Err(TokenizerError::UnknownModel { ref model }) if model == "rwkv"
    ));
}

#[test]
fn from_gguf_reads_a_sentencepiece_vocabulary_with_integer_scores() {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab"]
        .map(String::from)
        .to_vec();
    let mut types = vec![2, 3, 3, 1, 1, 1, 1, 1, 1];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    // i32 scores (llama.cpp accepts them): "▁ab" is reachable only through "▁a" + "b".
    let mut scores = vec![0, 0, 0, -1, -2, -3, -4, -5, -6];
    scores.resize(tokens.len(), 0);
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let (_dir, file) = gguf(vec![
        (keys::MODEL, Value::String("llama".into())),
        (keys::TOKENS, strings(&refs)),
        (keys::TOKEN_TYPE, Value::Array(Array::I32(types))),
        (keys::SCORES, Value::Array(Array::I32(scores))),
    ]);
    let tok = Tokenizer::from_gguf(&file).unwrap();
    assert!(tok.add_bos());
    // "▁ab": "▁a" (score -4) merges before "ab" (-5); then "▁a"+"b" = "▁ab".
    assert_eq!(tok.encode("ab", true, false), vec![1, 8]);
    // "c" is not a piece: byte fallback.
    assert_eq!(tok.encode("c", false, false), vec![3, 9 + 0x63]);
    assert_eq!(tok.decode(&[1, 8, 9 + 0x63]), "<s> abc");
}
