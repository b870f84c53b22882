#!/usr/bin/env bash
# The malformed-input suites under AddressSanitizer, and the C ABI test under LeakSanitizer.
#
#   scripts/dev/asan.sh            (or `make asan`)
#
# 1. Builds libllavauhd.so with AddressSanitizer: Swift code with -sanitize=address, the C targets
#    (JPEG / PNG glue) with -fsanitize=address, in .build-asan/. Optimised by default (the usual
#    way to run ASan: the C ABI test runs in seconds instead of minutes); LLAVAUHD_ASAN_CONFIG=debug
#    builds it unoptimised instead. The library links the toolchain's Swift runtime dynamically;
#    the ASan runtime comes from the host program.
# 2. Compiles the C hosts (Tests/C/expect_status.c, abi_test.c) with the toolchain's clang and
#    -fsanitize=address -shared-libasan, so the library and the host share one ASan runtime
#    (libclang_rt.asan-x86_64.so of the same toolchain).
# 3. Runs through the C ABI:
#    - the malformed-weights corpus (Tests/Fixtures/malformed/expectations.json plus the cases
#      derived from a tiny model) with Tests/C/run_corpus.sh;
#    - every corrupt image of Tests/Fixtures/images/golden.json (its documented status), and
#      every prefix of each corrupt file and of the prefix-sweep files, decoded from
#      exact-size heap copies so that any read past the data is reported;
#    - abi_test (every header function, every error path, cancellation, threads) with
#      LeakSanitizer on: it frees every handle, so any leak report is the library's;
#    - a leak canary: a host that deliberately does not free one image must get a
#      LeakSanitizer report (proves the leak checking is live).
# 4. Runs the Python test suite with the ASan runtime preloaded (leak checking off there: the
#    interpreter keeps memory until exit): callbacks, threads, stages, sessions, images.
#
# Any AddressSanitizer or LeakSanitizer report fails the run; the reports are printed.
# Needs the test assets (scripts/setup-test-assets.sh; $LLAVAUHD_TEST_ASSETS).
set -euo pipefail

name=asan.sh
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
scratch=$repo/.build-asan
source "$repo/scripts/sanitizer_common.sh"
py=${PYTHON:-$assets/venv/bin/python}
config=${LLAVAUHD_ASAN_CONFIG:-release}
find_runtime asan

step "libllavauhd.so with AddressSanitizer (.build-asan)"
sanitized_build build.log ASan -c "$config" --product llavauhd --scratch-path "$scratch" \
    -Xswiftc -sanitize=address -Xcc -fsanitize=address -Xcc -fno-omit-frame-pointer || exit 1
tail -1 "$scratch/build.log"
lib=$scratch/$config

step "C hosts with -fsanitize=address"
bin=$scratch/c
mkdir -p "$bin"
cflags=(-fsanitize=address -shared-libasan -fno-omit-frame-pointer -g -O1 -std=c11 -Wall -Werror -I"$repo/include")
ldflags=(-L"$lib" -Wl,-rpath,"$lib" -Wl,-rpath,"$(dirname "$runtime")" -lllavauhd -lpthread)
for prog in expect_status abi_test; do
    "$clang" "${cflags[@]}" "$repo/Tests/C/$prog.c" -o "$bin/$prog" "${ldflags[@]}"
done
cat > "$bin/leak_canary.c" <<'EOF'
/* Makes one image and does not free it: LeakSanitizer must report it. */
#include <llavauhd.h>
int main(void) {
    static const unsigned char rgb[2 * 2 * 3];
    luhd_image *image = 0;
    return luhd_image_from_rgb(rgb, 2, 2, 0, &image) == LUHD_OK ? 0 : 2;
}
EOF
"$clang" "${cflags[@]}" "$bin/leak_canary.c" -o "$bin/leak_canary" "${ldflags[@]}"

# Every report goes to a file under $logs; any file there fails the run.
logs=$scratch/reports
rm -rf "$logs"
mkdir -p "$logs"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
export LSAN_OPTIONS="exitcode=86"
# Debug-build symbols for the reports.
[ -x "$toolchain/llvm-symbolizer" ] && export ASAN_SYMBOLIZER_PATH=$toolchain/llvm-symbolizer

step "leak canary (LeakSanitizer must see a deliberate leak)"
if "$bin/leak_canary"; then
    echo "asan.sh: LeakSanitizer did not report the canary's leak: leak checking is not working"; fail=1
elif ! grep -qs "luhd_image_from_rgb" "$logs"/asan.*; then
    echo "asan.sh: the canary's leak report does not name luhd_image_from_rgb"; fail=1
else
    echo "leak canary reported, as it should"
fi
rm -f "$logs"/asan.*

step "malformed-weights corpus through the C ABI"
LLAVAUHD_TEST_ASSETS=$assets PYTHON=$py bash "$repo/Tests/C/run_corpus.sh" "$bin/expect_status" "$repo" || fail=1

step "corrupt images through the C ABI: documented status, then every prefix"
"$py" - "$bin/expect_status" "$repo/Tests/Fixtures/images" <<'PY' || fail=1
import json, os, subprocess, sys
binary, folder = sys.argv[1:]
golden = json.load(open(os.path.join(folder, "golden.json")))
names = {"badImage": "bad image", "imageTooLarge": "image too large"}
failed = checked = 0
for entry in golden["corrupt"]:
    outcome = entry.get("deviation") or entry["pillow"]
    want = "ok" if outcome.get("ok") else names[outcome["status"]]
    path = os.path.join(folder, entry["file"])
    for args in ([binary, "image", path, want], [binary, "prefixes", path]):
        r = subprocess.run(args, capture_output=True, text=True)
        checked += 1
        if r.returncode != 0:
            failed += 1
            print(f"FAIL {' '.join(args[1:])}: exit {r.returncode}: {r.stderr.strip()[:400]}")
for sweep in golden["prefix_sweeps"]:
    r = subprocess.run([binary, "prefixes", os.path.join(folder, sweep["file"])], capture_output=True, text=True)
    checked += 1
    if r.returncode != 0:
        failed += 1
        print(f"FAIL prefixes {sweep['file']}: exit {r.returncode}: {r.stderr.strip()[:400]}")
print(f"corrupt images through C: {checked - failed} of {checked} runs passed")
sys.exit(1 if failed else 0)
PY

step "abi_test under AddressSanitizer and LeakSanitizer"
"$bin/abi_test" "$assets" "$repo" || fail=1

step "Python tests with the ASan runtime preloaded (leak checking off)"
if [ "$config" = debug ]; then
    tests=("$repo/bindings/python/tests/test_images.py" "$repo/bindings/python/tests/test_abi.py"
           "$repo/bindings/python/tests/test_malformed.py")   # the fast ones: unoptimised, the rest takes long
else
    tests=("$repo/bindings/python/tests")
fi
LD_PRELOAD=$runtime ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" LLAVAUHD_LIBRARY=$lib/libllavauhd.so \
    LLAVAUHD_TEST_ASSETS=$assets PYTHONPATH=$repo/bindings/python \
    "$py" -m pytest -q -p no:cacheprovider "${tests[@]}" || fail=1

check_reports "$logs" asan "AddressSanitizer or LeakSanitizer"
finish
