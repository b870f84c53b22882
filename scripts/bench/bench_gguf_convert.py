#!/usr/bin/env python3
"""Writes a BF16 GGUF file from a safetensors LLM directory (Hugging Face LLaMA / Qwen2 names),
for the llama.cpp side of `llavauhd-bench llm` (which then runs llama.cpp's own llama-quantize
and llama-bench on it). Needs only numpy and the `gguf` PyPI package (llama.cpp's GGUF writer).

    python3 scripts/bench/bench_gguf_convert.py MODEL_DIR OUT.gguf

The conversion follows llama.cpp's convert_hf_to_gguf.py for the tensors (names token_embd /
blk.N.attn_q ... / output_norm / output; LLaMA q/k rows permuted to GGML's rotary order; 1-D
tensors F32; matrices BF16 bit for bit) and the hyper-parameters (from config.json). The
benchmark weights are synthetic, so the vocabulary is synthetic too: a SentencePiece-style
`llama` vocabulary of the model's size (<unk>, <s>, </s>, 256 byte tokens, then filler tokens),
which llama-bench needs only to exist. Prints one JSON line {"path", "bytes", "seconds"}.
"""
import json
import os
import struct
import sys
import time

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

# The Hugging Face -> GGUF tensor names are shared with the GGUF fixture generator.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from gguf_names import gguf_name, permute  # noqa: E402


def tensors(model_dir):
    """name -> (dtype, shape, memmap) for every tensor of the directory's safetensors files."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out = {}
    for f in files:
        path = os.path.join(model_dir, f)
        with open(path, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(n))
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            a, b = info["data_offsets"]
            dt = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}[info["dtype"]]
            count = (b - a) // np.dtype(dt).itemsize
            out[name] = (info["dtype"], info["shape"], np.memmap(path, dtype=dt, mode="r", offset=base + a, shape=(count,)))
    return out




def to_f32(dtype, data):
    if dtype == "BF16":
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data.astype(np.float32)


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    t0 = time.time()
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    arch = "qwen2" if cfg["model_type"] in ("qwen2", "llava_qwen") else "llama"
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    vocab = cfg["vocab_size"]
    w = gguf.GGUFWriter(out + ".part", arch)
    w.add_context_length(cfg.get("max_position_embeddings", 4096))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_rope_dimension_count(cfg["hidden_size"] // heads)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    toks += ["\u2581t%d" % i for i in range(vocab - len(toks))]
    types += [1] * (vocab - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(vocab - 259)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    for name, (dtype, shape, data) in tensors(model_dir).items():
        if not name.startswith(("model.embed_tokens", "model.layers.", "model.norm", "lm_head")):
            continue
        if len(shape) == 1:
            w.add_tensor(gguf_name(name), np.ascontiguousarray(to_f32(dtype, data)))
            continue
        arr = data.reshape(shape)
        if arch == "llama" and name.endswith("q_proj.weight"):
            arr = permute(arr, heads, heads)
        elif arch == "llama" and name.endswith("k_proj.weight"):
            arr = permute(arr, heads, kv)
        if dtype != "BF16":
            arr = (to_f32(dtype, arr).view(np.uint32) >> 16).astype(np.uint16)
        w.add_tensor(gguf_name(name), np.ascontiguousarray(arr), raw_dtype=T.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(out + ".part", out)
    print(json.dumps({"path": out, "bytes": os.path.getsize(out), "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
