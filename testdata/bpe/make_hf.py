#!/usr/bin/env python3
"""One-time generator of byte-level BPE reference ids from Hugging Face `tokenizers`.

llama.cpp's golden ids exist only for SmolLM2 (pre-tokenizer `smollm`). To check our other
pre-tokenizers end to end against a real peer, this script takes SmolLM2's vocabulary and merges
(from the GGUF file, read with the `gguf` package) and builds Hugging Face tokenizers with the
pre-tokenizer each model family ships in its tokenizer.json:

  llama-bpe  Split(LLAMA3 regex, isolated) + ByteLevel(use_regex=False), BPE ignore_merges=True
  qwen2      Split(QWEN2 regex, isolated)  + ByteLevel(use_regex=False)
  gpt-2      ByteLevel(add_prefix_space=False, use_regex=True)
  smollm     Digits(individual_digits=True) + ByteLevel(use_regex=True)

and encodes the first 100,000 characters of testdata/wiki.test.raw plus a few hand-written
strings (no special tokens added). The ids are written as raw little-endian i32 to
testdata/bpe/<pre>.i32 (one stream: wiki prefix, then each string), the strings to
testdata/bpe/strings.json. tests/tests/tokenizer_bpe_hf.rs compares our ids; CI needs only
those files and the SmolLM2 model.

Pinned: tokenizers==0.22.1, gguf==0.19.0, Python 3.11.
Run from the repository root: python3 testdata/bpe/make_hf.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import os
import struct
import sys

import tokenizers
from gguf import GGUFReader
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

assert tokenizers.__version__ == "0.22.1", tokenizers.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
model_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    ROOT, "..", "shared", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

r = GGUFReader(model_path)
f = r.fields
def strs(k):
    return [bytes(f[k].parts[i]).decode("utf-8") for i in f[k].data]
tokens = strs("tokenizer.ggml.tokens")
merges = [tuple(m.split(" ", 1)) for m in strs("tokenizer.ggml.merges")]
vocab = {t: i for i, t in enumerate(tokens)}

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

def build(pre, ignore_merges=False):
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
    t.pre_tokenizer = pre
    t.decoder = decoders.ByteLevel()
    return t

def split(regex):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])

variants = {
    "llama-bpe": build(split(LLAMA3), ignore_merges=True),
    "qwen2": build(split(QWEN2)),
    "gpt-2": build(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)),
    "smollm": build(pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])),
}

with open(os.path.join(ROOT, "testdata", "wiki.test.raw"), encoding="utf-8", newline="") as fh:
    wiki = fh.read()[:100_000]
strings = [
    "Hello world's  12 apples!!  \n",
    "I'M 1234567 ok?\n\n  hi\r\n\tthere   ",
    "IT'S 'Re 'LL 've x'd",
    "café naïve Zürich — “quotes” ‘single’ 3½ ٣٤٥ Ⅻ",
    "日本語のテキストと中文, 한국어",
    "emoji 😀🚀 and symbols ∑∫√ \u00a0nbsp\u3000ideographic\u2028ls",
    "   leading and trailing   ",
    "a\n\n\nb \n c\r\r\nd",
    "x=1+2; y = [3, 4]; z == (5 != 6) // done",
    "$100.00 costs 2,000,000 ¥ or 1e-9",
]
texts = [wiki] + strings

for name, tok in variants.items():
    ids = []
    for t in texts:
        enc = tok.encode(t, add_special_tokens=False).ids
        assert tok.decode(enc) == t, (name, t)
        ids.extend(enc)
    with open(os.path.join(HERE, f"{name}.i32"), "wb") as out:
        out.write(struct.pack(f"<{len(ids)}i", *ids))
    print(name, len(ids))

with open(os.path.join(HERE, "strings.json"), "w", encoding="utf-8") as out:
    json.dump({"generator": "testdata/bpe/make_hf.py, tokenizers 0.22.1",
               "wiki_prefix_chars": 100_000, "strings": strings}, out, ensure_ascii=False, indent=1)
    out.write("\n")
