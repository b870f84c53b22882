"""Decoded RGB images (``luhd_image``)."""
from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from ._closing import Closing
from ._lib import ImageParams, check, lib

#: Pillow's decompression-bomb limit, the library's default ``max_pixels``.
DEFAULT_MAX_PIXELS = 178_956_970


def _params(max_pixels: int | None) -> ImageParams | None:
    if max_pixels is None:
        return None
    p = ImageParams.from_buffer_copy(lib.luhd_image_default_params())
    p.max_pixels = max_pixels
    return p


def _made(out: ctypes.c_void_p) -> int:
    """The handle a successful luhd_image_* call wrote."""
    if not out.value:
        raise RuntimeError("the library reported success without an image")
    return out.value


class Image(Closing):
    """An 8-bit RGB image decoded by the library, pixel for pixel as Pillow's
    ``Image.open(...).convert('RGB')``. Immutable; may be shared between threads and sessions.

    Make one with :meth:`open`, :meth:`from_bytes`, :meth:`from_array` or :meth:`from_pil`.
    """

    def __init__(self, handle: int):
        """Wraps a ``luhd_image`` handle (owned from now on). Use the class methods instead."""
        self._handle = ctypes.c_void_p(handle)

    def _require(self) -> ctypes.c_void_p:
        if not self._handle:
            raise ValueError("the image is closed")
        return self._handle

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, max_pixels: int | None = None) -> "Image":
        """Decodes a JPEG or PNG file (``luhd_image_load_file``) with the pixels of Pillow's
        ``Image.open(path).convert('RGB')``. ``max_pixels`` (default: Pillow's limit) caps
        width x height before any pixel memory is allocated. Raises :class:`BadImageError`
        (corrupt, truncated, unknown format), :class:`ImageTooLargeError` or
        :class:`FileAccessError`."""
        out = ctypes.c_void_p()
        p = _params(max_pixels)
        check(lib.luhd_image_load_file(os.fsencode(path), ctypes.byref(p) if p else None, ctypes.byref(out)))
        return cls(_made(out))

    @classmethod
    def from_bytes(cls, data: bytes, *, max_pixels: int | None = None) -> "Image":
        """Decodes an encoded JPEG or PNG held in memory (``luhd_image_load_memory``), with the
        same pixels and errors as :meth:`open`."""
        buf = ctypes.create_string_buffer(bytes(data), len(data))
        out = ctypes.c_void_p()
        p = _params(max_pixels)
        check(lib.luhd_image_load_memory(buf, len(data), ctypes.byref(p) if p else None, ctypes.byref(out)))
        return cls(_made(out))

    @classmethod
    def from_array(cls, array: Any) -> "Image":
        """Copies a ``uint8`` array of shape (height, width, 3) (``luhd_image_from_rgb``; rows may
        be padded, as in a slice of a larger array). Raises :class:`InvalidArgumentError` for
        an empty array and :class:`ImageTooLargeError` above the default pixel limit."""
        a = np.asarray(array)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ValueError(f"expected a uint8 array of shape (height, width, 3), got {a.dtype} {a.shape}")
        if a.strides[1:] != (3, 1) or a.strides[0] < 3 * a.shape[1]:
            a = np.ascontiguousarray(a)  # rows must be packed pixels, top to bottom
        out = ctypes.c_void_p()
        ptr = a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        check(lib.luhd_image_from_rgb(ptr, a.shape[1], a.shape[0], a.strides[0], ctypes.byref(out)))
        return cls(_made(out))

    @classmethod
    def from_pil(cls, image: Any) -> "Image":
        """Copies a PIL image, converted to RGB first as upstream does (``image.convert('RGB')``:
        alpha dropped, palette and greyscale expanded)."""
        return cls.from_array(np.asarray(image.convert("RGB")))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        w, h = ctypes.c_int32(), ctypes.c_int32()
        check(lib.luhd_image_size(self._require(), ctypes.byref(w), ctypes.byref(h)))
        return w.value, h.value

    def to_array(self) -> np.ndarray:
        """A copy of the pixels as a uint8 array of shape (height, width, 3)."""
        w, h = self.size
        ptr = ctypes.POINTER(ctypes.c_uint8)()
        check(lib.luhd_image_rgb(self._require(), ctypes.byref(ptr)))
        return np.ctypeslib.as_array(ptr, shape=(h, w, 3)).copy()

    def close(self) -> None:
        """Frees the image now (also done when it is garbage-collected)."""
        if self._handle:
            lib.luhd_image_free(self._handle)
            self._handle = ctypes.c_void_p()

    def __repr__(self) -> str:
        return f"<llavauhd.Image {self.size[0]}x{self.size[1]}>" if self._handle else "<llavauhd.Image (closed)>"
