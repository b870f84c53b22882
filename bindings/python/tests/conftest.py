"""Shared locations for the Python tests: the repository, its committed fixtures and the
test assets made by scripts/setup-test-assets.sh ($LLAVAUHD_TEST_ASSETS)."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "Tests" / "Fixtures"
ASSETS = Path(os.environ.get("LLAVAUHD_TEST_ASSETS", REPO / ".build-assets"))


@pytest.fixture(scope="session")
def assets() -> Path:
    if not (ASSETS / "models").is_dir():
        pytest.fail(f"test assets missing in {ASSETS}: run scripts/setup-test-assets.sh")
    return ASSETS
