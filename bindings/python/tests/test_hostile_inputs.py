"""Hostile inputs through the Python binding (issue 12): each ends in the documented exception,
never a crash, a hang or a silently changed result. The inputs are generated here, small."""
import json
import os
import struct
import zlib

import pytest
from conftest import (
    FIXTURES,
    GGUF,
    GGUF_ARRAY,
    GGUF_F32,
    GGUF_I32,
    GGUF_SCALARS,
    GGUF_STRING,
    GGUF_U32,
    GGUF_U64,
    UPSTREAM,
    cut_array,
    gguf_string,
)

import llavauhd
from llavauhd import _errors

PHOTO = UPSTREAM / "small-noslice" / "input.png"
TWO_TOKENS = llavauhd.Sampling(max_new_tokens=2)


def png(width: int, height: int, data: bytes = b"\x00" * 8) -> bytes:
    """A PNG declaring width x height 8-bit RGB, with `data` (zlib-compressed) as its image data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


def test_unaddressable_png_is_out_of_memory():
    with pytest.raises(_errors.OutOfMemoryError):
        llavauhd.Image.from_bytes(png(2147483647, 1073741824), max_pixels=2**62)


def test_huge_png_with_raised_limit_ends_in_a_status():
    # 30 GB of pixels: refused by the system (out of memory) or, where granted, the data ends
    # in the first rows (bad image). Never an abort.
    with pytest.raises((_errors.OutOfMemoryError, _errors.BadImageError)):
        llavauhd.Image.from_bytes(png(100000, 100000), max_pixels=2**62)


def many_scan_jpeg(scans: int) -> bytes:
    """grey_progressive.jpg with its last scan repeated until the file has `scans` scans."""
    data = (FIXTURES / "images" / "derived" / "grey_progressive.jpg").read_bytes()
    starts, i = [], 2
    while i + 1 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0x00, 0xFF) or 0xD0 <= marker <= 0xD7:
            i += 1
            continue
        if marker == 0xD9:
            break
        if marker == 0xDA:
            starts.append(i)
        i += 2 + (data[i + 2] << 8 | data[i + 3])
        if marker == 0xDA:
            while i + 1 < len(data) and not (data[i] == 0xFF and data[i + 1] != 0 and not 0xD0 <= data[i + 1] <= 0xD7):
                i += 1
    end = data.rindex(b"\xff\xd9")
    last = data[starts[-1]:end]
    return data[:end] + last * (scans - len(starts)) + b"\xff\xd9"


def test_jpeg_with_thousands_of_scans_is_refused():
    with pytest.raises(_errors.BadImageError, match="500 scans"):
        llavauhd.Image.from_bytes(many_scan_jpeg(3000))
    assert llavauhd.Image.from_bytes(many_scan_jpeg(500)).size == llavauhd.Image.from_bytes(
        (FIXTURES / "images" / "derived" / "grey_progressive.jpg").read_bytes()).size


def test_preresize_far_beyond_the_image_is_refused(load_model):
    model = load_model("small-noslice")
    tiny = llavauhd.Image.from_bytes(png(1, 1, b"\x00\x10\x20\x30"))
    with pytest.raises(_errors.ImageTooLargeError):
        model.plan(tiny, preresize_long_side=32768)
    assert model.plan(tiny, preresize_long_side=1536).resized_size == (1536, 1536)


def test_config_integer_outside_32_bits_is_bad_config(assets, tmp_path):
    source = assets / "models" / "small-noslice"
    for entry in source.iterdir():
        if entry.name != "config.json":
            os.symlink(entry, tmp_path / entry.name)
    config = json.loads((source / "config.json").read_text())
    config["max_position_embeddings"] = 3000000000
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(_errors.BadConfigError, match="max_position_embeddings"):
        llavauhd.Model(tmp_path)


def test_llm_gguf_outside_the_directory_is_bad_config(assets, tmp_path):
    source = assets / "models" / "small-noslice"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for entry in source.iterdir():
        if entry.name != "config.json":
            os.symlink(entry, model_dir / entry.name)
    (tmp_path / "outside.gguf").write_bytes(b"GGUF")
    config = json.loads((source / "config.json").read_text())
    for name in ["../outside.gguf", str(tmp_path / "outside.gguf")]:
        config["llm_gguf"] = name
        (model_dir / "config.json").write_text(json.dumps(config))
        with pytest.raises(_errors.BadConfigError, match="llm_gguf"):
            llavauhd.Model(model_dir)


def test_image_text_in_system_prompt_and_message_is_plain_text(load_model):
    model = load_model("small-noslice")
    with llavauhd.Session(model, system_prompt="Never write <image>.") as session:
        session.chat("Hello", sampling=TWO_TOKENS)
        session.chat("What is <image>?", sampling=TWO_TOKENS)
        image = llavauhd.Image.open(PHOTO)
        session.chat("Look: <image>", [image], sampling=TWO_TOKENS)
        session.chat("And now?", sampling=TWO_TOKENS)


def test_eval_with_many_images_is_refused_before_encoding(load_model):
    model = load_model("small-noslice")
    image = llavauhd.Image.open(PHOTO)
    with llavauhd.Session(model, n_ctx=256) as session:
        with pytest.raises(_errors.ContextFullError):
            session.eval([1] + [llavauhd.IMAGE_TOKEN] * 20 + [2], [image] * 20)
        assert session.context[0] == 0


def test_huge_message_is_refused_before_tokenizing(load_model):
    model = load_model("chelsea-qwen2-mask5")
    with llavauhd.Session(model) as session:
        with pytest.raises(_errors.ContextFullError, match="bytes"):
            session.chat("word " * 4_000_000, sampling=TWO_TOKENS)
        assert session.context[0] == 0


def test_huge_jpeg_under_an_address_space_cap_is_out_of_memory():
    # 65000x65000 (12.7 GB of pixels) with the pixel limit raised, in a process capped at 4 GB
    # of address space: the allocation fails and the call says so (it used to abort).
    import subprocess
    import sys
    script = (
        "import resource, sys, llavauhd\n"
        "from llavauhd import _errors\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        "try:\n"
        "    llavauhd.Image.open(sys.argv[1], max_pixels=2**62)\n"
        "except _errors.OutOfMemoryError:\n"
        "    print('out of memory')\n"
    )
    path = FIXTURES / "images" / "corrupt" / "jpeg_huge.jpg"
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "out of memory"


# --- Text-only GGUF models with lying metadata -----------------------------------------------
# Each case changes one thing in conftest's text_gguf, a loadable text-only model.

def lie(base: GGUF, change) -> GGUF:
    copy = GGUF(base.encode())
    change(copy)
    return copy


def drop_tensor(name: str):
    def change(g: GGUF) -> None:
        g.tensors = [t for t in g.tensors if t["name"] != name]
    return change


def set_tensor(name: str, **fields):
    def change(g: GGUF) -> None:
        g.tensor(name).update(fields)
    return change


def set_key(key: str, kind: int, value):
    return lambda g: g.set(key, kind, value)


def array_count(key: str, count: int):
    """Keeps `key`'s elements but declares `count` of them."""
    def change(g: GGUF) -> None:
        kind, value = g.get(key)
        g.set_raw(key, kind, value[:4] + struct.pack("<Q", count) + value[12:])
    return change


def add_tokens(n: int):
    """n more tokenizer pieces (with scores and types) than the embedding table has rows."""
    def change(g: GGUF) -> None:
        for key, element, extra in (("tokenizer.ggml.tokens", GGUF_STRING, [f"extra{i}" for i in range(n)]),
                                    ("tokenizer.ggml.scores", GGUF_F32, [0.0] * n),
                                    ("tokenizer.ggml.token_type", GGUF_I32, [1] * n)):
            kind, value = g.get(key)
            size = struct.unpack_from("<Q", value, 4)[0] + n
            encoded = b"".join(gguf_string(v) if element == GGUF_STRING else struct.pack(GGUF_SCALARS[element], v)
                               for v in extra)
            g.set_raw(key, kind, value[:4] + struct.pack("<Q", size) + value[12:] + encoded)
    return change


def truncate(g: GGUF) -> None:
    g.data = g.data[:len(g.data) // 2]


# (name, change, the exception of the load; None: the model loads and answers; ("chat", exception):
# it loads and a chat raises the exception)
GGUF_LIES = [
    ("architecture-gemma", set_key("general.architecture", GGUF_STRING, "gemma2"), _errors.UnsupportedModelError),
    ("architecture-not-a-string", set_key("general.architecture", GGUF_U32, 7), _errors.BadConfigError),
    ("architecture-missing", lambda g: g.remove("general.architecture"), _errors.BadConfigError),
    ("block-count-2^40", set_key("llama.block_count", GGUF_U64, 2**40), _errors.BadConfigError),
    ("block-count-0", set_key("llama.block_count", GGUF_U32, 0), _errors.BadConfigError),
    ("block-count-3", set_key("llama.block_count", GGUF_U32, 3), _errors.MissingTensorError),
    ("block-count-1", set_key("llama.block_count", GGUF_U32, 1), _errors.TensorMismatchError),
    ("context-length-negative", set_key("llama.context_length", GGUF_I32, -1), _errors.BadConfigError),
    ("context-length-2^31", set_key("llama.context_length", GGUF_U32, 2**31), _errors.BadConfigError),
    ("context-length-int32-max", set_key("llama.context_length", GGUF_U32, 2**31 - 1), None),
    ("heads-not-dividing-hidden", set_key("llama.attention.head_count", GGUF_U32, 3), _errors.BadConfigError),
    ("kv-heads-0", set_key("llama.attention.head_count_kv", GGUF_U32, 0), _errors.BadConfigError),
    ("kv-heads-above-heads", set_key("llama.attention.head_count_kv", GGUF_U32, 8), _errors.BadConfigError),
    ("odd-head-width", lambda g: (g.set("llama.attention.head_count", GGUF_U32, 128),
                                  g.remove("llama.rope.dimension_count")), _errors.BadConfigError),
    ("head-width-not-rotary-width", set_key("llama.attention.head_count", GGUF_U32, 128),
     _errors.UnsupportedModelError),
    ("hidden-doubled", lambda g: (g.set("llama.embedding_length", GGUF_U32, 256),
                                  g.remove("llama.rope.dimension_count")), _errors.TensorMismatchError),
    ("ffn-lies", set_key("llama.feed_forward_length", GGUF_U32, 4096), _errors.TensorMismatchError),
    ("eps-nan", set_key("llama.attention.layer_norm_rms_epsilon", GGUF_F32, float("nan")), _errors.BadConfigError),
    ("rope-base-inf", set_key("llama.rope.freq_base", GGUF_F32, float("inf")), _errors.BadConfigError),
    ("rope-base-1", set_key("llama.rope.freq_base", GGUF_F32, 1.0), _errors.BadConfigError),
    ("rope-dims-partial", set_key("llama.rope.dimension_count", GGUF_U32, 16), _errors.UnsupportedModelError),
    ("rope-scaling-yarn", set_key("llama.rope.scaling.type", GGUF_STRING, "yarn"), _errors.UnsupportedModelError),
    ("sliding-window", set_key("llama.attention.sliding_window", GGUF_U32, 4), _errors.UnsupportedModelError),
    ("vocab-size-lies", set_key("llama.vocab_size", GGUF_U32, 1000), _errors.BadConfigError),
    ("bos-outside", set_key("tokenizer.ggml.bos_token_id", GGUF_U32, 2**31), _errors.BadConfigError),
    ("eos-negative", set_key("tokenizer.ggml.eos_token_id", GGUF_I32, -5), _errors.BadConfigError),
    ("eos-past-tokenizer", set_key("tokenizer.ggml.eos_token_id", GGUF_U32, 511), None),
    ("no-eos-no-bos", lambda g: [g.remove(k) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id")],
     None),
    ("tokens-count-2^62", array_count("tokenizer.ggml.tokens", 2**62), _errors.BadWeightsError),
    ("tokens-count-short", array_count("tokenizer.ggml.tokens", 100), _errors.BadWeightsError),
    ("tokens-fewer-than-scores", lambda g: g.set_raw("tokenizer.ggml.tokens", GGUF_ARRAY,
                                                     cut_array(g.get("tokenizer.ggml.tokens")[1], 300)),
     _errors.BadTokenizerError),
    ("tokens-more-than-rows", add_tokens(8), _errors.BadTokenizerError),
    ("tokens-not-strings", set_key("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_U32, list(range(512)))),
     _errors.BadTokenizerError),
    ("tokenizer-model-bert", set_key("tokenizer.ggml.model", GGUF_STRING, "bert"), _errors.UnsupportedModelError),
    ("tokenizer-missing", lambda g: g.remove("tokenizer.ggml.tokens"), _errors.BadTokenizerError),
    ("template-not-a-string", set_key("tokenizer.chat_template", GGUF_U32, 1), None),
    ("template-1-MB", set_key("tokenizer.chat_template", GGUF_STRING, "[INST]<|im_start|>" * 60000), None),
    ("template-unknown", set_key("tokenizer.chat_template", GGUF_STRING, "{{ messages }}"), None),
    ("template-invalid-utf8", set_key("tokenizer.chat_template", GGUF_STRING, b"\xff\xfe<|im_start|>"),
     _errors.BadWeightsError),
    ("tied-embeddings", drop_tensor("output.weight"), None),
    ("no-embeddings", drop_tensor("token_embd.weight"), _errors.MissingTensorError),
    ("no-final-norm", drop_tensor("output_norm.weight"), _errors.MissingTensorError),
    ("no-attn-q", drop_tensor("blk.1.attn_q.weight"), _errors.MissingTensorError),
    ("embeddings-3-d", set_tensor("token_embd.weight", dims=[128, 256, 2]), _errors.MissingTensorError),
    ("head-transposed", set_tensor("output.weight", dims=[512, 128]), _errors.TensorMismatchError),
    ("dims-overflow", set_tensor("blk.0.attn_q.weight", dims=[2**32, 2**32]), _errors.BadWeightsError),
    ("type-99", set_tensor("blk.0.attn_k.weight", type=99), _errors.BadWeightsError),
    ("type-i32", set_tensor("output_norm.weight", type=26), _errors.TensorMismatchError),
    # Float bytes read as Q8_0 blocks: it loads (a GGUF file cannot tell), the logits are NaN.
    ("type-q8_0-lies", set_tensor("blk.0.ffn_up.weight", type=8), ("chat", _errors.BadWeightsError)),
    ("offset-past-the-end", set_tensor("blk.1.attn_v.weight", offset=2**40), _errors.BadWeightsError),
    ("offset-misaligned", set_tensor("blk.1.attn_v.weight", offset=1115136 + 4), _errors.BadWeightsError),
    ("tensors-overlap", set_tensor("blk.1.attn_v.weight", offset=1115136), _errors.BadWeightsError),
    ("name-twice", lambda g: g.tensors.append(dict(g.tensor("output_norm.weight"))), _errors.BadWeightsError),
    ("alignment-3", set_key("general.alignment", GGUF_U32, 3), _errors.BadWeightsError),
    ("truncated-data", truncate, _errors.BadWeightsError),
]


@pytest.mark.parametrize("name, change, error", GGUF_LIES, ids=[c[0] for c in GGUF_LIES])
def test_text_only_gguf_with_lying_metadata(text_gguf, tmp_path, name, change, error):
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(lie(text_gguf, change).encode())
    if error is not None and not isinstance(error, tuple):
        with pytest.raises(error) as raised:
            llavauhd.Model(path, n_threads=1)
        assert raised.value.message
        return
    with llavauhd.Model(path, n_threads=1, chat_template="chatml") as model:
        assert not model.has_vision
        with llavauhd.Session(model, n_ctx=64) as session:
            if error is not None:
                with pytest.raises(error[1]):
                    session.chat("Hello", sampling=TWO_TOKENS)
                return
            session.chat("Hello", sampling=TWO_TOKENS)
            session.eval([1, 2, 3])
            assert session.context[0] > 3


def test_text_only_gguf_base_and_its_template(text_gguf, tmp_path):
    path = tmp_path / "base.gguf"
    path.write_bytes(text_gguf.encode())
    with llavauhd.Model(path, n_threads=1) as model:
        assert (model.has_vision, model.info.chat_template, model.info.vocab_size) == (False, "chatml", 512)
        with llavauhd.Session(model) as session:
            session.chat("Hello", sampling=TWO_TOKENS)
    unknown = lie(text_gguf, set_key("tokenizer.chat_template", GGUF_STRING, "{{ messages }}"))
    path.write_bytes(unknown.encode())
    with llavauhd.Model(path, n_threads=1) as model:
        assert model.info.chat_template == ""
        with llavauhd.Session(model) as session:
            with pytest.raises(_errors.UnsupportedModelError):
                session.chat("Hello", sampling=TWO_TOKENS)
            session.eval([1, 2])  # raw ids still work
    # The chat_template parameter: every name, and names that are not templates.
    for template in ("chatml", "llama2", "llama2-sys", "llama3", "mistral-v1", "mistral-v3", "mistral-v7", "vicuna",
                     "vicuna_v1", "qwen2_chatml"):
        with llavauhd.Model(path, n_threads=1, chat_template=template) as model:
            assert model.info.chat_template == template
            with llavauhd.Session(model, system_prompt="Be brief.") as session:
                session.chat("Hello", sampling=TWO_TOKENS)
                session.chat("Again", sampling=TWO_TOKENS)
    for template, exception in (("", _errors.InvalidArgumentError), ("CHATML", _errors.InvalidArgumentError),
                                ("x" * 1_000_000, _errors.InvalidArgumentError),
                                (b"\xff\xfe", _errors.InvalidUTF8Error), ("chatml\0llama3", ValueError)):
        with pytest.raises(exception):
            llavauhd.Model(path, n_threads=1, chat_template=template)  # type: ignore[arg-type]


def test_text_only_and_vision_session_files_do_not_cross(text_gguf, small, tmp_path):
    path = tmp_path / "text.gguf"
    path.write_bytes(text_gguf.encode())
    with llavauhd.Model(path, n_threads=1) as text:
        with llavauhd.Session(text) as s:
            s.chat("Hello", sampling=TWO_TOKENS)
            s.save(tmp_path / "text.luhds")
            with llavauhd.Session.load(text, tmp_path / "text.luhds") as again:
                assert again.context == s.context
        with llavauhd.Session(small) as s:
            s.eval([1, 450, 4996])
            s.save(tmp_path / "vision.luhds")
        with pytest.raises(_errors.SessionMismatchError):
            llavauhd.Session.load(small, tmp_path / "text.luhds")
        with pytest.raises(_errors.SessionMismatchError):
            llavauhd.Session.load(text, tmp_path / "vision.luhds")
    # The same weights framed by another template: the saved prompt would not be its own.
    with llavauhd.Model(path, n_threads=1, chat_template="llama3") as other, \
            pytest.raises(_errors.SessionMismatchError):
        llavauhd.Session.load(other, tmp_path / "text.luhds")
