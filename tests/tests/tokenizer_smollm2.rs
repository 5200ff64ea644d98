//! THE acceptance test: our tokenizer, built from the real llama.cpp file
//! SmolLM2-135M-Instruct.Q4_1.gguf (`gpt2` BPE, pre-tokenizer `smollm`), gives llama.cpp's ids
//! for the whole of WikiText-2's test split (`testdata/golden/smollm2/tokens.i32`, 304,830
//! tokens, tokenized as llama-perplexity does: add special tokens, parse special tokens no), and
//! decoding those ids gives the text back byte for byte.

use ingot_format::GgufFile;
use ingot_tokenizer::{ModelKind, PreTokenizer, TokenType, Tokenizer};

fn smollm2() -> Tokenizer {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    Tokenizer::from_gguf(&file).expect("SmolLM2's tokenizer metadata is valid")
}

#[test]
fn wiki_test_ids_equal_llama_cpp_and_decode_round_trips() {
    let tok = smollm2();
    let text = std::fs::read_to_string(ingot_tests::wiki_test_raw()).expect("wiki.test.raw");
    let golden: Vec<u32> =
        ingot_tests::read_i32(&ingot_tests::golden().join("smollm2").join("tokens.i32"))
            .into_iter()
            .map(|t| u32::try_from(t).expect("golden ids are non-negative"))
            .collect();
    assert_eq!(golden.len(), 304_830);

    let ids = tok.encode(&text, true, false);
    if let Some(i) = ids.iter().zip(&golden).position(|(a, b)| a != b) {
        let show = |v: &[u32]| {
            v[i.saturating_sub(3)..(i + 4).min(v.len())]
                .iter()
                .map(|&t| (t, tok.decode(&[t])))
                .collect::<Vec<_>>()
        };
        panic!(
            "first difference at token {i}: ours {:?}, llama.cpp {:?}",
            show(&ids),
            show(&golden)
        );
    }
    assert_eq!(ids.len(), golden.len());
    assert_eq!(tok.decode(&ids), text);
}

#[test]
fn metadata_is_read_as_llama_cpp_reads_it() {
    let tok = smollm2();
    assert_eq!(tok.model(), ModelKind::Bpe);
    assert_eq!(tok.pre_tokenizer(), Some(PreTokenizer::Smollm));
    assert_eq!(tok.n_vocab(), 49_152);
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    assert_eq!(tok.unk(), Some(0));
    assert_eq!(tok.pad(), Some(2));
    assert!(!tok.add_bos());
    assert!(!tok.add_eos());
    assert_eq!(tok.token_type(1), Some(TokenType::Control));
    assert_eq!(tok.token_text(1), Some("<|im_start|>"));
    // Byte-level alphabet: "Ġthe" is " the".
    let the = tok.token_id("Ġthe").expect("Ġthe is a token");
    assert_eq!(tok.token_to_piece(the), b" the");
    assert_eq!(tok.encode(" the", false, false), vec![the]);
}

#[test]
fn special_tokens_are_parsed_only_when_asked() {
    let tok = smollm2();
    let text = "<|im_start|>user\nHi<|im_end|>\n";
    let parsed = tok.encode(text, true, true);
    assert_eq!(parsed.first(), Some(&1));
    assert!(parsed.contains(&2));
    let mut want = vec![1];
    want.extend(tok.encode("user\nHi", false, false));
    want.push(2);
    want.extend(tok.encode("\n", false, false));
    assert_eq!(parsed, want);
    let plain = tok.encode(text, true, false);
    assert!(!plain.contains(&1) && !plain.contains(&2));
    assert_eq!(tok.decode(&plain), text);
    assert_eq!(
        tok.decode(&parsed),
        text,
        "control tokens render as their text"
    );
    assert!(
        tok.encode("", true, true).is_empty(),
        "this vocabulary adds no BOS"
    );
}
