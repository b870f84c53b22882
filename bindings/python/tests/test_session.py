"""Sessions through Python: chat, streaming, multi-turn reuse, the low-level eval / logits / sample
path, cancellation from every callback and from another thread, and every documented error.
The tiny small-noslice model keeps each call to milliseconds (one image encoding ~0.5 s)."""
import ctypes
import os
import threading

import numpy as np
import pytest

import llavauhd
from llavauhd import Sampling, Session
from llavauhd._lib import TEXT_CALLBACK, ChatStats, SamplingParams, SessionParams, lib

NOSLICE = {"preresize_long_side": 0}
NOTEXT = TEXT_CALLBACK()  # a NULL luhd_text_callback


@pytest.fixture
def session(small):
    with Session(small, **NOSLICE) as s:
        yield s


def test_chat_streams_and_returns_the_answer(session, small_image):
    pieces = []
    text = session.chat("What animal is this?", images=[small_image], on_text=pieces.append,
                        sampling=Sampling(max_new_tokens=6))
    assert text == "".join(pieces) and text
    st = session.last_stats
    assert st.stop_reason in ("max_tokens", "eos")
    assert st.n_generated == 6 or st.stop_reason == "eos"
    assert st.n_images_encoded == 1 and st.n_images_cached == 0
    assert st.n_prompt_positions > 144 and st.n_reused_positions == 0
    assert st.image_seconds > 0 and st.prefill_seconds > 0 and st.decode_seconds >= 0
    used, size = session.context
    assert size == 4096 and st.n_prompt_positions < used <= st.n_prompt_positions + 6


def test_follow_up_reuses_the_cache_and_matches_a_fresh_prompt(small, session, small_image):
    first = session.chat("What animal is this?", images=[small_image], sampling=Sampling(max_new_tokens=5))
    prompt1 = session.last_stats.n_prompt_positions
    second = session.chat("And its colour?", sampling=Sampling(max_new_tokens=5))
    st = session.last_stats
    assert st.n_reused_positions >= prompt1 and st.n_images_encoded == 0
    # The same two-turn conversation with "<image>" placed explicitly, in a fresh session.
    with Session(small, **NOSLICE) as fresh:
        five = Sampling(max_new_tokens=5)
        assert fresh.chat("<image>\nWhat animal is this?", images=[small_image], sampling=five) == first
        assert fresh.chat("And its colour?", sampling=Sampling(max_new_tokens=5)) == second
    # After a reset the same image comes from the image cache.
    session.reset()
    assert session.context[0] == 0 and session.last_stats is None
    assert session.chat("What animal is this?", images=[small_image], sampling=Sampling(max_new_tokens=5)) == first
    assert session.last_stats.n_images_cached == 1 and session.last_stats.n_images_encoded == 0


def test_image_cache_off_encodes_again(small, small_image):
    with Session(small, image_cache_size=0, **NOSLICE) as s:
        s.chat("Hi", images=[small_image], sampling=Sampling(max_new_tokens=1))
        s.reset()
        s.chat("Hi", images=[small_image], sampling=Sampling(max_new_tokens=1))
        assert s.last_stats.n_images_encoded == 1 and s.last_stats.n_images_cached == 0


def test_system_prompt_changes_the_prompt(small):
    with Session(small) as a, Session(small, system_prompt="Be brief.") as b:
        a.chat("Hello", sampling=Sampling(max_new_tokens=1))
        b.chat("Hello", sampling=Sampling(max_new_tokens=1))
        assert b.last_stats.n_prompt_positions < a.last_stats.n_prompt_positions


def test_chat_stream_equals_chat(small, small_image):
    with Session(small, **NOSLICE) as a, Session(small, **NOSLICE) as b:
        whole = a.chat("Describe it.", images=[small_image], sampling=Sampling(max_new_tokens=8))
        pieces = list(b.chat_stream("Describe it.", images=[small_image], sampling=Sampling(max_new_tokens=8)))
        assert "".join(pieces) == whole and len(pieces) > 1
        untimed = lambda st: {k: v for k, v in vars(st).items() if not k.endswith("_seconds")}  # noqa: E731
        assert untimed(b.last_stats) == untimed(a.last_stats)
        four = Sampling(max_new_tokens=4)
        assert a.chat("Again?", sampling=four) == "".join(b.chat_stream("Again?", sampling=four))


def test_closing_a_stream_early_leaves_the_session_usable(session):
    stream = session.chat_stream("Tell me a long story.", sampling=Sampling(max_new_tokens=200))
    first = next(stream)
    assert isinstance(first, str)
    stream.close()
    used, _ = session.context
    assert used > 0
    # The partial answer joined the conversation; the next turn works and reuses the cache.
    assert session.chat("Go on.", sampling=Sampling(max_new_tokens=3)) is not None
    assert session.last_stats.n_reused_positions > 0
    # break out of a for loop: the same.
    for _ in session.chat_stream("More.", sampling=Sampling(max_new_tokens=50)):
        break
    session.chat("Thanks.", sampling=Sampling(max_new_tokens=2))


def test_closing_a_stream_before_it_starts_is_harmless(session):
    stream = session.chat_stream("Hello", sampling=Sampling(max_new_tokens=3))
    stream.close()  # never started: nothing ran
    assert session.context[0] == 0
    session.chat("Hello", sampling=Sampling(max_new_tokens=2))


def test_stream_errors_are_raised_from_the_generator(session, small_image):
    stream = session.chat_stream("<image> <image>", images=[small_image])
    with pytest.raises(llavauhd.InvalidArgumentError):
        next(stream)
    with pytest.raises(TypeError):
        session.chat_stream("Hi", on_text=print)  # type: ignore[call-arg]
    # The session is free again.
    session.chat("Hi", sampling=Sampling(max_new_tokens=1))


def test_text_callback_returning_false_stops_with_ok(session):
    seen = []

    def on_text(piece):
        seen.append(piece)
        return len(seen) < 2
    text = session.chat("Count to ten.", on_text=on_text, sampling=Sampling(max_new_tokens=20))
    assert len(seen) == 2 and text == "".join(seen)
    assert session.last_stats.stop_reason == "callback"
    session.chat("Next.", sampling=Sampling(max_new_tokens=2))


def test_text_callback_is_not_called_after_it_refused(session):
    """With a stop string the session holds back text that could start it; when the callback
    refuses a piece, that held-back text is neither passed to it nor returned."""
    pieces = list(session.chat_stream("Hello", sampling=Sampling(max_new_tokens=8)))
    first = pieces[0]
    assert len(first) >= 2
    session.reset()
    calls = []

    def on_text(piece):
        calls.append(piece)
        return False
    # A stop string starting with the first piece's last character (and never matching).
    text = session.chat("Hello", on_text=on_text, sampling=Sampling(max_new_tokens=8, stop=[first[-1] + "\x01"]))
    assert calls == [first[:-1]] and text == first[:-1]
    assert session.last_stats.stop_reason == "callback"


def test_text_callback_that_raises_stops_and_propagates(session):
    def on_text(piece):
        raise ZeroDivisionError("in on_text")
    with pytest.raises(ZeroDivisionError, match="in on_text"):
        session.chat("Hello", on_text=on_text, sampling=Sampling(max_new_tokens=5))
    assert session.chat("Hello", sampling=Sampling(max_new_tokens=2))


def test_stop_strings_end_the_answer(small):
    with Session(small) as s:
        full = s.chat("Hello", sampling=Sampling(max_new_tokens=12))
        s.reset()
        assert len(full) >= 4
        stop = full[len(full) // 2:len(full) // 2 + 2]
        cut = s.chat("Hello", sampling=Sampling(max_new_tokens=12, stop=[stop, "never-appears"]))
        assert s.last_stats.stop_reason == "stop_string"
        assert stop not in cut and full.startswith(cut)


def test_abort_callback_cancels_image_encoding_and_chat(small, small_image):
    state = {"abort": False, "polls": 0}

    def abort():
        state["polls"] += 1
        return state["abort"]
    with Session(small, abort=abort, **NOSLICE) as s:
        # During image encoding: the first poll of a turn with a new image is in the image stage.
        state["abort"] = True
        with pytest.raises(llavauhd.CancelledError) as err:
            s.chat("What is it?", images=[small_image], sampling=Sampling(max_new_tokens=5))
        assert "cancelled" in err.value.message and s.context[0] == 0
        state["abort"] = False
        assert s.chat("Hello", sampling=Sampling(max_new_tokens=2))
        # During the answer: the text callback raises the flag, decoding stops at its next poll.
        s.reset()

        def on_text(piece):
            state["abort"] = True
        with pytest.raises(llavauhd.CancelledError):
            s.chat("What is it?", images=[small_image], on_text=on_text, sampling=Sampling(max_new_tokens=30))
        state["abort"] = False
        used = s.context[0]
        assert used > 144  # the prompt and what was generated are kept
        assert s.chat("And now?", sampling=Sampling(max_new_tokens=2))
        assert s.last_stats.n_reused_positions > 144


def test_abort_callback_that_raises_cancels_and_propagates(small):
    def abort():
        raise LookupError("abort raised")
    with Session(small, abort=abort) as s:
        with pytest.raises(LookupError, match="abort raised"):
            s.chat("Hello", sampling=Sampling(max_new_tokens=2))
        with pytest.raises(LookupError):
            s.eval([1, 22557])


def test_cancel_from_another_thread(session):
    first_piece, cancelled = threading.Event(), threading.Event()
    result = {}

    def on_text(piece):
        first_piece.set()
        cancelled.wait(10)
        return True

    def run():
        try:
            session.chat("Tell me a long story.", on_text=on_text, sampling=Sampling(max_new_tokens=500))
            result["outcome"] = "finished"
        except llavauhd.CancelledError as e:
            result["outcome"] = e
    t = threading.Thread(target=run)
    t.start()
    assert first_piece.wait(30)
    with pytest.raises(RuntimeError, match="in use"):
        session.chat("Concurrent?")  # one thread at a time per session
    session.cancel()
    cancelled.set()
    t.join(30)
    assert isinstance(result["outcome"], llavauhd.CancelledError)
    # Still usable; a cancel with nothing running has no effect on the next call.
    session.cancel()
    assert session.chat("Hi", sampling=Sampling(max_new_tokens=2))
    assert session.last_stats.stop_reason in ("max_tokens", "eos")


def test_close_stops_a_running_stream(small):
    s = Session(small)
    stream = s.chat_stream("Tell me a long story.", sampling=Sampling(max_new_tokens=300))
    next(stream)
    s.close()  # cancels the worker and waits for it
    assert repr(s) == "<llavauhd.Session (closed)>"
    rest = list(stream)  # what was already queued, then the end
    assert isinstance(rest, list)
    with pytest.raises(ValueError):
        s.chat("Hi")


def test_context_full(small, small_image):
    with Session(small, n_ctx=64) as s:
        assert s.context == (0, 64)
        with pytest.raises(llavauhd.ContextFullError):
            s.chat("Describe.", images=[small_image])  # 144 image positions
        assert s.context == (0, 64)
        with pytest.raises(llavauhd.ContextFullError):
            s.eval([1] * 65)
        assert s.context == (0, 64)
        s.eval([1] * 60)
        with pytest.raises(llavauhd.ContextFullError):
            s.eval([1] * 5)
        assert s.context == (60, 64)
        s.eval([1] * 4)
        assert s.context == (64, 64)
        s.reset()
        # The answer stops when the context fills up.
        s.chat("Hi", sampling=Sampling(max_new_tokens=200))
        assert s.last_stats.stop_reason in ("context_full", "eos")
        assert s.context[0] <= 64
        with pytest.raises(llavauhd.ContextFullError):
            s.chat("Hi")


def test_bad_utf8(small):
    with pytest.raises(llavauhd.InvalidUTF8Error):
        Session(small, system_prompt=b"caf\xc3")
    with Session(small) as s:
        with pytest.raises(llavauhd.InvalidUTF8Error):
            s.chat(b"\xff\xfe")
        with pytest.raises(llavauhd.InvalidUTF8Error):
            s.chat("Hello", sampling=Sampling(stop=["ok", b"\xc3\x28"]))
        with pytest.raises(llavauhd.InvalidUTF8Error):
            list(s.chat_stream(b"bad \xed\xa0\x80 surrogate"))
        assert s.context[0] == 0
        s.chat("Hello", sampling=Sampling(max_new_tokens=1))


def test_placeholder_and_marker_counts(session, small_image):
    with pytest.raises(llavauhd.InvalidArgumentError, match="placeholder"):
        session.chat("<image> and <image>", images=[small_image])
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.eval([1, llavauhd.IMAGE_TOKEN, llavauhd.IMAGE_TOKEN, 22557], images=[small_image])
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.eval([1, 22557], images=[small_image])
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.eval([1, llavauhd.IMAGE_TOKEN])
    assert session.context[0] == 0


def test_ids_outside_the_vocabulary(session, small):
    vocab = small.info.vocab_size
    for bad in ([vocab], [1, -1], [1, 2 ** 31 - 1], [-201]):
        with pytest.raises(llavauhd.InvalidArgumentError, match="vocabulary"):
            session.eval(bad)
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.eval([])
    assert session.context[0] == 0
    session.eval([vocab - 1])


def test_eval_logits_sample(small, session):
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.logits()
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.sample()
    ids = small.tokenize("The capital of France is", add_bos=True)
    session.eval(ids)
    logits = session.logits()
    assert logits.dtype == np.float32 and logits.shape == (small.info.vocab_size,)
    assert session.sample() == int(np.argmax(logits))
    assert session.sample(Sampling(temperature=0.8, top_k=1)) == int(np.argmax(logits))
    # Evaluating in pieces gives the same logits as in one go.
    with Session(small) as other:
        for i in ids:
            other.eval([i])
        assert float(np.max(np.abs(other.logits() - logits))) <= 1e-4 * float(np.max(np.abs(logits)))
    # Greedy continuation, token by token.
    out = []
    for _ in range(4):
        t = session.sample()
        out.append(t)
        session.eval([t])
    assert session.context[0] == len(ids) + 4
    session.reset()
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.logits()


def test_seeded_sampling_is_reproducible(small):
    ids = small.tokenize("Once upon a time", add_bos=True)

    def run(seed):
        with Session(small) as s:
            s.eval(ids)
            out = []
            for _ in range(6):
                t = s.sample(Sampling(temperature=1.5, seed=seed, top_p=0.95, min_p=0.01,
                                       repetition_penalty=1.1, penalty_last_n=16))
                out.append(t)
                s.eval([t])
            return out
    assert run(7) == run(7)
    a, b, c = run(1), run(2), run(3)
    assert len({tuple(a), tuple(b), tuple(c)}) > 1


def test_bad_parameters(small, session):
    info = small.info
    for bad in ({"n_ctx": info.max_position_embeddings + 1}, {"n_ctx": -1}, {"image_cache_size": -1},
                {"max_slices": 0}, {"max_slices": 65}, {"preresize_long_side": -3}):
        with pytest.raises(llavauhd.InvalidArgumentError):
            Session(small, **bad)
    for bad in ({"max_new_tokens": -1}, {"temperature": -1.0}, {"temperature": float("nan")}, {"top_k": -1},
                {"top_p": 0.0}, {"top_p": 1.5}, {"min_p": 2.0}, {"repetition_penalty": 0.0},
                {"penalty_last_n": -1}):
        with pytest.raises(llavauhd.InvalidArgumentError):
            session.chat("Hi", sampling=Sampling(**bad))
    session.eval([1])
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.sample(Sampling(temperature=-0.5))
    with pytest.raises(llavauhd.InvalidArgumentError):
        session.sample(Sampling(top_p=0.0))


def test_reentrant_call_from_a_callback_is_refused(session):
    def on_text(piece):
        session.chat("nested")
    with pytest.raises(RuntimeError, match="in use"):
        session.chat("Hello", on_text=on_text, sampling=Sampling(max_new_tokens=3))
    session.chat("Hello", sampling=Sampling(max_new_tokens=1))


def test_session_outlives_its_model(assets):
    model = llavauhd.Model(assets / "models" / "small-noslice")
    s = Session(model)
    model.close()  # the C session holds its own reference to the model
    assert s.chat("Hello", sampling=Sampling(max_new_tokens=2))
    s.close()
    s.close()  # idempotent


def test_raw_session_calls(small, small_image):
    """The C entry points directly: NULL handles and out-pointers, wrong struct_size."""
    out = ctypes.c_void_p()
    assert lib.luhd_session_create(None, None, ctypes.byref(out)) == 1
    assert lib.luhd_session_create(small._handle, None, None) == 1
    p = SessionParams()
    p.struct_size = 0
    assert lib.luhd_session_create(small._handle, ctypes.byref(p), ctypes.byref(out)) == 1
    p.struct_size = 1 << 30
    assert lib.luhd_session_create(small._handle, ctypes.byref(p), ctypes.byref(out)) == 1
    assert b"struct_size" in lib.luhd_last_error() and not out
    for fn in (lib.luhd_session_reset, lib.luhd_session_cancel):
        assert fn(None) == 1
    assert lib.luhd_session_context(None, None, None) == 1
    lib.luhd_session_free(None)
    lib.luhd_string_free(None)
    assert lib.luhd_session_create(small._handle, None, ctypes.byref(out)) == 0
    s = out
    try:
        assert lib.luhd_session_context(s, None, None) == 0
        assert lib.luhd_session_chat(None, b"Hi", -1, None, 0, None, NOTEXT, None, None, None, None) == 1
        assert lib.luhd_session_chat(s, None, -1, None, 0, None, NOTEXT, None, None, None, None) == 1
        assert lib.luhd_session_chat(s, b"Hi", -1, None, 1, None, NOTEXT, None, None, None, None) == 1  # images NULL
        nulls = (ctypes.c_void_p * 1)()
        assert lib.luhd_session_chat(s, b"Hi", -1, nulls, 1, None, NOTEXT, None, None, None, None) == 1
        assert b"images[0] is NULL" in lib.luhd_last_error()
        assert lib.luhd_session_chat(s, b"Hi", -1, None, -1, None, NOTEXT, None, None, None, None) == 1
        sp = SamplingParams()
        sp.struct_size = 3
        assert lib.luhd_session_chat(s, b"Hi", -1, None, 0, ctypes.byref(sp), NOTEXT, None, None, None, None) == 1
        sp = lib.luhd_sampling_default_params()
        sp.n_stop_strings = 2  # stop_strings NULL
        assert lib.luhd_session_chat(s, b"Hi", -1, None, 0, ctypes.byref(sp), NOTEXT, None, None, None, None) == 1
        stats = ChatStats()  # struct_size 0
        assert lib.luhd_session_chat(s, b"Hi", -1, None, 0, None, NOTEXT, None, None, None, ctypes.byref(stats)) == 1
        assert b"out_stats->struct_size" in lib.luhd_last_error()
        # No out_text, no stats, no callback: fine.
        sp = lib.luhd_sampling_default_params()
        sp.max_new_tokens = 2
        assert lib.luhd_session_chat(s, b"Hi", -1, None, 0, ctypes.byref(sp), NOTEXT, None, None, None, None) == 0
        # An older caller's shorter stats struct: only its fields are written.
        stats = ChatStats()
        stats.struct_size = ChatStats.n_generated.offset
        stats.n_generated = -5
        assert lib.luhd_session_chat(s, b"Hi", -1, None, 0, ctypes.byref(sp), NOTEXT, None, None, None,
                                     ctypes.byref(stats)) == 0
        assert stats.n_prompt_positions > 0 and stats.n_generated == -5
        ids = (ctypes.c_int32 * 2)(1, 22557)
        assert lib.luhd_session_eval(None, ids, 2, None, 0) == 1
        assert lib.luhd_session_eval(s, None, 2, None, 0) == 1
        assert lib.luhd_session_eval(s, ids, 0, None, 0) == 1
        assert lib.luhd_session_eval(s, ids, 2, None, -1) == 1
        assert lib.luhd_session_eval(s, ids, 2, None, 0) == 0
        logits, n = ctypes.POINTER(ctypes.c_float)(), ctypes.c_int32()
        assert lib.luhd_session_logits(None, ctypes.byref(logits), ctypes.byref(n)) == 1
        assert lib.luhd_session_logits(s, None, ctypes.byref(n)) == 1
        assert lib.luhd_session_logits(s, ctypes.byref(logits), None) == 0  # n_vocab may be NULL
        token = ctypes.c_int32()
        assert lib.luhd_session_sample(None, None, ctypes.byref(token)) == 1
        assert lib.luhd_session_sample(s, None, None) == 1
        assert lib.luhd_session_sample(s, ctypes.byref(sp), ctypes.byref(token)) == 0
        bad = SamplingParams()  # struct_size 0
        assert lib.luhd_session_sample(s, ctypes.byref(bad), ctypes.byref(token)) == 1
        assert lib.luhd_session_sample(s, None, ctypes.byref(token)) == 0
    finally:
        lib.luhd_session_free(s)


def test_kv_cache_that_cannot_be_reserved_is_out_of_memory(assets):
    """In a child process whose address space is capped just above its use, a 32768-position
    Qwen2 session (64 MB of KV cache) raises OutOfMemoryError and a 64-position one works."""
    import subprocess
    import sys
    script = f"""
import resource, llavauhd
from llavauhd import Session
m = llavauhd.Model({str(assets / "models" / "chelsea-qwen2-mask5")!r})
pages = int(open("/proc/self/statm").read().split()[0])
cap = pages * resource.getpagesize() + (24 << 20)
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
try:
    Session(m, n_ctx=32768)
    print("no error")
except llavauhd.OutOfMemoryError as e:
    assert "KV cache" in e.message
    with Session(m, n_ctx=64):
        print("ok")
"""
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("AddressSanitizer reserves more address space than the cap")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "ok", r.stdout + r.stderr


def test_kv_type(small):
    # The 16-bit caches stay within the library's stated bounds of the float32 cache
    # (Tests/LanguageTests/KVCacheTypeTests.swift: f16 1e-3, bf16 1e-2 of max|logit|).
    ids = [1, 15, 92, 7, 44, 63, 28, 81, 9, 50, 33, 71]
    results = {}
    for kv_type in llavauhd.KVType:
        with llavauhd.Session(small, kv_type=kv_type) as s:
            s.eval(ids)
            results[kv_type] = s.logits()
    scale = np.abs(results[llavauhd.KVType.F32]).max()
    assert np.abs(results[llavauhd.KVType.F16] - results[llavauhd.KVType.F32]).max() <= 1e-3 * scale
    assert np.abs(results[llavauhd.KVType.BF16] - results[llavauhd.KVType.F32]).max() <= 1e-2 * scale
    with pytest.raises(ValueError):
        llavauhd.Session(small, kv_type=7)
