#!/usr/bin/env bash
# Runs the malformed-input corpus (Tests/Fixtures/malformed/expectations.json, plus the derived
# cases made from a tiny model) through the C ABI with expect_status. Usage:
#   run_corpus.sh EXPECT_STATUS_BINARY REPO_ROOT
set -euo pipefail
bin=$1 repo=$2
assets=${LLAVAUHD_TEST_ASSETS:-$repo/.build-assets}
py=${PYTHON:-$assets/venv/bin/python}
derived=$assets/malformed-derived
if [ ! -f "$derived/.done" ]; then
    rm -rf "$derived"
    "$py" "$repo/scripts/fixtures/make_malformed_weights.py" --from-model "$assets/models/coffee-v2-mask7" --out "$derived" >/dev/null
    cp "$assets/models/coffee-v2-mask7/tokenizer.model" "$derived/derived-sharded-ok/"
    touch "$derived/.done"
fi
"$py" - "$bin" "$repo/Tests/Fixtures/malformed" "$derived" <<'PY'
import json, os, subprocess, sys
binary, corpus, derived = sys.argv[1:]
names = {  # Status case name -> luhd_status_string text
    "ok": "ok", "invalidArgument": "invalid argument", "io": "I/O error", "badWeights": "malformed weight file",
    "missingTensor": "missing tensor", "tensorMismatch": "tensor shape or dtype mismatch",
    "badConfig": "bad model config", "unsupported": "unsupported model", "badImage": "bad image",
    "imageTooLarge": "image too large", "badTokenizer": "bad tokenizer", "invalidUTF8": "invalid UTF-8",
}
exp = json.load(open(os.path.join(corpus, "expectations.json")))
cases = exp["cases"] if isinstance(exp, dict) and "cases" in exp else exp
failed = 0
for case in cases:
    base = derived if case.get("derived") else corpus
    path = os.path.join(base, case["name"])
    if not os.path.exists(path):
        print(f"missing corpus case {path}"); failed += 1; continue
    args = [binary, "model", path, names[case["status"]]] + ([case["message"]] if case.get("message") else [])
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        failed += 1
        print(f"FAIL {case['name']}: {r.stderr.strip()}")
print(f"malformed corpus through C: {len(cases) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
