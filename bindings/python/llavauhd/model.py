"""Loaded models (``luhd_model``): properties, tokenizer and image stages. Conversations on a
model are :class:`llavauhd.Session` objects (session.py), made with ``Session(model)``."""
from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from typing import Any, Callable, Optional, Union

import numpy as np

from ._callbacks import CallbackErrors, abort_trampoline
from ._closing import Closing
from ._errors import BufferTooSmallError
from ._lib import (
    ABORT_CALLBACK,
    INT32_MAX,
    PROGRESS_CALLBACK,
    ModelProperties,
    TensorList,
    c_text,
    check,
    int_in_range,
    lib,
)
from ._lib import SlicePlan as _CSlicePlan
from ._slicing import slice_params
from .image import Image
from .types import ModelInfo, Precision, SlicePlan


class Model(Closing):
    """A LLaVA-UHD model directory or a text-only LLM (a LLaMA/Qwen2 ``.gguf`` file or an
    LLM-only directory), loaded and validated (``luhd_model_load``).

    The weights are memory-mapped, not copied. A model is immutable: any number of sessions
    on any threads may share it. Use it as a context manager, or call :meth:`close`, to unmap
    it deterministically.

    Args:
        path: the model directory (config.json, safetensors shards, tokenizer files), or a
            text-only LLM's ``.gguf`` file or directory (see :attr:`has_vision`).
        n_threads: compute threads (default: all CPUs).
        progress: called with the load progress in [0, 1]; return False to cancel
            (raises :class:`CancelledError`). If it raises, the load is cancelled and its
            exception propagates.
        precision: :attr:`Precision.EXACT` (the default, float32) or :attr:`Precision.FAST`
            (the fastest reduced-precision kernels the CPU has, within a stated bound, never
            slower than exact: int8 products in the vision tower on AVX-512 VNNI CPUs, from a
            Q8_0 copy of its weights made at load; bf16 products against BF16 weights on
            AVX512_BF16 CPUs where they measure faster, PyTorch bf16 matmul precision).
        image_cache_bytes: bytes of encoded images the model keeps for all its sessions (default
            256 MiB; 0 turns the shared cache off): a session asking about a picture another
            session already encoded skips the vision stage.
        prefix_cache_bytes: bytes of computed KV rows the model keeps for all its sessions
            (default 0: off; 512 MiB suits a server): a session whose prompt starts like one another
            session evaluated (same system prompt, same images) copies those rows instead of
            recomputing them, with the same greedy answers and logits equal up to float rounding
            (``ChatStats.n_reused_positions`` counts them).
        max_decode_batch: most sessions whose decode steps share one pass over the LLM weights
            when they decode at the same time, each on its own thread (default 8; 1 turns
            batching off). Every session's tokens stay the ones it gets alone.
        chat_template: the chat template of a text-only LLM by name (``"chatml"``,
            ``"llama2"``, ``"llama2-sys"``, ``"llama3"``, ``"mistral-v1"``, ``"mistral-v3"``,
            ``"mistral-v7"``, ``"vicuna"``), replacing the one recognised from its metadata: pass
            it when none is recognised (``info.chat_template`` is then ``""`` and ``chat`` raises
            ``UnsupportedModelError``). Default: recognise it. Ignored by LLaVA-UHD models.

    Raises:
        Error: the subclass of the C status (``FileAccessError``, ``BadConfigError``,
            ``BadWeightsError``, ``MissingTensorError``, ``TensorMismatchError``,
            ``UnsupportedModelError``, ``BadTokenizerError``, ``CancelledError``).
    """

    _kind = "model"

    def __init__(self, path: Union[str, os.PathLike[str]], n_threads: Optional[int] = None,
                 progress: Optional[Callable[[float], bool]] = None, precision: Precision = Precision.EXACT,
                 image_cache_bytes: Optional[int] = None, prefix_cache_bytes: Optional[int] = None,
                 max_decode_batch: Optional[int] = None, chat_template: Optional[str] = None):
        super().__init__(lib.luhd_model_free)
        params = lib.luhd_model_default_params()
        params.precision = Precision(precision).value
        if image_cache_bytes is not None:
            params.image_cache_bytes = int_in_range(image_cache_bytes, "image_cache_bytes", 0, 2**63 - 1)
        if prefix_cache_bytes is not None:
            params.prefix_cache_bytes = int_in_range(prefix_cache_bytes, "prefix_cache_bytes", 0, 2**63 - 1)
        if max_decode_batch is not None:
            params.max_decode_batch = int_in_range(max_decode_batch, "max_decode_batch", 1, 64)
        if n_threads is not None:
            params.n_threads = int_in_range(n_threads, "n_threads", 1, 1024)
        self.path = os.fspath(path)
        encoded = c_text(os.fsencode(path), "path")
        if chat_template is not None:
            params.chat_template = c_text(chat_template, "chat_template")
        errors = CallbackErrors()
        callback = None
        if progress is not None:
            def trampoline(fraction: float, _user: Any) -> bool:
                try:
                    return bool(progress(fraction))
                except BaseException as e:
                    errors.record(e)
                    return False
            callback = PROGRESS_CALLBACK(trampoline)
            params.progress_callback = ctypes.cast(callback, ctypes.c_void_p)
        out = ctypes.c_void_p()
        status = lib.luhd_model_load(encoded, ctypes.byref(params), ctypes.byref(out))
        if status == 0 and errors.pending:
            lib.luhd_model_free(out)
        errors.raise_pending()
        check(status)
        self._adopt(out)
        p = ModelProperties()
        p.struct_size = ctypes.sizeof(ModelProperties)
        with self._borrow() as handle:
            check(lib.luhd_model_get_properties(handle, ctypes.byref(p)))
        self._info = ModelInfo.from_c(p)

    @property
    def info(self) -> ModelInfo:
        """What the model is: architecture, sizes, dtypes (``luhd_model_get_properties``, read
        once at load: a model is immutable)."""
        return self._info

    @property
    def has_vision(self) -> bool:
        """False for a text-only LLM (a ``.gguf`` file or an LLM-only directory): asking it about
        an image raises :class:`UnsupportedModelError`."""
        return self._info.has_vision

    def tokenize(self, text: str | bytes, add_bos: bool = False, parse_special: bool = True) -> list[int]:
        """Token ids of ``text`` (``luhd_model_tokenize``): SentencePiece for LLaMA / Vicuna, byte-level
        BPE for Qwen2. ``add_bos`` puts the BOS id first when the tokenizer has one (Qwen2 has
        none); with ``parse_special`` special-token text such as ``"</s>"`` becomes its id.
        ``bytes`` are passed through unchanged, so invalid UTF-8 raises
        :class:`InvalidUTF8Error`. The text is passed with its length: NUL characters are text."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        n = ctypes.c_int32()
        capacity = min(len(data) + 2, INT32_MAX)  # enough for every tokenizer here; measured again if not
        while True:
            buf = (ctypes.c_int32 * capacity)()
            with self._borrow() as handle:
                status = lib.luhd_model_tokenize(handle, data, len(data), add_bos, parse_special, buf, capacity,
                                                 ctypes.byref(n))
            if status == BufferTooSmallError.status and n.value > capacity:
                capacity = n.value
                continue
            check(status)
            return list(buf[:n.value])

    def detokenize(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """The text of ``ids`` (``luhd_detokenize``), as Hugging Face's
        ``decode(ids, skip_special_tokens=skip_special)``; byte pieces are joined into
        characters and invalid sequences become U+FFFD. Raises :class:`InvalidArgumentError`
        for an id outside the vocabulary."""
        ids = [int_in_range(i, f"ids[{k}]", -2**31, INT32_MAX) for k, i in enumerate(ids)]
        arr = (ctypes.c_int32 * len(ids))(*ids)
        n = ctypes.c_size_t()
        size = 4 * len(ids) + 16
        while True:
            buf = ctypes.create_string_buffer(size)
            with self._borrow() as handle:
                status = lib.luhd_model_detokenize(handle, arr, len(ids), skip_special, buf, size, ctypes.byref(n))
            if status == BufferTooSmallError.status and n.value + 1 > size:
                size = n.value + 1
                continue
            check(status)
            return buf.raw[:n.value].decode("utf-8")

    def token_to_piece(self, token: int, render_special: bool = False) -> bytes:
        """The bytes one id stands for (``luhd_token_to_piece``): ``"▁the"`` gives ``b" the"``,
        ``"<0x0A>"`` gives ``b"\\n"``; a byte piece may be part of a UTF-8 character. Special
        tokens give their text with ``render_special`` and ``b""`` otherwise."""
        token = int_in_range(token, "token", -2**31, INT32_MAX)
        n = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(256)
        with self._borrow() as handle:
            status = lib.luhd_model_token_to_piece(handle, token, render_special, buf, 256, ctypes.byref(n))
            if status == BufferTooSmallError.status:
                buf = ctypes.create_string_buffer(n.value)
                status = lib.luhd_model_token_to_piece(handle, token, render_special, buf, n.value, ctypes.byref(n))
        check(status)
        return buf.raw[:n.value]

    # ------------------------------------------------------------------------------------------
    # Image stages

    def plan(self, image: Image, *, preresize_long_side: Optional[int] = None,
             max_slices: Optional[int] = None) -> SlicePlan:
        """How ``image`` is cut for this model (``luhd_image_get_slice_plan``; no pixels are
        processed). ``preresize_long_side`` (default 1024; 0 turns the pre-resize off) and
        ``max_slices`` (default 9) are upstream's slicing options."""
        params = slice_params(preresize_long_side, max_slices)
        p = _CSlicePlan()
        p.struct_size = ctypes.sizeof(_CSlicePlan)
        with self._borrow() as handle, image._borrow() as image_handle:
            check(lib.luhd_image_get_slice_plan(handle, image_handle, ctypes.byref(params), ctypes.byref(p)))
        return SlicePlan.from_c(p)

    def _stage(self, function: Any, image: Image, preresize_long_side: Optional[int], max_slices: Optional[int],
               abort: Optional[Callable[[], bool]]) -> list[tuple[np.ndarray, int, int, bool]]:
        """Runs one image-stage export; returns (array copy, view, level, used_by_projector) per
        tensor, with the C list freed."""
        errors = CallbackErrors()
        params = slice_params(preresize_long_side, max_slices)
        callback = abort_trampoline(abort, errors) if abort is not None else ABORT_CALLBACK()
        out = ctypes.POINTER(TensorList)()
        with self._borrow() as handle, image._borrow() as image_handle:
            status = function(handle, image_handle, ctypes.byref(params), callback, None, ctypes.byref(out))
        del callback  # C no longer calls the abort callback once the call has returned
        try:
            errors.raise_pending()
            check(status)
            result = []
            for i in range(out.contents.n_tensors):
                t = out.contents.tensors[i]
                shape = tuple(int(t.shape[d]) for d in range(t.n_dims))
                count = int(np.prod(shape)) if shape else 0
                if count:
                    array = np.ctypeslib.as_array(t.data, shape=(count,)).reshape(shape).copy()
                else:
                    array = np.zeros(shape, dtype=np.float32)
                result.append((array, t.view, t.level, bool(t.used_by_projector)))
            return result
        finally:
            lib.luhd_tensor_list_free(out)

    def pixels(self, image: Image, *, preresize_long_side: Optional[int] = None, max_slices: Optional[int] = None,
               abort: Optional[Callable[[], bool]] = None) -> list[np.ndarray]:
        """The CLIP-normalised pixels of every view (slices row-major, then the overview): one
        float32 array (3, H, W) per view (``luhd_image_pixels``). ``abort()`` is polled during
        the work; returning True raises :class:`CancelledError`."""
        return [a for a, *_ in self._stage(lib.luhd_image_pixels, image, preresize_long_side, max_slices, abort)]

    def vision_features(self, image: Image, *, preresize_long_side: Optional[int] = None,
                        max_slices: Optional[int] = None,
                        abort: Optional[Callable[[], bool]] = None) -> list[np.ndarray]:
        """CLIP layer -2 patch features of every view, CLS dropped: one float32 array (h*w, C)
        per view, where h x w is the view's patch grid (``luhd_image_features``)."""
        return [a for a, *_ in self._stage(lib.luhd_image_features, image, preresize_long_side, max_slices, abort)]

    def pyramid(self, image: Image, *, preresize_long_side: Optional[int] = None, max_slices: Optional[int] = None,
                abort: Optional[Callable[[], bool]] = None) -> list[list[np.ndarray]]:
        """The feature pyramid of every view: per view, one float32 array (C, h_L, w_L) per level
        in increasing scale (1x = the CLIP features, then the VDIM levels 2x, 4x of Hiwin
        checkpoints; the v1 projector has only 1x) (``luhd_image_pyramid``). Use
        :meth:`pyramid_levels` for each level's scale and whether the projector reads it."""
        views: list[list[np.ndarray]] = []
        for array, view, _, _ in self._stage(lib.luhd_image_pyramid, image, preresize_long_side, max_slices, abort):
            while len(views) <= view:
                views.append([])
            views[view].append(array)
        return views

    def pyramid_levels(self) -> list[tuple[int, bool]]:
        """(scale, used_by_projector) of each level :meth:`pyramid` returns for a view, e.g.
        [(1, True), (2, False), (4, True)] for feature_scale_mask 5. Read from :attr:`info`
        without running anything: a Hiwin projector's VDIM stack reaches 4x when the mask has
        the 4x bit and 2x otherwise, and the projector reads the levels whose bits are set; the
        v1 projector has the 1x level only."""
        info = self.info
        if info.projector != "hiwin":
            return [(1, True)]
        top = 4 if info.feature_scale_mask & 4 else 2
        scales = [1 << k for k in range(top.bit_length())]
        return [(scale, scale == 1 or bool(info.feature_scale_mask & scale)) for scale in scales]

    def embed_image(self, image: Image, *, preresize_long_side: Optional[int] = None,
                    max_slices: Optional[int] = None, abort: Optional[Callable[[], bool]] = None) -> np.ndarray:
        """The projector tokens of every view, in the LLM's embedding space: a float32 array
        (n_views, 144, hidden) (``luhd_image_embed``)."""
        views = self._stage(lib.luhd_image_embed, image, preresize_long_side, max_slices, abort)
        embeddings: np.ndarray = np.stack([a for a, *_ in views])
        return embeddings

    # ------------------------------------------------------------------------------------------
    # Sessions

    def close(self) -> None:
        """Releases the model. Sessions made from it keep working (each holds its own
        reference); the weights are unmapped when the last of them is closed. A call running on
        another thread keeps the model until it returns."""
        super().close()

    def __repr__(self) -> str:
        return f"<llavauhd.Model {self.path!r}>"
