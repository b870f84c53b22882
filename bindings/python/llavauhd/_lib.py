"""Finds and loads libllavauhd.so and declares the C prototypes (include/llavauhd.h)."""
from __future__ import annotations

import ctypes
import operator
import os
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any

from ._errors import error_for

#: ``LUHD_ABI_VERSION`` of the header these bindings were written for.
ABI_VERSION = 2

_HERE = Path(__file__).resolve().parent


def _candidates() -> list[Path]:
    """Where the library is looked for, in order: $LLAVAUHD_LIBRARY, next to this package, then
    the repository's build folders when the package runs from a checkout (the shipping build
    first). After them comes the dynamic loader's own search (LD_LIBRARY_PATH, the system
    library folders: an installed prefix, ``make install``)."""
    env = os.environ.get("LLAVAUHD_LIBRARY")
    if env:
        return [Path(env)]
    found = [_HERE / "libllavauhd.so"]
    repo = _HERE.parent.parent.parent
    if (repo / "include" / "llavauhd.h").is_file():
        found += [repo / "build" / "lib" / "libllavauhd.so", repo / ".build" / "release" / "libllavauhd.so"]
    return found


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        if path.is_file():
            return ctypes.CDLL(str(path))
        tried.append(str(path))
    if "LLAVAUHD_LIBRARY" not in os.environ:
        try:
            return ctypes.CDLL("libllavauhd.so")
        except OSError:
            tried.append("libllavauhd.so on the loader's search path")
    raise OSError("libllavauhd.so not found; set LLAVAUHD_LIBRARY to its path, put it next to the llavauhd "
                  "package, or build it with `make ship`. Tried: " + ", ".join(tried))


lib = _load()


class ModelParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("n_threads", c_int32),
                ("progress_callback", c_void_p), ("progress_user_data", c_void_p),
                ("precision", c_int32), ("image_cache_bytes", c_int64), ("prefix_cache_bytes", c_int64),
                ("max_decode_batch", c_int32), ("chat_template", c_char_p)]


class ImageLoadParams(Structure):
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
                ("n_tensors", c_int64), ("weight_bytes", c_int64), ("has_vision", c_bool)]


#: ``luhd_progress_callback``: (progress, user_data) -> keep going
PROGRESS_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_float, c_void_p)
#: ``luhd_log_callback``: (level, message, user_data)
LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_int32, c_char_p, c_void_p)
#: ``luhd_abort_callback``: (user_data) -> stop now
ABORT_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_void_p)
#: ``luhd_text_callback``: (piece, length, user_data) -> keep going. The piece is taken as a
#: raw pointer so that its exact ``length`` bytes are read.
TEXT_CALLBACK = ctypes.CFUNCTYPE(c_bool, c_void_p, c_size_t, c_void_p)

#: ``LUHD_MAX_SLICES``
MAX_SLICES = 64


class SliceParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("preresize_long_side", c_int32), ("max_slices", c_int32)]


class SlicePlan(Structure):
    _fields_ = [("struct_size", c_size_t),
                ("image_width", c_int32), ("image_height", c_int32),
                ("resized_width", c_int32), ("resized_height", c_int32),
                ("grid_columns", c_int32), ("grid_rows", c_int32),
                ("slice_width", c_int32), ("slice_height", c_int32),
                ("refine_width", c_int32), ("refine_height", c_int32),
                ("overview_width", c_int32), ("overview_height", c_int32),
                ("n_views", c_int32), ("n_image_tokens", c_int32), ("overview_separator", c_int32),
                ("separators", c_int32 * MAX_SLICES)]


class Tensor(Structure):
    _fields_ = [("data", POINTER(c_float)), ("n_dims", c_int32), ("shape", c_int64 * 4), ("view", c_int32),
                ("level", c_int32), ("used_by_projector", c_int32)]


class TensorList(Structure):
    _fields_ = [("n_tensors", c_int32), ("tensors", POINTER(Tensor))]


class SessionParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("n_ctx", c_int32), ("image_cache_size", c_int32),
                ("system_prompt", c_char_p), ("preresize_long_side", c_int32), ("max_slices", c_int32),
                ("abort_callback", c_void_p), ("abort_user_data", c_void_p), ("kv_type", c_int32)]


class SamplingParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("temperature", c_float), ("top_k", c_int32), ("top_p", c_float),
                ("min_p", c_float), ("repetition_penalty", c_float), ("penalty_last_n", c_int32),
                ("seed", c_uint64), ("max_new_tokens", c_int32), ("stop_strings", POINTER(c_char_p)),
                ("n_stop_strings", c_int32)]


class ChatStats(Structure):
    _fields_ = [("struct_size", c_size_t), ("stop_reason", c_int32), ("n_prompt_positions", c_int32),
                ("n_reused_positions", c_int32), ("n_generated", c_int32), ("n_images_encoded", c_int32),
                ("n_images_cached", c_int32), ("image_seconds", c_double), ("prefill_seconds", c_double),
                ("decode_seconds", c_double)]

_status = c_int32
_handle_out = POINTER(c_void_p)


def _declare(name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_declare("luhd_abi_version", c_uint32)
_declare("luhd_version_number", c_uint32)
_declare("luhd_version_string", c_char_p)
_declare("luhd_status_string", c_char_p, _status)
_declare("luhd_last_error", c_char_p)
_declare("luhd_log_set", _status, c_void_p, c_void_p, c_int32)


def check(status: int) -> None:
    """Raises the exception for a failed call, with the thread's last-error message."""
    if status != 0:
        raise error_for(status, lib.luhd_last_error().decode("utf-8", "replace"))


if lib.luhd_abi_version() != ABI_VERSION:
    raise ImportError(f"libllavauhd ABI {lib.luhd_abi_version()} does not match the bindings' ABI {ABI_VERSION}")


_declare("luhd_model_default_params", ModelParams)
_declare("luhd_model_load", _status, c_char_p, POINTER(ModelParams), _handle_out)
_declare("luhd_model_free", None, c_void_p)
_declare("luhd_model_get_properties", _status, c_void_p, POINTER(ModelProperties))
_declare("luhd_model_tokenize", _status, c_void_p, c_char_p, c_int64, c_bool, c_bool, POINTER(c_int32), c_int32,
         POINTER(c_int32))
_declare("luhd_model_detokenize", _status, c_void_p, POINTER(c_int32), c_int32, c_bool, ctypes.c_char_p, c_size_t,
         POINTER(c_size_t))
_declare("luhd_model_token_to_piece", _status, c_void_p, c_int32, c_bool, ctypes.c_char_p, c_size_t,
         POINTER(c_size_t))
_declare("luhd_image_load_default_params", ImageLoadParams)
_declare("luhd_image_load_file", _status, c_char_p, POINTER(ImageLoadParams), _handle_out)
_declare("luhd_image_load_memory", _status, c_void_p, c_size_t, POINTER(ImageLoadParams), _handle_out)
_declare("luhd_image_from_rgb", _status, POINTER(c_uint8), c_int32, c_int32, c_size_t, _handle_out)
_declare("luhd_image_size", _status, c_void_p, POINTER(c_int32), POINTER(c_int32))
_declare("luhd_image_rgb", _status, c_void_p, POINTER(POINTER(c_uint8)))
_declare("luhd_image_free", None, c_void_p)

_image_array = POINTER(c_void_p)
_declare("luhd_slice_default_params", SliceParams)
_declare("luhd_image_get_slice_plan", _status, c_void_p, c_void_p, POINTER(SliceParams), POINTER(SlicePlan))
_declare("luhd_tensor_list_free", None, POINTER(TensorList))
for _stage in ("luhd_image_pixels", "luhd_image_features", "luhd_image_pyramid", "luhd_image_embed"):
    _declare(_stage, _status, c_void_p, c_void_p, POINTER(SliceParams), ABORT_CALLBACK, c_void_p,
             POINTER(POINTER(TensorList)))

_declare("luhd_session_default_params", SessionParams)
_declare("luhd_session_create", _status, c_void_p, POINTER(SessionParams), _handle_out)
_declare("luhd_session_reset", _status, c_void_p)
_declare("luhd_session_free", None, c_void_p)
_declare("luhd_session_cancel", _status, c_void_p)
_declare("luhd_session_context", _status, c_void_p, POINTER(c_int32), POINTER(c_int32))
_declare("luhd_sampling_default_params", SamplingParams)
_declare("luhd_session_chat", _status, c_void_p, c_void_p, c_int64, _image_array, c_int32, POINTER(SamplingParams),
         TEXT_CALLBACK, c_void_p, POINTER(POINTER(c_char)), POINTER(c_size_t), POINTER(ChatStats))
_declare("luhd_string_free", None, POINTER(c_char))
_declare("luhd_session_eval", _status, c_void_p, POINTER(c_int32), c_int32, _image_array, c_int32)
_declare("luhd_session_logits", _status, c_void_p, POINTER(POINTER(c_float)), POINTER(c_int32))
_declare("luhd_session_sample", _status, c_void_p, POINTER(SamplingParams), POINTER(c_int32))
_declare("luhd_session_save", _status, c_void_p, c_char_p)
_declare("luhd_session_load", _status, c_void_p, c_char_p, POINTER(SessionParams), _handle_out)

#: Every function the header declares, in header order (the tests check the list against it).
FUNCTIONS = (
    "luhd_abi_version", "luhd_version_number", "luhd_version_string", "luhd_status_string", "luhd_last_error",
    "luhd_log_set",
    "luhd_model_default_params", "luhd_model_load", "luhd_model_free", "luhd_model_get_properties",
    "luhd_model_tokenize", "luhd_model_detokenize", "luhd_model_token_to_piece",
    "luhd_image_load_default_params", "luhd_image_load_file", "luhd_image_load_memory", "luhd_image_from_rgb",
    "luhd_image_size", "luhd_image_rgb", "luhd_image_free",
    "luhd_slice_default_params", "luhd_image_get_slice_plan", "luhd_tensor_list_free", "luhd_image_pixels",
    "luhd_image_features", "luhd_image_pyramid", "luhd_image_embed",
    "luhd_session_default_params", "luhd_session_create", "luhd_session_reset", "luhd_session_free",
    "luhd_session_cancel", "luhd_session_context",
    "luhd_sampling_default_params", "luhd_session_chat", "luhd_string_free",
    "luhd_session_eval", "luhd_session_logits", "luhd_session_sample",
    "luhd_session_save", "luhd_session_load",
)


# ------------------------------------------------------------------------------------------------
# Range checks: ctypes silently wraps an out-of-range int (2**32 + 3 becomes 3), so every
# integer a caller gives is checked against its C type here first, with its field named. Values
# inside the C type reach the library, which checks the documented ranges.

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def int_in_range(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``low..high``, or ValueError / TypeError naming ``name``."""
    try:
        number = operator.index(value)  # int, numpy integers; not float or str
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not low <= number <= high:
        raise ValueError(f"{name} is {number}; it must be in {low}..{high}")
    return number


def c_text(text: object, name: str) -> bytes:
    """A NUL-terminated C string argument: ``str`` as UTF-8, ``bytes`` unchanged (so invalid
    UTF-8 reaches the library and raises :class:`InvalidUTF8Error`). An embedded NUL would cut
    the text silently in C, so it is a ValueError naming ``name``."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)  # type: ignore[call-overload]
    if b"\0" in data:
        raise ValueError(f"{name} contains a NUL character, which the C interface cannot pass")
    return data
