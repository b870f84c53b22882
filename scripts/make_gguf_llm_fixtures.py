#!/usr/bin/env python3
"""Writes the GGUF LLM fixtures of Tests/LanguageTests (GGUFDecoderTests) into
Tests/Fixtures/gguf-llm/: the tiny Hugging Face fixture models of Tests/Fixtures/hf converted to
GGUF the way llama.cpp's convert_hf_to_gguf.py does it, with the `gguf` PyPI package (llama.cpp's
GGUF writer and reference quantizers). This is a fixture generator; the library never runs it.

    /work/venv-gen/bin/pip install gguf==0.19.0
    /work/venv-gen/bin/python scripts/make_gguf_llm_fixtures.py

Conversion rules followed (convert_hf_to_gguf.py, LlamaModel / Qwen2Model):
  * tensor names: model.embed_tokens -> token_embd, lm_head -> output, model.norm -> output_norm,
    model.layers.N.{input_layernorm, post_attention_layernorm} -> blk.N.{attn_norm, ffn_norm},
    self_attn.{q,k,v,o}_proj -> attn_{q,k,v,output}, mlp.{gate,up,down}_proj -> ffn_{gate,up,down};
  * LLaMA architecture: the q_proj and k_proj rows of every head are permuted from Hugging Face's
    rotate-half order to GGML's interleaved order (LlamaModel.permute: reshape(heads, 2, d/2, in)
    .swapaxes(1, 2)), with the KV head count for k_proj; Qwen2 keeps the order;
  * 1-D tensors (norms, biases) stay F32; matrices take the file type (F32, BF16 as stored, or
    Q8_0 / Q4_0 from the float32 values with gguf.quants.quantize);
  * hyper-parameters: {arch}.context_length, embedding_length, feed_forward_length, block_count,
    attention.head_count, attention.head_count_kv, attention.layer_norm_rms_epsilon,
    rope.freq_base, rope.dimension_count, vocab_size; tokenizer.ggml.bos/eos_token_id where the
    config has them (the fixtures have no tokenizer, so no token arrays).

Outputs (the Swift tests compare each against the transformers reference outputs of
Tests/Fixtures/hf/<model>/):
  llama-f32.gguf     LLaMA, F32 matrices (q/k permuted)
  llama-q8_0.gguf    LLaMA, Q8_0 matrices (q/k permuted before quantization)
  qwen2-bf16.gguf    Qwen2, the BF16 matrices as stored
  qwen2-q8_0.gguf    Qwen2, Q8_0 matrices
  qwen2-q4_0.gguf    Qwen2, Q4_0 matrices
"""
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize
from safetensors.numpy import load_file

from gguf_names import gguf_name, permute

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures")
OUT = os.path.join(ROOT, "gguf-llm")


def load_bf16_aware(path):
    """Tensors as float32, plus the raw uint16 bits of the BF16 ones."""
    from safetensors import safe_open
    f32, bits = {}, {}
    with safe_open(path, framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            if str(t.dtype) == "torch.bfloat16":
                import torch
                bits[name] = t.view(torch.int16).numpy().view(np.uint16).copy()
            f32[name] = t.float().numpy()
    return f32, bits




def convert(model, file_type, out_name):
    src = os.path.join(ROOT, "hf", model)
    cfg = json.load(open(os.path.join(src, "config.json")))
    arch = cfg["model_type"]
    f32, bits = load_bf16_aware(os.path.join(src, "model.safetensors"))
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    w = gguf.GGUFWriter(os.path.join(OUT, out_name), arch)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_rope_dimension_count(cfg["hidden_size"] // heads)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
                     "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[file_type])
    if cfg.get("bos_token_id") is not None:
        w.add_bos_token_id(cfg["bos_token_id"])
    if cfg.get("eos_token_id") is not None:
        w.add_eos_token_id(cfg["eos_token_id"])
    for name in sorted(f32):
        data, raw = f32[name], bits.get(name)
        if arch == "llama" and name.endswith("self_attn.q_proj.weight"):
            data = permute(data, heads, heads)
            raw = None if raw is None else permute(raw, heads, heads)
        if arch == "llama" and name.endswith("self_attn.k_proj.weight"):
            data = permute(data, heads, kv)
            raw = None if raw is None else permute(raw, heads, kv)
        g = gguf_name(name)
        if data.ndim == 1 or file_type == "f32":
            w.add_tensor(g, np.ascontiguousarray(data, dtype=np.float32))
        elif file_type == "bf16":
            assert raw is not None, name
            w.add_tensor(g, np.ascontiguousarray(raw), raw_dtype=T.BF16)
        else:
            qt = {"q8_0": T.Q8_0, "q4_0": T.Q4_0}[file_type]
            w.add_tensor(g, quantize(np.ascontiguousarray(data, dtype=np.float32), qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", out_name, os.path.getsize(os.path.join(OUT, out_name)), "bytes")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    convert("llama", "f32", "llama-f32.gguf")
    convert("llama", "q8_0", "llama-q8_0.gguf")
    convert("qwen2", "bf16", "qwen2-bf16.gguf")
    convert("qwen2", "q8_0", "qwen2-q8_0.gguf")
    convert("qwen2", "q4_0", "qwen2-q4_0.gguf")
