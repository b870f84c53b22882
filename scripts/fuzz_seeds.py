#!/usr/bin/env python3
"""Seed corpora and fixed companion files for the libFuzzer targets of Fuzz/Targets.

    fuzz_seeds.py REPO ASSETS OUT

Writes OUT/seeds/<target>/ (small inputs taken from Tests/Fixtures and the test assets, or cut
down from them) and OUT/fixed/ (the fixed files some targets load next to the fuzzed one: a
cut-down LLaMA tokenizer.model, a cut-down Qwen2 vocab.json + merges.txt and tokenizer folder).
Only the standard library; nothing here is committed (scripts/fuzz.sh makes it at fuzz time).
"""
import glob
import json
import os
import shutil
import struct
import sys

REPO, ASSETS, OUT = sys.argv[1:4]
SEEDS = os.path.join(OUT, "seeds")
FIXED = os.path.join(OUT, "fixed")
# The separators the two-file targets split their input at (Fuzz/Targets/*.swift).
MERGES_SEPARATOR = b"\n#~merges.txt~#\n"
USER_SEPARATOR = b"\n#~user~#\n"
# Seeds larger than this are left out (the targets' -max_len is at most this).
MAX_SEED = 256 << 10


def seed(target, name, data):
    if len(data) > MAX_SEED:
        return
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def seed_files(target, pattern):
    for path in sorted(glob.glob(pattern, recursive=True)):
        if os.path.isfile(path):
            seed(target, os.path.relpath(path, REPO if path.startswith(REPO) else ASSETS).replace("/", "_"), read(path))


# --- protobuf (SentencePiece ModelProto): keep the first pieces, every other field -------------
def varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def cut_sentencepiece(data, pieces):
    """ModelProto with only its first `pieces` pieces (field 1); other fields kept as they are."""
    out, i, kept = bytearray(), 0, 0
    while i < len(data):
        start = i
        key, i = varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, i = varint(data, i)
            i += length
        elif wire == 0:
            _, i = varint(data, i)
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError("unexpected wire type")
        if field == 1:
            kept += 1
            if kept > pieces:
                continue
        out += data[start:i]
    return bytes(out)


# --- Qwen2 byte-level BPE, cut down ------------------------------------------------------------
def cut_qwen2(tokenizer_json, size):
    """(vocab, merges, added) of the first `size` ids; merges whose parts and result are kept;
    the added tokens renumbered to follow the vocabulary."""
    model = tokenizer_json["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < size}
    merges = []
    for m in model["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append((a, b))
    added = [dict(t, id=size + k) for k, t in enumerate(tokenizer_json["added_tokens"])]
    return vocab, merges, added


# --- GGUF writer (v3, little-endian) -----------------------------------------------------------
def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(v):
    kind, x = v
    if kind == "u32":
        return struct.pack("<I", 4) + struct.pack("<I", x)
    if kind == "f32":
        return struct.pack("<I", 6) + struct.pack("<f", x)
    if kind == "bool":
        return struct.pack("<I", 7) + struct.pack("<?", x)
    if kind == "str":
        return struct.pack("<I", 8) + gguf_string(x)
    if kind == "strs":
        return struct.pack("<IIQ", 9, 8, len(x)) + b"".join(gguf_string(s) for s in x)
    if kind == "f32s":
        return struct.pack("<IIQ", 9, 6, len(x)) + struct.pack(f"<{len(x)}f", *x)
    if kind == "i32s":
        return struct.pack("<IIQ", 9, 5, len(x)) + struct.pack(f"<{len(x)}i", *x)
    raise ValueError(kind)


def gguf_file(kv, tensors):
    """kv: [(key, (kind, value))]; tensors: [(name, dims, f32 values)] (type F32, alignment 32)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, value in kv:
        head += gguf_string(key) + gguf_value(value)
    data, infos = b"", b""
    for name, dims, values in tensors:
        data += b"\0" * (-len(data) % 32)
        infos += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        infos += struct.pack("<IQ", 0, len(data))
        data += struct.pack(f"<{len(values)}f", *values)
    head += infos
    head += b"\0" * (-len(head) % 32)
    return head + data


def gguf_model(arch, tokens, scores, types, extra):
    n, hidden = len(tokens), 8
    kv = [("general.architecture", ("str", arch)),
          (f"{arch}.embedding_length", ("u32", hidden)), (f"{arch}.feed_forward_length", ("u32", 16)),
          (f"{arch}.block_count", ("u32", 1)), (f"{arch}.attention.head_count", ("u32", 2)),
          (f"{arch}.attention.head_count_kv", ("u32", 1)), (f"{arch}.context_length", ("u32", 64)),
          (f"{arch}.attention.layer_norm_rms_epsilon", ("f32", 1e-6)), (f"{arch}.rope.freq_base", ("f32", 10000.0)),
          ("tokenizer.ggml.tokens", ("strs", tokens)), ("tokenizer.ggml.scores", ("f32s", scores)),
          ("tokenizer.ggml.token_type", ("i32s", types))] + extra
    tensors = [("token_embd.weight", [hidden, n], [0.01 * (i % 7) for i in range(hidden * n)]),
               ("output_norm.weight", [hidden], [1.0] * hidden)]
    return gguf_file(kv, tensors)


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    os.makedirs(FIXED, exist_ok=True)
    fixtures = os.path.join(REPO, "Tests", "Fixtures")

    # Images.
    for ext, target in (("jpg", "jpeg"), ("png", "png")):
        seed_files(target, os.path.join(fixtures, "images", "**", "*." + ext))
        seed_files(target, os.path.join(fixtures, "pillow", "**", "*." + ext))

    # Safetensors files and indexes (the fixtures and the malformed-weights corpus).
    seed_files("safetensors", os.path.join(fixtures, "safetensors", "**", "*.safetensors"))
    seed_files("safetensors", os.path.join(fixtures, "malformed", "*", "model.safetensors"))
    seed_files("safetensors-index", os.path.join(fixtures, "safetensors", "**", "*.index.json"))
    seed_files("safetensors-index", os.path.join(fixtures, "malformed", "*", "*.index.json"))

    # config.json: the test models, the Hugging Face fixtures, the malformed-config corpus.
    seed_files("config-json", os.path.join(ASSETS, "models", "*", "config.json"))
    seed_files("config-json", os.path.join(fixtures, "hf", "*", "config.json"))
    seed_files("config-json", os.path.join(fixtures, "malformed", "config-*", "config.json"))

    # SentencePiece: the small fixtures whole, the LLaMA tokenizer cut to its first 400 pieces
    # (control, byte and the most frequent merged pieces).
    seed_files("tokenizer-model", os.path.join(fixtures, "tokenizer", "*.model"))
    llama = read(os.path.join(ASSETS, "tokenizers", "tokenizer.model.v1"))
    llama_cut = cut_sentencepiece(llama, 400)
    seed("tokenizer-model", "llama-400.model", llama_cut)
    with open(os.path.join(FIXED, "tokenizer.model"), "wb") as f:
        f.write(llama_cut)

    # Qwen2 byte-level BPE cut to 600 ids.
    qwen = json.load(open(os.path.join(ASSETS, "models", "chelsea-qwen2-mask5", "tokenizer.json"), encoding="utf-8"))
    vocab, merges, added = cut_qwen2(qwen, 600)
    small = dict(qwen, added_tokens=added, model=dict(qwen["model"], vocab=vocab, merges=[f"{a} {b}" for a, b in merges]))
    seed("tokenizer-json", "qwen2-600.json", json.dumps(small, ensure_ascii=False).encode())
    seed_files("tokenizer-json", os.path.join(fixtures, "tokenizer", "*", "tokenizer.json"))
    vocab_bytes = json.dumps(vocab, ensure_ascii=False).encode()
    merges_bytes = ("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)).encode()
    seed("vocab-merges", "qwen2-600", vocab_bytes + MERGES_SEPARATOR + merges_bytes)
    seed("vocab-merges", "qwen2-600-no-merges", vocab_bytes + MERGES_SEPARATOR + b"#version: 0.2\n")
    bpe = os.path.join(FIXED, "bpe")
    os.makedirs(bpe, exist_ok=True)
    with open(os.path.join(bpe, "vocab.json"), "wb") as f:
        f.write(vocab_bytes)
    with open(os.path.join(bpe, "merges.txt"), "wb") as f:
        f.write(merges_bytes)
    config = json.load(open(os.path.join(ASSETS, "models", "chelsea-qwen2-mask5", "tokenizer_config.json"), encoding="utf-8"))
    config["added_tokens_decoder"] = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added}
    with open(os.path.join(bpe, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)

    # tokenizer_config.json: the test assets' and the fixtures', the renumbered Qwen2 one, and
    # LLaMA-style ones.
    seed_files("tokenizer-config", os.path.join(fixtures, "tokenizer", "*", "tokenizer_config.json"))
    seed("tokenizer-config", "qwen2-600.json", json.dumps(config).encode())
    seed("tokenizer-config", "llama.json", json.dumps({
        "add_bos_token": True, "add_eos_token": False, "legacy": False, "tokenizer_class": "LlamaTokenizer",
        "bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None, "model_max_length": 4096,
        "added_tokens_decoder": {"32000": {"content": "<image>", "special": True}}}).encode())

    # GGUF: the all-types fixture and two small models (LLaMA SentencePiece, Qwen2 BPE).
    seed_files("gguf", os.path.join(fixtures, "gguf", "*.gguf"))
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581", "\u2581the", "e", "t", "\u2581a", "h", "he"]
    seed("gguf", "llama-spm.gguf", gguf_model("llama", pieces, [0.0] * 3 + [0.0] * 256 + [-1.0 * i for i in range(7)],
                                              [2, 3, 3] + [6] * 256 + [1] * 7,
                                              [("tokenizer.ggml.model", ("str", "llama")), ("tokenizer.ggml.bos_token_id", ("u32", 1)),
                                               ("tokenizer.ggml.eos_token_id", ("u32", 2)), ("tokenizer.ggml.unknown_token_id", ("u32", 0))]))
    bpe_tokens = sorted(vocab, key=vocab.get)[:300]
    bpe_merges = [f"{a} {b}" for a, b in merges if a in bpe_tokens and b in bpe_tokens and a + b in bpe_tokens]
    seed("gguf", "qwen2-bpe.gguf", gguf_model("qwen2", bpe_tokens + ["<|endoftext|>"], [0.0] * 301, [1] * 300 + [3],
                                              [("tokenizer.ggml.model", ("str", "gpt2")), ("tokenizer.ggml.pre", ("str", "qwen2")),
                                               ("tokenizer.ggml.merges", ("strs", bpe_merges)), ("tokenizer.ggml.eos_token_id", ("u32", 300))]))

    # Prompts: system prompt, separator, user text with image markers (texts of the golden sets).
    texts = []
    for name in ("tok_golden_qwen2_bpe.json", "tok_golden_mistral_v1_spm32000.json", "tok_edge_golden.json"):
        for case in json.load(open(os.path.join(fixtures, "tokenizer", name), encoding="utf-8")).get("cases", []):
            text = case.get("text") if isinstance(case, dict) else None
            if isinstance(text, str) and len(text) < 2000:
                texts.append(text)
    markers = ["<image>\n", "<image>", "<ima", "<image><image>", "</s><|im_end|><image>"]
    for i, text in enumerate(texts[:120]):
        system = "You are a helpful assistant." if i % 3 else ("<image> look " if i % 2 else "")
        seed("prompt", f"text-{i:03d}", system.encode() + USER_SEPARATOR + (markers[i % len(markers)] + text).encode())
    seed("prompt", "plain", b"<image>\nWhat is in the picture?")


main()
