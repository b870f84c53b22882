#!/usr/bin/env python3
"""Writes the llama.cpp goldens of a real GGUF LLM (Tests/Fixtures/real-models/<name>.json).

The reference is llama.cpp itself, run as its own tools: `llama-tokenize` (the prompt ids),
`llama-simple` (the greedy continuation of each prompt) and `llama-perplexity` (perplexity of
a real text). Their directory comes from LLAMA_CPP_BIN. This repository does not build them;
the goldens in Tests/Fixtures/real-models were made with the llama.cpp copy in PyPI's
`llama_cpp_python==0.3.36` source distribution (`vendor/llama.cpp`, the same sdist
scripts/setup-test-assets.sh fetches), configured with CMake in Release mode for the host CPU
(`-DBUILD_SHARED_LIBS=ON`, CURL, server and tests off) and built with Ninja for the targets
llama-tokenize, llama-simple, llama-perplexity and llama-bench; LLAMA_CPP_BIN is the `bin`
folder of that build.

    LLAMA_CPP_BIN=... python3 scripts/make_real_model_goldens.py MODEL.gguf OUT.json

The perplexity text is the GNU GPL v3 as Debian's base-files installs it
(/usr/share/common-licenses/GPL-3, verbatim copying permitted), checked by sha256.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

PERPLEXITY_TEXT = "/usr/share/common-licenses/GPL-3"
PERPLEXITY_SHA256 = "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"
PERPLEXITY_CONTEXT = 512
PERPLEXITY_CHUNKS = 6


def chatml(question: str) -> str:
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


LONG = ("The history of computing is a story of abstractions built on abstractions. Early machines were "
        "programmed by rewiring panels; then came stored programs, assemblers, compilers and operating "
        "systems, each layer hiding the details of the one below. Today a programmer writing a web "
        "application rarely thinks about registers, caches or the instruction set of the processor, yet "
        "all of them shape how fast the program runs. Memory hierarchies, in particular, decide whether "
        "a loop over a large array takes milliseconds or seconds, because reading from main memory is "
        "a hundred times slower than reading from the first-level cache. Good libraries therefore arrange "
        "their data so that consecutive operations touch neighbouring addresses. ")

# (name, prompt, tokens to generate)
PROMPTS = [
    ("chat-capital", chatml("What is the capital of France?"), 32),
    ("chat-explain", chatml("Explain in two sentences why the sky is blue."), 48),
    ("chat-code", chatml("Write a Python function that returns the n-th Fibonacci number."), 64),
    ("chat-list", chatml("List three fruits that are red."), 32),
    ("chat-system", "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n" + chatml("How many legs does a spider have?"), 24),
    ("raw-story", "Once upon a time, in a small village by the sea,", 48),
    ("raw-facts", "The three largest planets in the solar system are", 32),
    ("raw-code", "def quicksort(items):\n    \"\"\"Sort a list with quicksort.\"\"\"\n", 64),
    ("raw-c", "#include <stdio.h>\n\nint main(void) {\n", 48),
    ("raw-french", "La capitale de la France est", 24),
    ("raw-chinese", "中国的首都是", 24),
    ("raw-german", "Die Geschichte der Stadt Berlin beginnt", 32),
    ("raw-numbers", "1, 2, 3, 5, 8, 13, 21,", 24),
    ("raw-long", LONG * 2 + "In summary,", 48),
]


def run(args: list[str]) -> bytes:
    done = subprocess.run(args, capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:3])}...: exit {done.returncode}\n{done.stderr[-2000:].decode(errors='replace')}")
    return done.stdout


def main() -> None:
    model, out = sys.argv[1], sys.argv[2]
    bin_dir = os.environ.get("LLAMA_CPP_BIN")
    if not bin_dir:
        sys.exit("set LLAMA_CPP_BIN to the folder holding llama-tokenize, llama-simple and llama-perplexity")
    tool = lambda name: os.path.join(bin_dir, name)  # noqa: E731
    with open(model, "rb") as f:
        digest = hashlib.sha256()
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    # llama-tokenize and llama-perplexity are optional: without them the goldens hold no prompt
    # ids (null) and no perplexity (null), and the tests check only what the goldens hold.
    has_tokenize = os.path.exists(tool("llama-tokenize"))
    has_perplexity = os.path.exists(tool("llama-perplexity"))
    cases = []
    for name, prompt, n in PROMPTS:
        ids = None
        if has_tokenize:
            ids = json.loads(run([tool("llama-tokenize"), "-m", model, "-p", prompt, "--ids", "--log-disable"]).decode().strip().splitlines()[-1])
        # llama-simple prints the prompt's pieces, the continuation's pieces, then "\n". The
        # continuation may end inside a character (the last token's bytes): it is kept as hex
        # bytes, and as text (U+FFFD for such a tail) for reading.
        printed = run([tool("llama-simple"), "-m", model, "-n", str(n), prompt])
        at = printed.find(prompt.encode())
        if at < 0 or not printed.endswith(b"\n"):
            sys.exit(f"{name}: llama-simple's output does not hold the prompt")
        tail = printed[at + len(prompt.encode()):-1]
        cases.append({"name": name, "prompt": prompt, "prompt_ids": ids, "max_new_tokens": n,
                      "continuation": tail.decode(errors="replace"), "continuation_hex": tail.hex()})
        print(f"{name}: {cases[-1]['continuation']!r}", file=sys.stderr)
    golden = {
        "model_sha256": digest.hexdigest(),
        "reference": "llama.cpp from llama_cpp_python 0.3.36 (vendor/llama.cpp): llama-tokenize, llama-simple, llama-perplexity",
        "prompts": cases,
        "perplexity": perplexity(model, tool) if has_perplexity else None,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")


def perplexity(model: str, tool) -> dict:
    with open(PERPLEXITY_TEXT, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != PERPLEXITY_SHA256:
            sys.exit(f"{PERPLEXITY_TEXT}: not the expected text (sha256)")
    log = subprocess.run([tool("llama-perplexity"), "-m", model, "-f", PERPLEXITY_TEXT, "-c", str(PERPLEXITY_CONTEXT),
                          "-b", str(PERPLEXITY_CONTEXT), "--chunks", str(PERPLEXITY_CHUNKS)],
                         capture_output=True, text=True, check=True)
    found = re.search(r"Final estimate: PPL = ([0-9.]+)", log.stdout + log.stderr)
    if not found:
        sys.exit("llama-perplexity printed no final estimate")
    return {"text": PERPLEXITY_TEXT, "text_sha256": PERPLEXITY_SHA256, "context": PERPLEXITY_CONTEXT,
            "chunks": PERPLEXITY_CHUNKS, "ppl": float(found.group(1))}


if __name__ == "__main__":
    main()
