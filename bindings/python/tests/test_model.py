"""Loading the tiny models of the upstream fixtures through Python."""
import json

import pytest
from conftest import FIXTURES

import llavauhd
from llavauhd import Session

CASES = ["coffee-v2-mask7", "tall-v2-mask7", "small-noslice", "chelsea-qwen2-mask5", "rocket-v1"]


@pytest.mark.parametrize("case", CASES)
def test_tiny_model_info_matches_manifest(case, assets):
    manifest = json.loads((FIXTURES / "upstream" / case / "manifest.json").read_text())
    cfg = manifest["model"]["config"]
    clip = manifest["model"]["clip_inferred_from_shapes"]
    with llavauhd.Model(assets / "models" / case, n_threads=1) as model:
        info = model.info
    assert info.architecture == ("qwen2" if "qwen" in cfg["model_type"] else "llama")
    assert info.hidden_size == cfg["hidden_size"]
    assert info.n_layers == cfg["num_hidden_layers"]
    assert info.n_heads == cfg["num_attention_heads"]
    assert info.n_kv_heads == cfg["num_key_value_heads"]
    assert info.vocab_size == cfg["vocab_size"]
    assert info.vision_hidden_size == clip["hidden_size"]
    assert info.vision_n_layers == clip["num_hidden_layers"]
    assert info.vision_intermediate_size == clip["intermediate_size"]
    assert info.vision_n_heads == clip["num_attention_heads"]
    assert info.vision_image_size == clip["image_size"]
    assert info.vision_patch_size == clip["patch_size"]
    assert info.weight_dtype == "BF16"
    assert info.n_threads == 1
    assert info.blas_core not in ("", "Prescott")
    assert info.projector == ("uhd_v1" if case == "rocket-v1" else "hiwin")
    assert info.has_vision and model.has_vision
    assert info.tokens_per_view == 144


def test_progress_callback_reports_and_cancels(assets):
    seen = []
    with llavauhd.Model(assets / "models" / "small-noslice", progress=lambda f: seen.append(f) or True):
        pass
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert seen == sorted(seen)
    with pytest.raises(llavauhd.CancelledError):
        llavauhd.Model(assets / "models" / "small-noslice", progress=lambda f: False)

    def broken(fraction):
        raise OverflowError("from the progress callback")
    with pytest.raises(OverflowError, match="from the progress callback"):
        llavauhd.Model(assets / "models" / "small-noslice", progress=broken)


def test_missing_directory_is_io_error(tmp_path):
    with pytest.raises(llavauhd.FileAccessError):
        llavauhd.Model(tmp_path / "nope")


def test_bad_thread_count():
    with pytest.raises(ValueError):
        llavauhd.Model("/", n_threads=0)


@pytest.mark.parametrize("tokenizer", [None, ("tokenizer.model", b"garbage"), ("tokenizer.json", b"{not json")])
def test_bad_tokenizer(tokenizer, tmp_path, assets):
    """A model directory whose tokenizer files are missing or malformed: BadTokenizerError."""
    src = assets / "models" / "small-noslice"
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(src / name)
    if tokenizer:
        (tmp_path / tokenizer[0]).write_bytes(tokenizer[1])
    with pytest.raises(llavauhd.BadTokenizerError) as err:
        llavauhd.Model(tmp_path)
    assert err.value.status == 10 and "tokenizer" in err.value.message


def test_fast_precision_stays_within_stated_bound_of_exact_results(assets):
    """Precision.FAST changes only the large products (int8 products in the vision tower on AVX-512 VNNI CPUs,
    bf16 products where bf16 measures faster: activations rounded to bf16, 2^-9 relative each): the
    vision features of every view of a sliced photo, and the last-position logits of a 200-token
    prompt, stay within 2e-2 of the largest exact value, whatever this CPU picks."""
    ids = [1] + [100 + (i * 7919) % 31000 for i in range(1, 200)]
    photo = llavauhd.Image.open(FIXTURES / "upstream" / "coffee-v2-mask7" / "input.png")
    features, logits = [], []
    for bf16 in (False, True):
        precision = llavauhd.Precision.FAST if bf16 else llavauhd.Precision.EXACT
        with llavauhd.Model(assets / "models" / "coffee-v2-mask7", precision=precision) as model:
            features.append(model.vision_features(photo))
            with Session(model) as session:
                session.eval(ids)
                logits.append(session.logits().copy())
    assert len(features[0]) == len(features[1]) > 1
    for exact, fast in zip(*features):
        assert exact.shape == fast.shape
        assert abs(fast - exact).max() <= 2e-2 * abs(exact).max()
    assert logits[0].shape == logits[1].shape
    assert abs(logits[1] - logits[0]).max() <= 2e-2 * abs(logits[0]).max()
