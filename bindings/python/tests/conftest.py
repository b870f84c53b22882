"""Shared locations for the Python tests: the repository, its committed fixtures and the
test assets made by scripts/setup-test-assets.sh ($LLAVAUHD_TEST_ASSETS)."""
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "Tests" / "Fixtures"
ASSETS = Path(os.environ.get("LLAVAUHD_TEST_ASSETS", REPO / ".build-assets"))


@pytest.fixture(scope="session")
def assets() -> Path:
    if not (ASSETS / "models").is_dir():
        pytest.fail(f"test assets missing in {ASSETS}: run scripts/setup-test-assets.sh")
    return ASSETS

UPSTREAM = FIXTURES / "upstream"
#: The upstream golden cases (Tests/Fixtures/upstream), each with a tiny model in ASSETS/models.
CASES = ["coffee-v2-mask7", "tall-v2-mask7", "small-noslice", "chelsea-qwen2-mask5", "rocket-v1"]


def manifest(case: str) -> dict:
    return json.loads((UPSTREAM / case / "manifest.json").read_text())


def slicing(case: str) -> dict:
    """The slicing options a case was made with: upstream's eval pre-resize on (1024) or off."""
    pre = manifest(case)["preprocess"]
    return {"preresize_long_side": pre["preresize_long_side"] or 0, "max_slices": pre["max_slice_nums"]}


def npy(case: str, name: str) -> np.ndarray:
    return np.load(UPSTREAM / case / f"{name}.npy")


def relative_error(a: np.ndarray, ref: np.ndarray) -> float:
    """max|a - ref| / max|ref|, the fixtures' tolerance measure."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert a.shape == ref.shape, (a.shape, ref.shape)
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


_models: dict = {}


@pytest.fixture(scope="session")
def load_model(assets):
    """Loads a case's tiny model once per test run: ``load_model("small-noslice")``."""
    def load(case: str):
        if case not in _models:
            import llavauhd
            _models[case] = llavauhd.Model(assets / "models" / case)
        return _models[case]
    yield load
    for m in _models.values():
        m.close()
    _models.clear()


@pytest.fixture(scope="session")
def small(load_model):
    """The smallest case's model (one 378x280 view, vicuna template)."""
    return load_model("small-noslice")


@pytest.fixture(scope="session")
def small_image():
    import llavauhd
    return llavauhd.Image.open(UPSTREAM / "small-noslice" / "input.png")


# --- GGUF files to change and lie about ---------------------------------------------------------

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGUF_STRING, GGUF_ARRAY, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_U64 = 8, 9, 4, 5, 6, 10


def gguf_string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


class GGUF:
    """A GGUF v3 file as metadata entries (key, type, encoded value), tensor infos and the data
    section, so that any part can be changed, lied about and written back."""

    def __init__(self, data: bytes):
        _, self.version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
        offset = 24
        self.kv: list[tuple[str, int, bytes]] = []
        for _ in range(n_kv):
            key, offset = self._string(data, offset)
            kind, = struct.unpack_from("<I", data, offset)
            end = self._skip(data, offset + 4, kind)
            self.kv.append((key, kind, data[offset + 4:end]))
            offset = end
        self.tensors: list[dict] = []
        for _ in range(n_tensors):
            name, offset = self._string(data, offset)
            n_dims, = struct.unpack_from("<I", data, offset)
            dims = list(struct.unpack_from(f"<{n_dims}Q", data, offset + 4))
            kind, start = struct.unpack_from("<IQ", data, offset + 4 + 8 * n_dims)
            offset += 4 + 8 * n_dims + 12
            self.tensors.append({"name": name, "dims": dims, "type": kind, "offset": start})
        self.data = data[offset + (-offset % 32):]

    @staticmethod
    def _string(data: bytes, offset: int) -> tuple[str, int]:
        n, = struct.unpack_from("<Q", data, offset)
        return data[offset + 8:offset + 8 + n].decode(), offset + 8 + n

    @classmethod
    def _skip(cls, data: bytes, offset: int, kind: int) -> int:
        if kind in GGUF_SCALARS:
            return offset + struct.calcsize(GGUF_SCALARS[kind])
        if kind == GGUF_STRING:
            return offset + 8 + struct.unpack_from("<Q", data, offset)[0]
        element, count = struct.unpack_from("<IQ", data, offset)
        offset += 12
        for _ in range(count):
            offset = cls._skip(data, offset, element)
        return offset

    def get(self, key: str) -> tuple[int, bytes]:
        return next((kind, value) for k, kind, value in self.kv if k == key)

    def set(self, key: str, kind: int, value: object) -> None:
        """Sets (or adds) `key`: a scalar, a string, or a list of (element type, [values])."""
        if kind in GGUF_SCALARS:
            encoded = struct.pack(GGUF_SCALARS[kind], value)
        elif kind == GGUF_STRING:
            encoded = gguf_string(value)  # type: ignore[arg-type]
        else:
            element, items = value  # type: ignore[misc]
            encoded = struct.pack("<IQ", element, len(items)) + b"".join(
                gguf_string(v) if element == GGUF_STRING else struct.pack(GGUF_SCALARS[element], v) for v in items)
        self.remove(key)
        self.kv.append((key, kind, encoded))

    def set_raw(self, key: str, kind: int, encoded: bytes) -> None:
        self.remove(key)
        self.kv.append((key, kind, encoded))

    def remove(self, key: str) -> None:
        self.kv = [e for e in self.kv if e[0] != key]

    def tensor(self, name: str) -> dict:
        return next(t for t in self.tensors if t["name"] == name)

    def encode(self) -> bytes:
        head = b"GGUF" + struct.pack("<IQQ", self.version, len(self.tensors), len(self.kv))
        for key, kind, value in self.kv:
            head += gguf_string(key) + struct.pack("<I", kind) + value
        for t in self.tensors:
            dims = t["dims"]
            head += gguf_string(t["name"]) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
            head += struct.pack("<IQ", t["type"], t["offset"])
        return head + b"\0" * (-len(head) % 32) + self.data


def cut_array(encoded: bytes, count: int) -> bytes:
    """The first `count` elements of an encoded GGUF array value (strings or 4-byte scalars)."""
    element, _ = struct.unpack_from("<IQ", encoded, 0)
    offset = 12
    for _ in range(count):
        offset = GGUF._skip(encoded, offset, element)
    return struct.pack("<IQ", element, count) + encoded[12:offset]


@pytest.fixture(scope="session")
def text_gguf(assets) -> GGUF:
    """A loadable text-only model to change: the tiny LLaMA GGUF of Tests/Fixtures/gguf-llm
    (llama-f32.gguf, 512-row vocabulary, no tokenizer) given the first 512 pieces of LLaMA's
    tokenizer (the test assets' ggml-vocab-llama-spm.gguf) and a ChatML template."""
    model = GGUF((FIXTURES / "gguf-llm" / "llama-f32.gguf").read_bytes())
    vocab = GGUF((assets / "gguf-vocab" / "ggml-vocab-llama-spm.gguf").read_bytes())
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token"):
        model.set_raw(key, *vocab.get(key))
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        kind, value = vocab.get(key)
        model.set_raw(key, kind, cut_array(value, 512))
    model.set("tokenizer.chat_template", GGUF_STRING, "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}")
    return model
