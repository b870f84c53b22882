"""One model shared by several threads, each with its own session (the header's threading
contract): the answers, logits and image stages are exactly those of running the same work one
after another."""
import threading

import numpy as np
from conftest import UPSTREAM

import llavauhd
from llavauhd import Sampling, Session
from llavauhd._lib import lib

QUESTION = "What animal is this?"


def answer(model, image):
    with Session(model, preresize_long_side=0) as s:
        text = s.chat(QUESTION, images=[image], sampling=Sampling(max_new_tokens=8))
        s.eval(model.tokenize(" Also,"))
        return text, s.logits()


def run_threads(target, n):
    results, errors = [None] * n, []

    def work(i):
        try:
            results[i] = target()
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_sessions_on_threads_match_a_sequential_run(small):
    image = llavauhd.Image.open(UPSTREAM / "small-noslice" / "input.png")
    sequential = [answer(small, image) for _ in range(2)]
    assert sequential[0][0] == sequential[1][0]
    np.testing.assert_array_equal(sequential[0][1], sequential[1][1])
    concurrent = run_threads(lambda: answer(small, image), 3)
    for text, logits in concurrent:
        assert text == sequential[0][0]
        np.testing.assert_array_equal(logits, sequential[0][1])


def test_image_stages_on_threads_match_a_sequential_run(small):
    image = llavauhd.Image.open(UPSTREAM / "small-noslice" / "input.png")
    want = small.embed_image(image, preresize_long_side=0)
    for got in run_threads(lambda: small.embed_image(image, preresize_long_side=0), 3):
        np.testing.assert_array_equal(got, want)


def test_last_error_is_per_thread(small):
    """A failure on one thread does not change another thread's last error."""
    failed = threading.Event()
    seen = {}

    def failing():
        try:
            small.tokenize(b"\xff")
        except llavauhd.InvalidUTF8Error:
            seen["failing"] = lib.luhd_last_error()
        failed.set()

    def clean():
        failed.wait(30)
        seen["clean"] = lib.luhd_last_error()
    threads = [threading.Thread(target=failing), threading.Thread(target=clean)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen["failing"].startswith(b"luhd_model_tokenize: ") and b"UTF-8" in seen["failing"]
    assert seen["clean"] == b""
