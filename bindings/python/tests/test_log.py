"""Logging through Python (luhd_log_set): the callback receives the library's messages at or above
its level, from any thread; LOG_NONE silences the library; None restores standard error."""
import threading

import pytest

import llavauhd


@pytest.fixture
def log():
    messages = []
    lock = threading.Lock()

    def receive(level, message):
        with lock:
            messages.append((level, message, threading.current_thread().name))
    yield receive, messages
    llavauhd.set_log(None)  # back to standard error, warnings and errors


def test_log_callback_receives_messages(log, assets):
    receive, messages = log
    llavauhd.set_log(receive, llavauhd.LogLevel.DEBUG)
    with llavauhd.Model(assets / "models" / "small-noslice") as m:
        with pytest.raises(llavauhd.InvalidUTF8Error):
            m.tokenize(b"\xff")
    levels = {level for level, _, _ in messages}
    assert llavauhd.LogLevel.INFO in levels and llavauhd.LogLevel.DEBUG in levels
    assert any("loaded" in text and "small-noslice" in text for level, text, _ in messages if level == llavauhd.LogLevel.INFO)
    assert any("luhd_model_tokenize" in text and "UTF-8" in text for level, text, _ in messages
               if level == llavauhd.LogLevel.DEBUG)


def test_log_level_filters(log, assets):
    receive, messages = log
    llavauhd.set_log(receive, llavauhd.LogLevel.INFO)
    with llavauhd.Model(assets / "models" / "small-noslice") as m:
        with pytest.raises(llavauhd.InvalidUTF8Error):
            m.tokenize(b"\xff")
    assert messages and all(level >= llavauhd.LogLevel.INFO for level, _, _ in messages)
    messages.clear()
    for silent in (llavauhd.LogLevel.NONE, 99, -1, 2 ** 31):  # out-of-range levels silence too
        llavauhd.set_log(receive, silent)
        with llavauhd.Model(assets / "models" / "small-noslice"):
            pass
    assert messages == []


def test_log_from_other_threads_and_a_raising_callback(log, assets):
    receive, messages = log
    llavauhd.set_log(receive, llavauhd.LogLevel.DEBUG)
    t = threading.Thread(target=lambda: llavauhd.Model(assets / "models" / "small-noslice").close(), name="loader")
    t.start()
    t.join(60)
    assert any(thread == "loader" for _, _, thread in messages)

    def broken(level, message):
        raise RuntimeError("ignored")
    llavauhd.set_log(broken, llavauhd.LogLevel.DEBUG)
    with llavauhd.Model(assets / "models" / "small-noslice"):  # the exception does not escape
        pass
