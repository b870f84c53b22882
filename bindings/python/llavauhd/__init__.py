"""llavauhd: Python bindings for llava-uhd, a CPU runtime for LLaVA-UHD v2.

The bindings are a thin ctypes layer over ``libllavauhd.so`` (include/llavauhd.h). The
library is found through ``$LLAVAUHD_LIBRARY``, next to this package, or in the repository's
build folder.

    import llavauhd
    model = llavauhd.Model("path/to/LLaVA-UHD-v2")
    image = llavauhd.Image.open("photo.jpg")
"""
from __future__ import annotations

from ._errors import (BadConfigError, BadImageError, BadTokenizerError, BadWeightsError, BufferTooSmallError,
                      CancelledError, ContextFullError, Error, FileAccessError, ImageTooLargeError,
                      InternalError, InvalidArgumentError, InvalidUTF8Error, MissingTensorError,
                      OutOfMemoryError, TensorMismatchError, UnsupportedModelError)
from ._lib import ABI_VERSION, LOG_CALLBACK, lib as _lib
from .image import DEFAULT_MAX_PIXELS, Image
from .model import Model

__version__ = _lib.luhd_version().decode()

#: The placeholder id upstream puts where an image goes in a prompt.
IMAGE_TOKEN = -200

_log_callback = None


def set_log(callback=None, level: int = 2) -> None:
    """Routes the library's log messages at or above ``level`` (0 debug, 1 info, 2 warning,
    3 error, 4 none) to ``callback(level, message)``, or to standard error when it is None."""
    global _log_callback
    if callback is None:
        _log_callback = None
        _lib.luhd_log_set(None, None, level)
        return

    def trampoline(lvl, message, _user):
        try:
            callback(lvl, message.decode("utf-8", "replace"))
        except Exception:
            pass
    _log_callback = LOG_CALLBACK(trampoline)
    _lib.luhd_log_set(_log_callback, None, level)


__all__ = [
    "ABI_VERSION", "DEFAULT_MAX_PIXELS", "IMAGE_TOKEN", "Image", "Model", "set_log", "Error",
    "InvalidArgumentError", "FileAccessError", "BadWeightsError", "MissingTensorError", "TensorMismatchError",
    "BadConfigError", "UnsupportedModelError", "BadImageError", "ImageTooLargeError", "BadTokenizerError",
    "InvalidUTF8Error", "ContextFullError", "CancelledError", "OutOfMemoryError", "BufferTooSmallError",
    "InternalError",
]
