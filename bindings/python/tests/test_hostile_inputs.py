"""Hostile inputs through the Python binding (issue 12): each ends in the documented exception,
never a crash, a hang or a silently changed result. The inputs are generated here, small."""
import json
import os
import struct
import zlib

import pytest
from conftest import FIXTURES, UPSTREAM

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
