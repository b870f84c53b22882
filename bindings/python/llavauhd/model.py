"""Loaded models (``luhd_model``)."""
from __future__ import annotations

import ctypes
import os
from typing import Any, Callable, Iterable, Optional

from ._lib import PROGRESS_CALLBACK, ModelProperties, check, lib


class Model:
    """A LLaVA-UHD model directory, loaded and validated (``luhd_model_load``).

    The weights are memory-mapped, not copied. A model is immutable: any number of sessions
    on any threads may share it. Use it as a context manager, or call :meth:`close`, to unmap
    it deterministically.

    Args:
        path: the model directory (config.json, safetensors shards, tokenizer files).
        n_threads: compute threads (default: all CPUs).
        progress: called with the load progress in [0, 1]; return False to cancel
            (raises :class:`CancelledError`).
    """

    def __init__(self, path: str | os.PathLike[str], n_threads: Optional[int] = None,
                 progress: Optional[Callable[[float], bool]] = None):
        params = lib.luhd_model_default_params()
        if n_threads is not None:
            if n_threads < 1:
                raise ValueError("n_threads must be at least 1")
            params.n_threads = n_threads
        callback = None
        if progress is not None:
            def trampoline(fraction: float, _user: Any) -> bool:
                try:
                    return bool(progress(fraction))
                except Exception:
                    return False
            callback = PROGRESS_CALLBACK(trampoline)
            params.progress_callback = ctypes.cast(callback, ctypes.c_void_p)
        out = ctypes.c_void_p()
        check(lib.luhd_model_load(os.fsencode(path), ctypes.byref(params), ctypes.byref(out)))
        self._handle = out
        self.path = os.fspath(path)

    @property
    def info(self) -> dict[str, Any]:
        """What the model is: architecture, sizes, dtypes (``luhd_model_info``)."""
        p = ModelProperties()
        p.struct_size = ctypes.sizeof(ModelProperties)
        check(lib.luhd_model_info(self._require(), ctypes.byref(p)))
        out: dict[str, Any] = {}
        for name, _ in ModelProperties._fields_[1:]:
            v = getattr(p, name)
            out[name] = v.decode() if isinstance(v, bytes) else v
        return out

    def tokenize(self, text: str | bytes, add_bos: bool = False, parse_special: bool = True) -> list[int]:
        """Token ids of ``text`` (``luhd_tokenize``). ``bytes`` are passed through unchanged, so
        invalid UTF-8 raises :class:`InvalidUTF8Error`."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        n = ctypes.c_int32()
        capacity = len(data) + 2
        buf = (ctypes.c_int32 * capacity)()
        check(lib.luhd_tokenize(self._require(), data, len(data), add_bos, parse_special, buf, capacity,
                                ctypes.byref(n)))
        return list(buf[:n.value])

    def detokenize(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """The text of ``ids`` (``luhd_detokenize``)."""
        ids = list(ids)
        arr = (ctypes.c_int32 * len(ids))(*ids)
        n = ctypes.c_size_t()
        size = 4 * len(ids) + 16
        while True:
            buf = ctypes.create_string_buffer(size)
            status = lib.luhd_detokenize(self._require(), arr, len(ids), skip_special, buf, size, ctypes.byref(n))
            if status == 15 and n.value + 1 > size:
                size = n.value + 1
                continue
            check(status)
            return buf.raw[:n.value].decode("utf-8")

    def token_to_piece(self, token: int, render_special: bool = False) -> bytes:
        """The bytes one id stands for (possibly part of a UTF-8 character)."""
        n = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(256)
        status = lib.luhd_token_to_piece(self._require(), token, render_special, buf, 256, ctypes.byref(n))
        if status == 15:
            buf = ctypes.create_string_buffer(n.value)
            status = lib.luhd_token_to_piece(self._require(), token, render_special, buf, n.value, ctypes.byref(n))
        check(status)
        return buf.raw[:n.value]

    def _require(self) -> ctypes.c_void_p:
        if not self._handle:
            raise ValueError("the model is closed")
        return self._handle

    def close(self) -> None:
        """Frees the model. Sessions made from it must be closed first."""
        if getattr(self, "_handle", None):
            lib.luhd_model_free(self._handle)
            self._handle = ctypes.c_void_p()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<llavauhd.Model {self.path!r}>"
