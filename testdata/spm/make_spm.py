#!/usr/bin/env python3
"""One-time generator of the SentencePiece reference vectors in testdata/spm/.

Trains a tiny BPE-type SentencePiece model on the first 1,500 lines of testdata/wiki.test.raw,
then writes
  vocab.json     - pieces, scores and piece types (GGUF token types: 1 normal, 2 unknown,
                   3 control, 6 byte), bos/eos/unk ids, as a GGUF converter would store them;
  encodings.json - for each test string: the text and sentencepiece's ids (no BOS/EOS).

The Rust tests (tests/tests/tokenizer_spm.rs) build our `llama` tokenizer from vocab.json and
compare ids; CI does not need sentencepiece, only these JSON files.

The model is trained with the identity normalizer and without whitespace removal, because
llama.cpp's SPM tokenizer applies no normalization (see formats/tokenizer.md); with those
settings SentencePiece's BPE encoding and llama.cpp's are the same algorithm.

Pinned: sentencepiece==0.2.1 (pip install sentencepiece==0.2.1), Python 3.11.
Run from the repository root: python3 testdata/spm/make_spm.py
"""
import json
import os
import tempfile

import sentencepiece as spm

assert spm.__version__ == "0.2.1", spm.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
with open(os.path.join(ROOT, "testdata", "wiki.test.raw"), encoding="utf-8") as f:
    lines = f.read().split("\n")

train = [l for l in lines[:1500] if l.strip()]
held_out = [l for l in lines[2000:] if l.strip()][:120]

with tempfile.TemporaryDirectory() as tmp:
    prefix = os.path.join(tmp, "tiny")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(train),
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=1000,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        character_coverage=0.9995,
        num_threads=1,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")

def piece_type(i):
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_byte(i):
        return 6
    if sp.is_unused(i):
        return 5
    return 1

n = sp.get_piece_size()
vocab = {
    "generator": "testdata/spm/make_spm.py, sentencepiece 0.2.1",
    "model": "llama",
    "tokens": [sp.id_to_piece(i) for i in range(n)],
    "scores": [sp.get_score(i) for i in range(n)],
    "token_types": [piece_type(i) for i in range(n)],
    "bos_token_id": sp.bos_id(),
    "eos_token_id": sp.eos_id(),
    "unknown_token_id": sp.unk_id(),
}

strings = [
    "",
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing space ",
    "double  space   and    more",
    "   ",
    "tab\there",
    "line one\nline two\n",
    "numbers 1234567890 and 3.14159",
    "punctuation: (a), [b], {c}; \"quoted\" 'single' - dash -- @-@",
    "accents: café, naïve, Zürich, Ærøskøbing",
    "Ελληνικά и русский текст",
    "日本語のテキストと中文",
    "emoji 😀🚀 and symbols ∑∫√",
    "<s> and </s> are plain text here",
    "<0x41> looks like a byte token",
    "a",
    "▁already▁escaped",
    "Robert Boulter is an English film , television and theatre actor .",
] + held_out

encodings = [{"text": s, "ids": sp.encode(s)} for s in strings]

with open(os.path.join(HERE, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump(vocab, f, ensure_ascii=False, indent=0)
    f.write("\n")
with open(os.path.join(HERE, "encodings.json"), "w", encoding="utf-8") as f:
    json.dump({"generator": vocab["generator"], "cases": encodings}, f, ensure_ascii=False)
    f.write("\n")
print(f"{n} pieces, {len(encodings)} strings, {sum(len(e['ids']) for e in encodings)} ids")
