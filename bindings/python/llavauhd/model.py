"""Loaded models (``luhd_model``)."""
from __future__ import annotations

import ctypes
import os
from typing import Any, Callable, Optional

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
