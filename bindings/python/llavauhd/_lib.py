"""Finds and loads libllavauhd.so and declares the C prototypes (include/llavauhd.h)."""
from __future__ import annotations

import ctypes
import os
from ctypes import (POINTER, Structure, c_bool, c_char_p, c_float, c_int32, c_int64, c_size_t, c_uint8,
                    c_uint32, c_void_p)
from pathlib import Path

from ._errors import error_for

ABI_VERSION = 1

_HERE = Path(__file__).resolve().parent


def _candidates() -> list[Path]:
    """Where the library is looked for, in order: $LLAVAUHD_LIBRARY, next to this package,
    then the repository's build folders (the shipping build first)."""
    env = os.environ.get("LLAVAUHD_LIBRARY")
    if env:
        return [Path(env)]
    repo = _HERE.parent.parent.parent
    return [_HERE / "libllavauhd.so", repo / "build" / "lib" / "libllavauhd.so",
            repo / ".build" / "release" / "libllavauhd.so"]


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        if path.is_file():
            return ctypes.CDLL(str(path))
        tried.append(str(path))
    raise OSError("libllavauhd.so not found; set LLAVAUHD_LIBRARY or build it with `make ship`. Tried: "
                  + ", ".join(tried))


lib = _load()


class ModelParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("n_threads", c_int32),
                ("progress_callback", c_void_p), ("progress_user_data", c_void_p)]


class ImageParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("max_pixels", c_int64)]


class ModelProperties(Structure):
    _fields_ = [("struct_size", c_size_t),
                ("architecture", c_char_p), ("projector", c_char_p), ("token_layout", c_char_p),
                ("chat_template", c_char_p), ("weight_dtype", c_char_p), ("blas_core", c_char_p),
                ("n_threads", c_int32),
                ("hidden_size", c_int32), ("intermediate_size", c_int32), ("n_layers", c_int32),
                ("n_heads", c_int32), ("n_kv_heads", c_int32), ("vocab_size", c_int32),
                ("max_position_embeddings", c_int32),
                ("vision_hidden_size", c_int32), ("vision_intermediate_size", c_int32),
                ("vision_n_layers", c_int32), ("vision_n_heads", c_int32), ("vision_patch_size", c_int32),
                ("vision_image_size", c_int32), ("vision_select_layer", c_int32),
                ("feature_scale_mask", c_int32), ("tokens_per_view", c_int32),
                ("n_tensors", c_int64), ("weight_bytes", c_int64)]


PROGRESS_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_float, c_void_p)
LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_int32, c_char_p, c_void_p)

_status = c_int32
_handle_out = POINTER(c_void_p)


def _declare(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_declare("luhd_abi_version", c_uint32)
_declare("luhd_version", c_char_p)
_declare("luhd_status_string", c_char_p, _status)
_declare("luhd_last_error", c_char_p)
_declare("luhd_log_set", None, c_void_p, c_void_p, c_int32)


def check(status: int) -> None:
    """Raises the exception for a failed call, with the thread's last-error message."""
    if status != 0:
        raise error_for(status, lib.luhd_last_error().decode("utf-8", "replace"))


if lib.luhd_abi_version() != ABI_VERSION:
    raise ImportError(f"libllavauhd ABI {lib.luhd_abi_version()} does not match the bindings' ABI {ABI_VERSION}")


_declare("luhd_model_default_params", ModelParams)
_declare("luhd_model_load", _status, c_char_p, POINTER(ModelParams), _handle_out)
_declare("luhd_model_free", None, c_void_p)
_declare("luhd_model_info", _status, c_void_p, POINTER(ModelProperties))
_declare("luhd_image_default_params", ImageParams)
_declare("luhd_image_load_file", _status, c_char_p, POINTER(ImageParams), _handle_out)
_declare("luhd_image_load_memory", _status, c_void_p, c_size_t, POINTER(ImageParams), _handle_out)
_declare("luhd_image_from_rgb", _status, POINTER(c_uint8), c_int32, c_int32, c_size_t, _handle_out)
_declare("luhd_image_size", _status, c_void_p, POINTER(c_int32), POINTER(c_int32))
_declare("luhd_image_rgb", _status, c_void_p, POINTER(POINTER(c_uint8)))
_declare("luhd_image_free", None, c_void_p)
_declare("luhd_tokenize", _status, c_void_p, c_char_p, c_int64, c_bool, c_bool, POINTER(c_int32), c_int32,
         POINTER(c_int32))
_declare("luhd_detokenize", _status, c_void_p, POINTER(c_int32), c_int32, c_bool, ctypes.c_char_p, c_size_t,
         POINTER(c_size_t))
_declare("luhd_token_to_piece", _status, c_void_p, c_int32, c_bool, ctypes.c_char_p, c_size_t, POINTER(c_size_t))
