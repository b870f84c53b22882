#!/usr/bin/env python3
"""Reference outputs of Pillow's BICUBIC resize for Tests/VisionTests (PillowResampleTests).

Writes Tests/Fixtures/pillow/: source.png (a synthetic RGB image with smooth gradients, hard
edges and noise, so that both the weights and the 8-bit clamping matter), cases.json (for each
case the crop of source.png that is resized, the target size and the output file) and one
out_<name>.npy (H, W, 3) uint8 per case, made with PIL.Image.resize(size, Image.BICUBIC).

Usage: /work/venv-gen/bin/python scripts/make_pillow_fixtures.py [OUT_DIR]
"""
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "pillow")

# (name, crop x, y, w, h of the source, target w, h)
CASES = [
    ("upscale_both", 10, 10, 37, 23, 100, 61),
    ("downscale_both", 0, 0, 200, 150, 57, 43),
    ("width_only_down", 20, 30, 120, 80, 50, 80),
    ("height_only_down", 20, 30, 120, 80, 120, 33),
    ("up_w_down_h", 60, 100, 64, 200, 150, 70),
    ("extreme_down", 0, 200, 200, 20, 14, 14),
    ("strong_down_edges", 100, 150, 100, 100, 9, 11),
    ("one_pixel_up", 50, 50, 1, 1, 5, 3),
    ("to_one_pixel", 50, 50, 7, 5, 1, 1),
    ("near_identity", 0, 0, 59, 41, 60, 42),
    ("odd_ratio", 3, 7, 97, 131, 41, 151),
    ("tall_vertical_first", 5, 0, 3, 420, 2, 50),
    ("tall_upscale", 5, 0, 3, 420, 6, 500),
]


def source_image():
    h, w = 420, 200
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.RandomState(7)
    img = np.zeros((h, w, 3), np.float64)
    img[..., 0] = 128 + 120 * np.sin(x / 9.0) * np.cos(y / 13.0)
    img[..., 1] = 255 * x / (w - 1)
    img[..., 2] = 255 * y / (h - 1)
    # Hard-edged checkerboard (drives the cubic overshoot into the clamp) in the middle band.
    band = (y >= 140) & (y < 260)
    checker = (((x // 4) + (y // 4)) % 2) * 255
    for c in range(3):
        img[..., c] = np.where(band, checker if c != 1 else 255 - checker, img[..., c])
    # A noise block.
    noise = rng.randint(0, 256, size=(h, w, 3))
    block = (y >= 300) & (y < 360) & (x >= 40) & (x < 160)
    img = np.where(block[..., None], noise, img)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    src = source_image()
    Image.fromarray(src, "RGB").save(os.path.join(OUT, "source.png"), optimize=True)
    back = np.asarray(Image.open(os.path.join(OUT, "source.png")).convert("RGB"))
    assert np.array_equal(back, src)
    cases = []
    for name, x, y, w, h, ow, oh in CASES:
        crop = Image.fromarray(src[y:y + h, x:x + w], "RGB")
        out = np.asarray(crop.resize((ow, oh), Image.Resampling.BICUBIC))
        assert out.shape == (oh, ow, 3)
        fname = f"out_{name}.npy"
        np.save(os.path.join(OUT, fname), out)
        cases.append({"name": name, "crop_xywh": [x, y, w, h], "size_wh": [ow, oh], "file": fname})
    meta = {
        "about": "PIL.Image.resize(size, BICUBIC) of crops of source.png; made by scripts/make_pillow_fixtures.py",
        "pillow": PIL.__version__,
        "cases": cases,
    }
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases with Pillow {PIL.__version__} to {OUT}")


if __name__ == "__main__":
    main()
