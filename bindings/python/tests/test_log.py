"""Logging through Python (luhd_log_set): the callback receives the library's messages at or above
its level, from any thread; LogLevel.NONE silences the library; the default routes them to
logging.getLogger("llavauhd")."""
import logging
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
    llavauhd.set_log()  # back to the default: the "llavauhd" logger


def load_and_fail(assets):
    """Loads the tiny model (INFO "loaded ...") and makes one call fail (DEBUG, naming
    luhd_model_tokenize and UTF-8)."""
    with llavauhd.Model(assets / "models" / "small-noslice") as m:
        with pytest.raises(llavauhd.InvalidUTF8Error):
            m.tokenize(b"\xff")


def test_log_callback_receives_messages(log, assets):
    receive, messages = log
    llavauhd.set_log(receive, llavauhd.LogLevel.DEBUG)
    load_and_fail(assets)
    levels = {level for level, _, _ in messages}
    assert llavauhd.LogLevel.INFO in levels and llavauhd.LogLevel.DEBUG in levels
    assert any("loaded" in text and "small-noslice" in text
               for level, text, _ in messages if level == llavauhd.LogLevel.INFO)
    assert any("luhd_model_tokenize" in text and "UTF-8" in text for level, text, _ in messages
               if level == llavauhd.LogLevel.DEBUG)


def test_log_level_filters(log, assets):
    receive, messages = log
    llavauhd.set_log(receive, llavauhd.LogLevel.INFO)
    load_and_fail(assets)
    assert messages and all(level >= llavauhd.LogLevel.INFO for level, _, _ in messages)
    messages.clear()
    for silent in (llavauhd.LogLevel.NONE, 99, -1):  # levels past ERROR silence too
        llavauhd.set_log(receive, silent)
        with llavauhd.Model(assets / "models" / "small-noslice"):
            pass
    assert messages == []
    with pytest.raises(ValueError, match="level"):  # not an int32: refused, not wrapped
        llavauhd.set_log(receive, 2**31)


def test_messages_go_to_the_llavauhd_logger_by_default(assets, caplog):
    llavauhd.set_log(level=llavauhd.LogLevel.INFO)
    try:
        with caplog.at_level(logging.INFO, logger="llavauhd"):
            with llavauhd.Model(assets / "models" / "small-noslice"):
                pass
        assert any(r.name == "llavauhd" and r.levelno == logging.INFO and "loaded" in r.getMessage()
                   for r in caplog.records)
    finally:
        llavauhd.set_log()


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
