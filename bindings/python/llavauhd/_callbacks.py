"""Python callables behind the C callbacks.

Rules every trampoline here follows:

* No Python exception ever propagates into C. A callback that raises asks the library to stop
  (the same as returning the "stop" value), and the exception is kept so that the Python call
  that started the work raises it once the C call has returned.
* The ctypes function object is kept alive by its owner (a :class:`Model` load, an image-stage
  call, a :class:`Session`) for as long as C may call it.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional

from ._lib import ABORT_CALLBACK


class CallbackErrors:
    """The first exception raised by a callback during a C call, re-raised afterwards.

    Callbacks may run on library threads, so access is locked.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._error: Optional[BaseException] = None

    def record(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error

    @property
    def pending(self) -> bool:
        """True when a callback has raised since the last :meth:`raise_pending`."""
        with self._lock:
            return self._error is not None

    def clear(self) -> None:
        with self._lock:
            self._error = None

    def raise_pending(self) -> None:
        """Raises (and forgets) the recorded exception, if any."""
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error


def abort_trampoline(abort: Callable[[], bool], errors: CallbackErrors) -> Any:
    """A ``luhd_abort_callback`` calling ``abort()``; an exception counts as "stop"."""

    def trampoline(_user: object) -> bool:
        try:
            return bool(abort())
        except BaseException as e:
            errors.record(e)
            return True

    return ABORT_CALLBACK(trampoline)


# How many session callbacks (text, abort) the current thread is inside, across all sessions.
_callback_depth = threading.local()


@contextmanager
def session_callback_scope() -> Iterator[None]:
    """Marks the current thread as running a session's callback for the block."""
    _callback_depth.value = getattr(_callback_depth, "value", 0) + 1
    try:
        yield
    finally:
        _callback_depth.value -= 1


def inside_session_callback() -> bool:
    """True on a thread running one of any session's callbacks. Such a thread must not wait for
    another session's call: with batched decoding that call's step may be in the pass the
    callback is part of (the pass polls its leader's abort callback between layers)."""
    return getattr(_callback_depth, "value", 0) > 0
