"""Batched decoding through Python (``Model(max_decode_batch=...)``, default 8): sessions of one
model decoding at the same time on their own threads share passes over the weights, and every
session's greedy tokens and logits are exactly the ones it gets alone on a model without batching
(``max_decode_batch=1``). Closing or cancelling one session while the others decode changes
nothing for them. An abort callback (polled between the layers of a pass its session leads) may
decode with another session or close one that is decoding, without waiting for itself. Out-of-range
values are refused before the load."""
import threading

import numpy as np
import pytest

import llavauhd

PROMPTS = ["USER: Hello there", "USER: What is the colour of the sky? ASSISTANT:", "A", "USER: Count to ten please"]
STEPS = 10


def decode(model: llavauhd.Model, prompt: str, steps: int = STEPS,
           before_step=lambda step: None) -> tuple[list[int], list[np.ndarray]]:
    """Greedy tokens after ``prompt`` and the logits of every step (the prompt's first)."""
    with llavauhd.Session(model) as s:
        s.eval(model.tokenize(prompt, add_bos=True, parse_special=False))
        tokens, logits = [], [s.logits()]
        for step in range(steps):
            before_step(step)
            t = s.sample()
            s.eval([t])
            tokens.append(t)
            logits.append(s.logits())
        return tokens, logits


def finishes(body, seconds: float = 120) -> None:
    """Runs ``body()`` on a daemon thread and fails if it has not returned after ``seconds`` (a
    hang), re-raising what it raised."""
    outcome: list = []

    def run() -> None:
        try:
            body()
            outcome.append(None)
        except BaseException as e:  # handed to the test's thread
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a hang"
    if outcome[0] is not None:
        raise outcome[0]


def on_threads(count: int, body) -> list:
    """Runs ``body(i)`` on ``count`` threads at once; returns the results (re-raises a failure)."""
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            results[i] = body(i)
        except BaseException as e:  # handed to the main thread
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def test_concurrent_sessions_equal_their_serial_runs(assets):
    directory = assets / "models" / "small-noslice"
    with llavauhd.Model(directory, n_threads=2, max_decode_batch=1) as serial:
        expected = [decode(serial, p) for p in PROMPTS]
    with llavauhd.Model(directory, n_threads=2) as model:
        got = on_threads(len(PROMPTS), lambda i: decode(model, PROMPTS[i]))
    for (tokens, logits), (want_tokens, want_logits) in zip(got, expected):
        assert tokens == want_tokens
        for a, b in zip(logits, want_logits):
            assert np.array_equal(a, b)


def test_cancelling_and_closing_one_session_leaves_the_others(assets):
    directory = assets / "models" / "small-noslice"
    with llavauhd.Model(directory, n_threads=2, max_decode_batch=1) as serial:
        expected = [decode(serial, p) for p in PROMPTS]
    with llavauhd.Model(directory, n_threads=2) as model:
        victim = llavauhd.Session(model)
        victim.eval(model.tokenize(PROMPTS[1], add_bos=True, parse_special=False))
        outcome: dict = {}

        def body(i: int):
            if i == 1:  # decodes until cancelled (or done), then is closed while the others run
                try:
                    for _ in range(STEPS):
                        victim.eval([victim.sample()])
                    outcome["victim"] = "finished"
                except llavauhd.CancelledError:
                    outcome["victim"] = "cancelled"
                victim.close()
                return None
            if i == 0:
                return decode(model, PROMPTS[0], before_step=lambda step: victim.cancel() if step == 3 else None)
            return decode(model, PROMPTS[i], steps=3 if i == 3 else STEPS)

        got = on_threads(len(PROMPTS), body)
        assert outcome["victim"] in ("cancelled", "finished")
        for i in (0, 2, 3):
            tokens, logits = got[i]
            want_tokens, want_logits = expected[i]
            assert tokens == want_tokens[:len(tokens)]
            for a, b in zip(logits, want_logits):
                assert np.array_equal(a, b)


def test_abort_callback_may_decode_with_another_session(assets):
    directory = assets / "models" / "small-noslice"
    with llavauhd.Model(directory, n_threads=2, max_decode_batch=1) as serial:
        want_tokens, want_logits = decode(serial, PROMPTS[1], steps=4)
    with llavauhd.Model(directory, n_threads=2) as model:
        other = llavauhd.Session(model)
        other.eval(model.tokenize(PROMPTS[1], add_bos=True, parse_special=False))
        tokens: list[int] = []
        logits = [other.logits()]
        armed = threading.Event()

        def abort() -> bool:
            # Polled between the layers of the pass this session leads: a nested pass for `other`.
            if armed.is_set() and len(tokens) < 4:
                tokens.append(other.sample())
                other.eval([tokens[-1]])
                logits.append(other.logits())
            return False

        with llavauhd.Session(model, abort=abort) as nester:
            nester.eval(model.tokenize(PROMPTS[0], add_bos=True, parse_special=False))
            armed.set()
            finishes(lambda: [nester.eval([nester.sample()]) for _ in range(3)])
        other.close()
    assert tokens == want_tokens
    for a, b in zip(logits, want_logits):
        assert np.array_equal(a, b)


def test_abort_callback_may_close_a_session_decoding_in_its_pass(assets):
    prompt = PROMPTS[3]
    with llavauhd.Model(assets / "models" / "small-noslice", n_threads=2) as model:
        ids = model.tokenize(prompt, add_bos=True, parse_special=False)
        for _ in range(20):  # some rounds have the closer lead a pass holding the victim's step
            victim = llavauhd.Session(model)
            victim.eval(ids)
            decoding = threading.Event()
            outcome: list[str] = []

            def run_victim(victim=victim, decoding=decoding, outcome=outcome) -> None:
                try:
                    for _ in range(500):
                        victim.eval([victim.sample()])
                        decoding.set()
                    outcome.append("finished")
                except llavauhd.CancelledError:
                    outcome.append("cancelled")
                except ValueError:  # closed between two of its calls
                    outcome.append("closed")

            def abort(victim=victim, decoding=decoding) -> bool:
                if decoding.is_set() and not victim.closed:
                    victim.close()  # does not wait for a call that may be in this very pass
                return False

            with llavauhd.Session(model, abort=abort) as closer:
                closer.eval(ids)
                victim_thread = threading.Thread(target=run_victim, daemon=True)
                victim_thread.start()
                assert decoding.wait(60)
                finishes(lambda: [closer.eval([closer.sample()]) for _ in range(20)])
                victim_thread.join(120)
                assert not victim_thread.is_alive(), "the closed session's call did not return"
            assert victim.closed and outcome and outcome[0] in ("cancelled", "closed", "finished")


@pytest.mark.parametrize("value", [0, 65, -1])
def test_out_of_range_batch_is_refused(assets, value):
    with pytest.raises(ValueError):
        llavauhd.Model(assets / "models" / "small-noslice", max_decode_batch=value)
