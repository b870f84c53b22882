"""Exceptions: one class per C status code, all subclasses of :class:`Error`."""
from __future__ import annotations


class Error(Exception):
    """A failed library call. ``status`` is the C ``luhd_status`` code and ``message`` the
    text of ``luhd_last_error()`` for that call."""

    status: int = -1

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgumentError(Error, ValueError):
    status = 1


class FileAccessError(Error, OSError):
    """A file could not be opened, read or mapped (``LUHD_ERR_IO``)."""
    status = 2


class BadWeightsError(Error):
    status = 3


class MissingTensorError(Error):
    status = 4


class TensorMismatchError(Error):
    status = 5


class BadConfigError(Error):
    status = 6


class UnsupportedModelError(Error):
    status = 7


class BadImageError(Error):
    status = 8


class ImageTooLargeError(Error):
    status = 9


class BadTokenizerError(Error):
    status = 10


class InvalidUTF8Error(Error, UnicodeError):
    status = 11


class ContextFullError(Error):
    status = 12


class CancelledError(Error):
    status = 13


class OutOfMemoryError(Error, MemoryError):
    status = 14


class BufferTooSmallError(Error):
    status = 15


class InternalError(Error):
    status = 16


class BadSessionFileError(Error):
    """A saved session file is not one, is damaged or truncated, contradicts itself or the
    model, or has a format version this library does not read (``LUHD_ERR_BAD_SESSION_FILE``)."""
    status = 17


class SessionMismatchError(Error):
    """A sound saved session file written with another model (``LUHD_ERR_SESSION_MISMATCH``)."""
    status = 18


BY_STATUS: dict[int, type[Error]] = {
    cls.status: cls
    for cls in (InvalidArgumentError, FileAccessError, BadWeightsError, MissingTensorError, TensorMismatchError,
                BadConfigError, UnsupportedModelError, BadImageError, ImageTooLargeError, BadTokenizerError,
                InvalidUTF8Error, ContextFullError, CancelledError, OutOfMemoryError, BufferTooSmallError,
                InternalError, BadSessionFileError, SessionMismatchError)
}

# Status names as the C header spells them (LUHD_ERR_...), for messages and tests.
STATUS_NAMES: dict[int, str] = {
    0: "LUHD_OK", 1: "LUHD_ERR_INVALID_ARGUMENT", 2: "LUHD_ERR_IO", 3: "LUHD_ERR_BAD_WEIGHTS",
    4: "LUHD_ERR_MISSING_TENSOR", 5: "LUHD_ERR_TENSOR_MISMATCH", 6: "LUHD_ERR_BAD_CONFIG",
    7: "LUHD_ERR_UNSUPPORTED", 8: "LUHD_ERR_BAD_IMAGE", 9: "LUHD_ERR_IMAGE_TOO_LARGE",
    10: "LUHD_ERR_BAD_TOKENIZER", 11: "LUHD_ERR_INVALID_UTF8", 12: "LUHD_ERR_CONTEXT_FULL",
    13: "LUHD_ERR_CANCELLED", 14: "LUHD_ERR_OUT_OF_MEMORY", 15: "LUHD_ERR_BUFFER_TOO_SMALL",
    16: "LUHD_ERR_INTERNAL", 17: "LUHD_ERR_BAD_SESSION_FILE", 18: "LUHD_ERR_SESSION_MISMATCH",
}


def error_for(status: int, message: str) -> Error:
    """The exception for a non-zero status."""
    return BY_STATUS.get(status, Error)(message, status)
