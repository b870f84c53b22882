"""Shared locations for the Python tests: the repository, its committed fixtures and the
test assets made by scripts/setup-test-assets.sh ($LLAVAUHD_TEST_ASSETS)."""
import json
import os
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
