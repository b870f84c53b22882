"""llavauhd: Python bindings for llava-uhd, a CPU runtime for LLaVA-UHD v2.

The bindings are a thin ctypes layer over ``libllavauhd.so`` (include/llavauhd.h). The
library is found through ``$LLAVAUHD_LIBRARY``, next to this package, or in the repository's
build folder.

    import llavauhd
    model = llavauhd.Model("path/to/LLaVA-UHD-v2")
    image = llavauhd.Image.open("photo.jpg")
    with model.session() as s:
        print(s.chat("What is in this picture?", images=[image]))
        for piece in s.chat_stream("Tell me more."):
            print(piece, end="", flush=True)

Every failed call raises a subclass of :class:`Error` carrying the library's message.
"""
from __future__ import annotations

from typing import Callable, Optional

from ._errors import (BadConfigError, BadImageError, BadTokenizerError, BadWeightsError, BufferTooSmallError,
                      CancelledError, ContextFullError, Error, FileAccessError, ImageTooLargeError,
                      InternalError, InvalidArgumentError, InvalidUTF8Error, MissingTensorError,
                      OutOfMemoryError, TensorMismatchError, UnsupportedModelError)

from ._lib import ABI_VERSION, LOG_CALLBACK, MAX_SLICES, lib as _clib
from .image import DEFAULT_MAX_PIXELS, Image
from .model import Model
from .session import STOP_REASONS, Session

__version__ = _clib.luhd_version().decode()

#: The placeholder id upstream puts where an image goes in a prompt.
IMAGE_TOKEN = -200

#: Log levels of :func:`set_log` (``luhd_log_level``).
LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR, LOG_NONE = 0, 1, 2, 3, 4

# The callback the library calls, and the one it replaced: a message already being delivered
# may still reach the previous callback, so that one is kept until the next change.
_log_callbacks: list[object] = [None, None]


def set_log(callback: Optional[Callable[[int, str], None]] = None, level: int = LOG_WARNING) -> None:
    """Routes the library's log messages at or above ``level`` (:data:`LOG_DEBUG`,
    :data:`LOG_INFO`, :data:`LOG_WARNING`, :data:`LOG_ERROR`; :data:`LOG_NONE` silences it) to
    ``callback(level, message)``, or to standard error when ``callback`` is None, the default
    (``luhd_log_set``). Applies to the whole process. The callback may run on any thread that
    is inside a library call, and on several at once; an exception it raises is ignored."""
    if callback is None:
        _clib.luhd_log_set(None, None, level)
        _log_callbacks[:] = [None, _log_callbacks[0]]
        return

    def trampoline(lvl: int, message: bytes, _user: object) -> None:
        try:
            callback(lvl, message.decode("utf-8", "replace"))
        except BaseException:  # noqa: BLE001 - nothing may unwind into C
            pass
    new = LOG_CALLBACK(trampoline)
    _clib.luhd_log_set(new, None, level)
    _log_callbacks[:] = [new, _log_callbacks[0]]


__all__ = [
    "ABI_VERSION", "DEFAULT_MAX_PIXELS", "IMAGE_TOKEN", "MAX_SLICES", "STOP_REASONS", "Image", "Model", "Session",
    "set_log", "LOG_DEBUG", "LOG_INFO", "LOG_WARNING", "LOG_ERROR", "LOG_NONE", "Error",
    "InvalidArgumentError", "FileAccessError", "BadWeightsError", "MissingTensorError", "TensorMismatchError",
    "BadConfigError", "UnsupportedModelError", "BadImageError", "ImageTooLargeError", "BadTokenizerError",
    "InvalidUTF8Error", "ContextFullError", "CancelledError", "OutOfMemoryError", "BufferTooSmallError",
    "InternalError",
]
