#!/usr/bin/env python3
"""Times Pillow's Image.open(path).convert('RGB') (what upstream LLaVA-UHD does to every image),
best of N, for llavauhd-bench's image-decode benchmark.

usage: bench_image_decode.py REPETITIONS PATH...
prints one line per image: "<path>\t<best seconds>"; the first line is "pillow <version>".
"""
import sys
import time

import PIL
from PIL import Image


def main():
    repetitions = int(sys.argv[1])
    print(f"pillow {PIL.__version__}", flush=True)
    for path in sys.argv[2:]:
        best = float("inf")
        for _ in range(repetitions):
            start = time.perf_counter()
            with Image.open(path) as im:
                im.convert("RGB")
            best = min(best, time.perf_counter() - start)
        print(f"{path}\t{best}", flush=True)


if __name__ == "__main__":
    main()
