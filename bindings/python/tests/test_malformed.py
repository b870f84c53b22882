"""The malformed-input corpus (Tests/Fixtures/malformed, plus the cases derived from a tiny model)
through the Python binding: every case raises the exception of its documented status."""
import json
import shutil
import subprocess
import sys

import pytest
from conftest import ASSETS, FIXTURES, REPO

import llavauhd
from llavauhd import _errors

STATUS_CODES = {"ok": 0, "invalidArgument": 1, "io": 2, "badWeights": 3, "missingTensor": 4, "tensorMismatch": 5,
                "badConfig": 6, "unsupported": 7, "badImage": 8, "imageTooLarge": 9, "badTokenizer": 10}

CORPUS = json.loads((FIXTURES / "malformed" / "expectations.json").read_text())["cases"]


def derived_dir():
    out = ASSETS / "malformed-derived"
    if not (out / ".done").exists():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_malformed_weights.py"),
                        "--from-model", str(ASSETS / "models" / "coffee-v2-mask7"), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        shutil.copy(ASSETS / "models" / "coffee-v2-mask7" / "tokenizer.model", out / "derived-sharded-ok")
        (out / ".done").touch()
    return out


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_corpus_case(case, assets):
    base = derived_dir() if case.get("derived") else FIXTURES / "malformed"
    path = base / case["name"]
    code = STATUS_CODES[case["status"]]
    if code == 0:
        with llavauhd.Model(path) as m:
            assert m.info.n_tensors > 0
        return
    with pytest.raises(_errors.BY_STATUS[code]) as err:
        llavauhd.Model(path)
    assert err.value.status == code
    assert case.get("message", "") in err.value.message
