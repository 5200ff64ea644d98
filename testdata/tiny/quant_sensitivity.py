#!/usr/bin/env python3
"""How much GGML quantization moves the tiny model's perplexity (reference numbers, not a test).

Each 2-D weight is quantized and dequantized with gguf-py's reference quantizers (numpy), the
model is evaluated in float32 with `transformers` on eval.txt exactly as make_tiny.py does
(non-overlapping windows of BOS + 255 tokens, every prediction scored).
Requirements: requirements.txt plus gguf==0.19.0. Usage: python3 quant_sensitivity.py
"""

import json
import math
import os

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
TYPES = ["F16", "Q8_0", "Q5_0", "Q4_1", "Q4_0"]


def main():
    torch.set_num_threads(1)
    tok = Tokenizer.from_file(os.path.join(HERE, "tokenizer.json"))
    with open(os.path.join(HERE, "eval.txt"), encoding="utf-8") as f:
        ids = tok.encode(f.read(), add_special_tokens=False).ids
    bos = tok.token_to_id("<|endoftext|>")
    res = {}
    for name in TYPES:
        m = LlamaForCausalLM.from_pretrained(HERE, torch_dtype=torch.float32, attn_implementation="eager").eval()
        if name != "F16":
            qt = getattr(gguf.GGMLQuantizationType, name)
            for _, p in m.named_parameters():
                if p.ndim == 2:
                    w = p.detach().numpy().astype(np.float32)
                    deq = gguf.quants.dequantize(gguf.quants.quantize(w, qt), qt)
                    p.data = torch.from_numpy(deq.reshape(w.shape).copy())
        nll, n = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(ids) - 255 + 1, 255):
                x = torch.tensor([[bos] + ids[s : s + 255]])
                nll += m(input_ids=x, labels=x).loss.item() * 255
                n += 255
        res[name] = round(math.exp(nll / n), 3)
        print(name, res[name], flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
