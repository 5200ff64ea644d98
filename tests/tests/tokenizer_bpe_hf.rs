//! Our byte-level BPE with each implemented pre-tokenizer against Hugging Face `tokenizers`
//! (0.22.1), the library llama.cpp's BPE tokenizers are validated against. Only SmolLM2 has
//! llama.cpp golden ids, so `testdata/bpe/make_hf.py` reuses SmolLM2's vocabulary and merges
//! with the pre-tokenizer each family ships (Llama 3 split + `ignore_merges`, Qwen 2 split,
//! GPT-2 byte-level regex, SmolLM digits) and stores HF's ids for the first 100,000 characters
//! of WikiText-2 and ten hand-written strings (contractions in any case, digit runs, CR/LF runs,
//! Unicode spaces and digits, CJK, emoji).

use ingot_format::GgufFile;
use ingot_tokenizer::{Tokenizer, VocabData};

fn texts() -> Vec<String> {
    let path = ingot_tests::testdata().join("bpe").join("strings.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("strings.json")).unwrap();
    let n = json["wiki_prefix_chars"].as_u64().unwrap() as usize;
    let wiki = std::fs::read_to_string(ingot_tests::wiki_test_raw()).expect("wiki.test.raw");
    let mut texts = vec![wiki.chars().take(n).collect::<String>()];
    texts.extend(
        json["strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string()),
    );
    texts
}

fn check(pre: &str) {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let mut data = VocabData::from_gguf(&file).expect("SmolLM2 metadata");
    data.pre = Some(pre.to_string());
    data.add_bos_token = None;
    let tok = Tokenizer::new(data).expect("SmolLM2 vocabulary with another pre-tokenizer");
    let want: Vec<u32> = ingot_tests::read_i32(
        &ingot_tests::testdata()
            .join("bpe")
            .join(format!("{pre}.i32")),
    )
    .into_iter()
    .map(|t| t as u32)
    .collect();
    let mut got = Vec::new();
    for (k, text) in texts().iter().enumerate() {
        let start = got.len();
        got.extend(tok.encode(text, false, false));
        if let Some(i) = (start..got.len()).find(|&i| want.get(i) != Some(&got[i])) {
            let show = |v: &[u32]| {
                v[i.saturating_sub(3)..(i + 4).min(v.len())]
                    .iter()
                    .map(|&t| (t, tok.decode(&[t])))
                    .collect::<Vec<_>>()
            };
            panic!(
                "{pre}: text {k}, first difference at id {i}: ours {:?}, HF {:?}",
                show(&got),
                show(&want)
            );
        }
        assert_eq!(tok.decode(&got[start..]), *text);
    }
    assert_eq!(got.len(), want.len(), "{pre}: token count");
}

#[test]
fn llama_bpe_equals_hf_tokenizers() {
    check("llama-bpe");
}

#[test]
fn qwen2_equals_hf_tokenizers() {
    check("qwen2");
}

#[test]
fn gpt2_equals_hf_tokenizers() {
    check("gpt-2");
}

#[test]
fn smollm_equals_hf_tokenizers() {
    check("smollm");
}
