#!/usr/bin/env bash
# The C kernels under UndefinedBehaviorSanitizer (`make ubsan`).
#
#   scripts/ubsan.sh
#
# Builds the package and its tests with -fsanitize=undefined -fno-sanitize-recover=all for the C
# target (CLlavaUHD: SIMD kernels, quantized products, thread pool, JPEG/PNG glue) in
# .build-ubsan/, optimised as shipped (-O3), and runs the suites that drive those kernels:
# KernelsTests, QuantTests, ImageTests and ProjectorTests. With -fno-sanitize-recover=all the
# first undefined operation (signed overflow, misaligned or out-of-range shift, invalid
# conversion, null pointer arithmetic, ...) stops the test process with a report, so a clean
# exit is a clean run. There are no suppressions. (swiftc has no -sanitize=undefined on Linux:
# the Swift code is not instrumented, and the UBSan runtime is linked through clang.)
# Needs the test assets (scripts/setup-test-assets.sh; $LLAVAUHD_TEST_ASSETS).
set -euo pipefail

name=ubsan.sh
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=$repo/.build-ubsan
source "$repo/scripts/sanitizer_common.sh"
flags=(-c release --scratch-path "$scratch" -Xswiftc -enable-testing -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined
       -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=all -Xcc -fno-omit-frame-pointer)

step "the package and its tests with UndefinedBehaviorSanitizer (.build-ubsan)"
sanitized_build build.log UBSan --build-tests "${flags[@]}" || exit 1
step "KernelsTests, QuantTests, ImageTests, ProjectorTests"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if LLAVAUHD_TEST_ASSETS=$assets swift test --skip-build "${flags[@]}" \
        --filter 'KernelsTests|QuantTests|ImageTests|ProjectorTests' 2>&1 | tee "$scratch/test.log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    if grep -q "runtime error:" "$scratch/test.log"; then
        echo "ubsan.sh: UndefinedBehaviorSanitizer reports (above)"
        exit 1
    fi
    echo "ubsan.sh: $((SECONDS - start)) s: no UndefinedBehaviorSanitizer reports; all passed"
else
    grep -B2 -A10 "runtime error:" "$scratch/test.log" | head -60 || true
    echo "ubsan.sh: FAILED ($((SECONDS - start)) s)"
    exit 1
fi
