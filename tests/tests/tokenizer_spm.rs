//! Our `llama` (SentencePiece-style) tokenizer against the real SentencePiece library: a tiny
//! BPE model trained by `testdata/spm/make_spm.py` (sentencepiece 0.2.1), its vocabulary and
//! SentencePiece's ids for 140 strings (ASCII, runs of spaces, newlines and tabs, accents,
//! Greek/Cyrillic/CJK, emoji through byte fallback, control-token look-alikes, held-out
//! WikiText paragraphs) stored as JSON.

use ingot_tokenizer::{ModelKind, TokenType, Tokenizer, VocabData};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = ingot_tests::testdata().join("spm").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tokenizer() -> Tokenizer {
    let v = load("vocab.json");
    let data = VocabData {
        model: v["model"].as_str().unwrap().to_string(),
        tokens: v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
        scores: Some(
            v["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_f64().unwrap() as f32)
                .collect(),
        ),
        token_types: Some(
            v["token_types"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap() as i32)
                .collect(),
        ),
        bos_token_id: Some(v["bos_token_id"].as_u64().unwrap() as u32),
        eos_token_id: Some(v["eos_token_id"].as_u64().unwrap() as u32),
        unknown_token_id: Some(v["unknown_token_id"].as_u64().unwrap() as u32),
        ..Default::default()
    };
    Tokenizer::new(data).expect("the SentencePiece vocabulary is valid")
}

fn cases() -> Vec<(String, Vec<u32>)> {
    load("encodings.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["text"].as_str().unwrap().to_string(),
                c["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i.as_u64().unwrap() as u32)
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn ids_equal_sentencepiece() {
    let tok = tokenizer();
    assert_eq!(tok.model(), ModelKind::Spm);
    let cases = cases();
    assert_eq!(cases.len(), 140);
    let mut n_ids = 0;
    for (text, want) in &cases {
        let got = tok.encode(text, false, false);
        assert_eq!(&got, want, "ids differ for {text:?}");
        n_ids += got.len();
    }
    // The cases exercise byte fallback (emoji, CJK not in this tiny vocabulary).
    let byte_tokens = cases
        .iter()
        .flat_map(|(_, ids)| ids)
        .filter(|&&id| tok.token_type(id) == Some(TokenType::Byte))
        .count();
    assert!(byte_tokens > 20, "only {byte_tokens} byte-fallback tokens");
    assert!(n_ids > 10_000);
}

#[test]
fn add_special_puts_bos_first_by_default() {
    let tok = tokenizer();
    assert!(tok.add_bos());
    assert!(!tok.add_eos());
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.encode("", true, false), vec![1]);
    assert_eq!(tok.encode("", false, false), Vec::<u32>::new());
    let plain = tok.encode("Hello world", false, false);
    let with_bos = tok.encode("Hello world", true, false);
    assert_eq!(with_bos[0], 1);
    assert_eq!(&with_bos[1..], &plain[..]);
}

#[test]
fn control_tokens_are_parsed_only_when_asked() {
    let tok = tokenizer();
    let text = "<s>Hello</s>";
    let parsed = tok.encode(text, false, true);
    // After a special token, the next fragment gets the leading space again (llama.cpp).
    let mut want = vec![1];
    want.extend(tok.encode("Hello", false, false));
    want.push(2);
    assert_eq!(parsed, want);
    let plain = tok.encode(text, false, false);
    assert!(!plain.contains(&1) && !plain.contains(&2));
}

#[test]
fn decode_round_trips() {
    let tok = tokenizer();
    for (text, ids) in cases() {
        // A literal U+2581 in the input is the escaped space, so it decodes as a space (in
        // SentencePiece as well).
        assert_eq!(
            tok.decode(&ids),
            text.replace('\u{2581}', " "),
            "decode of {ids:?}"
        );
    }
    // Byte-fallback pieces are the raw bytes.
    let id = tok.token_id("<0x0A>").unwrap();
    assert_eq!(tok.token_to_piece(id), b"\n");
    // The leading space is dropped only from the first piece.
    let world = tok.encode("world", false, false);
    assert_eq!(tok.decode(&[world.clone(), world].concat()), "world world");
}

#[test]
fn space_prefix_and_eos_follow_the_metadata() {
    let base = tokenizer();
    let v = load("vocab.json");
    let mut data = VocabData {
        model: "llama".into(),
        tokens: (0..base.n_vocab() as u32)
            .map(|id| base.token_text(id).unwrap().to_string())
            .collect(),
        scores: Some(
            v["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_f64().unwrap() as f32)
                .collect(),
        ),
        token_types: Some(
            (0..base.n_vocab() as u32)
                .map(|id| base.token_type(id).unwrap().as_i32())
                .collect(),
        ),
        add_space_prefix: Some(false),
        add_eos_token: Some(true),
        ..Default::default()
    };
    let tok = Tokenizer::new(data.clone()).unwrap();
    // Without the prefix, " Hello" is what "Hello" is with it.
    assert_eq!(
        tok.encode(" Hello world", false, false),
        base.encode("Hello world", false, false)
    );
    assert_ne!(
        tok.encode("Hello", false, false),
        base.encode("Hello", false, false)
    );
    assert_eq!(tok.decode(&tok.encode(" Hello", false, false)), " Hello");
    // Defaults BOS 1 / EOS 2; EOS last with add_special.
    let ids = tok.encode("Hello", true, false);
    assert_eq!((ids[0], *ids.last().unwrap()), (1, 2));
    data.add_bos_token = Some(false);
    let tok = Tokenizer::new(data).unwrap();
    assert_eq!(tok.encode("", true, false), vec![2]);
}
