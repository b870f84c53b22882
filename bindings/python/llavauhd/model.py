"""Loaded models (``luhd_model``): properties, tokenizer, image stages and sessions."""
from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

import numpy as np

from ._callbacks import CallbackErrors, image_options
from ._errors import BufferTooSmallError
from ._closing import Closing
from ._lib import PROGRESS_CALLBACK, ModelProperties, Plan, TensorList, check, lib
from .image import Image

if TYPE_CHECKING:
    from .session import Session

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
        bf16_matmul: bf16 products against BF16 weights in the vision tower and the LLM
            prefill on CPUs with AVX512_BF16 (about twice as fast, PyTorch bf16 matmul
            precision); default False, the exact float32 path.

    Raises:
        Error: the subclass of the C status (``FileAccessError``, ``BadConfigError``,
            ``BadWeightsError``, ``MissingTensorError``, ``TensorMismatchError``,
            ``UnsupportedModelError``, ``BadTokenizerError``, ``CancelledError``).
    """

    def __init__(self, path: str | os.PathLike[str], n_threads: Optional[int] = None,
                 progress: Optional[Callable[[float], bool]] = None, bf16_matmul: bool = False):
        params = lib.luhd_model_default_params()
        params.bf16_matmul = bool(bf16_matmul)
        if n_threads is not None:
            if n_threads < 1:
                raise ValueError("n_threads must be at least 1")
            params.n_threads = n_threads
        self._handle = ctypes.c_void_p()
        self.path = os.fspath(path)
        errors = CallbackErrors()
        callback = None
        if progress is not None:
            def trampoline(fraction: float, _user: Any) -> bool:
                try:
                    return bool(progress(fraction))
                except BaseException as e:  # noqa: BLE001 - nothing may unwind into C
                    errors.record(e)
                    return False
            callback = PROGRESS_CALLBACK(trampoline)
            params.progress_callback = ctypes.cast(callback, ctypes.c_void_p)
        out = ctypes.c_void_p()
        status = lib.luhd_model_load(os.fsencode(path), ctypes.byref(params), ctypes.byref(out))
        if status == 0 and errors.pending:
            lib.luhd_model_free(out)
        errors.raise_pending()
        check(status)
        self._handle = out

    @property
    def info(self) -> dict[str, Any]:
        """What the model is: architecture, sizes, dtypes (``luhd_model_info``)."""
        p = ModelProperties()
        p.struct_size = ctypes.sizeof(ModelProperties)
        check(lib.luhd_model_info(self._require(), ctypes.byref(p)))
        out: dict[str, Any] = {}
        for field in ModelProperties._fields_[1:]:
            name = field[0]
            v = getattr(p, name)
            out[name] = v.decode() if isinstance(v, bytes) else v
        return out

    @property
    def has_vision(self) -> bool:
        """False for a text-only LLM (a ``.gguf`` file or an LLM-only directory): asking it about
        an image raises :class:`UnsupportedModelError`."""
        return bool(self.info["has_vision"])

    def tokenize(self, text: str | bytes, add_bos: bool = False, parse_special: bool = True) -> list[int]:
        """Token ids of ``text`` (``luhd_tokenize``): SentencePiece for LLaMA / Vicuna, byte-level
        BPE for Qwen2. ``add_bos`` puts the BOS id first when the tokenizer has one (Qwen2 has
        none); with ``parse_special`` special-token text such as ``"</s>"`` becomes its id.
        ``bytes`` are passed through unchanged, so invalid UTF-8 raises
        :class:`InvalidUTF8Error`."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        n = ctypes.c_int32()
        capacity = len(data) + 2  # enough for every tokenizer here; measured again if not
        while True:
            buf = (ctypes.c_int32 * capacity)()
            status = lib.luhd_tokenize(self._require(), data, len(data), add_bos, parse_special, buf, capacity,
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
        ids = list(ids)
        arr = (ctypes.c_int32 * len(ids))(*ids)
        n = ctypes.c_size_t()
        size = 4 * len(ids) + 16
        while True:
            buf = ctypes.create_string_buffer(size)
            status = lib.luhd_detokenize(self._require(), arr, len(ids), skip_special, buf, size, ctypes.byref(n))
            if status == BufferTooSmallError.status and n.value + 1 > size:
                size = n.value + 1
                continue
            check(status)
            return buf.raw[:n.value].decode("utf-8")

    def token_to_piece(self, token: int, render_special: bool = False) -> bytes:
        """The bytes one id stands for (``luhd_token_to_piece``): ``"▁the"`` gives ``b" the"``,
        ``"<0x0A>"`` gives ``b"\\n"``; a byte piece may be part of a UTF-8 character. Special
        tokens give their text with ``render_special`` and ``b""`` otherwise."""
        n = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(256)
        status = lib.luhd_token_to_piece(self._require(), token, render_special, buf, 256, ctypes.byref(n))
        if status == BufferTooSmallError.status:
            buf = ctypes.create_string_buffer(n.value)
            status = lib.luhd_token_to_piece(self._require(), token, render_special, buf, n.value, ctypes.byref(n))
        check(status)
        return buf.raw[:n.value]

    # ------------------------------------------------------------------------------------------
    # Image stages

    def plan(self, image: Image, *, preresize_long_side: Optional[int] = None,
             max_slices: Optional[int] = None) -> dict[str, Any]:
        """How ``image`` is cut for this model (``luhd_image_plan``; no pixels are processed).

        Sizes are (width, height) in pixels. Keys:

        * ``image_size``, ``resized_size`` (after the eval pre-resize)
        * ``grid``: (columns, rows), or None when the image is not sliced
        * ``slice_size``, ``refine_size`` (the image resized before cutting): None when not sliced
        * ``overview_size``
        * ``views``: slices + 1 (the overview)
        * ``n_image_tokens``: positions the image takes in the LLM input
        * ``separators``: the id after each slice (one per slice)
        * ``overview_separator``: the id before the overview in the stitched layout (the
          old-vicuna-7b branch); None when not sliced or in the per-slice layout

        ``preresize_long_side`` (default 1024; 0 turns the pre-resize off) and ``max_slices``
        (default 9) are upstream's slicing options.
        """
        options, _ = image_options(preresize_long_side, max_slices)
        p = Plan()
        p.struct_size = ctypes.sizeof(Plan)
        check(lib.luhd_image_plan(self._require(), image._require(), ctypes.byref(options), ctypes.byref(p)))
        sliced = p.grid_columns > 0
        n_slices = p.n_views - 1
        stitched = self.info["token_layout"] == "stitched_grid"
        return {
            "image_size": (p.image_width, p.image_height),
            "resized_size": (p.resized_width, p.resized_height),
            "grid": (p.grid_columns, p.grid_rows) if sliced else None,
            "slice_size": (p.slice_width, p.slice_height) if sliced else None,
            "refine_size": (p.refine_width, p.refine_height) if sliced else None,
            "overview_size": (p.overview_width, p.overview_height),
            "views": p.n_views,
            "n_image_tokens": p.n_image_tokens,
            "separators": list(p.separators[:n_slices]),
            "overview_separator": p.overview_separator if sliced and stitched else None,
        }

    def _stage(self, function: Any, image: Image, preresize_long_side: Optional[int], max_slices: Optional[int],
               abort: Optional[Callable[[], bool]]) -> list[tuple[np.ndarray, int, int, bool]]:
        """Runs one image-stage export; returns (array copy, view, level, used_by_projector) per
        tensor, with the C list freed."""
        errors = CallbackErrors()
        options, keep = image_options(preresize_long_side, max_slices, abort, errors)
        out = ctypes.POINTER(TensorList)()
        status = function(self._require(), image._require(), ctypes.byref(options), ctypes.byref(out))
        del keep  # C no longer calls the abort callback once the call has returned
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
        per view, where h x w is the view's patch grid (``luhd_vision_features``)."""
        return [a for a, *_ in self._stage(lib.luhd_vision_features, image, preresize_long_side, max_slices, abort)]

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

    def pyramid_levels(self, image: Image, *, preresize_long_side: Optional[int] = None,
                       max_slices: Optional[int] = None) -> list[tuple[int, bool]]:
        """(scale, used_by_projector) of each level :meth:`pyramid` returns for a view, e.g.
        [(1, True), (2, False), (4, True)] for feature_scale_mask 5. The levels depend on the
        model only, but finding them runs the pyramid stage on ``image``."""
        levels = self._stage(lib.luhd_image_pyramid, image, preresize_long_side, max_slices, None)
        return [(level, used) for _, view, level, used in levels if view == 0]

    def embed_image(self, image: Image, *, preresize_long_side: Optional[int] = None,
                    max_slices: Optional[int] = None, abort: Optional[Callable[[], bool]] = None) -> np.ndarray:
        """The projector tokens of every view, in the LLM's embedding space: a float32 array
        (n_views, 144, hidden) (``luhd_image_embed``)."""
        views = self._stage(lib.luhd_image_embed, image, preresize_long_side, max_slices, abort)
        return np.stack([a for a, *_ in views])

    # ------------------------------------------------------------------------------------------
    # Sessions

    def session(self, **params: Any) -> "Session":
        """A new conversation on this model; see :class:`Session` for the parameters."""
        from .session import Session
        return Session(self, **params)

    def _require(self) -> ctypes.c_void_p:
        if not self._handle:
            raise ValueError("the model is closed")
        return self._handle

    def close(self) -> None:
        """Releases the model. Sessions made from it keep working (each holds its own
        reference); the weights are unmapped when the last of them is closed. Do not close it
        while another thread is inside a call on it."""
        if getattr(self, "_handle", None):
            lib.luhd_model_free(self._handle)
            self._handle = ctypes.c_void_p()

    def __repr__(self) -> str:
        return f"<llavauhd.Model {self.path!r}>"
