#!/usr/bin/env python3
"""Writes the GGUF test fixtures of Tests/QuantTests into Tests/Fixtures/gguf/.

Reference implementation: the `gguf` PyPI package (the GGUF reader/writer of llama.cpp) and its
numpy quantizers / dequantizers, which follow GGML's reference C code (gguf.quants). This script
is only a fixture generator; the library never runs it.

    /work/venv-gen/bin/pip install gguf==0.19.0
    /work/venv-gen/bin/python scripts/make_gguf_fixtures.py

Outputs:
  all_types.gguf        GGUF v3, alignment 64: one metadata entry of every value type (including
                        a non-ASCII string, arrays of ints / strings and a nested array), Qwen2-style
                        LLM and tokenizer keys, and one tensor of each type the library reads:
                        F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K (2-D; one 1-D F32 and one
                        3-D F32).
  all_types.json        what the file holds, for the test: every key with its type and value and
                        every tensor with its GGUF dims (innermost first) and type name.
  deq_<tensor>.npy      the tensor dequantized to float32 by gguf.quants.dequantize.
  quant_input.npy       a float32 matrix [6, 256] with edge cases (zeros, ties, negative maxima,
                        huge and tiny values) and random rows.
  quant_q8_0.npy, quant_q4_0.npy
                        its bytes quantized by gguf.quants.quantize (GGML's reference quantizer),
                        uint8 [6, bytes per row].
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf.quants import dequantize, quantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "gguf")
rng = np.random.default_rng(20240611)


def k_quant_blocks(qtype: T, rows: int, cols: int) -> np.ndarray:
    """Random super-blocks with finite f16 scales (the package has no K quantizer)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    nb = rows * cols // block
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    if qtype == T.Q4_K:
        d = rng.uniform(0.001, 0.02, nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
        dmin = rng.uniform(0.0005, 0.01, nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
        raw[:, 0:2], raw[:, 2:4] = d, dmin
    else:  # Q6_K: the f16 d is the last two bytes
        raw[:, 208:210] = rng.uniform(0.001, 0.02, nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
    return raw.reshape(rows, cols // block * size)


def quant_input() -> np.ndarray:
    x = rng.standard_normal((6, 256)).astype(np.float32)
    x[0, :32] = 0.0                                  # an all-zero block: d = 0
    x[0, 32:64] = np.linspace(-1, 1, 32)             # symmetric ramp
    x[1, :32] = np.arange(32) - 16.0                 # negative extreme (Q4_0 picks the signed max)
    x[1, 32:64] = (np.arange(32) * 0.5 - 7.75)       # many exact .5 ties after scaling
    x[2, :32] = 1e-30                                # tiny values: scale underflows f16
    x[2, 32:64] = rng.uniform(-6e4, 6e4, 32)         # near the f16 range
    x[3] *= 1e-3
    x[4] *= 100.0
    return x


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "all_types.gguf")
    w = gguf.GGUFWriter(path, arch="qwen2")
    w.add_custom_alignment(64)
    expected_kv = {}

    def kv(key, value, vtype, sub=None):
        w.add_key_value(key, value, vtype, sub)
        expected_kv[key] = {"type": vtype.name, "value": value}

    # general.architecture = qwen2 is added by the writer itself (from arch=).
    expected_kv["general.architecture"] = {"type": "STRING", "value": "qwen2"}
    expected_kv["general.alignment"] = {"type": "UINT32", "value": 64}
    kv("test.u8", 200, V.UINT8)
    kv("test.i8", -100, V.INT8)
    kv("test.u16", 60000, V.UINT16)
    kv("test.i16", -30000, V.INT16)
    kv("test.u32", 4000000000, V.UINT32)
    kv("test.i32", -2000000000, V.INT32)
    kv("test.f32", 0.15625, V.FLOAT32)
    kv("test.bool_true", True, V.BOOL)
    kv("test.bool_false", False, V.BOOL)
    kv("test.string", "héllo, 世界 ✓", V.STRING)
    kv("test.u64", 18000000000000000000, V.UINT64)
    kv("test.i64", -9000000000000000000, V.INT64)
    kv("test.f64", -2.5e-300, V.FLOAT64)
    kv("test.int_array", [1, -2, 3, 2147483647], V.ARRAY, V.INT32)
    kv("test.nested_array", [[1, 2], [3]], V.ARRAY, V.ARRAY)
    kv("qwen2.block_count", 2, V.UINT32)
    kv("qwen2.embedding_length", 64, V.UINT32)
    kv("qwen2.feed_forward_length", 128, V.UINT32)
    kv("qwen2.attention.head_count", 4, V.UINT32)
    kv("qwen2.attention.head_count_kv", 2, V.UINT32)
    kv("qwen2.attention.layer_norm_rms_epsilon", 1e-6, V.FLOAT32)
    kv("tokenizer.ggml.model", "gpt2", V.STRING)
    kv("tokenizer.ggml.tokens", ["!", "\"", "Ġthe", "世界", "<|endoftext|>"], V.ARRAY, V.STRING)
    kv("tokenizer.ggml.token_type", [1, 1, 1, 1, 3], V.ARRAY, V.INT32)
    kv("tokenizer.ggml.merges", ["Ġ t", "Ġt he"], V.ARRAY, V.STRING)
    kv("tokenizer.ggml.scores", [0.0, -1.5, -2.25, -3.0, 0.0], V.ARRAY, V.FLOAT32)
    kv("tokenizer.ggml.bos_token_id", 4, V.UINT32)
    kv("tokenizer.ggml.eos_token_id", 4, V.UINT32)

    tensors = []

    def tensor(name, data, qtype=None):
        if qtype is None:
            w.add_tensor(name, data)
            qtype = {np.dtype(np.float32): T.F32, np.dtype(np.float16): T.F16}[data.dtype]
        else:
            w.add_tensor(name, data, raw_dtype=qtype)
        deq = dequantize(data, qtype).astype(np.float32)
        np.save(os.path.join(OUT, f"deq_{name}.npy"), deq.reshape(-1) if deq.ndim == 1 else deq)
        dims = list(reversed(deq.shape))
        tensors.append({"name": name, "type": qtype.name, "dims": dims})

    tensor("f32.vector", rng.standard_normal(48).astype(np.float32))
    tensor("f32.matrix", rng.standard_normal((3, 40)).astype(np.float32))
    tensor("f32.cube", rng.standard_normal((2, 3, 8)).astype(np.float32))
    tensor("f16.matrix", rng.standard_normal((5, 64)).astype(np.float16))
    bf = quantize(rng.standard_normal((4, 96)).astype(np.float32), T.BF16)
    tensor("bf16.matrix", bf, T.BF16)
    tensor("q8_0.matrix", quantize(rng.standard_normal((7, 96)).astype(np.float32), T.Q8_0), T.Q8_0)
    tensor("q4_0.matrix", quantize(rng.standard_normal((7, 96)).astype(np.float32), T.Q4_0), T.Q4_0)
    tensor("q5_0.matrix", quantize(rng.standard_normal((5, 96)).astype(np.float32), T.Q5_0), T.Q5_0)
    tensor("q4_k.matrix", k_quant_blocks(T.Q4_K, 3, 512), T.Q4_K)
    tensor("q6_k.matrix", k_quant_blocks(T.Q6_K, 3, 512), T.Q6_K)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    with open(os.path.join(OUT, "all_types.json"), "w") as f:
        json.dump({"metadata": expected_kv, "tensors": tensors}, f, indent=1, ensure_ascii=False)

    x = quant_input()
    np.save(os.path.join(OUT, "quant_input.npy"), x)
    np.save(os.path.join(OUT, "quant_q8_0.npy"), quantize(x, T.Q8_0))
    np.save(os.path.join(OUT, "quant_q4_0.npy"), quantize(x, T.Q4_0))

    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, into {os.path.normpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
