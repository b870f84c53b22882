"""Batched decoding through Python (``Model(max_decode_batch=...)``, default 8): sessions of one
model decoding at the same time on their own threads share passes over the weights, and every
session's greedy tokens and logits are exactly the ones it gets alone on a model without batching
(``max_decode_batch=1``). Closing or cancelling one session while the others decode changes
nothing for them. Out-of-range values are refused before the load."""
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


@pytest.mark.parametrize("value", [0, 65, -1])
def test_out_of_range_batch_is_refused(assets, value):
    with pytest.raises(ValueError):
        llavauhd.Model(assets / "models" / "small-noslice", max_decode_batch=value)
