#!/usr/bin/env bash
# Tests llavauhd.ray on a local Ray instance (bindings/python/tests/test_ray.py), in a venv of
# its own with the package's `ray` extra (pinned in bindings/python/pyproject.toml), so the
# other Python tests do not carry Ray's dependencies. Needs `make ship` and the test assets.
# Usage: scripts/test-ray.sh [build dir, default build]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
venv="$assets/ray-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "pytest==9.2.0" "$repo/bindings/python[ray]"
LLAVAUHD_TEST_ASSETS="$assets" LLAVAUHD_LIBRARY="$build/lib/libllavauhd.so" LLAVAUHD_CLI="$build/bin/llavauhd" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "$repo/bindings/python/tests/test_ray.py"
