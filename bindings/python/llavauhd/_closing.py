"""The context-manager and finalizer protocol shared by the handle-owning classes."""
from __future__ import annotations

from typing import TypeVar

_T = TypeVar("_T", bound="Closing")


class Closing:
    """Base of :class:`Model`, :class:`Image` and :class:`Session`: ``with`` closes the object at
    the end of the block, and garbage collection closes it if nobody did (errors then are
    swallowed, as a finalizer must). Subclasses define ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
