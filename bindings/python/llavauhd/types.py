"""The values the bindings hand out and take: frozen dataclasses and enums mirroring the C
header's structs and enums (include/llavauhd.h)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional

from ._lib import ChatStats as _CChatStats
from ._lib import ModelProperties as _CModelProperties
from ._lib import SlicePlan as _CSlicePlan
from ._lib import lib

_SAMPLING = lib.luhd_sampling_default_params()
_SLICING = lib.luhd_slice_default_params()

#: ``luhd_slice_params`` defaults, read from the library: pre-resize long side and slice count.
DEFAULT_PRERESIZE_LONG_SIDE: int = _SLICING.preresize_long_side
DEFAULT_MAX_SLICES: int = _SLICING.max_slices


class Precision(enum.IntEnum):
    """``luhd_precision``: the arithmetic of the large matrix products."""

    #: float32 products, the exact path (the default).
    EXACT = 0
    #: The fastest reduced-precision kernels the CPU has, within a stated bound, never slower
    #: than EXACT: int8 products in the vision tower on AVX-512 VNNI CPUs (a Q8_0 copy of its
    #: weights made at load; projector output within 2e-2 of EXACT); bf16 products against
    #: BF16 weights in the vision tower and the LLM prefill on AVX512_BF16 CPUs where they
    #: measure faster (PyTorch bf16 matmul precision); elsewhere the same as EXACT.
    FAST = 1


class KVType(enum.IntEnum):
    """``luhd_kv_type``: how a session's KV cache stores keys and values."""

    #: float32, the exact path.
    F32 = 0
    #: IEEE half precision (the default): half the memory and decode bytes of F32.
    F16 = 1
    #: bfloat16: half the memory of F32, float32's range.
    BF16 = 2


class LogLevel(enum.IntEnum):
    """``luhd_log_level``."""

    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3
    #: Silences the library.
    NONE = 4


class StopReason(str, enum.Enum):
    """Why an answer ended (``luhd_stop_reason``); the values are the wire names."""

    EOS = "eos"
    MAX_TOKENS = "max_tokens"
    STOP_STRING = "stop_string"
    CALLBACK = "callback"
    CONTEXT_FULL = "context_full"

    @classmethod
    def from_c(cls, value: int) -> StopReason:
        return _STOP_REASONS[value]


_STOP_REASONS = dict(enumerate(StopReason))


@dataclass(frozen=True)
class Sampling:
    """How an answer is generated (``luhd_sampling_params``). The defaults are the library's
    (``luhd_sampling_default_params``): greedy, 128 new tokens, no stop texts.

    ``temperature`` 0 is greedy (upstream's eval setting); ``top_k`` 0, ``top_p`` 1, ``min_p`` 0
    and ``repetition_penalty`` 1 are off; ``penalty_last_n`` 0 means the whole history;
    ``seed`` seeds sampled generation; ``stop`` texts end the answer and are not part of it.
    Integers outside their C type are refused when the object is made (ValueError naming the
    field); the library checks the documented ranges when the sampling is used
    (InvalidArgumentError)."""

    temperature: float = _SAMPLING.temperature
    top_k: int = _SAMPLING.top_k
    top_p: float = _SAMPLING.top_p
    min_p: float = _SAMPLING.min_p
    repetition_penalty: float = _SAMPLING.repetition_penalty
    penalty_last_n: int = _SAMPLING.penalty_last_n
    seed: int = _SAMPLING.seed
    max_new_tokens: int = _SAMPLING.max_new_tokens
    stop: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        from ._lib import INT32_MAX, INT32_MIN, c_text, int_in_range
        int_in_range(self.top_k, "top_k", INT32_MIN, INT32_MAX)
        int_in_range(self.penalty_last_n, "penalty_last_n", INT32_MIN, INT32_MAX)
        int_in_range(self.seed, "seed", 0, 2**64 - 1)
        int_in_range(self.max_new_tokens, "max_new_tokens", INT32_MIN, INT32_MAX)
        stop: object = self.stop
        if isinstance(stop, (str, bytes)):
            raise TypeError("stop must be a sequence of texts, not one text")
        object.__setattr__(self, "stop", tuple(self.stop))
        for i, text in enumerate(self.stop):
            c_text(text, f"stop[{i}]")
        for name in ("temperature", "top_p", "min_p", "repetition_penalty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")


@dataclass(frozen=True)
class ModelInfo:
    """What a model is (``luhd_model_properties``)."""

    architecture: str
    projector: str
    token_layout: str
    chat_template: str
    weight_dtype: str
    blas_core: str
    n_threads: int
    hidden_size: int
    intermediate_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    max_position_embeddings: int
    vision_hidden_size: int
    vision_intermediate_size: int
    vision_n_layers: int
    vision_n_heads: int
    vision_patch_size: int
    vision_image_size: int
    vision_select_layer: int
    feature_scale_mask: int
    tokens_per_view: int
    n_tensors: int
    weight_bytes: int
    #: False for a text-only LLM: then ``projector`` and ``token_layout`` are ``""`` and the
    #: ``vision_*`` fields, ``feature_scale_mask`` and ``tokens_per_view`` are 0.
    has_vision: bool

    @classmethod
    def from_c(cls, p: _CModelProperties) -> ModelInfo:
        values: dict[str, Any] = {}
        for name, *_ in _CModelProperties._fields_[1:]:
            v = getattr(p, name)
            values[name] = v.decode() if isinstance(v, bytes) else v
        return cls(**values)


@dataclass(frozen=True)
class SlicePlan:
    """How an image is cut (``luhd_slice_plan``). Sizes are (width, height) in pixels."""

    image_size: tuple[int, int]
    #: after the eval pre-resize
    resized_size: tuple[int, int]
    #: (columns, rows), or None when the image is not sliced
    grid: Optional[tuple[int, int]]
    slice_size: Optional[tuple[int, int]]
    #: the image resized before cutting; None when not sliced
    refine_size: Optional[tuple[int, int]]
    overview_size: tuple[int, int]
    #: slices + 1 (the overview)
    views: int
    #: positions the image takes in the LLM input
    n_image_tokens: int
    #: the id after each slice (one per slice)
    separators: tuple[int, ...]
    #: the id before the overview in the stitched layout; None when not sliced or per-slice
    overview_separator: Optional[int]

    @classmethod
    def from_c(cls, p: _CSlicePlan) -> SlicePlan:
        sliced = p.grid_columns > 0
        return cls(
            image_size=(p.image_width, p.image_height),
            resized_size=(p.resized_width, p.resized_height),
            grid=(p.grid_columns, p.grid_rows) if sliced else None,
            slice_size=(p.slice_width, p.slice_height) if sliced else None,
            refine_size=(p.refine_width, p.refine_height) if sliced else None,
            overview_size=(p.overview_width, p.overview_height),
            views=p.n_views,
            n_image_tokens=p.n_image_tokens,
            separators=tuple(p.separators[:p.n_views - 1]),
            overview_separator=p.overview_separator if p.overview_separator != 0 else None,
        )


@dataclass(frozen=True)
class ChatStats:
    """What one chat turn did and how long it took (``luhd_chat_stats``)."""

    stop_reason: StopReason
    #: the whole conversation's prompt, images included
    n_prompt_positions: int
    #: of those, taken from the cache
    n_reused_positions: int
    n_generated: int
    n_images_encoded: int
    n_images_cached: int
    image_seconds: float
    prefill_seconds: float
    decode_seconds: float

    @classmethod
    def from_c(cls, s: _CChatStats) -> ChatStats:
        return cls(StopReason.from_c(s.stop_reason), s.n_prompt_positions, s.n_reused_positions, s.n_generated,
                   s.n_images_encoded, s.n_images_cached, s.image_seconds, s.prefill_seconds, s.decode_seconds)
