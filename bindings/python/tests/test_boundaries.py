"""What a careless or hostile Python caller can do ends in an exception, never a crash, a hang or a
silently changed value (issue 12's binding classes): integers ctypes would wrap, NUL characters
C would cut at, the logits after a chat, and the races between threads on one handle (cancel
against close, close from a callback, set_log against logging threads, Image.close and
Model.close against running calls). The races use real threads, many rounds, bounded time."""
import json
import threading

import numpy as np
import pytest

import llavauhd
from llavauhd import Sampling, Session


def use_while_closing(handle, use, refusals):
    """Calls use() on another thread while this thread closes handle; returns "ok", or the
    exception of a type in refusals that use() raised instead (the handle was closed before a
    call borrowed it). Any other exception fails the test."""
    outcome = []

    def run():
        try:
            use()
            outcome.append("ok")
        except refusals as e:
            outcome.append(e)
    t = threading.Thread(target=run)
    t.start()
    handle.close()
    t.join()
    assert len(outcome) == 1, "use() raised an exception that is not a refusal"
    return outcome[0]


@pytest.mark.parametrize("field, value", [
    ("max_new_tokens", 2**32 + 3), ("max_new_tokens", -2**31 - 1), ("top_k", 2**31), ("penalty_last_n", -2**40),
    ("seed", 2**64), ("seed", -1),
])
def test_sampling_refuses_integers_ctypes_would_wrap(field, value):
    with pytest.raises(ValueError, match=field):
        Sampling(**{field: value})


def test_sampling_defaults_come_from_the_library():
    c = llavauhd._lib.lib.luhd_sampling_default_params()
    s = Sampling()
    assert (s.temperature, s.top_k, s.top_p, s.min_p, s.repetition_penalty, s.penalty_last_n, s.seed,
            s.max_new_tokens, s.stop) == (c.temperature, c.top_k, c.top_p, c.min_p, c.repetition_penalty,
                                          c.penalty_last_n, c.seed, c.max_new_tokens, ())
    with pytest.raises(TypeError):
        Sampling(stop="not a list")  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs, field", [
    ({"n_ctx": 2**32 + 64}, "n_ctx"), ({"image_cache_size": 2**31}, "image_cache_size"),
    ({"preresize_long_side": 2**32}, "preresize_long_side"), ({"max_slices": 2**32 + 9}, "max_slices"),
])
def test_session_refuses_integers_ctypes_would_wrap(small, kwargs, field):
    with pytest.raises(ValueError, match=field):
        Session(small, **kwargs)


def test_other_integers_are_bounded(small, small_image, assets):
    with pytest.raises(ValueError, match="preresize_long_side"):
        small.plan(small_image, preresize_long_side=2**32)
    with pytest.raises(ValueError, match="max_slices"):
        small.pixels(small_image, max_slices=-2**33)
    with pytest.raises(ValueError, match="n_threads"):
        llavauhd.Model(assets / "models" / "small-noslice", n_threads=2**32 + 1)
    for kwargs in ({"image_cache_bytes": 2**63}, {"image_cache_bytes": -2**63 - 1}, {"prefix_cache_bytes": 2**64},
                   {"prefix_cache_bytes": -1}, {"max_decode_batch": 2**32 + 8}, {"max_decode_batch": -2**31}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            llavauhd.Model(assets / "models" / "small-noslice", **kwargs)
    with pytest.raises(TypeError, match="prefix_cache_bytes"):
        llavauhd.Model(assets / "models" / "small-noslice", prefix_cache_bytes=1e9)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token"):
        small.token_to_piece(2**32 + 13)
    with pytest.raises(ValueError, match="ids"):
        small.detokenize([2**32 + 1])
    with pytest.raises(ValueError, match="max_pixels"):
        llavauhd.Image.from_bytes(b"\x89PNG", max_pixels=2**64)
    with Session(small, n_ctx=64) as s, pytest.raises(ValueError, match="ids"):
        s.eval([1, 2**31])


def test_nul_in_c_strings_is_an_error_not_a_cut(small, assets):
    path = str(assets / "models" / "small-noslice")
    with pytest.raises(ValueError, match="path"):
        llavauhd.Model(path + "\0junk")
    with pytest.raises(ValueError, match="system_prompt"):
        Session(small, system_prompt="Be brief.\0 Ignore that.")
    with pytest.raises(ValueError, match="stop"):
        Sampling(stop=("ok", "a\0b"))
    with pytest.raises(ValueError, match="path"):
        llavauhd.Image.open("photo.png\0.jpg")


def test_nul_in_chat_text_is_text(small):
    """Chat and tokenizer text go with their length: a NUL is one more character, not the end."""
    assert len(small.tokenize("a\0b")) > len(small.tokenize("a"))
    one = Sampling(max_new_tokens=2)
    with Session(small, n_ctx=256) as s:
        s.chat("Hi\0 there, how are you?", sampling=one)
        with_nul = s.last_stats.n_prompt_positions
        s.reset()
        s.chat("Hi", sampling=one)
        assert with_nul > s.last_stats.n_prompt_positions


def test_streamed_and_returned_answers_agree(small):
    with Session(small, n_ctx=512) as s:
        pieces = []
        answer = s.chat("Tell me something.", sampling=Sampling(max_new_tokens=24), on_text=pieces.append)
        assert answer == "".join(pieces) and s.last_stats.n_generated == 24


def test_an_answer_holding_nul_is_returned_whole(assets, tmp_path):
    """An answer holding U+0000 comes back whole from chat() (luhd_session_chat's out_text and
    out_text_length), as it was streamed. A real run: the tiny Qwen2 model's greedy first answer
    token is found, then a copy of the model whose byte-level vocabulary has that token and the
    token of the byte 0x00 ("Ā") swapped answers the same ids, so its answer starts with U+0000."""
    source = assets / "models" / "chelsea-qwen2-mask5"
    prompt, answer_length = "Hi", 6
    with llavauhd.Model(source) as m, Session(m, n_ctx=256) as s:
        s.chat(prompt, sampling=Sampling(max_new_tokens=1))
        first = s.sample()  # the greedy first answer token
    swapped = tmp_path / "model"
    swapped.mkdir()
    for f in source.iterdir():
        if f.name not in ("vocab.json", "tokenizer.json"):
            (swapped / f.name).symlink_to(f)

    def swap(vocab: dict) -> None:
        text = next(t for t, i in vocab.items() if i == first)
        vocab[text], vocab["Ā"] = vocab["Ā"], first
    vocab = json.loads((source / "vocab.json").read_text(encoding="utf-8"))
    swap(vocab)
    (swapped / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    swap(tokenizer["model"]["vocab"])
    (swapped / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")

    with llavauhd.Model(swapped) as m, Session(m, n_ctx=256) as s:
        pieces = []
        answer = s.chat(prompt, sampling=Sampling(max_new_tokens=answer_length), on_text=pieces.append)
        assert s.last_stats.n_generated == answer_length
    assert answer.startswith("\0") and len(answer) > 1, answer
    assert answer == "".join(pieces)


def test_logits_after_chat_are_the_last_evaluated_positions(small):
    """max_new_tokens 1: the answer token comes from the prompt's logits and is not evaluated,
    so those are the logits after the chat, and greedy sampling from them gives that token."""
    with Session(small, n_ctx=256) as s:
        with pytest.raises(llavauhd.InvalidArgumentError):
            s.logits()
        s.chat("Hello", sampling=Sampling(max_new_tokens=1))
        logits = s.logits()
        assert logits.shape == (small.info.vocab_size,)
        assert s.sample() == int(np.argmax(logits))
        s.chat("Again", sampling=Sampling(max_new_tokens=5))
        assert s.logits().shape == (small.info.vocab_size,)


def test_plan_and_pyramid_levels_read_no_c_state(small, small_image, monkeypatch):
    """info is read once at load: plan() makes one C call and pyramid_levels() none."""
    def fail(*_):
        raise AssertionError("luhd_model_get_properties called again")
    monkeypatch.setattr(llavauhd._lib.lib, "luhd_model_get_properties", fail)
    assert small.plan(small_image).views >= 1
    assert small.pyramid_levels()[0] == (1, True)
    assert small.info.architecture == "llama"


# ------------------------------------------------------------------------------------------------
# Races and re-entrancy

def test_close_from_inside_callbacks_raises_instead_of_hanging(small):
    with Session(small, n_ctx=256) as s:
        with pytest.raises(RuntimeError, match="inside"):
            s.chat("Tell me a story.", sampling=Sampling(max_new_tokens=8), on_text=lambda _: s.close())
        assert not s.closed
        # Another call on the same session from the callback is refused, not deadlocked.
        with pytest.raises(RuntimeError, match="in use"):
            s.chat("Again.", sampling=Sampling(max_new_tokens=8), on_text=lambda _: s.context)
        s.chat("Fine now?", sampling=Sampling(max_new_tokens=2))

    def abort_closes():
        holder[0].close()
        return False
    holder = []
    with Session(small, n_ctx=256, abort=abort_closes) as s:
        holder.append(s)
        with pytest.raises(RuntimeError, match="inside"):
            s.chat("Hi", sampling=Sampling(max_new_tokens=2))
    holder.clear()


def test_cancel_racing_close_never_touches_freed_memory(small):
    for _ in range(150):
        s = Session(small, n_ctx=128)
        stop = threading.Event()

        def cancel_loop(session=s, stop=stop):
            while not stop.is_set():
                session.cancel()
        t = threading.Thread(target=cancel_loop)
        t.start()
        s.close()
        stop.set()
        t.join()
        s.cancel()  # after close: no effect


def test_close_while_another_thread_chats(small):
    for _ in range(10):
        s = Session(small, n_ctx=512)
        use_while_closing(s, lambda s=s: s.chat("Tell me a long story.", sampling=Sampling(max_new_tokens=64)),
                          (llavauhd.CancelledError, ValueError, RuntimeError))
        assert s.closed


def test_set_log_replaced_while_threads_log(small):
    """Every replaced callback is marked dead right after set_log returns; none may run later."""
    dead_called = []
    stop = threading.Event()

    def log_by_failing():
        while not stop.is_set():
            with pytest.raises(llavauhd.InvalidUTF8Error):
                small.tokenize(b"\xff")

    threads = [threading.Thread(target=log_by_failing) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        previous = None
        for _ in range(300):
            alive = [True]

            def receive(level, message, alive=alive):
                if not alive[0]:
                    dead_called.append(message)
            llavauhd.set_log(receive, llavauhd.LogLevel.DEBUG)
            if previous is not None:
                previous[0] = False
            previous = alive
    finally:
        stop.set()
        for t in threads:
            t.join()
        llavauhd.set_log()
    assert not dead_called


def test_set_log_from_inside_a_log_callback_is_refused(small):
    outcome = []

    def receive(level, message):
        try:
            llavauhd.set_log(llavauhd.STDERR)
        except llavauhd.InvalidArgumentError as e:
            outcome.append(e)
    llavauhd.set_log(receive, llavauhd.LogLevel.DEBUG)
    try:
        with pytest.raises(llavauhd.InvalidUTF8Error):
            small.tokenize(b"\xff")
    finally:
        llavauhd.set_log()
    assert outcome and "inside a log callback" in outcome[0].message


def test_image_close_while_another_thread_chats_with_it(small, small_image):
    pixels = small_image.to_array()
    one = Sampling(max_new_tokens=1)
    with Session(small, n_ctx=2048, image_cache_size=0, preresize_long_side=0) as s:
        for _ in range(8):
            img = llavauhd.Image.from_array(pixels)
            use_while_closing(img, lambda img=img: s.chat("What is it?", images=[img], sampling=one),
                              ValueError)  # closed before the chat borrowed it
            assert img.closed
            s.reset()


def test_model_close_while_another_thread_uses_it(assets):
    for _ in range(5):
        model = llavauhd.Model(assets / "models" / "small-noslice")

        def use(model=model):
            for _ in range(20):
                model.tokenize("Hello there")
            with Session(model, n_ctx=64) as s:
                s.chat("Hi", sampling=Sampling(max_new_tokens=1))
        use_while_closing(model, use, ValueError)  # closed before a call borrowed it
