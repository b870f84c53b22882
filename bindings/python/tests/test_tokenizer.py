"""Tokenizer through the C ABI: the golden sets (real tokenizer files, ids made by the official
libraries) and the error paths."""
import json

import pytest
from conftest import FIXTURES

import llavauhd

# case -> (golden set, whether its reference library parses special-token text): the SentencePiece
# golden ids come from the sentencepiece library (which does not), the Qwen2 ones from HF
# `tokenizers` (which does).
GOLDEN = {
    "coffee-v2-mask7": ("tok_golden_mistral_v1_spm32000.json", False),   # dir has tokenizer.model.v1
    "chelsea-qwen2-mask5": ("tok_golden_qwen2_bpe.json", True),          # dir has the Qwen2 files
}


@pytest.fixture(scope="module", params=list(GOLDEN))
def model_and_golden(request, assets):
    with llavauhd.Model(assets / "models" / request.param, n_threads=1) as m:
        name, parse_special = GOLDEN[request.param]
        yield m, json.loads((FIXTURES / "tokenizer" / name).read_text()), parse_special


def test_golden_ids_and_text(model_and_golden):
    model, golden, parse_special = model_and_golden
    for case in golden["cases"]:
        ids = model.tokenize(case["text"], add_bos=False, parse_special=parse_special)
        assert ids == case["ids"], case["text"]
        assert model.detokenize(ids, skip_special=False) == case["decoded"], case["text"]


def test_pieces_join_to_text(assets):
    with llavauhd.Model(assets / "models" / "chelsea-qwen2-mask5", n_threads=1) as m:
        text = "Grüße, 世界! 🙂"
        ids = m.tokenize(text)
        assert b"".join(m.token_to_piece(i) for i in ids).decode("utf-8") == text


def test_errors(assets):
    with llavauhd.Model(assets / "models" / "small-noslice", n_threads=1) as m:
        with pytest.raises(llavauhd.InvalidUTF8Error):
            m.tokenize(b"\xff\xfe abc")
        with pytest.raises(llavauhd.InvalidArgumentError):
            m.detokenize([1, 99999999])
        with pytest.raises(llavauhd.InvalidArgumentError):
            m.token_to_piece(llavauhd.IMAGE_TOKEN)
        assert m.tokenize("hi", add_bos=True)[0] == 1
