#!/usr/bin/env bash
# libFuzzer targets for every parser that reads untrusted bytes (Fuzz/Targets, FUZZING.md).
#
#   scripts/fuzz.sh [TARGET...]        (or `make fuzz`; `make fuzz-ci` = FUZZ_SECONDS=60)
#
#   FUZZ_SECONDS   run time of each target (default 600)
#   FUZZ_TARGETS   targets to run when none are named (default: all of Fuzz/Targets)
#   FUZZ_JOBS      targets run at the same time (default 2: one per core of the CI machine)
#
# 1. Builds the LlavaUHD module (Swift with -sanitize=fuzzer,address: coverage for libFuzzer and
#    AddressSanitizer; the C targets with -fsanitize=fuzzer-no-link,address) in .build-fuzz/,
#    optimised, with -enable-testing so that the targets can call internal entry points.
# 2. Links each Fuzz/Targets/<target>.swift (a @_cdecl("LLVMFuzzerTestOneInput") function, built
#    with -parse-as-library) with Fuzz/FuzzSupport.swift and the module's objects into
#    .build-fuzz/bin/<target>: libFuzzer supplies main.
# 3. Makes the seed corpora from Tests/Fixtures and the test assets (scripts/fuzz_seeds.py).
# 4. Runs each target (FUZZ_JOBS at a time) for FUZZ_SECONDS on its seeds plus the corpus it grew in earlier runs
#    (.build-fuzz/corpus/<target>), with -rss_limit_mb=2048, -malloc_limit_mb=2048 and
#    -timeout=10 (a single input taking longer is a hang).
# A crash, sanitizer report, timeout or out-of-memory fails the target; the input is saved
# under .build-fuzz/findings/ and the command to reproduce it is printed. The per-target
# figures (executions, exec/s, corpus, peak memory) go to .build-fuzz/summary.md.
# Needs the test assets (scripts/setup-test-assets.sh; $LLAVAUHD_TEST_ASSETS).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
py=${PYTHON:-python3}
seconds=${FUZZ_SECONDS:-600}
jobs=${FUZZ_JOBS:-2}
scratch=$repo/.build-fuzz
config=release
[ -d "$assets/models" ] || { echo "fuzz.sh: test assets missing in $assets (scripts/setup-test-assets.sh)"; exit 1; }

# Target name → -max_len (bytes): a little above the largest useful seed, so that the fuzzer
# spends its time on structure, not on long inputs.
declare -A max_len=(
    [jpeg]=65536 [png]=65536 [safetensors]=65536 [safetensors-index]=16384 [gguf]=65536
    [config-json]=16384 [tokenizer-model]=262144 [tokenizer-json]=65536 [vocab-merges]=65536
    [tokenizer-config]=16384 [prompt]=8192 [session-file]=1048576
)
# Target name → source file in Fuzz/Targets (jpeg and png share the image decoder's target).
declare -A source=([jpeg]=image [png]=image)
all_targets=(jpeg png safetensors safetensors-index gguf config-json tokenizer-model tokenizer-json
             vocab-merges tokenizer-config prompt session-file)
if [ $# -gt 0 ]; then targets=("$@"); else read -r -a targets <<< "${FUZZ_TARGETS:-${all_targets[*]}}"; fi
for t in "${targets[@]}"; do
    [ -n "${max_len[$t]:-}" ] || { echo "fuzz.sh: unknown target '$t' (targets: ${all_targets[*]})"; exit 2; }
done

start=$SECONDS
step() { printf '\n== %s (%ds)\n' "$1" $((SECONDS - start)); }

step "LlavaUHD with -sanitize=fuzzer,address (.build-fuzz)"
mkdir -p "$scratch/bin"
if ! swift build -c "$config" --target LlavaUHD --scratch-path "$scratch" -Xswiftc -enable-testing \
        -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address >"$scratch/build.log" 2>&1; then
    grep -E "error:" "$scratch/build.log" | head -20 || tail -20 "$scratch/build.log"
    echo "fuzz.sh: the fuzzing build failed (log: $scratch/build.log)"
    exit 1
fi
build=$scratch/$config
objects=("$build"/LlavaUHD.build/*.o "$build"/CLlavaUHD.build/*.o)

step "fuzz targets"
for t in "${targets[@]}"; do
    src=$repo/Fuzz/Targets/${source[$t]:-$t}.swift
    bin=$scratch/bin/$t
    if [ ! -x "$bin" ] || [ -n "$(find "$src" "$repo/Fuzz/FuzzSupport.swift" "${objects[@]}" -newer "$bin" -print -quit)" ]; then
        swiftc -O -parse-as-library -sanitize=fuzzer,address -module-name "Fuzz_${t//-/_}" \
            -I "$build/Modules" -Xcc -fmodule-map-file="$build/CLlavaUHD.build/module.modulemap" \
            -Xcc -I"$repo/Sources/CLlavaUHD/include" \
            "$src" "$repo/Fuzz/FuzzSupport.swift" "${objects[@]}" \
            $(pkg-config --libs libjpeg libpng) -ldl -lm -o "$bin" >"$scratch/link-$t.log" 2>&1 \
            || { grep -v "Cannot export local symbol" "$scratch/link-$t.log" | tail -20; echo "fuzz.sh: linking $t failed"; exit 1; }
    fi
    echo "built $bin"
done

step "seed corpora (scripts/fuzz_seeds.py)"
"$py" "$repo/scripts/fuzz_seeds.py" "$repo" "$assets" "$scratch"
fixed=$scratch/fixed

# Fixtures the targets load next to their input (Fuzz/FuzzSupport.swift: fuzzFixture).
export LLAVAUHD_FUZZ_SHARDS=$repo/Tests/Fixtures/safetensors/sharded
export LLAVAUHD_FUZZ_BPE_FILES=$fixed/bpe
export LLAVAUHD_FUZZ_QWEN2_TOKENIZER=$assets/models/chelsea-qwen2-mask5
export LLAVAUHD_FUZZ_SESSION_MODEL=$assets/models/small-noslice
# The session-file seeds are saved by the library itself (the target writes them and exits).
for t in "${targets[@]}"; do
    if [ "$t" = session-file ]; then
        mkdir -p "$scratch/seeds/session-file"
        LLAVAUHD_FUZZ_MAKE_SEEDS=$scratch/seeds/session-file ASAN_OPTIONS=detect_leaks=0 "$scratch/bin/session-file" \
            >"$scratch/session-file-seeds.log" 2>&1 || { cat "$scratch/session-file-seeds.log"; echo "fuzz.sh: making session-file seeds failed"; exit 1; }
    fi
done
# Leaks are not findings here: the AddressSanitizer run (scripts/dev/asan.sh) checks them through
# the C ABI, where every handle is freed; the Swift runtime's lazily made metadata and the
# targets' once-per-process fixtures would be reported as leaks of the first input.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:handle_abort=1"
toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
[ -x "$toolchain/llvm-symbolizer" ] && export ASAN_SYMBOLIZER_PATH=$toolchain/llvm-symbolizer

summary=$scratch/summary.md
findings=$scratch/findings
mkdir -p "$findings"
printf '| target | seconds | executions | exec/s | corpus (inputs) | new units | peak RSS (MB) | result |\n|---|---|---|---|---|---|---|---|\n' > "$summary"
# Runs one target; its report goes to $scratch/<target>.report, its summary row to .row and its
# exit status (non-zero on a finding) to .rc: bash may forget the status of a background job that
# ended long before `wait` asks for it ("not a child of this shell"), so the file is what counts.
fuzz_one() {
    local t=$1 corpus=$scratch/corpus/$1 log=$scratch/$1.log rc spm
    rm -f "$scratch/$t.rc"
    mkdir -p "$corpus"
    if [ "$t" = tokenizer-config ]; then spm=$fixed/tokenizer.model; else spm=$assets/tokenizers/tokenizer.model.v1; fi
    set +e
    (cd "$scratch" && LLAVAUHD_FUZZ_SPM_MODEL=$spm TMPDIR=$scratch "$scratch/bin/$t" -max_total_time="$seconds" \
        -max_len="${max_len[$t]}" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1 -reload=0 \
        -artifact_prefix="$findings/$t-" "$corpus" "$scratch/seeds/$t") >"$log" 2>&1
    rc=$?
    set -e
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    local execs rate units rss inputs result artifact
    execs=$(stat number_of_executed_units); rate=$(stat average_exec_per_sec)
    units=$(stat new_units_added); rss=$(stat peak_rss_mb)
    inputs=$(find "$corpus" -type f | wc -l)
    {
        if [ "$rc" -eq 0 ]; then
            result="no findings"
            echo "$t: ${execs:-?} executions, ${rate:-?}/s, $inputs corpus inputs, peak ${rss:-?} MB: no findings"
        else
            artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
            result="FINDING (exit $rc): ${artifact:-see $log}"
            grep -A25 -m1 -E "ERROR: (AddressSanitizer|libFuzzer)|Fatal error" "$log" | head -40 || true
            echo "$t: FINDING, input ${artifact:-?}; log $log"
            echo "reproduce: (export LLAVAUHD_FUZZ_SHARDS=$LLAVAUHD_FUZZ_SHARDS LLAVAUHD_FUZZ_BPE_FILES=$LLAVAUHD_FUZZ_BPE_FILES" \
                 "LLAVAUHD_FUZZ_QWEN2_TOKENIZER=$LLAVAUHD_FUZZ_QWEN2_TOKENIZER LLAVAUHD_FUZZ_SESSION_MODEL=$LLAVAUHD_FUZZ_SESSION_MODEL LLAVAUHD_FUZZ_SPM_MODEL=$spm;" \
                 "$scratch/bin/$t -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 ${artifact:-INPUT})"
        fi
    } > "$scratch/$t.report"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$inputs" \
        "${units:-?}" "${rss:-?}" "$result" > "$scratch/$t.row"
    echo "$rc" > "$scratch/$t.rc"
    return "$rc"
}

# FUZZ_JOBS targets at a time (each libFuzzer process is single-threaded).
step "fuzz ${#targets[@]} targets for ${seconds}s each, $jobs at a time"
declare -A pid_of=()
failed=()
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
    fuzz_one "$t" &
    pid_of[$t]=$!
done
for t in "${targets[@]}"; do
    wait "${pid_of[$t]}" 2>/dev/null || true
    [ "$(cat "$scratch/$t.rc" 2>/dev/null)" = 0 ] || failed+=("$t")
    cat "$scratch/$t.report"
    cat "$scratch/$t.row" >> "$summary"
done

step "summary ($summary)"
cat "$summary"
echo "fuzz.sh: $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: FINDINGS in ${failed[*]} (inputs in $findings)"
    exit 1
fi
echo "fuzz.sh: no findings"
