#!/usr/bin/env bash
# Tests the wheel of scripts/build-wheel.sh as a user without a checkout gets it: installs it
# into a fresh venv (no system site-packages; numpy and pytest from PyPI), then
#   1. `ldd` of the installed libllavauhd.so and of its OpenBLAS resolves every library either
#      to the wheel's own files or to the C/system runtime that the manylinux policy assumes on
#      every system (libc, libm, libdl, libpthread, librt, the loader, libstdc++, libgcc_s, and
#      zlib, which auditwheel therefore does not graft), never to another system library;
#   2. the installed package (not the checkout's) answers with the tiny models: the upstream
#      golden cases of bindings/python/tests/test_upstream.py, run against the installed package;
#   3. the OpenBLAS mapped into that process is the wheel's copy.
# Usage: scripts/test-wheel.sh [build dir, default build]; needs $LLAVAUHD_TEST_ASSETS.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$repo/build}
wheel=$(ls "$build"/wheel/llavauhd-*-py3-none-manylinux_*_x86_64.whl)
venv="$repo/.build-wheel/test-venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel" "pytest==9.2.0"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pkg="$site/llavauhd"
[ -f "$pkg/libllavauhd.so" ] && [ -f "$pkg/libopenblas.so.0" ] || { echo "test-wheel: libraries missing in $pkg" >&2; exit 1; }

# 1. Dependencies: the wheel's own files or the C/system runtime only.
runtime='^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux-x86-64\.so\.2|/lib64/ld-linux-x86-64\.so\.2|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libz\.so\.1)$'
bad=0
for lib in "$pkg/libllavauhd.so" "$pkg/libopenblas.so.0"; do
    while read -r name arrow path _; do
        [ -z "$name" ] && continue
        if [ "$arrow" = "=>" ] && [[ "$path" == "$site"/* ]]; then continue; fi
        if [[ "$name" =~ $runtime ]]; then continue; fi
        echo "test-wheel: $(basename "$lib") needs $name => ${path:-?}, neither the wheel's nor the C runtime" >&2
        bad=1
    done < <(ldd "$lib" | sed 's/^[[:space:]]*//')
done
[ $bad -eq 0 ] || exit 1
echo "test-wheel: ldd of libllavauhd.so and libopenblas.so.0 resolves to the wheel and the C runtime only"

# 2. and 3. The installed package answers, with the wheel's OpenBLAS.
cd "$venv"
env -u LLAVAUHD_LIBRARY -u PYTHONPATH "$venv/bin/python" - "$site" <<'PY'
import sys
import llavauhd
site = sys.argv[1]
assert llavauhd.__file__.startswith(site), llavauhd.__file__
PY
env -u LLAVAUHD_LIBRARY -u PYTHONPATH "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    "$repo/bindings/python/tests/test_upstream.py" "$repo/bindings/python/tests/test_wheel_install.py"
