//! Properties on random vocabularies and texts: building never panics (an error or a tokenizer),
//! encoding never panics and yields only ids of the vocabulary, and with a complete byte
//! alphabet (BPE) or all `<0xNN>` tokens (SPM) decoding gives back the exact text.

use ingot_tokenizer::{Tokenizer, VocabData};
use proptest::prelude::*;
use std::collections::HashSet;

const CHARS: &[char] = &[
    'a', 'b', 's', 'Ġ', ' ', '<', '>', '/', '\u{2581}', '1', '\n', 'é', '中', '\'', '😀',
];

fn small_string(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(CHARS), 0..max)
        .prop_map(|v| v.into_iter().collect())
}

fn text() -> impl Strategy<Value = String> {
    small_string(40)
}

fn any_vocab() -> impl Strategy<Value = VocabData> {
    (
        proptest::sample::select(vec!["gpt2", "llama", "bert"]),
        proptest::option::of(proptest::sample::select(vec![
            "gpt-2",
            "llama-bpe",
            "qwen2",
            "smollm",
            "default",
            "bogus",
        ])),
        proptest::collection::vec(small_string(4), 0..16),
        proptest::option::of(proptest::collection::vec(-1i32..8, 0..18)),
        proptest::option::of(proptest::collection::vec(-5.0f32..5.0, 0..18)),
        proptest::option::of(proptest::collection::vec(small_string(6), 0..12)),
        proptest::option::of(0u32..20),
        proptest::option::of(0u32..20),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(model, pre, tokens, types, scores, merges, bos, eos, add_bos, add_eos)| VocabData {
                model: model.into(),
                pre: pre.map(String::from),
                tokens,
                token_types: types,
                scores,
                merges,
                bos_token_id: bos,
                eos_token_id: eos,
                add_bos_token: add_bos,
                add_eos_token: add_eos,
                ..Default::default()
            },
        )
}

/// GPT-2's byte alphabet, as the tokens of a byte-level vocabulary.
fn byte_alphabet() -> Vec<String> {
    let mut out = Vec::new();
    let mut n = 0;
    for b in 0..=255u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        out.push(char::from_u32(c).unwrap().to_string());
    }
    out
}

/// A byte-level vocabulary with random merges over it.
fn bpe_vocab(pre: &'static str, picks: Vec<(usize, usize)>) -> VocabData {
    let mut tokens = byte_alphabet();
    let mut seen: HashSet<String> = tokens.iter().cloned().collect();
    let mut merges = Vec::new();
    for (l, r) in picks {
        let (l, r) = (
            tokens[l % tokens.len()].clone(),
            tokens[r % tokens.len()].clone(),
        );
        let joined = format!("{l}{r}");
        if seen.insert(joined.clone()) {
            merges.push(format!("{l} {r}"));
            tokens.push(joined);
        }
    }
    VocabData {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        merges: Some(merges),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn building_and_encoding_never_panic(data in any_vocab(), t in text()) {
        if let Ok(tok) = Tokenizer::new(data) {
            for (add, parse) in [(false, false), (true, true)] {
                let ids = tok.encode(&t, add, parse);
                prop_assert!(ids.iter().all(|&id| (id as usize) < tok.n_vocab()));
                let _ = tok.decode(&ids);
            }
        }
    }

    #[test]
    fn byte_level_bpe_round_trips(
        pre in proptest::sample::select(vec!["gpt-2", "llama-bpe", "qwen2", "smollm", "default"]),
        picks in proptest::collection::vec((0usize..400, 0usize..400), 0..300),
        t in text(),
    ) {
        let tok = Tokenizer::new(bpe_vocab(pre, picks)).unwrap();
        let ids = tok.encode(&t, false, false);
        prop_assert_eq!(tok.decode(&ids), t);
    }

    #[test]
    fn spm_with_byte_fallback_round_trips(
        pieces in proptest::collection::vec(small_string(5), 0..60),
        t in text(),
    ) {
        // "▁" must be a token: byte fallback of the escaped space would give its UTF-8 bytes
        // back (as in llama.cpp), not a space.
        let mut tokens: Vec<String> =
            vec!["<unk>".into(), "<s>".into(), "</s>".into(), "\u{2581}".into()];
        let mut types = vec![2, 3, 3, 1];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        let mut seen: HashSet<String> = tokens.iter().cloned().collect();
        for p in pieces {
            if !p.is_empty() && seen.insert(p.clone()) {
                tokens.push(p);
                types.push(1);
            }
        }
        let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
        let tok = Tokenizer::new(VocabData {
            model: "llama".into(),
            tokens,
            token_types: Some(types),
            scores: Some(scores),
            ..Default::default()
        })
        .unwrap();
        let ids = tok.encode(&t, false, false);
        // A literal U+2581 is SentencePiece's escaped space.
        prop_assert_eq!(tok.decode(&ids), t.replace('\u{2581}', " "));
    }
}

/// Llama 3 (`ignore_merges`): a word that is a token is emitted whole even when the merges
/// would not build it.
#[test]
fn llama3_ignores_merges_for_whole_word_tokens() {
    let mut data = bpe_vocab("llama-bpe", vec![]);
    data.tokens.push("abc".into());
    let abc = (data.tokens.len() - 1) as u32;
    let tok = Tokenizer::new(data.clone()).unwrap();
    assert_eq!(tok.encode("abc", false, false), vec![abc]);
    data.pre = Some("gpt-2".into());
    let tok = Tokenizer::new(data).unwrap();
    assert_eq!(tok.encode("abc", false, false).len(), 3);
}

/// Merges apply by rank, lowest first, ties to the left: with rules "b c" (rank 0) before
/// "a b" (rank 1), "abc" becomes "a" + "bc".
#[test]
fn bpe_merges_lowest_rank_first() {
    let mut data = bpe_vocab("gpt-2", vec![]);
    data.tokens.extend(["bc", "ab"].map(String::from));
    data.merges = Some(vec!["b c".into(), "a b".into()]);
    let tok = Tokenizer::new(data).unwrap();
    let ids = tok.encode("abc", false, false);
    assert_eq!(
        ids,
        vec![tok.token_id("a").unwrap(), tok.token_id("bc").unwrap()]
    );
    let ids = tok.encode("abab", false, false);
    assert_eq!(ids, vec![tok.token_id("ab").unwrap(); 2]);
}

/// llama.cpp marks end-of-generation texts such as `<|im_end|>` as control tokens even when
/// the file types them as normal, so they are cut out of text only with `parse_special`.
#[test]
fn end_of_generation_texts_become_control_tokens() {
    let mut data = bpe_vocab("gpt-2", vec![]);
    data.tokens.push("<|im_end|>".into());
    let id = (data.tokens.len() - 1) as u32;
    let tok = Tokenizer::new(data).unwrap();
    assert_eq!(
        tok.token_type(id),
        Some(ingot_tokenizer::TokenType::Control)
    );
    assert_eq!(
        tok.encode("a<|im_end|>", false, true),
        vec![tok.token_id("a").unwrap(), id]
    );
    assert!(!tok.encode("a<|im_end|>", false, false).contains(&id));
}
