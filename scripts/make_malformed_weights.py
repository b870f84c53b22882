#!/usr/bin/env python3
"""Write the malformed-model corpus and the safetensors reader fixtures (standard library only).

Three jobs:

1. (default) The committed corpus ``Tests/Fixtures/malformed/<case>/``: small model
   directories, each a config.json plus weight files with exactly one thing wrong (truncated
   file, lying header length, bad JSON, unknown dtype, shape/byte mismatch, overlapping spans,
   bad shard index, missing or contradictory config keys, unsupported projector...), and
   ``Tests/Fixtures/malformed/expectations.json`` listing for every case the expected status
   (the Swift ``Status`` case name) and a substring of the error message. Config cases carry
   valid tiny weights and weight cases carry a valid config, so a case fails the same way
   whichever of config.json and the weights a loader reads first. No case has tokenizer files.

2. (default) The reader's good-path fixtures ``Tests/Fixtures/safetensors/``: ``dtypes/``
   (one file with a tensor of every readable dtype; F8 tensors hold all 256 byte values) and
   ``sharded/`` (an index and two shards), with ``expected.json`` giving every tensor's
   values as float32 bit patterns (``"nan"`` for NaN), decoded here independently of the
   library.

3. ``--from-model DIR --out OUT``: the model-level cases that need a whole valid model (one
   tensor missing, mis-shaped, of the wrong dtype, a gap in the CLIP layer numbers) and a
   sharded copy that must load. They are derived from a tiny model directory (e.g.
   .build-assets/models/coffee-v2-mask7) and are not committed; expectations.json lists them
   with ``"derived": true``.

Usage:
  python3 scripts/make_malformed_weights.py                       # corpus + reader fixtures
  python3 scripts/make_malformed_weights.py --from-model DIR --out OUT
  python3 scripts/make_malformed_weights.py --check-with-torch    # also cross-check the F8
                                                                  # decoding against torch
"""
import argparse
import copy
import json
import math
import os
import shutil
import struct
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "Tests", "Fixtures", "malformed")
DEFAULT_VALID_OUT = os.path.join(REPO, "Tests", "Fixtures", "safetensors")

# config.json of the tiny LLaMA model (make_tiny_model.py defaults; old-vicuna-7b keys).
LLAMA_CONFIG = {
    "architectures": ["LlavaLlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "feature_mode": "featup_muti_res",
    "feature_scale_mask": 7,
    "freeze_mm_mlp_adapter": False,
    "hidden_act": "silu",
    "hidden_size": 256,
    "image_aspect_ratio": "pad",
    "initializer_range": 0.02,
    "intermediate_size": 512,
    "max_position_embeddings": 4096,
    "mm_hidden_size": 1024,
    "mm_patch_merge_type": "flat",
    "mm_projector_type": "adapt_spatial_resampler",
    "mm_use_im_patch_token": False,
    "mm_use_im_start_end": False,
    "mm_vision_select_feature": "patch",
    "mm_vision_select_layer": -2,
    "mm_vision_tower": "openai/clip-vit-large-patch14-336",
    "model_type": "llava_llama",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "pad_token_id": 0,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "tokenizer_model_max_length": 4096,
    "tokenizer_padding_side": "right",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.37.2",
    "tune_mm_mlp_adapter": False,
    "use_cache": True,
    "use_mm_proj": True,
    "vdim_ckpt": "clip-large-jbu.ckpt",
    "vocab_size": 32000,
}

# config.json of the tiny Qwen2 model (LLaVA-UHD-v2 keys).
QWEN2_CONFIG = {
    "architectures": ["LlavaQwenForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "feature_scale_mask": 5,
    "hidden_act": "silu",
    "hidden_size": 256,
    "image_aspect_ratio": "pad",
    "intermediate_size": 512,
    "max_position_embeddings": 32768,
    "mm_hidden_size": 1024,
    "mm_patch_merge_type": "flat",
    "mm_projector_type": "adapt_spatial_resampler_v2",
    "mm_use_im_patch_token": False,
    "mm_use_im_start_end": False,
    "mm_vision_select_feature": "patch",
    "mm_vision_select_layer": -2,
    "mm_vision_tower": "openai/clip-vit-large-patch14-336",
    "model_mode": "uhd_v2",
    "model_type": "llava_qwen",
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 1,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "tokenizer_model_max_length": 4096,
    "torch_dtype": "bfloat16",
    "use_sliding_window": False,
    "vocab_size": 151936,
}

DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E4M3FNUZ": 1,
              "F8_E5M2FNUZ": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
              "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


# ----------------------------------------------------------------------------- safetensors writing
def header_bytes(header, pad=True):
    """The JSON header (dict, or raw bytes used as they are), padded with spaces to 8 bytes."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode("utf-8")
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return h


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, data bytes), laid out contiguously in list order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = header_bytes(header)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def raw_file(header, data, length=None):
    """A file with a hand-made header (dict or bytes) and data section; `length` overrides the
    8-byte header length field."""
    h = header_bytes(header)
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def bf16(values):
    """float32 -> bfloat16, round to nearest even (values here are exact in bf16 anyway)."""
    out = bytearray()
    for v in values:
        u = struct.unpack("<I", struct.pack("<f", v))[0]
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        out += struct.pack("<H", u)
    return bytes(out)


# Two small tensors under real names: the valid weights every config case carries.
BASE_TENSORS = [
    ("model.norm.weight", "F32", [4], f32([1.0, 0.5, -2.0, 0.25])),
    ("lm_head.weight", "BF16", [2, 4], bf16([0.5, -1.0, 2.0, 0.0, 1.5, -0.25, 4.0, -8.0])),
]


def base_weights():
    return safetensors(BASE_TENSORS, {"format": "pt"})


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# ----------------------------------------------------------------------------- the corpus
class Corpus:
    def __init__(self):
        self.cases = []

    def add(self, name, status, message, description, files):
        """files: {relative path: bytes or dict (written as JSON) or None (a directory)}."""
        self.cases.append({"name": name, "status": status, "message": message,
                           "description": description, "files": files})


def config_json(cfg):
    return (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode("utf-8")


def with_config(weights_files, cfg=None):
    files = {"config.json": config_json(LLAMA_CONFIG if cfg is None else cfg)}
    files.update(weights_files)
    return files


def weights_case(c, name, status, message, description, data):
    c.add(name, status, message, description, with_config({"model.safetensors": data}))


def config_case(c, name, status, message, description, cfg=None, raw=None, drop=(), **changes):
    if raw is None:
        cfg = copy.deepcopy(LLAMA_CONFIG if cfg is None else cfg)
        for k in drop:
            del cfg[k]
        cfg.update(changes)
        raw = config_json(cfg)
    c.add(name, status, message, description, {"config.json": raw, "model.safetensors": base_weights()})


def build_corpus():
    c = Corpus()
    good = base_weights()
    a16 = f32([1.0, 2.0, 3.0, 4.0])

    # ---- one safetensors file
    weights_case(c, "weights-empty-file", "badWeights", "too short for the 8-byte header length",
                 "model.safetensors is 0 bytes", b"")
    weights_case(c, "weights-shorter-than-8-bytes", "badWeights", "too short for the 8-byte header length",
                 "model.safetensors is 5 bytes", b"\x10\x00\x00\x00\x00")
    weights_case(c, "weights-truncated", "badWeights", "run past the",
                 "a valid file with its last 6 bytes cut off", good[:-6])
    weights_case(c, "weights-header-length-lies", "badWeights", "header is not valid UTF-8 JSON",
                 "the header length is 9 bytes short of the JSON, which is cut in the middle",
                 raw_file({"a": entry("F32", [4], 0, 16)}, a16,
                          length=len(header_bytes({"a": entry("F32", [4], 0, 16)})) - 9))
    weights_case(c, "weights-header-length-huge", "badWeights", "exceeds the 100000000-byte limit",
                 "the header length is 2^64 - 16", raw_file({"a": entry("F32", [4], 0, 16)}, a16, length=2**64 - 16))
    weights_case(c, "weights-header-length-past-eof", "badWeights", "runs past the end",
                 "the header length (5000) is below the limit but past the end of the file",
                 raw_file({"a": entry("F32", [4], 0, 16)}, a16, length=5000))
    weights_case(c, "weights-header-length-zero", "badWeights", "too small for a JSON object",
                 "the header length is 0", struct.pack("<Q", 0) + a16)
    weights_case(c, "weights-header-invalid-json", "badWeights", "header is not valid UTF-8 JSON",
                 "the header is not JSON (a bracket does not match)",
                 raw_file(b'{"a":{"dtype":"F32","shape":[4},"data_offsets":[0,16]}}', a16))
    weights_case(c, "weights-header-not-utf8", "badWeights", "not valid UTF-8",
                 "a tensor name in the header holds the byte 0xFF",
                 raw_file(b'{"a\xff":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', a16))
    weights_case(c, "weights-header-not-object", "badWeights", "header is not a JSON object",
                 "the header is a JSON array", raw_file([entry("F32", [4], 0, 16)], a16))
    weights_case(c, "weights-header-too-deep", "badWeights", "nesting deeper",
                 "__metadata__ holds deeply nested arrays",
                 raw_file(b'{"__metadata__":{"x":' + b"[" * 20 + b"]" * 20 + b'},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', a16))
    weights_case(c, "weights-entry-not-object", "badWeights", "entry 'a' is not an object",
                 "a tensor entry is a number", raw_file({"a": 5}, b""))
    weights_case(c, "weights-missing-dtype", "badWeights", "has no dtype string",
                 "a tensor entry has no dtype", raw_file({"a": {"shape": [4], "data_offsets": [0, 16]}}, a16))
    weights_case(c, "weights-unknown-dtype", "badWeights", "unknown dtype 'F17'",
                 "dtype F17", raw_file({"a": entry("F17", [4], 0, 16)}, a16))
    weights_case(c, "weights-unreadable-dtype", "unsupported", "dtype F4",
                 "a sub-byte F4 tensor (a real safetensors dtype the library cannot read)",
                 raw_file({"a": entry("F4", [8], 0, 4)}, b"\x00" * 4))
    weights_case(c, "weights-shape-byte-mismatch", "badWeights", "spans 16 bytes but F32 [2, 3] needs 24",
                 "shape [2, 3] F32 needs 24 bytes, the span has 16", raw_file({"a": entry("F32", [2, 3], 0, 16)}, a16))
    weights_case(c, "weights-negative-dim", "badWeights", "invalid dimension -4",
                 "a dimension is -4", raw_file({"a": entry("F32", [-4], 0, 16)}, a16))
    weights_case(c, "weights-non-integer-dim", "badWeights", "invalid dimension 2.5",
                 "a dimension is 2.5", raw_file({"a": entry("F32", [2.5, 2], 0, 16)}, a16))
    weights_case(c, "weights-string-dim", "badWeights", "invalid dimension",
                 "a dimension is the string \"4\"", raw_file({"a": entry("F32", ["4"], 0, 16)}, a16))
    weights_case(c, "weights-shape-overflow", "badWeights", "overflows",
                 "shape [2^62, 2^62, 4]: the byte size overflows 64 bits",
                 raw_file({"a": entry("F32", [2**62, 2**62, 4], 0, 16)}, a16))
    weights_case(c, "weights-offsets-past-eof", "badWeights", "run past the",
                 "data_offsets [0, 4000] in a 16-byte data section",
                 raw_file({"a": entry("F32", [1000], 0, 4000)}, a16))
    weights_case(c, "weights-offsets-reversed", "badWeights", "out of order",
                 "data_offsets [16, 0]", raw_file({"a": entry("F32", [4], 16, 0)}, a16))
    weights_case(c, "weights-offsets-negative", "badWeights", "out of order",
                 "data_offsets [-16, 0]", raw_file({"a": entry("F32", [4], -16, 0)}, a16))
    weights_case(c, "weights-offsets-not-integers", "badWeights", "integer data_offsets",
                 "data_offsets are strings", raw_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": ["0", "16"]}}, a16))
    weights_case(c, "weights-overlapping-spans", "badWeights", "overlap",
                 "tensors a [0, 16) and b [8, 24) share bytes",
                 raw_file({"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 8, 24)}, a16 + a16[:8]))
    weights_case(c, "weights-hole-in-data", "badWeights", "belong to no tensor",
                 "8 bytes between two tensors belong to neither",
                 raw_file({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 16, 24)}, a16 + a16[:8]))
    weights_case(c, "weights-trailing-bytes", "badWeights", "belong to no tensor",
                 "8 bytes after the last tensor", raw_file({"a": entry("F32", [2], 0, 8)}, a16))
    weights_case(c, "weights-duplicate-names", "badWeights", "appears twice in the header",
                 "the header names tensor 'a' twice",
                 raw_file(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', a16))
    weights_case(c, "weights-metadata-not-strings", "badWeights", "__metadata__ value for 'format' is not a string",
                 "__metadata__ maps 'format' to a number",
                 raw_file({"__metadata__": {"format": 1}, "a": entry("F32", [4], 0, 16)}, a16))
    c.add("weights-is-directory", "io", "is not a regular file",
          "model.safetensors is a directory",
          with_config({"model.safetensors/README.txt": b"model.safetensors is a directory in this case\n"}))
    c.add("weights-missing", "io", "has neither model.safetensors nor model.safetensors.index.json",
          "config.json only", with_config({}))

    # ---- sharded: model.safetensors.index.json + shards
    s1 = safetensors([("model.norm.weight", "F32", [4], a16)])
    s2 = safetensors([("lm_head.weight", "BF16", [2, 4], BASE_TENSORS[1][3])])
    n1, n2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"

    def index(weight_map):
        return (json.dumps({"metadata": {"total_size": 32}, "weight_map": weight_map}, indent=2) + "\n").encode()

    def sharded(name, status, message, description, weight_map, shards=None, raw_index=None):
        files = {"model.safetensors.index.json": raw_index if raw_index is not None else index(weight_map)}
        files.update({n1: s1, n2: s2} if shards is None else shards)
        c.add(name, status, message, description, with_config(files))

    sharded("index-missing-shard", "badWeights", "shard 'model-00002-of-00002.safetensors' does not exist",
            "the index names a shard file that is not there",
            {"model.norm.weight": n1, "lm_head.weight": n2}, shards={n1: s1})
    sharded("index-wrong-shard", "badWeights", "puts tensor 'model.norm.weight' in 'model-00002-of-00002.safetensors'",
            "the index swaps the two tensors' shards",
            {"model.norm.weight": n2, "lm_head.weight": n1})
    sharded("index-path-escape", "badWeights", "must be a plain *.safetensors file name",
            "a shard name climbs out of the model directory",
            {"model.norm.weight": "../" + n1, "lm_head.weight": n2})
    sharded("index-absolute-path", "badWeights", "must be a plain *.safetensors file name",
            "a shard name is an absolute path",
            {"model.norm.weight": "/etc/passwd", "lm_head.weight": n2})
    sharded("index-not-a-safetensors-name", "badWeights", "must be a plain *.safetensors file name",
            "a shard name points at config.json",
            {"model.norm.weight": "config.json", "lm_head.weight": n2})
    sharded("index-not-json", "badWeights", "not valid JSON", "the index is not JSON", None,
            raw_index=b'{"weight_map": {"model.norm.weight": "' + n1.encode() + b'",}\n')
    sharded("index-not-object", "badWeights", "the index is not a JSON object", "the index is a JSON list", None,
            raw_index=b'["' + n1.encode() + b'"]\n')
    sharded("index-no-weight-map", "badWeights", 'no "weight_map" object', "the index has no weight_map", None,
            raw_index=b'{"metadata": {"total_size": 32}}\n')
    sharded("index-empty-weight-map", "badWeights", "weight_map is empty", "weight_map is {}", {})
    sharded("index-shard-not-string", "badWeights", "maps to something other than a file name",
            "a weight_map value is a number", {"model.norm.weight": 1, "lm_head.weight": n2})
    sharded("index-duplicate-tensor", "badWeights", "appears twice in weight_map",
            "weight_map names a tensor twice", None,
            raw_index=('{"weight_map": {"model.norm.weight": "%s", "model.norm.weight": "%s", "lm_head.weight": "%s"}}\n'
                       % (n1, n1, n2)).encode())
    sharded("index-tensor-in-two-shards", "badWeights", "is stored twice",
            "both shards hold model.norm.weight",
            {"model.norm.weight": n1, "lm_head.weight": n2},
            shards={n1: s1, n2: safetensors([("model.norm.weight", "F32", [4], a16),
                                              ("lm_head.weight", "BF16", [2, 4], BASE_TENSORS[1][3])])})
    sharded("index-names-absent-tensor", "badWeights", "names tensor 'model.embed_tokens.weight'",
            "the index lists a tensor no shard holds",
            {"model.norm.weight": n1, "lm_head.weight": n2, "model.embed_tokens.weight": n2})
    sharded("index-unlisted-tensor", "badWeights", "tensor 'model.extra' in",
            "a shard holds a tensor the index does not list",
            {"model.norm.weight": n1, "lm_head.weight": n2},
            shards={n1: safetensors([("model.norm.weight", "F32", [4], a16), ("model.extra", "F32", [4], a16)]),
                    n2: s2})
    sharded("index-bad-shard", "badWeights", "runs past the end",
            "the index is fine but the second shard's header length runs past its end",
            {"model.norm.weight": n1, "lm_head.weight": n2},
            shards={n1: s1, n2: raw_file({"lm_head.weight": entry("BF16", [2, 4], 0, 16)}, b"", length=4096)})

    # ---- directory and config.json
    c.add("dir-no-model-files", "badConfig", "config.json' does not exist",
          "a directory without config.json or weights (git keeps no empty directory, so it holds "
          "a README.txt; the Swift test also tries a really empty one)",
          {"README.txt": b"This model directory holds no model files.\n"})
    c.add("config-missing", "badConfig", "config.json' does not exist",
          "valid weights, no config.json", {"model.safetensors": good})
    config_case(c, "config-not-json", "badConfig", "not valid JSON", "config.json is cut off",
                raw=config_json(LLAMA_CONFIG)[:200])
    config_case(c, "config-not-utf8", "badConfig", "not valid JSON", "a string in config.json holds the byte 0xFF",
                raw=config_json(LLAMA_CONFIG).replace(b'"pad"', b'"p\xffd"'))
    config_case(c, "config-not-object", "badConfig", "the top level is not a JSON object", "config.json is a list",
                raw=b"[1, 2, 3]\n")
    config_case(c, "config-duplicate-key", "badConfig", "key 'hidden_size' appears twice",
                "hidden_size is given twice",
                raw=config_json(LLAMA_CONFIG).replace(b'  "hidden_size": 256,', b'  "hidden_size": 256,\n  "hidden_size": 512,'))
    config_case(c, "config-missing-hidden-size", "badConfig", "missing required key 'hidden_size'",
                "no hidden_size", drop=["hidden_size"])
    config_case(c, "config-missing-model-type", "badConfig", "missing required key 'model_type'",
                "no model_type", drop=["model_type"])
    config_case(c, "config-missing-projector-type", "badConfig", "missing required key 'mm_projector_type'",
                "no mm_projector_type", drop=["mm_projector_type"])
    config_case(c, "config-missing-select-layer", "badConfig", "missing required key 'mm_vision_select_layer'",
                "no mm_vision_select_layer", drop=["mm_vision_select_layer"])
    config_case(c, "config-missing-mm-hidden-size", "badConfig", "missing required key 'mm_hidden_size'",
                "no mm_hidden_size", drop=["mm_hidden_size"])
    config_case(c, "config-wrong-type-int", "badConfig", "key 'hidden_size' must be an integer",
                "hidden_size is the string \"256\"", hidden_size="256")
    config_case(c, "config-wrong-type-float-size", "badConfig", "key 'num_hidden_layers' must be an integer",
                "num_hidden_layers is 2.0", num_hidden_layers=2.0)
    config_case(c, "config-wrong-type-bool", "badConfig", "key 'mm_use_im_start_end' must be true or false",
                "mm_use_im_start_end is the string \"false\"", mm_use_im_start_end="false")
    config_case(c, "config-wrong-type-string", "badConfig", "key 'mm_projector_type' must be a string",
                "mm_projector_type is a list", mm_projector_type=["adapt_spatial_resampler"])
    config_case(c, "config-wrong-type-eps", "badConfig", "key 'rms_norm_eps' must be a number",
                "rms_norm_eps is the string \"1e-5\"", rms_norm_eps="1e-5")
    config_case(c, "config-eos-wrong-type", "badConfig", "key 'eos_token_id' must be an integer or",
                "eos_token_id is the string \"2\"", eos_token_id="2")
    config_case(c, "config-zero-layers", "badConfig", "num_hidden_layers 0 must be positive",
                "num_hidden_layers is 0", num_hidden_layers=0)
    config_case(c, "config-eos-outside-vocab", "badConfig", "eos_token_id 40000 is outside vocab_size 32000",
                "eos_token_id is past the vocabulary", eos_token_id=[2, 40000])
    config_case(c, "config-vocab-too-small-for-separators", "badConfig", "separator id 29892",
                "vocab_size 1000 has no row for the slice separator 29892", vocab_size=1000)
    config_case(c, "config-hiwin-without-feature-mode", "badConfig", "feature_mode is absent",
                "old-branch Hiwin projector without feature_mode (upstream then runs the broken uhd_v1 path)",
                drop=["feature_mode"])
    config_case(c, "config-v1-feature-mode-with-hiwin", "badConfig",
                "feature_mode 'uhd_v1' contradicts mm_projector_type 'adapt_spatial_resampler'",
                "feature_mode uhd_v1 with the Hiwin projector type", feature_mode="uhd_v1")
    config_case(c, "config-uhd-v2-with-old-projector", "badConfig",
                "model_mode 'uhd_v2' (LLaVA-UHD-v2 branch) contradicts mm_projector_type 'adapt_spatial_resampler'",
                "new-branch model_mode with the old-branch projector type", model_mode="uhd_v2")
    config_case(c, "config-v2-projector-without-model-mode", "badConfig", "missing required key 'model_mode'",
                "adapt_spatial_resampler_v2 without model_mode (upstream reads it as 'llava')",
                cfg=QWEN2_CONFIG, drop=["model_mode"])
    config_case(c, "config-v2-projector-with-v1-feature-mode", "badConfig",
                "feature_mode 'uhd_v1' contradicts mm_projector_type 'adapt_spatial_resampler_v2'",
                "feature_mode uhd_v1 with the v2 Hiwin projector type", cfg=QWEN2_CONFIG, feature_mode="uhd_v1")
    config_case(c, "config-qwen-with-old-projector", "badConfig",
                "model_type 'llava_qwen' contradicts mm_projector_type 'adapt_spatial_resampler'",
                "a Qwen2 LLM with the old-branch keys", model_type="llava_qwen")
    config_case(c, "config-v1-projector-with-uhd-v2", "badConfig",
                "model_mode 'uhd_v2' contradicts mm_projector_type 'adapt_spatial_resampler_v1'",
                "the v1 resampler with model_mode uhd_v2",
                cfg=QWEN2_CONFIG, mm_projector_type="adapt_spatial_resampler_v1")
    config_case(c, "config-v1-projector-with-featup", "badConfig",
                "feature_mode 'featup_muti_res' contradicts mm_projector_type 'adapt_spatial_resampler_v1'",
                "the v1 resampler with feature_mode featup_muti_res", mm_projector_type="adapt_spatial_resampler_v1")
    config_case(c, "config-old-hiwin-mm-hidden-768", "badConfig",
                "mm_hidden_size 768 contradicts mm_projector_type 'adapt_spatial_resampler'",
                "the old branch hard-codes 1024 projector input channels", mm_hidden_size=768)
    config_case(c, "config-kv-heads-not-dividing", "badConfig",
                "num_key_value_heads 3 does not divide num_attention_heads 4",
                "4 query heads, 3 KV heads", num_key_value_heads=3)
    config_case(c, "config-hidden-not-divisible-by-heads", "badConfig",
                "hidden_size 256 is not divisible by num_attention_heads 3",
                "256 wide, 3 heads", num_attention_heads=3, num_key_value_heads=3)
    config_case(c, "config-hidden-not-multiple-of-128", "badConfig",
                "hidden_size 192 is not a multiple of 128",
                "Hiwin needs E/128 heads of width 128; E = 192", hidden_size=192, num_attention_heads=3,
                num_key_value_heads=3)
    config_case(c, "config-mask-out-of-range", "badConfig", "feature_scale_mask 16 is outside 1...15",
                "feature_scale_mask 16", feature_scale_mask=16)
    config_case(c, "config-mask-zero", "badConfig", "feature_scale_mask 0 is outside 1...15",
                "feature_scale_mask 0", feature_scale_mask=0)
    config_case(c, "config-mask-without-1x", "badConfig", "feature_scale_mask 6 lacks the 1x bit",
                "levels 2x and 4x only", feature_scale_mask=6)
    config_case(c, "config-mask-no-upsampled-level", "badConfig", "feature_scale_mask 1 selects no upsampled level",
                "level 1x only: upstream builds no upsampler", feature_scale_mask=1)
    config_case(c, "config-mask-8x", "unsupported", "feature_scale_mask 15 asks for the 8x level",
                "all four levels: upstream's 8x stack has no inference path", feature_scale_mask=15)
    config_case(c, "config-mask-wrong-type", "badConfig", "key 'feature_scale_mask' must be an integer",
                "feature_scale_mask is the string \"7\"", feature_scale_mask="7")
    config_case(c, "config-unsupported-projector", "unsupported", "mm_projector_type 'mlp2x_gelu' is not supported",
                "the plain LLaVA MLP projector", mm_projector_type="mlp2x_gelu")
    config_case(c, "config-unsupported-model-type", "unsupported", "model_type 'llava_mistral' is not supported",
                "a Mistral LLM", model_type="llava_mistral")
    config_case(c, "config-unsupported-feature-mode", "unsupported", "feature_mode 'featup' is not supported",
                "an unknown feature_mode", feature_mode="featup")
    config_case(c, "config-unsupported-model-mode", "unsupported", "model_mode 'llava'",
                "the new branch's plain LLaVA mode", cfg=QWEN2_CONFIG, model_mode="llava")
    config_case(c, "config-im-start-end", "unsupported", "mm_use_im_start_end true",
                "image start/end tokens", mm_use_im_start_end=True)
    config_case(c, "config-select-feature-cls-patch", "unsupported", "mm_vision_select_feature 'cls_patch'",
                "CLS kept in the vision features", mm_vision_select_feature="cls_patch")
    config_case(c, "config-rope-scaling", "unsupported", "rope_scaling",
                "linear RoPE scaling", rope_scaling={"type": "linear", "factor": 2.0})
    config_case(c, "config-qwen2-missing-eos", "badConfig", "missing required key 'eos_token_id'",
                "Qwen2 has no default EOS", cfg=QWEN2_CONFIG, drop=["eos_token_id"])
    return c


# ----------------------------------------------------------------------------- derived (model-level) cases
DERIVED = [
    {"name": "derived-missing-llm-tensor", "status": "missingTensor", "message": "model.norm.weight",
     "description": "the whole model without model.norm.weight", "tensor": "model.norm.weight",
     "drop": "model.norm.weight"},
    {"name": "derived-missing-clip-tensor", "status": "missingTensor",
     "message": "model.vision_tower.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight",
     "description": "the whole model without the first CLIP layer's fc1 weight",
     "tensor": "model.vision_tower.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight",
     "drop": "model.vision_tower.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"},
    {"name": "derived-missing-projector-tensor", "status": "missingTensor", "message": "model.mm_projector.ln_post.weight",
     "description": "the whole model without the projector's ln_post weight",
     "tensor": "model.mm_projector.ln_post.weight", "drop": "model.mm_projector.ln_post.weight"},
    {"name": "derived-wrong-shape", "status": "tensorMismatch", "message": "lm_head.weight",
     "description": "lm_head.weight labelled [hidden, vocab] instead of [vocab, hidden] (same bytes)",
     "tensor": "lm_head.weight", "transpose_shape": "lm_head.weight"},
    {"name": "derived-wrong-dtype", "status": "tensorMismatch", "message": "model.layers.0.mlp.down_proj.weight",
     "description": "a BF16 weight relabelled I16 (same bytes)",
     "tensor": "model.layers.0.mlp.down_proj.weight", "relabel_dtype": ["model.layers.0.mlp.down_proj.weight", "I16"]},
    {"name": "derived-clip-layer-gap", "status": "badWeights", "message": "encoder.layers",
     "description": "the last CLIP layer renumbered from N-1 to N, leaving a gap",
     "renumber_last_clip_layer": True},
    {"name": "derived-sharded-ok", "status": "ok", "message": "",
     "description": "the whole model split into model-00001/00002-of-00002.safetensors with an index; it must load",
     "shard": True},
]

CLIP_LAYERS = "model.vision_tower.vision_tower.vision_model.encoder.layers."


def read_header(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n).decode("utf-8"))
    return header, 8 + n


def write_from(src, data_start, dst, items, metadata):
    """Writes dst holding items = [(name, info, src_begin, src_end)] copied from src's data
    section, laid out contiguously in list order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, info, b, e in items:
        header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [offset, offset + e - b]}
        offset += e - b
    h = header_bytes(header)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(struct.pack("<Q", len(h)) + h)
        for _, _, b, e in items:
            fin.seek(data_start + b)
            left = e - b
            while left:
                chunk = fin.read(min(left, 1 << 22))
                if not chunk:
                    raise SystemExit(f"{src}: unexpected end of file")
                fout.write(chunk)
                left -= len(chunk)


def derive(model_dir, out_dir):
    src = os.path.join(model_dir, "model.safetensors")
    header, data_start = read_header(src)
    metadata = header.pop("__metadata__", None)
    tensors = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    os.makedirs(out_dir, exist_ok=True)
    for case in DERIVED:
        d = os.path.join(out_dir, case["name"])
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for f in sorted(os.listdir(model_dir)):
            p = os.path.join(model_dir, f)
            if f != "model.safetensors" and os.path.isfile(p) and not f.startswith("."):
                shutil.copyfile(p, os.path.join(d, f))
        items = []
        last_layer = max(int(n[len(CLIP_LAYERS):].split(".")[0]) for n, _ in tensors if n.startswith(CLIP_LAYERS))
        for name, info in tensors:
            info = dict(info)
            b, e = info["data_offsets"]
            if case.get("drop") == name:
                continue
            if case.get("transpose_shape") == name:
                info["shape"] = list(reversed(info["shape"]))
            if case.get("relabel_dtype", [None])[0] == name:
                new = case["relabel_dtype"][1]
                assert DTYPE_SIZE[new] == DTYPE_SIZE[info["dtype"]]
                info["dtype"] = new
            if case.get("renumber_last_clip_layer") and name.startswith(CLIP_LAYERS + f"{last_layer}."):
                name = CLIP_LAYERS + f"{last_layer + 1}." + name[len(CLIP_LAYERS + f"{last_layer}."):]
            items.append((name, info, b, e))
        if case.get("shard"):
            half = len(items) // 2
            shards = [("model-00001-of-00002.safetensors", items[:half]),
                      ("model-00002-of-00002.safetensors", items[half:])]
            weight_map = {}
            for fname, part in shards:
                write_from(src, data_start, os.path.join(d, fname), part, metadata)
                weight_map.update({n: fname for n, _, _, _ in part})
            total = sum(e - b for _, _, b, e in items)
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
                json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, fh, indent=2)
                fh.write("\n")
        else:
            write_from(src, data_start, os.path.join(d, "model.safetensors"), items, metadata)
        print(f"{case['name']}: {case['description']}")


# ----------------------------------------------------------------------------- reader fixtures
def f8_decode(b, exp_bits, fnuz=False):
    """An FP8 byte as a Python float: E4M3FN (bias 7, S.1111.111 NaN), E5M2 (bias 15, IEEE
    specials) or, with fnuz, E4M3FNUZ / E5M2FNUZ (bias 8 / 16, 0x80 the only NaN)."""
    man_bits = 7 - exp_bits
    if fnuz:
        if b == 0x80:
            return math.nan
        bias = 1 << (exp_bits - 1)
    else:
        bias = (1 << (exp_bits - 1)) - 1
    sign = -1.0 if b & 0x80 else 1.0
    e = (b >> man_bits) & ((1 << exp_bits) - 1)
    m = b & ((1 << man_bits) - 1)
    if not fnuz:
        if exp_bits == 4 and e == 15 and m == 7:
            return math.nan
        if exp_bits == 5 and e == 31:
            return sign * math.inf if m == 0 else math.nan
    if e == 0:
        return sign * m * 2.0 ** (1 - bias - man_bits)
    return sign * (1 + m / (1 << man_bits)) * 2.0 ** (e - bias)


def e8m0_decode(b):
    return math.nan if b == 0xFF else 2.0 ** (b - 127)


def f32_bits(x):
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return struct.unpack("<I", struct.pack("<f", x))[0]


def lcg(seed):
    while True:
        seed = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
        yield seed >> 33


def dtype_tensors():
    """(name, dtype, shape, data bytes, expected Python floats) for every readable dtype.
    Lengths are not multiples of 16 so that both the vector loop and the tail of the
    conversion run."""
    rnd = lcg(12345)
    out = []
    f32_vals = [0.0, -0.0, 1.0, -1.5, 3.1415927410125732, 1e-45, 1.1754943508222875e-38, 3.4028234663852886e38,
                math.inf, -math.inf, 65504.0, 1e-8, -2.5e-3, 7.0, 0.1, 123456.78125, -1e30]
    f32_vals += [struct.unpack("<f", struct.pack("<I", next(rnd) & 0x7F7FFFFF | (next(rnd) & 1) << 31))[0]
                 for _ in range(20)]
    out.append(("f32", "F32", [len(f32_vals)], f32(f32_vals), [struct.unpack("<f", struct.pack("<f", v))[0] for v in f32_vals]))

    f16_bits = [0x0000, 0x8000, 0x3C00, 0xC000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00,
                0x3555, 0x7E00, 0x2E66, 0x5640, 0xB800]
    f16_bits += [next(rnd) & 0xFFFF for _ in range(20)]
    out.append(("f16", "F16", [len(f16_bits)], struct.pack("<%dH" % len(f16_bits), *f16_bits),
                [struct.unpack("<e", struct.pack("<H", h))[0] for h in f16_bits]))

    bf_bits = [0x0000, 0x8000, 0x3F80, 0xC000, 0x0001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0,
               0x3EAB, 0x4049, 0xBDCD, 0x4700, 0x3A83]
    bf_bits += [next(rnd) & 0xFFFF for _ in range(20)]
    out.append(("bf16", "BF16", [len(bf_bits)], struct.pack("<%dH" % len(bf_bits), *bf_bits),
                [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in bf_bits]))

    f64_vals = [0.0, -1.25, 1e-300, 3.0e38, 1e100, -math.inf, 0.1]
    out.append(("f64", "F64", [len(f64_vals)], struct.pack("<%dd" % len(f64_vals), *f64_vals), f64_vals))

    ints = {
        "i8": ("I8", "b", [0, 1, -1, 127, -128, 42, -7]),
        "u8": ("U8", "B", [0, 1, 255, 128, 42, 7, 200]),
        "bool": ("BOOL", "B", [0, 1, 1, 0, 1]),
        "i16": ("I16", "h", [0, -1, 32767, -32768, 1234]),
        "u16": ("U16", "H", [0, 65535, 32768, 1234]),
        "i32": ("I32", "i", [0, -1, 2**31 - 1, -2**31, 16777216, 123456]),
        "u32": ("U32", "I", [0, 2**32 - 1, 2**31, 16777216, 99]),
        "i64": ("I64", "q", list(range(0, 577, 48)) + [-1, 2**40, -2**62]),   # a position_ids-like buffer
        "u64": ("U64", "Q", [0, 1, 2**63, 2**40, 12345]),
    }
    for name, (dtype, fmt, vals) in ints.items():
        data = struct.pack("<%d%s" % (len(vals), fmt), *vals)
        expected = [float(1.0 if v else 0.0) if dtype == "BOOL" else float(v) for v in vals]
        out.append((name, dtype, [len(vals)], data, expected))

    all_bytes = bytes(range(256))
    out.append(("f8_e4m3", "F8_E4M3", [16, 16], all_bytes, [f8_decode(b, 4) for b in all_bytes]))
    out.append(("f8_e5m2", "F8_E5M2", [16, 16], all_bytes, [f8_decode(b, 5) for b in all_bytes]))
    out.append(("f8_e4m3fnuz", "F8_E4M3FNUZ", [256], all_bytes, [f8_decode(b, 4, fnuz=True) for b in all_bytes]))
    out.append(("f8_e5m2fnuz", "F8_E5M2FNUZ", [256], all_bytes, [f8_decode(b, 5, fnuz=True) for b in all_bytes]))
    out.append(("f8_e8m0", "F8_E8M0", [256], all_bytes, [e8m0_decode(b) for b in all_bytes]))
    out.append(("scalar", "F32", [], f32([0.3]), [struct.unpack("<f", struct.pack("<f", 0.3))[0]]))
    out.append(("empty", "F16", [3, 0], b"", []))
    return out


def float_to_f32_bits(v):
    """The float32 nearest to v (round to nearest even), as bits; "nan" for NaN."""
    if math.isnan(v):
        return "nan"
    try:
        return struct.unpack("<I", struct.pack("<f", v))[0]
    except OverflowError:                      # |v| beyond float32: rounds to infinity
        return 0x7F800000 if v > 0 else 0xFF800000


def expected_entry(dtype, shape, values, shard=None):
    e = {"dtype": dtype, "shape": shape, "float32_bits": [float_to_f32_bits(v) for v in values]}
    if shard is not None:
        e["file"] = shard
    return e


def check_with_torch(tensors):
    """Cross-checks the FP8 and F16 decoding above against torch (optional, not needed to run)."""
    import torch
    dtypes = {"F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
              "F8_E4M3FNUZ": torch.float8_e4m3fnuz, "F8_E5M2FNUZ": torch.float8_e5m2fnuz,
              "F16": torch.float16, "BF16": torch.bfloat16}
    if hasattr(torch, "float8_e8m0fnu"):
        dtypes["F8_E8M0"] = torch.float8_e8m0fnu
    for name, dtype, shape, data, expected in tensors:
        if dtype not in dtypes or not data:
            continue
        t = torch.frombuffer(bytearray(data), dtype=dtypes[dtype]).float()
        got = [float_to_f32_bits(float(x)) for x in t.tolist()]
        want = [float_to_f32_bits(v) for v in expected]
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
        if bad:
            raise SystemExit(f"torch disagrees on {name} ({dtype}): first differences {bad[:5]}")
        print(f"torch agrees on {name} ({dtype}, {len(want)} values)")


def write_valid(out, torch_check):
    if os.path.exists(out):
        shutil.rmtree(out)
    tensors = dtype_tensors()
    if torch_check:
        check_with_torch(tensors)
    os.makedirs(os.path.join(out, "dtypes"))
    with open(os.path.join(out, "dtypes", "model.safetensors"), "wb") as fh:
        fh.write(safetensors([(n, d, s, b) for n, d, s, b, _ in tensors], {"format": "pt"}))
    expected = {"dtypes": {n: expected_entry(d, s, v) for n, d, s, _, v in tensors}}

    # sharded: index + two shards, tensors with distinct values and dtypes
    names = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
             "model.layers.1.input_layernorm.weight", "lm_head.weight"]
    rnd = lcg(777)
    shards = {"model-00001-of-00002.safetensors": [], "model-00002-of-00002.safetensors": []}
    sharded_expected = {}
    for i, name in enumerate(names):
        shard = "model-00001-of-00002.safetensors" if i < 2 else "model-00002-of-00002.safetensors"
        dtype = ["BF16", "F32", "F16", "BF16"][i]
        shape = [[6, 4], [4], [4], [6, 4]][i]
        n = math.prod(shape)
        vals = [((next(rnd) % 255) - 127) / 32.0 for _ in range(n)]   # 8 significant bits: exact in BF16/F16/F32
        if dtype == "BF16":
            data = bf16(vals)
        elif dtype == "F16":
            data = struct.pack("<%de" % n, *vals)
        else:
            data = f32(vals)
        shards[shard].append((name, dtype, shape, data))
        sharded_expected[name] = expected_entry(dtype, shape, vals, shard)
    d = os.path.join(out, "sharded")
    os.makedirs(d)
    weight_map = {}
    for fname, ts in shards.items():
        with open(os.path.join(d, fname), "wb") as fh:
            fh.write(safetensors(ts, {"format": "pt"}))
        weight_map.update({t[0]: fname for t in ts})
    total = sum(len(t[3]) for ts in shards.values() for t in ts)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=2)
        fh.write("\n")
    expected["sharded"] = sharded_expected
    with open(os.path.join(out, "expected.json"), "w") as fh:
        json.dump({"generator": "scripts/make_malformed_weights.py", **expected}, fh, indent=1)
        fh.write("\n")


# ----------------------------------------------------------------------------- main
def write_corpus(out):
    corpus = build_corpus()
    names = [c["name"] for c in corpus.cases]
    assert len(names) == len(set(names)), "duplicate case names"
    if os.path.exists(out):
        if not os.path.exists(os.path.join(out, "expectations.json")):
            raise SystemExit(f"{out} exists but holds no expectations.json; refusing to replace it")
        shutil.rmtree(out)
    os.makedirs(out)
    listing = []
    for case in corpus.cases:
        d = os.path.join(out, case["name"])
        os.makedirs(d)
        for rel, data in case["files"].items():
            p = os.path.join(d, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as fh:
                fh.write(data)
        listing.append({k: case[k] for k in ("name", "status", "message", "description")})
    for case in DERIVED:
        listing.append({"name": case["name"], "status": case["status"], "message": case["message"],
                        "description": case["description"], "derived": True,
                        **({"tensor": case["tensor"]} if "tensor" in case else {})})
    doc = {
        "generator": "scripts/make_malformed_weights.py",
        "how_to_check": ("Load each directory as a model: status is the Swift Status case name that the load "
                         "must fail with (\"ok\": it must load), message a substring of the error message. "
                         "Config cases carry valid tiny weights and weight cases a valid config, so the order in "
                         "which a loader reads them does not matter, except in dir-no-model-files, which has "
                         "neither (config.json is expected to be read first). No case has tokenizer files, so "
                         "the tokenizer must be looked for after config.json and the weights. Cases with "
                         "\"derived\": true are not committed: make them with --from-model DIR --out OUT from a "
                         "tiny model directory (e.g. .build-assets/models/coffee-v2-mask7); they fail only when "
                         "the model's stages look up their tensors (\"tensor\" names the one involved)."),
        "cases": listing,
    }
    with open(os.path.join(out, "expectations.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    print(f"{len(corpus.cases)} committed cases and {len(DERIVED)} derived cases listed in {out}/expectations.json")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="corpus directory (default Tests/Fixtures/malformed), or with --from-model "
                                  "the directory for the derived cases")
    ap.add_argument("--valid-out", default=DEFAULT_VALID_OUT, help="reader fixtures directory")
    ap.add_argument("--from-model", help="write the derived model-level cases from this tiny model directory")
    ap.add_argument("--check-with-torch", action="store_true", help="cross-check FP8/F16/BF16 decoding with torch")
    a = ap.parse_args(argv)
    if a.from_model:
        if not a.out:
            ap.error("--from-model needs --out")
        derive(a.from_model, a.out)
        return
    write_corpus(a.out or DEFAULT_OUT)
    write_valid(a.valid_out, a.check_with_torch)


if __name__ == "__main__":
    main()
