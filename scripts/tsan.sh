#!/usr/bin/env bash
# The threaded paths under ThreadSanitizer (`make tsan`).
#
#   scripts/tsan.sh            (or `make tsan`)
#   scripts/tsan.sh --c-only   steps 1-2 only (no ThreadSanitizer build of the whole test suite)
#
# 1. Builds libllavauhd.so with ThreadSanitizer (Swift -sanitize=thread, C -fsanitize=thread) in
#    .build-tsan/, optimised; the runtime is the toolchain's shared libclang_rt.tsan, loaded by
#    the host programs.
# 2. Compiles the C hosts with -fsanitize=thread -shared-libsan and runs them through the C ABI:
#    - abi_test: every header function, logging, cancellation from the abort callbacks and from
#      another thread, sessions, the session that outlives its model;
#    - threads: one model shared by 4 threads, each with its own session;
#    - soak (a short run: 48 turns over 4 sessions on 2 threads): cancels from a third thread
#      at any time, abort callbacks, resets, a log callback receiving messages from every
#      thread;
#    - batch_decode_test: 4 sessions decoding at once in shared passes (DecodeBatcher), one
#      cancelled by another thread, sessions freed while others still decode.
# 3. Runs the Swift suites that start threads themselves or cancel across them (the thread pool,
#    generation with a flag raised from another thread, batched decoding, sessions on 4 threads sharing one model
#    and its image cache, a session's history after a cancel) in a ThreadSanitizer build of the
#    tests (.build-tsan-tests); about 25 s more than the first two alone.
# Any ThreadSanitizer report fails the run; the reports are printed. There are no suppressions.
#
# Not covered: the Python binding. CPython is not built with ThreadSanitizer, and preloading the
# runtime into an uninstrumented interpreter reports the interpreter's own (GIL-protected)
# accesses as races, so the binding's threading is checked by its own tests (and under ASan by
# scripts/dev/asan.sh) instead.
# OpenBLAS is not instrumented: its calls run on the caller's thread (the library loads it
# single-threaded, see Sources/CLlavaUHD/include/blas_loader.h), so no access escapes TSan.
# Needs the test assets (scripts/setup-test-assets.sh; $LLAVAUHD_TEST_ASSETS).
set -euo pipefail

name=tsan.sh
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=$repo/.build-tsan
source "$repo/scripts/sanitizer_common.sh"
find_runtime tsan

step "libllavauhd.so with ThreadSanitizer (.build-tsan)"
sanitized_build build.log TSan -c release --product llavauhd --scratch-path "$scratch" \
    -Xswiftc -sanitize=thread -Xcc -fsanitize=thread || exit 1
lib=$scratch/release

step "C hosts with -fsanitize=thread"
bin=$scratch/c
mkdir -p "$bin"
# The toolchain's TSan runtime intercepts libdispatch and needs its symbols: the hosts link the
# toolchain's libdispatch (the library itself does not use it).
swiftlib=$(readlink -f "$toolchain/../lib/swift/linux")
for source in Tests/C/abi_test.c examples/c/threads.c Tests/C/soak.c Tests/C/batch_decode_test.c; do
    prog=$(basename "$source" .c)
    "$clang" -fsanitize=thread -shared-libsan -g -O1 -std=c11 -Wall -Werror -I"$repo/include" \
        "$repo/$source" -o "$bin/$prog" \
        -L"$lib" -Wl,-rpath,"$lib" -Wl,-rpath,"$(dirname "$runtime")" \
        -L"$swiftlib" -Wl,-rpath,"$swiftlib" -Wl,--no-as-needed -ldispatch -Wl,--as-needed -lllavauhd -lpthread
done

logs=$scratch/reports
rm -rf "$logs"
mkdir -p "$logs"
export TSAN_OPTIONS="log_path=$logs/tsan:halt_on_error=0:exitcode=66:second_deadlock_stack=1"
[ -x "$toolchain/llvm-symbolizer" ] && export TSAN_SYMBOLIZER_PATH=$toolchain/llvm-symbolizer

photo=$repo/Tests/Fixtures/upstream/small-noslice/input.png
step "abi_test"
"$bin/abi_test" "$assets" "$repo" || fail=1
step "threads: 4 threads on one model"
"$bin/threads" "$assets/models/rocket-v1" "$photo" "Describe the picture." 4 6 || fail=1
step "soak: 48 turns, 4 sessions, 2 threads, cancels and logging"
"$bin/soak" "$assets/models/small-noslice" "$photo" 48 4 2 4 || fail=1
step "batch_decode_test: 4 sessions decoding together (batched), a cancel and early frees"
"$bin/batch_decode_test" "$assets/models/small-noslice" || fail=1

step "Swift suites that start threads, in a ThreadSanitizer build (.build-tsan-tests)"
tests=(--filter 'ThreadPoolTests|GenerationTests|SharedImageCacheTests|ChatSessionHistoryTests|BatchedDecodeTests')
if [ "${1:-}" = --c-only ]; then
    echo "skipped (--c-only)"
elif ! sanitized_build tests-build.log "TSan test" -c release --build-tests --scratch-path "$repo/.build-tsan-tests" \
        -Xswiftc -enable-testing --sanitize=thread; then
    fail=1
else
    LLAVAUHD_TEST_ASSETS=$assets swift test -c release --skip-build --scratch-path "$repo/.build-tsan-tests" \
        -Xswiftc -enable-testing --sanitize=thread "${tests[@]}" || fail=1
fi

check_reports "$logs" tsan ThreadSanitizer
finish
