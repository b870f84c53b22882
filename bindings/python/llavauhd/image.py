"""Decoded RGB images (``luhd_image``)."""
from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from ._closing import Closing
from ._lib import INT32_MAX, ImageLoadParams, c_text, check, int_in_range, lib

#: Pillow's decompression-bomb limit, the library's default ``max_pixels``
#: (``luhd_image_load_default_params``).
DEFAULT_MAX_PIXELS: int = lib.luhd_image_load_default_params().max_pixels


def _params(max_pixels: int | None) -> ImageLoadParams | None:
    if max_pixels is None:
        return None
    p: ImageLoadParams = lib.luhd_image_load_default_params()
    p.max_pixels = int_in_range(max_pixels, "max_pixels", -(2**63), 2**63 - 1)
    return p


def _made(out: ctypes.c_void_p) -> int:
    """The handle a successful luhd_image_* call wrote."""
    if not out.value:
        raise RuntimeError("the library reported success without an image")
    return out.value


class Image(Closing):
    """An 8-bit RGB image decoded by the library, pixel for pixel as Pillow's
    ``Image.open(...).convert('RGB')``. Immutable; may be shared between threads and sessions.
    :meth:`close` while another thread's call uses the image frees it when that call returns.

    Make one with :meth:`open`, :meth:`from_bytes`, :meth:`from_array` or :meth:`from_pil`.
    """

    _kind = "image"

    def __init__(self, handle: int):
        """Wraps a ``luhd_image`` handle (owned from now on). Use the class methods instead."""
        super().__init__(lib.luhd_image_free)
        self._adopt(ctypes.c_void_p(handle))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Image:
        """Decodes a JPEG or PNG file (``luhd_image_load_file``) with the pixels of Pillow's
        ``Image.open(path).convert('RGB')``. ``max_pixels`` (default: Pillow's limit) caps
        width x height before any pixel memory is allocated. Raises :class:`BadImageError`
        (corrupt, truncated, unknown format), :class:`ImageTooLargeError` or
        :class:`FileAccessError`."""
        out = ctypes.c_void_p()
        p = _params(max_pixels)
        encoded = c_text(os.fsencode(path), "path")
        check(lib.luhd_image_load_file(encoded, ctypes.byref(p) if p else None, ctypes.byref(out)))
        return cls(_made(out))

    @classmethod
    def from_bytes(cls, data: bytes, *, max_pixels: int | None = None) -> Image:
        """Decodes an encoded JPEG or PNG held in memory (``luhd_image_load_memory``), with the
        same pixels and errors as :meth:`open`."""
        buf = ctypes.create_string_buffer(bytes(data), len(data))
        out = ctypes.c_void_p()
        p = _params(max_pixels)
        check(lib.luhd_image_load_memory(buf, len(data), ctypes.byref(p) if p else None, ctypes.byref(out)))
        return cls(_made(out))

    @classmethod
    def from_array(cls, array: Any) -> Image:
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
        width = int_in_range(a.shape[1], "width", 0, INT32_MAX)
        height = int_in_range(a.shape[0], "height", 0, INT32_MAX)
        check(lib.luhd_image_from_rgb(ptr, width, height, a.strides[0], ctypes.byref(out)))
        return cls(_made(out))

    @classmethod
    def from_pil(cls, image: Any) -> Image:
        """Copies a PIL image, converted to RGB first as upstream does (``image.convert('RGB')``:
        alpha dropped, palette and greyscale expanded)."""
        return cls.from_array(np.asarray(image.convert("RGB")))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        w, h = ctypes.c_int32(), ctypes.c_int32()
        with self._borrow() as handle:
            check(lib.luhd_image_size(handle, ctypes.byref(w), ctypes.byref(h)))
        return w.value, h.value

    def to_array(self) -> np.ndarray:
        """A copy of the pixels as a uint8 array of shape (height, width, 3)."""
        with self._borrow() as handle:
            w, h = self.size
            ptr = ctypes.POINTER(ctypes.c_uint8)()
            check(lib.luhd_image_rgb(handle, ctypes.byref(ptr)))
            pixels: np.ndarray = np.ctypeslib.as_array(ptr, shape=(h, w, 3)).copy()
            return pixels

    def __repr__(self) -> str:
        if self.closed:
            return "<llavauhd.Image (closed)>"
        w, h = self.size
        return f"<llavauhd.Image {w}x{h}>"
