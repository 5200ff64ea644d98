#!/usr/bin/env python3
"""Rebuilds ingot's tiny test model (testdata/tiny/) from testdata/wiki.test.raw.

Pinned versions (also in requirements.txt; CI never runs this script):
    torch==2.5.1  transformers==4.46.3  tokenizers==0.20.3  safetensors==0.4.5  numpy==2.1.3

Steps, all deterministic (fixed seeds, one CPU thread):
1. Split WikiText-2 test (CC BY-SA 3.0) at article boundaries (lines ` = Title = `) into three
   disjoint texts: evaluation = the last articles until >= 60,000 bytes, calibration = the
   articles before those until >= 60,000 bytes, training = the rest. eval.txt and calib.txt are
   written beside this script; the training text is not kept (this script rebuilds it).
2. Train a byte-level BPE tokenizer (`tokenizers`, vocabulary VOCAB_SIZE) on the training text
   with the GPT-2 byte-level pre-tokenizer (ByteLevel(add_prefix_space=False, use_regex=True):
   GPT-2's split regex, which is llama.cpp's pre-tokenizer type "gpt-2").
3. Build a LlamaForCausalLM (4 blocks, hidden 256, FFN 768, 4 query heads, 2 KV heads, tied
   embeddings, rope theta 10000, RMS eps 1e-5) and train it with AdamW on random windows of the
   training text, each starting with the BOS token.
4. save_pretrained (safetensors, F16 weights) with the tokenizer files.
5. Reload the saved model in float32 and write reference logits for a fixed token sequence
   (BOS + the first REF_LEN - 1 tokens of eval.txt): ref_tokens.i32, ref_logits.f32, ref.json.
6. Report perplexity on eval.txt, and write train_log.json (loss curve).

Usage: python3 make_tiny.py   (from any directory; writes only into testdata/tiny/)
"""

import json
import math
import os
import random
import re
import sys
import time

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
WIKI = os.path.join(HERE, "..", "wiki.test.raw")

SEED = 1234
VOCAB_SIZE = 1536
HELD_OUT_BYTES = 60_000
SEQ_LEN = 256
BATCH = 8
STEPS = int(os.environ.get("TINY_STEPS", "300"))
LR = 3e-3
WARMUP = 30
REF_LEN = 48
BOS = "<|endoftext|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


def split_articles(text):
    """Splits WikiText at top-level headings (` = Title = `), keeping each heading."""
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if re.fullmatch(r" = [^=].* = ", l)]
    starts.append(len(lines))
    head = "\n".join(lines[: starts[0]])
    arts = ["\n".join(lines[a:b]) + "\n" for a, b in zip(starts, starts[1:])]
    if head.strip():
        arts[0] = head + "\n" + arts[0]
    return arts


def take_from_end(arts, min_bytes):
    taken = []
    while arts and sum(len(a.encode()) for a in taken) < min_bytes:
        taken.insert(0, arts.pop())
    return taken


def main():
    torch.set_num_threads(1)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    with open(WIKI, encoding="utf-8") as f:
        wiki = f.read()
    arts = split_articles(wiki)
    n_arts = len(arts)
    eval_arts = take_from_end(arts, HELD_OUT_BYTES)
    calib_arts = take_from_end(arts, HELD_OUT_BYTES)
    train_arts = arts
    for name, part in (("eval.txt", eval_arts), ("calib.txt", calib_arts)):
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write("".join(part))
    print(
        f"articles: {n_arts} = train {len(train_arts)} + calib {len(calib_arts)} "
        f"+ eval {len(eval_arts)}; bytes train {sum(len(a.encode()) for a in train_arts)}, "
        f"calib {sum(len(a.encode()) for a in calib_arts)}, eval {sum(len(a.encode()) for a in eval_arts)}"
    )

    # --- tokenizer -------------------------------------------------------------------------
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train_arts, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    vocab = tok.get_vocab_size()
    print(f"vocab {vocab}, bos id {bos_id}")
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=BOS,
        unk_token=BOS,
        model_max_length=SEQ_LEN,
        clean_up_tokenization_spaces=False,
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    hf_tok.init_kwargs["add_bos_token"] = True
    hf_tok.init_kwargs["add_eos_token"] = False

    def encode(text):
        return tok.encode(text, add_special_tokens=False).ids

    train_ids = []
    for a in train_arts:
        train_ids.append(bos_id)
        train_ids.extend(encode(a))
    train_ids = torch.tensor(train_ids, dtype=torch.long)
    eval_ids = encode("".join(eval_arts))
    print(f"train tokens {len(train_ids)}, eval tokens {len(eval_ids)}")

    # --- model -----------------------------------------------------------------------------
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=SEQ_LEN,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=bos_id,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
    )
    model = LlamaForCausalLM(config)
    model.config._attn_implementation = "eager"
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters {n_params}")
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.01)
    gen = torch.Generator().manual_seed(SEED)

    def lr_at(step):
        if step < WARMUP:
            return LR * (step + 1) / WARMUP
        p = (step - WARMUP) / max(1, STEPS - WARMUP)
        return LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    log = []
    model.train()
    t0 = time.time()
    for step in range(STEPS):
        starts = torch.randint(0, len(train_ids) - SEQ_LEN, (BATCH,), generator=gen)
        body = torch.stack([train_ids[s : s + SEQ_LEN - 1] for s in starts.tolist()])
        x = torch.cat([torch.full((BATCH, 1), bos_id, dtype=torch.long), body], dim=1)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log.append(round(loss.item(), 4))
        if step % 25 == 0 or step == STEPS - 1:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    train_seconds = time.time() - t0

    # --- save (F16) --------------------------------------------------------------------------
    model.eval()
    model.half()
    model.config.torch_dtype = torch.float16
    model.save_pretrained(HERE, safe_serialization=True)
    hf_tok.save_pretrained(HERE)

    # --- reference logits from the saved files, in float32 -----------------------------------
    ref = LlamaForCausalLM.from_pretrained(HERE, torch_dtype=torch.float32, attn_implementation="eager")
    ref.eval()
    ref_tokens = [bos_id] + eval_ids[: REF_LEN - 1]
    with torch.no_grad():
        logits = ref(input_ids=torch.tensor([ref_tokens])).logits[0].float().numpy()
    np.asarray(ref_tokens, dtype="<i4").tofile(os.path.join(HERE, "ref_tokens.i32"))
    np.ascontiguousarray(logits, dtype="<f4").tofile(os.path.join(HERE, "ref_logits.f32"))
    with open(os.path.join(HERE, "ref.json"), "w") as f:
        json.dump(
            {
                "tokens": "ref_tokens.i32",
                "tokens_dtype": "i32 little-endian",
                "n_tokens": len(ref_tokens),
                "logits": "ref_logits.f32",
                "logits_dtype": "f32 little-endian, row-major [n_tokens][n_vocab]",
                "n_vocab": int(logits.shape[1]),
                "text": "BOS followed by the first n_tokens - 1 tokens of eval.txt",
                "model_dtype": "float32 (weights loaded from the F16 safetensors)",
                "attn_implementation": "eager",
                "produced_by": "transformers==4.46.3 torch==2.5.1 (make_tiny.py)",
            },
            f,
            indent=2,
        )
        f.write("\n")

    # --- evaluation perplexity: non-overlapping windows of BOS + SEQ_LEN-1 tokens, every
    # predicted position scored ---------------------------------------------------------------
    nll, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(eval_ids) - (SEQ_LEN - 1) + 1, SEQ_LEN - 1):
            x = torch.tensor([[bos_id] + eval_ids[s : s + SEQ_LEN - 1]])
            out = ref(input_ids=x, labels=x)
            n = x.shape[1] - 1
            nll += out.loss.item() * n
            count += n
    ppl = math.exp(nll / count)
    print(f"eval perplexity {ppl:.2f} over {count} predictions (uniform would be {vocab})")

    with open(os.path.join(HERE, "train_log.json"), "w") as f:
        json.dump(
            {
                "seed": SEED,
                "steps": STEPS,
                "batch": BATCH,
                "seq_len": SEQ_LEN,
                "lr": LR,
                "warmup": WARMUP,
                "parameters": n_params,
                "vocab": vocab,
                "train_tokens": len(train_ids),
                "eval_tokens": len(eval_ids),
                "train_seconds": round(train_seconds, 1),
                "eval_perplexity": round(ppl, 3),
                "eval_predictions": count,
                "loss": log,
            },
            f,
        )
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
