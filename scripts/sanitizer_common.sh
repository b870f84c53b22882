# What the sanitizer runs (scripts/dev/asan.sh, scripts/tsan.sh, scripts/ubsan.sh) share; sourced
# after `set -euo pipefail`, once the script has set
#   name     its name for messages ("tsan.sh"),
#   repo     the repository root,
#   scratch  its build folder (.build-asan, ...).
# Gives: assets (the test assets, checked), toolchain and clang (the Swift toolchain's), start,
# fail (0; a step sets 1), and the functions below.

assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
toolchain=$(dirname "$(readlink -f "$(command -v swift)")")
clang=$toolchain/clang
[ -x "$clang" ] || { echo "$name: the Swift toolchain's clang is missing ($clang)"; exit 1; }
[ -d "$assets/models" ] || { echo "$name: test assets missing in $assets (scripts/setup-test-assets.sh)"; exit 1; }
start=$SECONDS
fail=0

# step TITLE: prints a step's title with the seconds since the start.
step() { printf '\n== %s (%ds)\n' "$1" $((SECONDS - start)); }

# find_runtime KIND: sets runtime to the toolchain's shared libclang_rt.KIND-x86_64.so (asan,
# tsan); exits when the toolchain has none.
find_runtime() {
    runtime=$("$clang" -print-file-name="libclang_rt.$1-x86_64.so")
    [ -f "$runtime" ] || { echo "$name: the toolchain has no $1 runtime ($runtime)"; exit 1; }
}

# sanitized_build LOG WHAT ARGS...: `swift build ARGS...` with its output in $scratch/LOG; when
# it fails, prints the first errors and returns 1.
sanitized_build() {
    local log=$scratch/$1 what=$2
    shift 2
    mkdir -p "$scratch"
    if ! swift build "$@" >"$log" 2>&1; then
        grep -E "error:" "$log" | head -20 || tail -20 "$log"
        echo "$name: the $what build failed (log: $log)"
        return 1
    fi
}

# check_reports FOLDER PREFIX SANITIZERS: fails the run when FOLDER holds report files PREFIX.*
# (the sanitizers' log_path), printing the start of each.
check_reports() {
    step "reports"
    if compgen -G "$1/$2.*" >/dev/null; then
        echo "$name: $3 reports:"
        for f in "$1/$2".*; do echo "--- $f"; head -80 "$f"; done
        fail=1
    else
        echo "no $3 reports"
    fi
}

# finish: the closing lines; exits 1 when a step failed.
finish() {
    echo "$name: $((SECONDS - start)) s"
    if [ "$fail" -ne 0 ]; then
        echo "$name: FAILED"
        exit 1
    fi
    echo "$name: all passed"
}
