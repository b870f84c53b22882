#!/usr/bin/env python3
"""Writes random but valid blocks of every GGML block format the library reads, and their
dequantization by the `gguf` PyPI package (llama.cpp's reference numpy dequantizers), into
Tests/Fixtures/gguf/quant_blocks/ for Tests/QuantTests (QuantBlockTests). A fixture generator;
the library never runs it.

    python3 -m venv --system-site-packages .build-venv
    .build-venv/bin/pip install gguf==0.19.0
    .build-venv/bin/python scripts/make_quant_block_fixtures.py

Outputs:
  quant_blocks.gguf   GGUF v3 with one 2-D tensor per format, named by the format in lower case
                      ("q4_1", "q2_k", ...): 4 rows of 320 elements for the 32-element block
                      formats (a row is one group of 8 blocks and 2 more), 3 rows of 512 for the
                      256-element super-block formats.
  <format>.npy        float32 [rows, cols]: gguf.quants.dequantize of the tensor's bytes.

Block contents: random bytes, then every f16 scale / min field set per block from a list of
edge cases (zero, negative zero, negative, smallest subnormal, large, random of either sign),
and some blocks with all quant bytes 0x00 or 0xFF (smallest and largest indices).
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "gguf", "quant_blocks")
rng = np.random.default_rng(20261206)

# Format: (byte offsets of its f16 scale/min fields, byte range of its quant bytes).
FORMATS = {
    T.Q4_0: ([0], (2, 18)),
    T.Q4_1: ([0, 2], (4, 20)),
    T.Q5_0: ([0], (2, 22)),
    T.Q5_1: ([0, 2], (4, 24)),
    T.Q8_0: ([0], (2, 34)),
    T.IQ4_NL: ([0], (2, 18)),
    T.Q2_K: ([80, 82], (0, 80)),
    T.Q3_K: ([108], (0, 108)),
    T.Q4_K: ([0, 2], (4, 144)),
    T.Q5_K: ([0, 2], (4, 176)),
    T.Q6_K: ([208], (0, 208)),
    T.IQ4_XS: ([0], (2, 136)),
}

EDGE_SCALES = [0.0, -0.0, -0.0123, 2.0 ** -24, 1000.0, -0.5]


def blocks(qtype: T, rows: int, cols: int) -> np.ndarray:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    nb = rows * cols // block
    raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
    fields, (q0, q1) = FORMATS[qtype]
    for b in range(nb):
        for f in fields:
            v = EDGE_SCALES[(b + f) % len(EDGE_SCALES)] if b % 3 == 0 else rng.uniform(-0.03, 0.03)
            raw[b, f:f + 2] = np.array([v], dtype=np.float16).view(np.uint8)
        if b % 5 == 1:
            raw[b, q0:q1] = 0xFF
        elif b % 5 == 3:
            raw[b, q0:q1] = 0x00
    return raw.reshape(rows, cols // block * size)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    w = gguf.GGUFWriter(os.path.join(OUT, "quant_blocks.gguf"), arch="llama")
    for qtype in FORMATS:
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        rows, cols = (4, 320) if block == 32 else (3, 512)
        data = blocks(qtype, rows, cols)
        name = qtype.name.lower()
        w.add_tensor(name, data, raw_dtype=qtype)
        deq = dequantize(data, qtype).astype(np.float32)
        assert deq.shape == (rows, cols) and np.isfinite(deq).all()
        np.save(os.path.join(OUT, f"{name}.npy"), deq)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, into {os.path.normpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
