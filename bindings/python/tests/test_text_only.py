"""A real, trained LLM loaded straight from its .gguf file as a text-only model, through the C
ABI: SmolLM2-135M-Instruct Q4_1 (fetched by scripts/setup-test-assets.sh into
$LLAVAUHD_TEST_ASSETS/real-models). What the model says it is, a greedy chat answer equal to
llama.cpp's (the golden of Tests/Fixtures/real-models, made by
scripts/fixtures/make_real_model_goldens.py with llama-simple), and UnsupportedModelError for
every call that needs an image, leaving the session as it was."""
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES

from llavauhd import Image, InvalidArgumentError, Model, Sampling, Session, UnsupportedModelError

SMOLLM = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smollm(assets: Path) -> Iterator[Model]:
    path = assets / "real-models" / SMOLLM
    if not path.is_file():
        pytest.fail(f"{path} missing: run scripts/setup-test-assets.sh")
    with Model(path, n_threads=2) as model:
        yield model


def test_text_only_model_info(smollm: Model) -> None:
    info = smollm.info
    assert not info.has_vision and not smollm.has_vision
    assert (info.architecture, info.chat_template, info.weight_dtype) == ("llama", "chatml", "Q4_1")
    assert (info.n_layers, info.hidden_size, info.vocab_size) == (30, 576, 49152)
    assert info.projector == "" and info.token_layout == ""
    assert info.vision_hidden_size == 0 and info.tokens_per_view == 0 and info.feature_scale_mask == 0
    assert info.n_tensors > 0 and info.weight_bytes > 0


def test_chat_answer_equals_llama_cpp(smollm: Model) -> None:
    golden = json.loads((FIXTURES / "real-models" / f"{SMOLLM}.json").read_text(encoding="utf-8"))
    case = next(p for p in golden["prompts"] if p["name"] == "chat-capital")
    with Session(smollm) as session:
        sampling = Sampling(max_new_tokens=case["max_new_tokens"])
        answer = session.chat("What is the capital of France?", sampling=sampling)
    assert answer == case["continuation"] == "The capital of France is Paris."


def test_image_calls_raise_unsupported(smollm: Model) -> None:
    image = Image.from_array(np.full((8, 8, 3), 128, dtype=np.uint8))
    with Session(smollm) as session:
        with pytest.raises(UnsupportedModelError):
            session.chat("What is in <image>?", [image])
        with pytest.raises(UnsupportedModelError):
            session.eval([1, 2], [image])
        assert session.context[0] == 0
        for stage in (smollm.plan, smollm.pixels, smollm.vision_features, smollm.embed_image):
            with pytest.raises(UnsupportedModelError):
                stage(image)
        # Still a working session: "<image>" without images is text.
        assert session.chat("Say <image>.", sampling=Sampling(max_new_tokens=1)) is not None
        assert session.context[0] > 0


def test_explicit_chat_template_replaces_the_recognised_one(assets: Path, smollm: Model) -> None:
    path = assets / "real-models" / SMOLLM
    question, sampling = "What is the capital of France?", Sampling(max_new_tokens=4)
    with Session(smollm) as session:
        session.chat(question, sampling=sampling)
        recognised = session.last_stats
    assert recognised is not None
    # Naming the template the metadata gives changes nothing; another one frames the prompt anew.
    with Model(path, n_threads=2, chat_template="chatml") as same:
        assert same.info.chat_template == "chatml"
        with Session(same) as session:
            session.chat(question, sampling=sampling)
            stats = session.last_stats
            assert stats is not None and stats.n_prompt_positions == recognised.n_prompt_positions
    with Model(path, n_threads=2, chat_template="llama2") as other:
        assert other.info.chat_template == "llama2"
        with Session(other) as session:
            session.chat(question, sampling=sampling)
            stats = session.last_stats
            assert stats is not None and stats.n_prompt_positions != recognised.n_prompt_positions


def test_unknown_chat_template_name_is_refused(assets: Path) -> None:
    path = assets / "real-models" / SMOLLM
    with pytest.raises(InvalidArgumentError, match="chat_template 'jinja' is not one of .*chatml"):
        Model(path, chat_template="jinja")
    with pytest.raises(ValueError, match="NUL"):
        Model(path, chat_template="chatml\0")
