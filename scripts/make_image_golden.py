#!/usr/bin/env python3
"""Write the image-decoding golden set: Tests/Fixtures/images/golden.json plus the small derived
and corrupt image files it describes (Tests/Fixtures/images/derived/, .../corrupt/).

The reference is Pillow: upstream LLaVA-UHD reads every image with
`Image.open(path).convert('RGB')`. For each image the golden set records Pillow's size and mode
and the sha256 of `convert('RGB').tobytes()`; for each corrupt or unsupported file it records what
Pillow did (the exception it raised, or the pixels it produced) and the status the Swift decoder
documents for it.

Three kinds of inputs:
  * real images: the photos and scans listed in /work/shared/assets/README.md (scikit-image,
    matplotlib, imagemagick-6-doc), read from the test-assets folder (not committed);
  * derived images (committed, each far below 100 KB): crops and resizes of those real images,
    re-encoded here to cover what the real ones do not: CMYK / Adobe CMYK / YCCK JPEGs, greyscale,
    progressive, 4:2:2 / 4:4:4, odd sizes, an 8:1 wide crop, restart markers, EXIF orientation,
    recoverable JPEG corruption, and PNGs in every IHDR bit depth / colour type, palettes with
    tRNS, Adam7 interlacing, all five row filters, split IDATs. JPEGs are encoded with Pillow,
    except a few made with libjpeg-turbo's cjpeg / jpegtran (Debian libjpeg-turbo-progs) for
    arithmetic coding, 4:4:0 / 4:1:1 / 3x2 sampling and the RGB colour space;
    PNGs with the small writer below (Pillow cannot write interlaced or 16-bit grey+alpha PNGs),
    so the PNG files do not come from the library that reads them back;
  * static/: inputs no tool here can write, made once and committed (a lossless JPEG);
  * corrupt files (committed, tiny): truncations at several points, bad CRCs, bad zlib data,
    garbage, zero sizes, huge declared sizes; and four small files whose every prefix is tried
    (golden.json lists the prefixes Pillow still decodes).

usage: /work/venv-gen/bin/python scripts/make_image_golden.py [--assets DIR] [--out DIR]
  (needs Pillow and numpy, and cjpeg + jpegtran on PATH)
  --assets  folder holding images/ (default: $LLAVAUHD_TEST_ASSETS or <repo>/.build-assets)
  --out     default <repo>/Tests/Fixtures/images
Everything is deterministic (fixed crops, fixed random seeds); the JPEG bytes depend on the
libjpeg-turbo bundled with Pillow, which golden.json records.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import PIL
from PIL import Image, features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Real images: file name in the assets' images/ folder → where it comes from.
REAL_IMAGES = {
    "astronaut.png": "scikit-image skimage/data/astronaut.png (NASA, public domain)",
    "coffee.png": "scikit-image skimage/data/coffee.png (CC0)",
    "chelsea.png": "scikit-image skimage/data/chelsea.png (CC0), has an ICC profile",
    "rocket.jpg": "scikit-image skimage/data/rocket.jpg (public domain), baseline 4:4:4",
    "hubble_deep_field.jpg": "scikit-image skimage/data/hubble_deep_field.jpg (public domain), Adobe marker",
    "retina.jpg": "scikit-image skimage/data/retina.jpg (CC0), 4:2:0",
    "text.png": "scikit-image skimage/data/text.png, greyscale",
    "page.png": "scikit-image skimage/data/page.png, greyscale scan",
    "camera.png": "scikit-image skimage/data/camera.png (CC0), greyscale",
    "horse.png": "scikit-image skimage/data/horse.png, RGBA",
    "chessboard_RGB.png": "scikit-image skimage/data/chessboard_RGB.png, 16-bit RGB",
    "grace_hopper.jpg": "matplotlib mpl-data/sample_data/grace_hopper.jpg (public domain), 4:2:0",
    "examples.jpg": "imagemagick-6-doc images/examples.jpg, very tall collage",
    "wizard.jpg": "imagemagick-6-doc images/wizard.jpg, progressive",
    "ImageMagick.png": "imagemagick-6-doc www/Magick++/ImageMagick.png, 16-bit RGB",
    "cylinder_shaded.png": "imagemagick-6-doc images/cylinder_shaded.png, 16-bit RGBA",
}

MAX_FIXTURE_BYTES = 100 * 1024


# --------------------------------------------------------------------------------------------
# A small PNG writer (independent of Pillow's encoder)
# --------------------------------------------------------------------------------------------

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data, crc=None):
    """One PNG chunk; `crc` overrides the checksum (to corrupt it)."""
    body = kind + data
    value = zlib.crc32(body) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + body + struct.pack(">I", value)


def pack_row(samples, depth):
    """A row of integer samples (already interleaved) → bytes at `depth` bits per sample."""
    samples = np.asarray(samples, dtype=np.uint32)
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per_byte = 8 // depth
    padded = np.zeros(-(-len(samples) // per_byte) * per_byte, dtype=np.uint32)
    padded[: len(samples)] = samples
    padded = padded.reshape(-1, per_byte)
    out = np.zeros(len(padded), dtype=np.uint32)
    for i in range(per_byte):
        out |= padded[:, i] << (8 - depth * (i + 1))
    return out.astype(np.uint8).tobytes()


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prior, bpp):
    """PNG filter `kind` (0..4) applied to `row` given the unfiltered `prior` row."""
    out = bytearray([kind])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prior[i]
        c = prior[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predictor) & 0xFF)
    return bytes(out)


def scanlines(pixels, depth, filters):
    """Filtered scanlines of an image (h, w, channels) of integer samples."""
    h, w, ch = pixels.shape
    bpp = max(1, ch * depth // 8)
    rows = [pack_row(pixels[y].reshape(-1), depth) for y in range(h)]
    out = bytearray()
    prior = bytes(len(rows[0])) if rows else b""
    for y, row in enumerate(rows):
        kind = filters(y) if callable(filters) else filters
        out += filter_row(kind, row, prior, bpp)
        prior = row
    return bytes(out)


def image_data(pixels, depth, interlace, filters):
    if not interlace:
        return scanlines(pixels, depth, filters)
    out = b""
    for x0, y0, dx, dy in ADAM7:
        sub = pixels[y0::dy, x0::dx]
        if sub.shape[0] and sub.shape[1]:
            out += scanlines(sub, depth, filters)
    return out


def png_file(pixels, depth, color_type, palette=None, trns=None, interlace=False, filters=lambda y: y % 5,
             before_idat=(), after_idat=(), idat_split=None, raw_data=None, ihdr_crc=None, idat_crc=None,
             iend=True, width=None, height=None, ihdr_override=None):
    """Encodes `pixels` (h, w, channels) as a PNG. The keyword arguments build the odd and broken
    variants: extra chunks, split IDATs, replaced zlib data, wrong CRCs, no IEND, other sizes."""
    h, w = pixels.shape[:2]
    w = w if width is None else width
    h = h if height is None else height
    ihdr = ihdr_override or struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr, ihdr_crc)
    out += b"".join(before_idat)
    if palette is not None:
        out += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    data = raw_data if raw_data is not None else zlib.compress(image_data(pixels, depth, interlace, filters), 9)
    pieces = [data] if idat_split is None else [data[i:i + idat_split] for i in range(0, len(data), idat_split)]
    if idat_split is not None:
        pieces.insert(1, b"")  # an empty IDAT is legal
    for i, piece in enumerate(pieces):
        out += chunk(b"IDAT", piece, idat_crc if i == 0 else None)
    out += b"".join(after_idat)
    if iend:
        out += chunk(b"IEND", b"")
    return out


# --------------------------------------------------------------------------------------------
# JPEG helpers
# --------------------------------------------------------------------------------------------

def jpeg_segments(data):
    """(marker, start, end) of each marker segment before the first SOS (end excludes nothing
    after it; SOS itself is the last entry)."""
    assert data[:2] == b"\xff\xd8"
    pos, segments = 2, []
    while pos < len(data):
        assert data[pos] == 0xFF, f"marker expected at {pos}"
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segments.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return segments


def jpeg_save(im, **options):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **options)
    return buf.getvalue()


def without_segment(data, marker):
    for m, start, end in jpeg_segments(data):
        if m == marker:
            return data[:start] + data[end:]
    raise ValueError(f"no marker {marker:#x}")


def patch_sof_size(data, width, height):
    for m, start, _ in jpeg_segments(data):
        if m in (0xC0, 0xC1, 0xC2):
            return data[:start + 5] + struct.pack(">HH", height, width) + data[start + 9:]
    raise ValueError("no SOF")


def set_adobe_transform(data, transform):
    for m, start, end in jpeg_segments(data):
        if m == 0xEE and data[start + 4:start + 9] == b"Adobe":
            pos = start + 4 + 11
            return data[:pos] + bytes([transform]) + data[pos + 1:]
    raise ValueError("no Adobe segment")


def scan_start(data):
    return jpeg_segments(data)[-1][2]


def jpegtran_tool():
    tool = shutil.which("jpegtran")
    if not tool:
        sys.exit("jpegtran is needed for the arithmetic-coded fixtures (Debian: apt-get install libjpeg-turbo-progs)")
    return tool


def jpegtran(data, *options):
    """Losslessly re-encodes a JPEG with libjpeg-turbo's jpegtran (Pillow cannot write arithmetic
    coding)."""
    return subprocess.run([jpegtran_tool(), *options], input=data, capture_output=True, check=True).stdout


def cjpeg(im, *options):
    """Encodes an RGB image with libjpeg-turbo's cjpeg, for samplings and colour spaces Pillow's
    writer does not offer."""
    tool = shutil.which("cjpeg") or sys.exit("cjpeg is needed (Debian: apt-get install libjpeg-turbo-progs)")
    ppm = io.BytesIO()
    im.save(ppm, "PPM")
    return subprocess.run([tool, *options], input=ppm.getvalue(), capture_output=True, check=True).stdout


def jpegtran_version():
    result = subprocess.run([jpegtran_tool(), "-version"], capture_output=True, text=True)
    return (result.stderr or result.stdout).strip()


# --------------------------------------------------------------------------------------------
# The fixture set
# --------------------------------------------------------------------------------------------

class Builder:
    def __init__(self, assets, out):
        self.assets = assets
        self.out = out
        self.images = []
        self.corrupt = []

    def real(self, name):
        return Image.open(os.path.join(self.assets, "images", name))

    def rgb(self, name, box=None, size=None):
        im = self.real(name).convert("RGB")
        if box:
            im = im.crop(box)
        if size:
            im = im.resize(size, Image.BICUBIC)
        return im

    def write(self, folder, name, data):
        path = os.path.join(self.out, folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        assert len(data) <= MAX_FIXTURE_BYTES, f"{name} is {len(data)} bytes"
        return f"{folder}/{name}"

    def derived(self, name, data, how):
        self.images.append({"file": self.write("derived", name, data), "origin": "derived", "how": how})

    def broken(self, name, data, how, ours=None, why=None):
        """A corrupt or unsupported file. Where Pillow fails, the decoder must fail with the matching
        status; where Pillow decodes it anyway, the decoder must give the same pixels, unless
        `ours` names the status it returns instead, deliberately (with `why`)."""
        entry = {"file": self.write("corrupt", name, data), "how": how}
        if ours:
            entry["deviation"] = {"status": ours, "why": why}
        self.corrupt.append(entry)


def pillow_outcome(path):
    """What `Image.open(path).convert('RGB')` gives: (info dict, None) or (None, error)."""
    try:
        with Image.open(path) as im:
            mode, fmt, size = im.mode, im.format, im.size
            rgb = im.convert("RGB")
            data = rgb.tobytes()
    except Image.DecompressionBombError as e:
        return None, {"type": "DecompressionBombError", "message": str(e), "status": "imageTooLarge"}
    except Exception as e:  # noqa: BLE001 - every Pillow failure is recorded as it is
        message = str(e).replace(os.path.dirname(path) + "/", "")
        return None, {"type": type(e).__name__, "message": message, "status": "badImage"}
    assert len(data) == size[0] * size[1] * 3
    return {"width": size[0], "height": size[1], "mode": mode, "format": fmt,
            "sha256": hashlib.sha256(data).hexdigest()}, None


def build_derived(b):
    # ---------------- JPEG ----------------
    photo = b.rgb("chelsea.png", box=(80, 20, 380, 220), size=(150, 100))
    cmyk = photo.convert("CMYK")
    adobe = jpeg_save(cmyk, quality=90)
    b.derived("cmyk_adobe.jpg", adobe,
              "chelsea.png crop, convert('CMYK'), saved by Pillow: 4 components, Adobe APP14 transform 0, "
              "inverted samples")
    b.derived("cmyk_plain.jpg", without_segment(adobe, 0xEE),
              "cmyk_adobe.jpg with its Adobe APP14 segment removed (plain CMYK: libjpeg assumes CMYK)")
    # YCCK: Adobe transform 2. The samples are made so the picture is right under the Adobe
    # convention (decoded CMYK inverted): Y/Cb/Cr of (C, M, Y) taken as if they were R, G, B, and
    # the inverted K.
    c, m, y, k = [np.asarray(ch, dtype=np.float64) for ch in cmyk.split()]
    luma = 0.299 * c + 0.587 * m + 0.114 * y
    cb = -0.168735892 * c - 0.331264108 * m + 0.5 * y + 128
    cr = 0.5 * c - 0.418687589 * m - 0.081312411 * y + 128
    stored = [np.clip(np.rint(v), 0, 255).astype(np.uint8) for v in (luma, cb, cr, 255 - k)]
    # Pillow writes CMYK samples inverted (raw mode "CMYK;I"): hand it 255 − the wanted samples.
    carrier = Image.merge("CMYK", [Image.fromarray(255 - s) for s in stored])
    b.derived("ycck_adobe.jpg", set_adobe_transform(jpeg_save(carrier, quality=90), 2),
              "chelsea.png crop as YCCK (Adobe APP14 transform 2): YCbCr of the CMY planes plus inverted K, "
              "encoded through Pillow's CMYK writer, then the transform byte set to 2")

    grey = b.real("camera.png").convert("L").resize((160, 160), Image.BICUBIC)
    b.derived("grey.jpg", jpeg_save(grey, quality=85), "camera.png resized to 160x160, 1-component JPEG")
    b.derived("grey_progressive.jpg", jpeg_save(grey.crop((0, 0, 97, 61)), quality=85, progressive=True),
              "camera.png crop 97x61, progressive greyscale JPEG")

    coffee = b.rgb("coffee.png", size=(180, 120))
    b.derived("progressive.jpg", jpeg_save(coffee, quality=88, progressive=True),
              "coffee.png resized to 180x120, progressive JPEG (4:2:0)")
    b.derived("progressive_444_optimized.jpg",
              jpeg_save(coffee, quality=95, progressive=True, optimize=True, subsampling=0),
              "coffee.png resized to 180x120, progressive 4:4:4 with optimized Huffman tables")
    odd = b.rgb("astronaut.png", box=(100, 40, 257, 133))  # 157x93
    b.derived("odd_420.jpg", jpeg_save(odd, quality=90, subsampling=2),
              "astronaut.png crop 157x93 (odd sizes), 4:2:0")
    b.derived("odd_422.jpg", jpeg_save(odd, quality=90, subsampling=1),
              "astronaut.png crop 157x93, 4:2:2")
    b.derived("odd_444.jpg", jpeg_save(odd, quality=90, subsampling=0),
              "astronaut.png crop 157x93, 4:4:4")
    wide = b.rgb("coffee.png", box=(0, 150, 600, 225))  # 600x75
    b.derived("wide_8x1.jpg", jpeg_save(wide, quality=85),
              "coffee.png crop 600x75: an 8:1 very wide image")
    b.derived("restart_markers.jpg", jpeg_save(odd, quality=90, restart_marker_blocks=3),
              "astronaut.png crop 157x93 with a restart marker every 3 MCUs")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    b.derived("exif_orientation6.jpg", jpeg_save(odd, quality=90, exif=exif.tobytes()),
              "astronaut.png crop 157x93 with EXIF orientation 6, which Pillow (and upstream) do not apply")
    b.derived("arithmetic_odd_420.jpg", jpegtran(jpeg_save(odd, quality=90), "-arithmetic"),
              "odd_420.jpg re-encoded by jpegtran with arithmetic coding")
    b.derived("arithmetic_progressive_ycck.jpg",
              jpegtran(set_adobe_transform(jpeg_save(carrier, quality=90), 2), "-arithmetic", "-progressive"),
              "ycck_adobe.jpg re-encoded by jpegtran as progressive with arithmetic coding")
    for sampling, name in (("1x2", "440"), ("4x1", "411"), ("3x2", "3x2")):
        b.derived(f"cjpeg_{name}.jpg", cjpeg(odd, "-quality", "90", "-sample", sampling),
                  f"astronaut.png crop 157x93 encoded by cjpeg with luma sampling {sampling}")
    b.derived("cjpeg_rgb.jpg", cjpeg(odd, "-quality", "90", "-rgb"),
              "astronaut.png crop 157x93 encoded by cjpeg in the RGB colour space (no YCbCr transform)")
    b.derived("tiny_1x1.jpg", jpeg_save(odd.crop((60, 40, 61, 41)), quality=90), "a 1x1 crop of astronaut.png")
    base = jpeg_save(odd, quality=90)
    b.derived("trailing_garbage.jpg", base + b"\x00garbage after EOI\xff\xd9",
              "odd_420.jpg with bytes after its EOI (ignored)")
    sos = scan_start(base)
    sos_marker = jpeg_segments(base)[-1][1]
    b.derived("extraneous_bytes.jpg", base[:sos_marker] + b"\x00\x11\x22" + base[sos_marker:],
              "odd_420.jpg with 3 stray bytes before its SOS marker (libjpeg warns and skips them)")
    flipped = bytearray(base)
    for offset in (sos + 700, sos + 1500, sos + 2600):
        flipped[offset] ^= 0x5A if flipped[offset] != 0xA5 else 0x11
    b.derived("corrupt_scan_data.jpg", bytes(flipped),
              "odd_420.jpg with three bytes of entropy-coded data altered: libjpeg only warns and decodes "
              "garbage blocks, which Pillow accepts")

    # ---------------- PNG (written by png_file above) ----------------
    src = np.asarray(b.rgb("astronaut.png", box=(180, 60, 241, 107)))  # 61x47 RGB
    grey8 = np.asarray(Image.fromarray(src).convert("L"))[..., None].astype(np.uint32)
    alpha = np.asarray(b.real("horse.png").convert("RGBA").resize((61, 47), Image.BICUBIC))[..., 3:4]
    rng = np.random.default_rng(7)
    low = rng.integers(0, 256, size=src.shape, dtype=np.uint32)  # random low bytes for 16-bit data
    rgb16 = src.astype(np.uint32) * 256 + low
    grey16 = grey8 * 257
    grey16_low = (grey8 * 2).astype(np.uint32)  # 0..510: values on both sides of 255
    alpha16 = alpha.astype(np.uint32) * 256 + low[..., :1]
    crop = "astronaut.png crop 61x47"

    def png(name, how, pixels, depth, color, interlaced_too=False, **kw):
        b.derived(name + ".png", png_file(pixels, depth, color, **kw), f"{crop}: {how}")
        if interlaced_too:
            b.derived(name + "_interlaced.png", png_file(pixels, depth, color, interlace=True, **kw),
                      f"{crop}: {how}, Adam7 interlaced")

    png("grey1", "1-bit grey (threshold at 128)", (grey8 >= 128).astype(np.uint32), 1, 0, True)
    png("grey2", "2-bit grey", grey8 >> 6, 2, 0)
    png("grey4", "4-bit grey", grey8 >> 4, 4, 0, True)
    png("grey8", "8-bit grey", grey8, 8, 0)
    png("grey16", "16-bit grey v·257 (opens as I;16: convert('RGB') clips at 255)", grey16, 16, 0, True)
    png("grey16_low", "16-bit grey with values 0..510 (the clip at 255 shows)", grey16_low, 16, 0)
    png("grey8_trns", "8-bit grey with a tRNS colour (ignored)", grey8, 8, 0, trns=struct.pack(">H", 40))
    png("greyalpha8", "8-bit grey + alpha (alpha from horse.png)", np.concatenate([grey8, alpha], 2), 8, 4, True)
    png("greyalpha16", "16-bit grey + alpha (opens as RGBA)", np.concatenate([grey16, alpha16], 2), 16, 4, True)
    png("rgb8", "8-bit RGB", src, 8, 2, True)
    png("rgb8_trns", "8-bit RGB with a tRNS colour (ignored)", src, 8, 2, trns=struct.pack(">HHH", 10, 20, 30))
    png("rgb16", "16-bit RGB with random low bytes", rgb16, 16, 2, True)
    png("rgba8", "8-bit RGBA (alpha from horse.png)", np.concatenate([src, alpha], 2), 8, 6, True)
    png("rgba16", "16-bit RGBA", np.concatenate([rgb16, alpha16], 2), 16, 6, True)

    # Palettes: quantise with Pillow, write the indices with our writer.
    for bits in (1, 2, 4, 8):
        q = Image.fromarray(src).quantize(colors=1 << bits, method=Image.Quantize.MEDIANCUT)
        indices = np.asarray(q)[..., None].astype(np.uint32)
        pal = np.asarray(q.getpalette()[: 3 * (1 << bits)]).reshape(-1, 3)
        png(f"palette{bits}", f"{bits}-bit palette ({1 << bits} colours)", indices, bits, 3, bits in (4, 8),
            palette=pal)
        if bits in (2, 8):
            trns = bytes(int(v) for v in np.linspace(0, 255, 1 << bits)[: max(1, (1 << bits) - 3)])
            png(f"palette{bits}_trns", f"{bits}-bit palette with a tRNS alpha table (ignored)", indices, bits, 3,
                bits == 8, palette=pal, trns=trns)
    q = Image.fromarray(src).quantize(colors=16)
    indices = np.asarray(q)[..., None].astype(np.uint32)
    short = np.asarray(q.getpalette()[:3 * 10]).reshape(-1, 3)
    png("palette4_short_plte", "4-bit palette whose PLTE has 10 entries while indices reach 15 "
        "(Pillow's palette is black past PLTE)", indices, 4, 3, palette=short)

    png("filters_none", "8-bit RGB, every row filter 0", src, 8, 2, filters=0)
    png("filters_paeth", "8-bit RGB, every row filter 4 (Paeth)", src, 8, 2, filters=4)
    png("split_idat", "8-bit RGB, IDAT split into 97-byte chunks plus an empty one", src, 8, 2, idat_split=97)
    png("unknown_chunks", "8-bit RGB with unknown ancillary (teSt) and critical (TEST) chunks before IDAT, "
        "a tEXt after it, and gAMA/sRGB/iCCP-free colour (all ignored)", src, 8, 2,
        before_idat=[chunk(b"teSt", b"ancillary"), chunk(b"TEST", b"critical"), chunk(b"gAMA", struct.pack(">I", 22727))],
        after_idat=[chunk(b"tEXt", b"Comment\x00after the image")])
    png("bad_idat_crc", "8-bit RGB whose IDAT CRC is wrong (Pillow does not check IDAT CRCs)", src, 8, 2,
        idat_crc=0x12345678)
    png("no_iend", "8-bit RGB without IEND (Pillow stops after the image data)", src, 8, 2, iend=False)
    png("bad_crc_after_idat", "8-bit RGB with a tEXt chunk with a wrong CRC after IDAT (never checked)", src, 8, 2,
        after_idat=[chunk(b"tEXt", b"Comment\x00x", crc=1)])
    # APNG (written by Pillow): Image.open gives frame 0, the IDAT image, which is what a
    # non-animated reader decodes; with default_image=True the IDAT image is not even a frame.
    first, second = Image.fromarray(src), Image.fromarray(255 - src)
    for default_image in (False, True):
        buf = io.BytesIO()
        first.save(buf, "PNG", save_all=True, append_images=[second], duration=100, default_image=default_image)
        b.derived(f"apng{'_default_image' if default_image else ''}.png", buf.getvalue(),
                  f"{crop}: a 2-frame APNG written by Pillow (default_image={default_image}); "
                  "Image.open shows its IDAT image")
    tiny = src[:1, :1]
    png("tiny_1x1_interlaced", "1x1 RGB, interlaced (passes 2-7 empty)", tiny, 8, 2, interlace=True)
    png("tiny_3x2_interlaced", "3x2 4-bit grey, interlaced", (grey8[:2, :3] >> 4), 4, 0, interlace=True)
    png("wide_interlaced_palette2", "2-bit palette 61x3, interlaced", (grey8[:3] >> 6), 2, 3, interlace=True,
        palette=[[0, 0, 0], [200, 30, 30], [30, 200, 30], [255, 255, 255]])


def build_corrupt(b):
    # ---------------- JPEG ----------------
    small_jpeg = b.rgb("astronaut.png", box=(150, 60, 198, 100))  # 48x40
    base = jpeg_save(small_jpeg, quality=90)
    sos = scan_start(base)
    segments = jpeg_segments(base)
    dht = next(start for m, start, _ in segments if m == 0xC4)
    b.broken("jpeg_soi_only.jpg", base[:3], "the first 3 bytes of a JPEG (SOI + 0xFF)")
    b.broken("jpeg_trunc_in_dht.jpg", base[:dht + 30], "a JPEG cut inside its first DHT segment")
    b.broken("jpeg_trunc_before_sos.jpg", base[:segments[-1][1]], "a JPEG cut right before SOS")
    b.broken("jpeg_trunc_in_sos.jpg", base[:sos - 4], "a JPEG cut inside the SOS header")
    scan = len(base) - sos
    for pct in (10, 50, 90):
        b.broken(f"jpeg_trunc_scan_{pct}.jpg", base[:sos + scan * pct // 100],
                 f"a baseline JPEG cut {pct}% into its scan data (libjpeg would warn and pad with grey)")
    b.broken("jpeg_no_eoi.jpg", base[:-2], "a baseline JPEG without its final EOI marker")
    b.broken("jpeg_no_eoi_last_bytes.jpg", base[:-40], "a baseline JPEG missing its last 40 bytes")
    odd = b.rgb("astronaut.png", box=(100, 40, 257, 133))
    b.broken("jpeg_no_eoi_accepted.jpg", jpeg_save(odd, quality=90)[:-2],
             "a 157x93 baseline JPEG without EOI that Pillow still decodes: whether libjpeg asks for bytes past "
             "the end depends on where the last Huffman code ends")
    prog = jpeg_save(small_jpeg, quality=90, progressive=True)
    b.broken("jpeg_progressive_trunc_50.jpg", prog[:len(prog) // 2], "a progressive JPEG cut in half")
    b.broken("jpeg_progressive_no_eoi.jpg", prog[:-2], "a progressive JPEG without EOI")
    rng = np.random.default_rng(11)
    b.broken("jpeg_garbage.jpg", b"\xff\xd8\xff" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes(),
             "JPEG magic followed by random bytes")
    b.broken("jpeg_zero_height.jpg", patch_sof_size(base, 48, 0), "SOF declares height 0")
    b.broken("jpeg_zero_width.jpg", patch_sof_size(base, 0, 40), "SOF declares width 0")
    b.broken("jpeg_huge.jpg", patch_sof_size(base, 65000, 65000),
             "SOF declares 65000x65000 (4.2 gigapixels) over 48x40 worth of data")
    b.broken("jpeg_over_limit.jpg", patch_sof_size(base, 13380, 13375),
             "SOF declares 13380x13375 = 178,957,500 pixels, just over the 178,956,970 limit")
    bad_dht = bytearray(base)
    bad_dht[dht + 5:dht + 21] = b"\xff" * 16  # code counts far beyond 256 symbols
    b.broken("jpeg_bad_huffman_table.jpg", bytes(bad_dht), "a DHT segment with impossible code counts")
    bad_sof = bytearray(base)
    sof = next(start for m, start, _ in segments if m == 0xC0)
    bad_sof[sof + 4] = 12
    b.broken("jpeg_12bit.jpg", bytes(bad_sof), "SOF declares 12-bit samples")

    # ---------------- PNG ----------------
    src = np.asarray(b.rgb("astronaut.png", box=(180, 60, 204, 80)))  # 24x20
    w, h = src.shape[1], src.shape[0]
    good = png_file(src, 8, 2)
    idat = good.index(b"IDAT") - 4
    idat_len = struct.unpack(">I", good[idat:idat + 4])[0]
    b.broken("png_trunc_signature.png", good[:5], "the first 5 bytes of a PNG")
    b.broken("png_trunc_ihdr.png", good[:20], "a PNG cut inside IHDR")
    b.broken("png_trunc_before_idat.png", good[:idat], "a PNG cut right before IDAT")
    for pct in (1, 50, 99):
        b.broken(f"png_trunc_idat_{pct}.png", good[:idat + 8 + idat_len * pct // 100],
                 f"a PNG cut {pct}% into its IDAT data")
    b.broken("png_bad_ihdr_crc.png", png_file(src, 8, 2, ihdr_crc=0), "IHDR with a wrong CRC")
    b.broken("png_bad_ancillary_crc.png", png_file(src, 8, 2, before_idat=[chunk(b"tEXt", b"a\x00b", crc=7)]),
             "a tEXt chunk before IDAT with a wrong CRC (Pillow checks CRCs of all chunks before IDAT)")
    data = bytearray(zlib.compress(image_data(src, 8, False, lambda y: y % 5), 9))
    for offset in range(40, 60):
        data[offset] ^= 0xFF
    b.broken("png_bad_deflate.png", png_file(src, 8, 2, raw_data=bytes(data)), "IDAT with damaged deflate data")
    raw = bytearray(image_data(src, 8, False, 0))
    raw[(w * 3 + 1) * 5] = 7  # row 5 gets filter type 7
    b.broken("png_bad_filter.png", png_file(src, 8, 2, raw_data=zlib.compress(bytes(raw))), "a row with filter type 7")
    rows = image_data(src, 8, False, 0)[: (w * 3 + 1) * 12]
    b.broken("png_short_stream.png", png_file(src, 8, 2, raw_data=zlib.compress(rows)),
             f"a complete zlib stream holding only 12 of {h} rows",
             ours="badImage",
             why="Pillow's zlib decoder stops without error when the stream ends on a row boundary and leaves "
                 "the missing rows zero; libpng reports 'Not enough image data'")
    b.broken("png_zero_width.png", png_file(src, 8, 2, width=0), "IHDR width 0")
    b.broken("png_zero_height.png", png_file(src, 8, 2, height=0), "IHDR height 0")
    b.broken("png_huge.png", png_file(src, 8, 2, width=100000, height=100000),
             f"IHDR declares 100000x100000 over {w}x{h} worth of data")
    b.broken("png_over_limit.png", png_file(src, 8, 2, width=13380, height=13375),
             "IHDR declares 13380x13375 = 178,957,500 pixels, just over the limit")
    b.broken("png_bad_depth.png", png_file(src, 8, 2, ihdr_override=struct.pack(">IIBBBBB", w, h, 4, 2, 0, 0, 0)),
             "IHDR with RGB at 4 bits per sample (not a legal combination)")
    b.broken("png_missing_plte.png", png_file((src[..., :1] >> 4).astype(np.uint32), 4, 3),
             "a palette PNG without PLTE", ours="badImage",
             why="PLTE is required for colour type 3; Pillow decodes the indices against its all-black default "
                 "palette, libpng stops with 'Missing PLTE before IDAT'")
    b.broken("png_garbage.png", b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes(),
             "PNG signature followed by random bytes")

    # A lossless (SOF3) JPEG, made once with libjpeg-turbo 3.1 through imagecodecs and kept in
    # static/ (not rewritten here): imagecodecs.jpeg8_encode(astronaut 157x93 crop, lossless=True).
    b.corrupt.append({
        "file": "static/lossless_sof3.jpg",
        "how": "a lossless JPEG (SOF3, predictor 1) of the astronaut.png crop 157x93, written by imagecodecs 2026.3.6 "
               "(libjpeg-turbo 3.1.3)",
        "deviation": {"status": "badImage",
                      "why": "lossless JPEG decoding arrived in libjpeg-turbo 3.0; Pillow's bundled 3.2 decodes it, "
                             "Debian's 2.1.5 stops with 'Unsupported JPEG process: SOF type 0xc3'"},
    })

    # ---------------- neither ----------------
    b.broken("empty.bin", b"", "an empty file")
    b.broken("text.txt", b"hello, this is not an image\n", "a text file")
    b.broken("garbage.bin", rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), "random bytes")
    small = small_jpeg.resize((20, 12))
    for fmt, ext in (("GIF", "gif"), ("BMP", "bmp"), ("WEBP", "webp"), ("TIFF", "tif")):
        buf = io.BytesIO()
        small.save(buf, fmt)
        b.broken(f"unsupported.{ext}", buf.getvalue(), f"a 20x12 {fmt} (Pillow decodes it)", ours="badImage",
                 why=f"{fmt} is not a format this library decodes (JPEG and PNG only)")


def png_image_data_end(data):
    """Offset just past the last IDAT chunk (its CRC included)."""
    pos, end = 8, None
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        if data[pos + 4:pos + 8] == b"IDAT":
            end = pos + 12 + length
        pos += 12 + length
    return end


def prefix_sweep(b, name, data, how):
    """Pillow's outcome for every prefix data[:n], n = 0 ... len(data): the prefixes it decodes
    (with the digest of the pixels), everything else being an error."""
    path = os.path.join(b.out, "derived", name)
    with open(path, "wb") as f:
        f.write(data)
    decoded = {}
    for n in range(len(data) + 1):
        try:
            with Image.open(io.BytesIO(data[:n])) as im:
                decoded[str(n)] = hashlib.sha256(im.convert("RGB").tobytes()).hexdigest()
        except Exception:  # noqa: BLE001 - any failure counts as "Pillow refuses this prefix"
            pass
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
    entry = {"file": "derived/" + name, "how": how, "length": len(data), "width": width, "height": height,
             "pillow_decodes": decoded}
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        end = png_image_data_end(data)
        entry["deviation"] = {
            "below": end,
            "status": "badImage",
            "why": "libpng reads the whole last IDAT chunk (deflate end, Adler-32, CRC) before it hands out "
                   "the last row; Pillow stops as soon as every row is decoded, so it accepts a file cut in "
                   "those last bytes",
        }
    return entry


def build_sweeps(b):
    small = b.rgb("astronaut.png", box=(150, 60, 198, 100))  # 48x40
    src = np.asarray(b.rgb("astronaut.png", box=(180, 60, 204, 80)))  # 24x20
    return [
        prefix_sweep(b, "sweep_baseline.jpg", jpeg_save(small, quality=90), "48x40 baseline JPEG"),
        prefix_sweep(b, "sweep_progressive.jpg", jpeg_save(small, quality=90, progressive=True),
                     "48x40 progressive JPEG"),
        prefix_sweep(b, "sweep_rgb.png", png_file(src, 8, 2), "24x20 RGB PNG"),
        prefix_sweep(b, "sweep_palette_interlaced.png",
                     png_file((src[..., :1] >> 6).astype(np.uint32), 2, 3, interlace=True,
                              palette=[[0, 0, 0], [90, 30, 30], [30, 160, 30], [255, 255, 255]]),
                     "24x20 2-bit palette PNG, interlaced"),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", default=os.environ.get("LLAVAUHD_TEST_ASSETS", os.path.join(REPO, ".build-assets")))
    parser.add_argument("--out", default=os.path.join(REPO, "Tests", "Fixtures", "images"))
    args = parser.parse_args()

    b = Builder(args.assets, args.out)
    for folder in ("derived", "corrupt"):
        path = os.path.join(args.out, folder)
        if os.path.isdir(path):
            for name in os.listdir(path):
                os.remove(os.path.join(path, name))
    build_derived(b)
    build_corrupt(b)
    sweeps = build_sweeps(b)

    images = []
    for name, origin in REAL_IMAGES.items():
        info, error = pillow_outcome(os.path.join(args.assets, "images", name))
        assert error is None, (name, error)
        images.append({"file": "images/" + name, "origin": "real", "how": origin, **info})
    for entry in b.images:
        info, error = pillow_outcome(os.path.join(args.out, entry["file"]))
        assert error is None, (entry["file"], error)
        images.append({**entry, **info})
    corrupt = []
    for entry in b.corrupt:
        info, error = pillow_outcome(os.path.join(args.out, entry["file"]))
        pillow = {"ok": True, **info} if error is None else {"ok": False, **error}
        corrupt.append({**entry, "pillow": pillow})

    golden = {
        "comment": "Made by scripts/make_image_golden.py. Real images are read from the test-assets folder "
                   "(file relative to it); derived and corrupt files are relative to this folder. sha256 is "
                   "of Image.open(file).convert('RGB').tobytes().",
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "zlib": features.version("zlib"),
        "jpegtran": jpegtran_version(),
        "max_pixels": 2 * Image.MAX_IMAGE_PIXELS,
        "images": images,
        "corrupt": corrupt,
        "prefix_sweeps": sweeps,
    }
    with open(os.path.join(args.out, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(args.out, e["file"])) for e in b.images + b.corrupt)
    print(f"{len(images)} images ({len(b.images)} derived), {len(corrupt)} corrupt/unsupported files, "
          f"{total / 1024:.0f} KB committed", file=sys.stderr)


if __name__ == "__main__":
    main()
