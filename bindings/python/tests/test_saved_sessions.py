"""Saved sessions and the prefix cache through Python (issue 14 items 2 and 3): Session.save and
Session.load continue a conversation exactly (greedy answers, logits, the sampling stream);
damaged, truncated and foreign files raise their errors; Model(prefix_cache_bytes=) shares
computed rows between sessions with the same greedy answers as without (logits to float
rounding). Hostile paths and orders (issue 12): directories, devices, FIFOs, unwritable places,
saves racing each other, loads and cancels of the same file and session (a text-only model's
file in a vision model and back: test_hostile_inputs.py)."""
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import llavauhd

NOSLICE = {"preresize_long_side": 0}
FIRST = "What animal is this?"
SECOND = "And what colour is it?"
SAMPLING = llavauhd.Sampling(max_new_tokens=6)


@pytest.fixture(scope="module")
def isolated(assets):
    """small-noslice without the prefix cache (the default, said explicitly): each round trip on
    its own."""
    with llavauhd.Model(assets / "models" / "small-noslice", prefix_cache_bytes=0) as model:
        yield model


def test_loaded_session_continues_as_the_saving_one(isolated, small_image, tmp_path: Path):
    path = tmp_path / "chat.luhds"
    with llavauhd.Session(isolated, **NOSLICE) as original:
        original.chat(FIRST, images=[small_image], sampling=SAMPLING)
        original.save(path)
        logits = original.logits().copy()
        with llavauhd.Session.load(isolated, path) as loaded:
            assert loaded.context == original.context
            assert np.array_equal(loaded.logits(), logits)
            expected = original.chat(SECOND, sampling=SAMPLING)
            assert loaded.chat(SECOND, sampling=SAMPLING) == expected
            assert loaded.last_stats is not None and original.last_stats is not None
            assert loaded.last_stats.n_reused_positions == original.last_stats.n_reused_positions > 0


def test_sampling_stream_continues(isolated, tmp_path: Path):
    sampling = llavauhd.Sampling(temperature=1.5, seed=11)
    with llavauhd.Session(isolated) as s:
        s.eval([1, 450, 4996, 17354])
        s.sample(sampling)
        s.save(tmp_path / "s.luhds")
        with llavauhd.Session.load(isolated, tmp_path / "s.luhds") as loaded:
            assert [loaded.sample(sampling) for _ in range(6)] == [s.sample(sampling) for _ in range(6)]


def test_bad_files_raise_their_errors(isolated, load_model, small_image, tmp_path: Path):
    path = tmp_path / "chat.luhds"
    with llavauhd.Session(isolated, **NOSLICE) as s:
        s.chat(FIRST, images=[small_image], sampling=SAMPLING)
        s.save(path)
    good = path.read_bytes()
    case = tmp_path / "case.luhds"
    for bad in (b"", good[:-1], good[:40], b"X" + good[1:], good[:-3] + bytes([good[-3] ^ 1]) + good[-2:]):
        case.write_bytes(bad)
        with pytest.raises(llavauhd.BadSessionFileError):
            llavauhd.Session.load(isolated, case)
    with pytest.raises(llavauhd.SessionMismatchError):
        llavauhd.Session.load(load_model("rocket-v1"), path)
    with pytest.raises(llavauhd.ContextFullError):
        llavauhd.Session.load(isolated, path, n_ctx=8)
    with pytest.raises(llavauhd.FileAccessError):
        llavauhd.Session.load(isolated, tmp_path / "missing.luhds")
    with llavauhd.Session(isolated) as s, pytest.raises(llavauhd.FileAccessError):
        s.save(tmp_path / "no" / "such" / "dir.luhds")


def test_prefix_cache_reuses_rows_with_the_same_answer(assets, isolated, small_image):
    with pytest.raises(ValueError):
        llavauhd.Model(assets / "models" / "small-noslice", prefix_cache_bytes=-1)
    with llavauhd.Model(assets / "models" / "small-noslice", prefix_cache_bytes=512 << 20) as shared:
        with llavauhd.Session(shared, **NOSLICE) as first:
            first.chat(FIRST, images=[small_image], sampling=SAMPLING)
        with llavauhd.Session(shared, **NOSLICE) as second, llavauhd.Session(isolated, **NOSLICE) as plain:
            answer = second.chat(SECOND, images=[small_image], sampling=SAMPLING)
            assert answer == plain.chat(SECOND, images=[small_image], sampling=SAMPLING)
            assert second.last_stats is not None and plain.last_stats is not None
            assert second.last_stats.n_reused_positions >= 144 and plain.last_stats.n_reused_positions == 0
            # Float rounding differs with the prefill pass's row count; the bound of PrefixCacheTests.
            error = np.max(np.abs(second.logits() - plain.logits())) / np.max(np.abs(plain.logits()))
            assert error <= 1e-4


def test_hostile_paths_end_in_a_status(isolated, tmp_path: Path):
    with llavauhd.Session(isolated) as s:
        s.eval([1, 450, 4996])
        for path in ("", tmp_path, "/proc/luhd-session.luhds", "/dev/null/x.luhds", tmp_path / ("x" * 300)):
            with pytest.raises(llavauhd.FileAccessError):
                s.save(path)
        with pytest.raises(ValueError, match="path"):
            s.save(str(tmp_path / "a.luhds") + "\0b")
        with pytest.raises(llavauhd.InvalidUTF8Error):
            s.save(os.fsencode(tmp_path) + b"/\xff.luhds")
        assert sorted(os.listdir(tmp_path)) == []  # no temporary file is left behind
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        for path in ("", tmp_path, "/dev/zero", fifo):  # missing or not regular files: refused unread
            with pytest.raises(llavauhd.FileAccessError):
                llavauhd.Session.load(isolated, path)
        with pytest.raises(ValueError, match="path"):
            llavauhd.Session.load(isolated, str(fifo) + "\0")
        with pytest.raises(ValueError, match="KVType"):
            llavauhd.Session.load(isolated, fifo, kv_type=7)  # type: ignore[arg-type]


def test_saves_loads_and_cancels_racing_on_one_file(isolated, tmp_path: Path):
    path = tmp_path / "shared.luhds"
    sessions = [llavauhd.Session(isolated) for _ in range(2)]
    for i, s in enumerate(sessions):
        s.eval([1, 450 + i, 4996, 17354][:3 + i])
    sessions[0].save(path)
    stop = threading.Event()
    failures: list[BaseException] = []
    loads = [0]

    def saver(s: llavauhd.Session) -> None:
        try:
            for _ in range(15):
                s.save(path)
        except BaseException as e:
            failures.append(e)

    def loader() -> None:
        try:
            while not stop.is_set():
                with llavauhd.Session.load(isolated, path) as loaded:  # always a whole file
                    assert loaded.context[0] in (3, 4)
                loads[0] += 1
        except BaseException as e:
            failures.append(e)

    def canceller() -> None:
        while not stop.is_set():
            for s in sessions:
                s.cancel()  # a save is not cancelled (nothing to stop) and not disturbed

    helpers = [threading.Thread(target=loader), threading.Thread(target=canceller)]
    savers = [threading.Thread(target=saver, args=(s,)) for s in sessions]
    for t in helpers + savers:
        t.start()
    for t in savers:
        t.join(120)
    stop.set()
    for t in helpers:
        t.join(120)
    for s in sessions:
        s.close()
    assert not failures, failures
    assert loads[0] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["shared.luhds"]
