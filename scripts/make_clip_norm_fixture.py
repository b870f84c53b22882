#!/usr/bin/env python3
"""The CLIP normalisation of every byte value, as upstream computes it, for
Tests/VisionTests (ViewPreprocessorTests.normalisationTableIsExact).

Runs transformers' CLIPImageProcessor.preprocess(do_resize=False, do_center_crop=False,
do_rescale=True, do_normalize=True) -- the call in upstream's model_vqa_loader.py -- on a
16x16 RGB image holding the bytes 0..255 in every channel, with OpenAI CLIP's mean/std, and
writes the (3, 256) float32 result to Tests/Fixtures/clip_norm/table.npy (row c = channel c,
column v = byte v).

Usage (transformers 4.37.2, upstream's version; numpy only, no torch needed):
    /work/venv-tok37/bin/python scripts/make_clip_norm_fixture.py [OUT_DIR]
"""
import os
import sys

import numpy as np
import transformers
from transformers import CLIPImageProcessor

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "clip_norm")

processor = CLIPImageProcessor(image_mean=[0.48145466, 0.4578275, 0.40821073],
                               image_std=[0.26862954, 0.26130258, 0.27577711])
image = np.stack([np.arange(256, dtype=np.uint8)] * 3, axis=-1).reshape(16, 16, 3)
pixels = processor.preprocess(image, do_resize=False, do_center_crop=False, do_rescale=True,
                              do_normalize=True, return_tensors="np")["pixel_values"]
assert pixels.dtype == np.float32 and pixels.shape == (1, 3, 16, 16)
os.makedirs(OUT, exist_ok=True)
np.save(os.path.join(OUT, "table.npy"), pixels[0].reshape(3, 256))
print(f"wrote the (3, 256) table with transformers {transformers.__version__} "
      f"(rescale_factor {processor.rescale_factor!r}) to {OUT}")
