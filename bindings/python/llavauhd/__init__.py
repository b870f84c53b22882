"""llavauhd: Python bindings for llava-uhd, a CPU runtime for LLaVA-UHD v2.

The bindings are a thin ctypes layer over ``libllavauhd.so`` (include/llavauhd.h). The
library is found through ``$LLAVAUHD_LIBRARY``, next to this package, or in the repository's
build folder.

    import llavauhd
    model = llavauhd.Model("path/to/LLaVA-UHD-v2")
    image = llavauhd.Image.open("photo.jpg")
    with llavauhd.Session(model) as s:
        print(s.chat("What is in this picture?", images=[image]))
        for piece in s.chat_stream("Tell me more.", sampling=llavauhd.Sampling(max_new_tokens=64)):
            print(piece, end="", flush=True)

Every failed call raises a subclass of :class:`Error` carrying the library's message; an
argument the C interface cannot represent (an integer out of its C type's range, a NUL
character in a C string) raises ValueError naming it before anything reaches the library.
The library's log messages go to ``logging.getLogger("llavauhd")`` (see :func:`set_log`).
"""
from __future__ import annotations

from ._errors import (
                      BadConfigError,
                      BadImageError,
                      BadSessionFileError,
                      BadTokenizerError,
                      BadWeightsError,
                      BufferTooSmallError,
                      CancelledError,
                      ContextFullError,
                      Error,
                      FileAccessError,
                      ImageTooLargeError,
                      InternalError,
                      InvalidArgumentError,
                      InvalidUTF8Error,
                      MissingTensorError,
                      OutOfMemoryError,
                      SessionMismatchError,
                      TensorMismatchError,
                      UnsupportedModelError,
)
from ._lib import ABI_VERSION, MAX_SLICES
from ._lib import lib as _clib
from ._log import STDERR, set_log
from .image import DEFAULT_MAX_PIXELS, Image
from .model import Model
from .session import Session
from .types import (
                      DEFAULT_MAX_SLICES,
                      DEFAULT_PRERESIZE_LONG_SIDE,
                      ChatStats,
                      KVType,
                      LogLevel,
                      ModelInfo,
                      Precision,
                      Sampling,
                      SlicePlan,
                      StopReason,
)

#: The library's release (``luhd_version_string``), "MAJOR.MINOR.PATCH".
__version__: str = _clib.luhd_version_string().decode()

#: The placeholder id upstream puts where an image goes in a prompt (``LUHD_IMAGE_TOKEN``).
IMAGE_TOKEN = -200

set_log()  # the library's messages go to logging.getLogger("llavauhd") from the start

__all__ = [
                      "ABI_VERSION",
                      "DEFAULT_MAX_PIXELS",
                      "DEFAULT_MAX_SLICES",
                      "DEFAULT_PRERESIZE_LONG_SIDE",
                      "IMAGE_TOKEN",
                      "MAX_SLICES",
                      "STDERR",
                      "BadConfigError",
                      "BadImageError",
                      "BadSessionFileError",
                      "BadTokenizerError",
                      "BadWeightsError",
                      "BufferTooSmallError",
                      "CancelledError",
                      "ChatStats",
                      "ContextFullError",
                      "Error",
                      "FileAccessError",
                      "Image",
                      "ImageTooLargeError",
                      "InternalError",
                      "InvalidArgumentError",
                      "InvalidUTF8Error",
                      "KVType",
                      "LogLevel",
                      "MissingTensorError",
                      "Model",
                      "ModelInfo",
                      "OutOfMemoryError",
                      "Precision",
                      "Sampling",
                      "Session",
                      "SessionMismatchError",
                      "SlicePlan",
                      "StopReason",
                      "TensorMismatchError",
                      "UnsupportedModelError",
                      "set_log",
]
