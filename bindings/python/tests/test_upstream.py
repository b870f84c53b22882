"""End to end through Python, against every upstream golden case: the image file and the question
in, the upstream greedy ids out, through Session.chat and through the eval / logits / sample loop
(Tests/Fixtures/upstream: the original PyTorch code on the case's tiny model, float32)."""
import pytest
from conftest import CASES, UPSTREAM, manifest, npy, relative_error, slicing

import llavauhd
from llavauhd import Sampling, Session


@pytest.mark.parametrize("case", CASES)
def test_chat_and_generate_loop_reproduce_upstream(case, load_model):
    model, m = load_model(case), manifest(case)
    image = llavauhd.Image.open(UPSTREAM / case / "input.png")
    expected = [int(t) for t in npy(case, "generated_ids")]
    with Session(model, **slicing(case)) as s:
        # Chat: the template and the image placement of upstream's eval scripts.
        pieces = []
        text = s.chat(m["prompt"]["question"], images=[image], on_text=pieces.append,
                      sampling=Sampling(max_new_tokens=len(expected)))
        st = s.last_stats
        assert st.n_prompt_positions == m["layout"]["seq_len"]
        assert st.n_generated == len(expected) and st.stop_reason == "max_tokens"
        assert "".join(pieces) == text
        # The answer is the text of the upstream ids, as Hugging Face's decode gives it (a
        # SentencePiece answer drops the leading space of its first piece; Qwen2's keeps it).
        assert text == model.detokenize(expected, skip_special=True)

        # The low-level path on the same session: upstream's input_ids with -200 for the image
        # (the image now comes from the session's cache).
        s.reset()
        s.eval([int(t) for t in npy(case, "input_ids")], images=[image])
        assert s.context[0] == m["layout"]["seq_len"]
        err = relative_error(s.logits(), npy(case, "logits_last"))
        print(f"{case}: last-position logits error {err:.2e}")
        assert err <= 1e-4
        generated = []
        for _ in expected:
            token = s.sample()
            generated.append(token)
            s.eval([token])
        assert generated == expected


@pytest.mark.parametrize("case", ["coffee-v2-mask7", "chelsea-qwen2-mask5"])
def test_prompt_chunks_tokenize_as_upstream(case, load_model):
    """The prompt text's chunks around "<image>" give upstream's ids (tokenize with special-token
    parsing, BOS when the tokenizer has one), and upstream's input_ids are the chunks with the
    first chunk's BOS only and -200 between them."""
    model, m = load_model(case), manifest(case)
    chunks, want = m["prompt"]["chunks"], m["prompt"]["chunk_ids_with_bos"]
    is_llama = model.info.architecture == "llama"
    got = [model.tokenize(c, add_bos=True, parse_special=True) for c in chunks]
    assert got == want
    ids = got[0] + [llavauhd.IMAGE_TOKEN] + (got[1][1:] if is_llama else got[1])
    assert ids == [int(t) for t in npy(case, "input_ids")]
