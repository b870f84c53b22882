"""Images through Python: every golden image (Tests/Fixtures/images/golden.json, pixels hashed
from Pillow's Image.open(f).convert('RGB')) from a file and from memory, the corrupt corpus with
its documented statuses, the pixel limit, raw RGB buffers and PIL / numpy input."""
import ctypes
import hashlib
import json

import numpy as np
import pytest
from conftest import ASSETS, FIXTURES
from PIL import Image as PILImage

import llavauhd
from llavauhd import _errors
from llavauhd._lib import ImageLoadParams, lib

GOLDEN = json.loads((FIXTURES / "images" / "golden.json").read_text())
STATUS = {"badImage": llavauhd.BadImageError, "imageTooLarge": llavauhd.ImageTooLargeError}


def path_of(entry):
    base = ASSETS if entry.get("origin") == "real" else FIXTURES / "images"
    return base / entry["file"]


def sha256(image):
    return hashlib.sha256(image.to_array().tobytes()).hexdigest()


@pytest.mark.parametrize("entry", GOLDEN["images"], ids=[e["file"] for e in GOLDEN["images"]])
def test_golden_images_decode_like_pillow(entry, assets):
    path = path_of(entry)
    expected = entry.get("deviation", {}).get("status") if "deviation" in entry else None
    if expected:
        with pytest.raises(STATUS[expected]):
            llavauhd.Image.open(path)
        return
    for img in (llavauhd.Image.open(path), llavauhd.Image.from_bytes(path.read_bytes())):
        assert img.size == (entry["width"], entry["height"])
        assert sha256(img) == entry["sha256"]


@pytest.mark.parametrize("entry", GOLDEN["corrupt"], ids=[e["file"] for e in GOLDEN["corrupt"]])
def test_corrupt_images_fail_as_documented(entry):
    path = path_of(entry)
    outcome = entry["deviation"] if "deviation" in entry else entry["pillow"]
    data = path.read_bytes()
    if outcome.get("ok"):
        for img in (llavauhd.Image.open(path), llavauhd.Image.from_bytes(data)):
            assert img.size == (outcome["width"], outcome["height"]) and sha256(img) == outcome["sha256"]
        return
    cls = STATUS[outcome["status"]]
    with pytest.raises(cls) as err:
        llavauhd.Image.open(path)
    assert err.value.message.startswith("luhd_image_load_file: ")
    with pytest.raises(cls):
        llavauhd.Image.from_bytes(data)


def test_prefix_sweeps_never_crash():
    """Every prefix of a few small files: a status, never a crash; a prefix Pillow decodes gives
    Pillow's pixels, except the documented deviation (golden.json -> prefix_sweeps)."""
    for sweep in GOLDEN["prefix_sweeps"]:
        data = (FIXTURES / "images" / sweep["file"]).read_bytes()
        assert len(data) == sweep["length"]
        refuse_below = sweep.get("deviation", {}).get("below", 0)
        for n in range(len(data) + 1):
            want = sweep["pillow_decodes"].get(str(n)) if n >= refuse_below else None
            try:
                img = llavauhd.Image.from_bytes(data[:n])
            except llavauhd.BadImageError:
                assert want is None, (sweep["file"], n)
                continue
            assert want is not None and sha256(img) == want, (sweep["file"], n)


def test_max_pixels(assets):
    path = assets / "images" / "coffee.png"  # 600 x 400
    assert llavauhd.Image.open(path, max_pixels=600 * 400).size == (600, 400)
    with pytest.raises(llavauhd.ImageTooLargeError):
        llavauhd.Image.open(path, max_pixels=600 * 400 - 1)
    with pytest.raises(llavauhd.ImageTooLargeError):
        llavauhd.Image.from_bytes(path.read_bytes(), max_pixels=1000)
    for bad in (0, -1):
        with pytest.raises(llavauhd.InvalidArgumentError):
            llavauhd.Image.open(path, max_pixels=bad)
    # The limit is checked on the header: a 65000 x 65000 JPEG of a few bytes is refused.
    with pytest.raises(llavauhd.ImageTooLargeError, match="65000x65000"):
        llavauhd.Image.open(FIXTURES / "images" / "corrupt" / "jpeg_huge.jpg")


def test_file_errors(tmp_path):
    with pytest.raises(llavauhd.FileAccessError):
        llavauhd.Image.open(tmp_path / "missing.png")
    with pytest.raises((llavauhd.FileAccessError, llavauhd.BadImageError)):
        llavauhd.Image.open(tmp_path)  # a directory
    with pytest.raises(llavauhd.BadImageError):
        llavauhd.Image.from_bytes(b"")


def test_from_array_and_from_pil(assets):
    pil = PILImage.open(assets / "images" / "astronaut.png")
    want = np.asarray(pil.convert("RGB"))
    img = llavauhd.Image.from_array(want)
    np.testing.assert_array_equal(img.to_array(), want)
    np.testing.assert_array_equal(llavauhd.Image.from_pil(pil).to_array(), want)
    # Padded rows (a crop of a wider array), a flipped view, a column slice: copied as pixels.
    wide = np.zeros((64, 100, 3), np.uint8)
    wide[:, :50] = want[:64, :50]
    np.testing.assert_array_equal(llavauhd.Image.from_array(wide[:, :50]).to_array(), want[:64, :50])
    np.testing.assert_array_equal(llavauhd.Image.from_array(want[::-1]).to_array(), want[::-1])
    np.testing.assert_array_equal(llavauhd.Image.from_array(want[:, ::2]).to_array(), want[:, ::2])
    # Other PIL modes are converted as Pillow converts them.
    for mode in ("L", "RGBA", "P", "CMYK", "1"):
        other = pil.convert(mode)
        np.testing.assert_array_equal(llavauhd.Image.from_pil(other).to_array(), np.asarray(other.convert("RGB")))
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)):
        with pytest.raises(ValueError):
            llavauhd.Image.from_array(bad)
    with pytest.raises(llavauhd.InvalidArgumentError):
        llavauhd.Image.from_array(np.zeros((0, 4, 3), np.uint8))


def test_raw_rgb_and_image_calls():
    """luhd_image_from_rgb / _size / _rgb / _load_* directly: NULL pointers, sizes, strides,
    wrong struct_size, the default pixel limit."""
    out = ctypes.c_void_p()
    buf = (ctypes.c_uint8 * (5 * 4 * 3 + 16))(*range(76))
    assert lib.luhd_image_from_rgb(None, 4, 4, 0, ctypes.byref(out)) == 1
    assert lib.luhd_image_from_rgb(buf, 4, 4, 0, None) == 1
    for w, h in ((0, 4), (4, 0), (-1, 4)):
        assert lib.luhd_image_from_rgb(buf, w, h, 0, ctypes.byref(out)) == 1
    assert lib.luhd_image_from_rgb(buf, 4, 4, 11, ctypes.byref(out)) == 1  # stride < 3 * width
    assert b"stride" in lib.luhd_last_error()
    assert lib.luhd_image_from_rgb(buf, 4, 4, 2 ** 64 - 1, ctypes.byref(out)) in (1, 9)  # absurd stride
    # Over the default limit: refused before the (too small) buffer is read.
    assert lib.luhd_image_from_rgb(buf, 20000, 10000, 0, ctypes.byref(out)) == 9
    assert not out
    # Stride 15: 4 pixels of 3 bytes and 3 bytes of padding per row.
    assert lib.luhd_image_from_rgb(buf, 4, 4, 15, ctypes.byref(out)) == 0
    img = llavauhd.Image(out.value)
    rows = np.frombuffer(bytes(buf), np.uint8)[:60].reshape(4, 15)[:, :12].reshape(4, 4, 3)
    np.testing.assert_array_equal(img.to_array(), rows)
    w = ctypes.c_int32()
    assert lib.luhd_image_size(None, ctypes.byref(w), None) == 1
    assert lib.luhd_image_size(img._handle, ctypes.byref(w), None) == 0 and w.value == 4
    assert lib.luhd_image_size(img._handle, None, None) == 0
    px = ctypes.POINTER(ctypes.c_uint8)()
    assert lib.luhd_image_rgb(None, ctypes.byref(px)) == 1
    assert lib.luhd_image_rgb(img._handle, None) == 1
    lib.luhd_image_free(None)
    png = (FIXTURES / "images" / "corrupt" / "jpeg_no_eoi_accepted.jpg").read_bytes()
    assert lib.luhd_image_load_memory(None, 10, None, ctypes.byref(out)) == 1
    assert lib.luhd_image_load_memory(png, len(png), None, None) == 1
    assert lib.luhd_image_load_file(None, None, ctypes.byref(out)) == 1
    assert lib.luhd_image_load_file(b"x.png", None, None) == 1
    p = ImageLoadParams()  # struct_size 0
    assert lib.luhd_image_load_memory(png, len(png), ctypes.byref(p), ctypes.byref(out)) == 1
    assert b"struct_size" in lib.luhd_last_error()
    d = lib.luhd_image_load_default_params()
    assert d.struct_size == ctypes.sizeof(ImageLoadParams) and d.max_pixels == llavauhd.DEFAULT_MAX_PIXELS
    assert lib.luhd_image_load_file(b"bad\xff\xfe.png", None, ctypes.byref(out)) in (2, 11)


def test_errors_map_to_their_exception_class():
    with pytest.raises(llavauhd.Error) as err:
        llavauhd.Image.from_bytes(b"GIF89a....")
    assert type(err.value) is llavauhd.BadImageError and err.value.status == 8
    assert isinstance(err.value, _errors.Error)
