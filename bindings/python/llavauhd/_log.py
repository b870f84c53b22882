"""Where the library's log messages go (``luhd_log_set``): by default to the Python logger
``logging.getLogger("llavauhd")``."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional, Union

from ._lib import INT32_MAX, INT32_MIN, LOG_CALLBACK, check, int_in_range, lib
from .types import LogLevel

#: The logger the library's messages go to unless :func:`set_log` is given a callback.
logger = logging.getLogger("llavauhd")

#: ``set_log(STDERR)``: the library writes to standard error itself (its C default).
STDERR = "stderr"

_PYTHON_LEVELS = {LogLevel.DEBUG: logging.DEBUG, LogLevel.INFO: logging.INFO, LogLevel.WARNING: logging.WARNING,
                  LogLevel.ERROR: logging.ERROR}

_LEVEL_VALUES = {int(level) for level in LogLevel}

# The callback the library calls. luhd_log_set returns only once the previous callback has no
# delivery left on any thread, so the one it replaces may be dropped then.
_installed: Optional[object] = None
_lock = threading.Lock()


def _to_logger(level: Union[LogLevel, int], message: str) -> None:
    logger.log(_PYTHON_LEVELS.get(LogLevel(level), logging.ERROR) if level in _LEVEL_VALUES else logging.ERROR,
               message)


def set_log(callback: Union[Callable[[Union[LogLevel, int], str], None], str, None] = None,
            level: Optional[int] = None) -> None:
    """Routes the library's log messages at or above ``level`` (``luhd_log_set``; applies to the
    whole process):

    * ``callback`` None (the default at import): to ``logging.getLogger("llavauhd")``, with
      ``level`` defaulting to the logger's effective level at the time of the call;
    * a callable: ``callback(level, message)``; it may run on any thread that is inside a
      library call, and on several at once; an exception it raises is ignored;
    * :data:`STDERR`: the library writes them to standard error itself.

    :attr:`LogLevel.NONE` silences the library. When this returns, the previous callback is no
    longer running anywhere. Calling it from inside a log callback raises
    :class:`InvalidArgumentError` (it would wait for itself)."""
    global _installed
    if level is None:
        if callback is None:
            effective = logger.getEffectiveLevel()
            level = next((lv for lv, py in _PYTHON_LEVELS.items() if py >= effective), LogLevel.NONE)
        else:
            level = LogLevel.WARNING
    # Any int32 reaches the library, which silences it above LogLevel.ERROR.
    level_value = int_in_range(level, "level", INT32_MIN, INT32_MAX)
    with _lock:
        if callback == STDERR:
            check(lib.luhd_log_set(None, None, level_value))
            _installed = None
            return
        target = _to_logger if callback is None else callback
        if not callable(target):
            raise TypeError(f"callback must be callable, None or llavauhd.STDERR, got {callback!r}")

        def trampoline(lvl: int, message: bytes, _user: object) -> None:
            try:
                target(LogLevel(lvl) if lvl in _LEVEL_VALUES else lvl, message.decode("utf-8", "replace"))
            except BaseException:
                pass
        new = LOG_CALLBACK(trampoline)
        check(lib.luhd_log_set(new, None, level_value))
        _installed = new
