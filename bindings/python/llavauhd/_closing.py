"""The handle protocol shared by :class:`Model`, :class:`Image` and :class:`Session`: a C handle
that calls borrow for their duration, freed once, never while a call on another thread is using
it, with context-manager and finalizer support."""
from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable, TypeVar

_T = TypeVar("_T", bound="Closing")


class Closing:
    """Owns one C handle. :meth:`_borrow` gives the handle to a call and keeps it alive until
    the call returns; :meth:`close` frees it at once when no call is using it, and otherwise
    when the last such call returns (so closing from another thread never frees memory under a
    running call). After ``close`` no new call may borrow it (``ValueError``).

    ``with`` closes the object at the end of the block, and garbage collection closes it if
    nobody did."""

    _kind = "object"

    def __init__(self, free: Callable[[ctypes.c_void_p], None]) -> None:
        self._free = free
        self._handle_lock = threading.Lock()
        self._handle = ctypes.c_void_p()
        self._borrowers = 0
        self._closed = False

    def _adopt(self, handle: ctypes.c_void_p) -> None:
        """Takes ownership of a handle a C call made."""
        with self._handle_lock:
            self._handle = handle

    @contextmanager
    def _borrow(self) -> Iterator[ctypes.c_void_p]:
        with self._handle_lock:
            if self._closed or not self._handle:
                raise ValueError(f"the {self._kind} is closed")
            self._borrowers += 1
            handle = self._handle
        try:
            yield handle
        finally:
            with self._handle_lock:
                self._borrowers -= 1
            self._release_if_unused()

    def _release_if_unused(self) -> None:
        """Frees the handle when it is closed and no call is using it."""
        with self._handle_lock:
            release = self._closed and self._borrowers == 0 and bool(self._handle)
            handle = self._handle
            if release:
                self._handle = ctypes.c_void_p()
        if release:
            self._free(handle)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        with self._handle_lock:
            return self._closed or not self._handle

    def close(self) -> None:
        """Frees the handle now, or when the calls of other threads using it return."""
        lock = getattr(self, "_handle_lock", None)
        if lock is None:  # __init__ did not get far
            return
        with lock:
            self._closed = True
        self._release_if_unused()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
