"""Conversations (``luhd_session``): chat, streaming, and the low-level eval / logits / sample path."""
from __future__ import annotations

import ctypes
import queue
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from ._errors import CancelledError
from ._callbacks import CallbackErrors, abort_trampoline, image_options
from ._closing import Closing
from ._lib import TEXT_CALLBACK, ChatStats, SamplingParams, check, lib
from .image import Image

if TYPE_CHECKING:
    from .model import Model

#: Text given to the library: ``str`` is encoded as UTF-8; ``bytes`` are passed unchanged (so
#: invalid UTF-8 reaches the library and raises :class:`InvalidUTF8Error`).
Text = Union[str, bytes]

#: ``luhd_stop_reason`` values, as the names ``last_stats["stop_reason"]`` gives.
STOP_REASONS = {0: "eos", 1: "max_tokens", 2: "stop_string", 3: "callback", 4: "context_full"}


def _utf8(text: Text) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def _image_handles(images: Sequence[Image]) -> tuple[Any, int]:
    """A C array of image handles (None when empty) and its length."""
    images = list(images)
    if not images:
        return None, 0
    array = (ctypes.c_void_p * len(images))(*(img._require().value for img in images))
    return array, len(images)


class _Sampling:
    """A ``luhd_sampling_params`` and the buffers its pointers refer to."""

    def __init__(self, *, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                 repetition_penalty: float = 1.0, penalty_last_n: int = 0, seed: int = 0,
                 max_new_tokens: int = 128, stop: Sequence[Text] = ()):
        p = lib.luhd_sampling_default_params()
        p.temperature = temperature
        p.top_k = top_k
        p.top_p = top_p
        p.min_p = min_p
        p.repetition_penalty = repetition_penalty
        p.penalty_last_n = penalty_last_n
        p.seed = seed
        p.max_new_tokens = max_new_tokens
        self._stops = (ctypes.c_char_p * max(1, len(stop)))(*[_utf8(s) for s in stop])
        if stop:
            p.stop_strings = self._stops
            p.n_stop_strings = len(stop)
        self.params = p


#: ``luhd_kv_type`` values by name.
_KV_TYPES = {"f32": 0, "f16": 1, "bf16": 2}


class Session(Closing):
    """One conversation on a :class:`Model`: its KV cache, chat history and a cache of image
    embeddings (``luhd_session``). Make one with :meth:`Model.session`; use it as a context
    manager or call :meth:`close`.

    A session is used by one thread at a time (a second thread gets a ``RuntimeError``), except
    :meth:`cancel`, which any thread may call. Sessions on one model may run on different
    threads at the same time.

    Args:
        model: the model.
        n_ctx: positions the context holds (default ``min(4096, max_position_embeddings)``).
        image_cache_size: encoded images kept for reuse (default 4; 0 disables the cache).
        system_prompt: replaces the chat template's system text (``str`` or UTF-8 ``bytes``).
        preresize_long_side, max_slices: how images are sliced (see :meth:`Model.plan`).
        kv_type: how the KV cache stores keys and values: ``"f16"`` (default), ``"bf16"`` (half the
            memory of ``"f32"``, logits within the bounds the library's tests state) or ``"f32"``
            (exact). Any other name raises ``ValueError``.
        abort: polled during image encoding, prefill and decoding; returning True stops the
            work with :class:`CancelledError`. If it raises, the work stops and its exception
            propagates. It may be called from the library's threads.
    """

    def __init__(self, model: "Model", *, n_ctx: int = 0, image_cache_size: int = 4,
                 system_prompt: Optional[Text] = None, preresize_long_side: Optional[int] = None,
                 max_slices: Optional[int] = None, abort: Optional[Callable[[], bool]] = None,
                 kv_type: str = "f16"):
        if kv_type not in _KV_TYPES:
            raise ValueError(f"kv_type must be one of {sorted(_KV_TYPES)}, not {kv_type!r}")
        self._handle = ctypes.c_void_p()
        self._model = model  # the Python object; the C session holds its own model reference
        self._busy = threading.Lock()
        self._errors = CallbackErrors()
        self._abort_callback = None
        self._stream_closed: Optional[threading.Event] = None
        self.last_stats: Optional[dict[str, Any]] = None
        params = lib.luhd_session_default_params()
        params.n_ctx = n_ctx
        params.image_cache_size = image_cache_size
        params.kv_type = _KV_TYPES[kv_type]
        system = None if system_prompt is None else _utf8(system_prompt)
        if system is not None:
            params.system_prompt = system
        params.image_options, _ = image_options(preresize_long_side, max_slices)
        if abort is not None:
            self._abort_callback = abort_trampoline(abort, self._errors)
            params.abort_callback = ctypes.cast(self._abort_callback, ctypes.c_void_p)
        out = ctypes.c_void_p()
        check(lib.luhd_session_create(model._require(), ctypes.byref(params), ctypes.byref(out)))
        self._handle = out

    # ------------------------------------------------------------------------------------------
    # Chat

    def chat(self, text: Text, images: Sequence[Image] = (), *, max_new_tokens: int = 128,
             temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
             repetition_penalty: float = 1.0, penalty_last_n: int = 0, seed: int = 0,
             stop: Sequence[Text] = (), on_text: Optional[Callable[[str], Optional[bool]]] = None) -> str:
        """One turn of chat (``luhd_session_chat``): the user's ``text`` with ``images``, and
        the model's answer, which is returned and joins the conversation.

        ``text`` may hold ``"<image>"`` placeholders, one per image; otherwise each image goes
        before the text. Earlier turns stay in the KV cache, and an image the session has
        already encoded is taken from its cache. Sampling is greedy when ``temperature`` is 0
        (the default, upstream's eval setting); ``stop`` texts end the answer and are not part
        of it. ``on_text(piece)`` receives the answer as it is generated, in whole characters;
        returning False stops it there (the call still succeeds). If it raises, the answer
        stops and the exception propagates.

        :attr:`last_stats` then says why the answer ended and where the time went (None after
        a failed or cancelled turn).

        Raises:
            InvalidArgumentError: placeholder count differs from the images, bad parameters.
            InvalidUTF8Error: ``text`` or a stop text (given as bytes) is not UTF-8.
            ContextFullError: the prompt does not fit; the session is unchanged.
            CancelledError: :meth:`cancel` or the abort callback stopped it; what was
                generated stays in the conversation, so the session remains usable.
        """
        sampling = _Sampling(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                             repetition_penalty=repetition_penalty, penalty_last_n=penalty_last_n, seed=seed,
                             max_new_tokens=max_new_tokens, stop=stop)
        with self._use():
            return self._chat(_utf8(text), images, sampling, on_text)

    def chat_stream(self, text: Text, images: Sequence[Image] = (), *, max_new_tokens: int = 128,
                    temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                    repetition_penalty: float = 1.0, penalty_last_n: int = 0, seed: int = 0,
                    stop: Sequence[Text] = ()) -> Iterator[str]:
        """Like :meth:`chat`, but a generator of the answer's pieces (whole characters) as they
        are generated; :attr:`last_stats` is set once it is exhausted.

        The C call runs on a background thread and nothing starts before the first ``next()``.
        Closing the generator early (``break`` out of the loop, or ``close()``) stops the
        answer: the text callback refuses the next piece and a prompt still being evaluated is
        cancelled. What was generated so far stays in the conversation and the session remains
        usable. Errors are raised from the generator.
        """
        sampling = _Sampling(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                             repetition_penalty=repetition_penalty, penalty_last_n=penalty_last_n, seed=seed,
                             max_new_tokens=max_new_tokens, stop=stop)
        return self._stream(_utf8(text), list(images), sampling)

    def _stream(self, data: bytes, images: list[Image], sampling: _Sampling) -> Iterator[str]:
        pieces: "queue.SimpleQueue[object]" = queue.SimpleQueue()
        closed = threading.Event()
        done = object()
        outcome: dict[str, BaseException] = {}

        def on_piece(piece: str) -> bool:
            if closed.is_set():
                return False
            pieces.put(piece)
            return True

        def run() -> None:
            # The worker owns the session for the call, so that close() can wait for it even
            # while the generator is suspended.
            try:
                self._chat(data, images, sampling, on_piece)
            except BaseException as e:  # noqa: BLE001 - handed to the consuming thread
                outcome["error"] = e
            finally:
                self._stream_closed = None
                self._busy.release()
                pieces.put(done)

        self._acquire()
        self._stream_closed = closed
        worker = threading.Thread(target=run, name="llavauhd-chat", daemon=True)
        try:
            worker.start()
        except BaseException:
            self._stream_closed = None
            self._busy.release()
            raise
        try:
            while True:
                item = pieces.get()
                if item is done:
                    break
                yield item  # type: ignore[misc]
        finally:
            if worker.is_alive():
                # Closed early: the text callback refuses further pieces, and cancel()
                # interrupts a prompt still being evaluated.
                closed.set()
                while worker.is_alive():
                    lib.luhd_session_cancel(self._handle)
                    worker.join(0.05)
                outcome.pop("error", None)
        error = outcome.get("error")
        if error is not None and not (closed.is_set() and isinstance(error, CancelledError)):
            raise error

    def _chat(self, data: bytes, images: Sequence[Image], sampling: _Sampling,
              on_text: Optional[Callable[[str], Optional[bool]]]) -> str:
        """The ``luhd_session_chat`` call; the caller holds the session."""
        handles, n_images = _image_handles(images)
        callback = None
        if on_text is not None:
            errors = self._errors

            def trampoline(piece: Optional[int], length: int, _user: object) -> bool:
                try:
                    text = ctypes.string_at(piece, length).decode("utf-8", "replace") if piece and length else ""
                    return on_text(text) is not False
                except BaseException as e:  # noqa: BLE001 - nothing may unwind into C
                    errors.record(e)
                    return False
            callback = TEXT_CALLBACK(trampoline)
        stats = ChatStats()
        stats.struct_size = ctypes.sizeof(ChatStats)
        answer = ctypes.POINTER(ctypes.c_char)()
        self._errors.clear()
        self.last_stats = None
        status = lib.luhd_session_chat(self._handle, data, handles, n_images, ctypes.byref(sampling.params),
                                       callback if callback is not None else TEXT_CALLBACK(),
                                       None, ctypes.byref(answer), ctypes.byref(stats))
        try:
            text = ctypes.string_at(answer).decode("utf-8") if answer else ""
        finally:
            lib.luhd_string_free(answer)
        self._errors.raise_pending()
        check(status)
        self.last_stats = {
            "stop_reason": STOP_REASONS.get(stats.stop_reason, str(stats.stop_reason)),
            "n_prompt_positions": stats.n_prompt_positions,
            "n_reused_positions": stats.n_reused_positions,
            "n_generated": stats.n_generated,
            "n_images_encoded": stats.n_images_encoded,
            "n_images_cached": stats.n_images_cached,
            "image_seconds": stats.image_seconds,
            "prefill_seconds": stats.prefill_seconds,
            "decode_seconds": stats.decode_seconds,
        }
        return text

    # ------------------------------------------------------------------------------------------
    # Low level

    def eval(self, ids: Sequence[int], images: Sequence[Image] = ()) -> None:
        """Appends ``ids`` to the context, with :data:`llavauhd.IMAGE_TOKEN` (-200) wherever one of
        ``images`` goes, in order, as upstream's ``generate`` does (``luhd_session_eval``). No
        chat template is applied. Afterwards :meth:`logits` gives the next-token logits.

        Raises :class:`InvalidArgumentError` (no ids, marker count differs from the images, an
        id outside the vocabulary), :class:`ContextFullError` or :class:`CancelledError` (nothing
        is appended in either case)."""
        ids = [int(i) for i in ids]
        array = (ctypes.c_int32 * max(1, len(ids)))(*ids)
        handles, n_images = _image_handles(images)
        with self._use():
            self._errors.clear()
            status = lib.luhd_session_eval(self._handle, array if ids else None, len(ids), handles, n_images)
            self._errors.raise_pending()
            check(status)

    def logits(self) -> np.ndarray:
        """A float32 copy of the logits after the last evaluated position, shape (vocab,)
        (``luhd_session_logits``). Raises :class:`InvalidArgumentError` when nothing has been
        evaluated since the session started or was reset."""
        pointer = ctypes.POINTER(ctypes.c_float)()
        n = ctypes.c_int32()
        with self._use():
            check(lib.luhd_session_logits(self._handle, ctypes.byref(pointer), ctypes.byref(n)))
            return np.ctypeslib.as_array(pointer, shape=(n.value,)).copy()

    def sample(self, temperature: float = 0.0, *, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
               repetition_penalty: float = 1.0, penalty_last_n: int = 0, seed: int = 0) -> int:
        """The next token sampled from the logits, greedy when ``temperature`` is 0
        (``luhd_session_sample``). The evaluated ids are the repetition-penalty history; the
        seeded random stream continues across calls while the parameters stay the same. The
        token is not evaluated: pass it to :meth:`eval` to continue."""
        sampling = _Sampling(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                             repetition_penalty=repetition_penalty, penalty_last_n=penalty_last_n, seed=seed)
        token = ctypes.c_int32()
        with self._use():
            check(lib.luhd_session_sample(self._handle, ctypes.byref(sampling.params), ctypes.byref(token)))
        return token.value

    # ------------------------------------------------------------------------------------------
    # State

    def reset(self) -> None:
        """Forgets the conversation and the context; the image-embedding cache is kept."""
        with self._use():
            check(lib.luhd_session_reset(self._handle))
        self.last_stats = None

    def cancel(self) -> None:
        """Stops the chat or eval running on another thread, which raises :class:`CancelledError`
        (``luhd_session_cancel``). No effect when nothing is running."""
        check(lib.luhd_session_cancel(self._require()))

    @property
    def context(self) -> tuple[int, int]:
        """(positions used, positions the context holds)."""
        used, size = ctypes.c_int32(), ctypes.c_int32()
        check(lib.luhd_session_context(self._require(), ctypes.byref(used), ctypes.byref(size)))
        return used.value, size.value

    @property
    def model(self) -> "Model":
        """The model the session runs on."""
        return self._model

    def _require(self) -> ctypes.c_void_p:
        if not self._handle:
            raise ValueError("the session is closed")
        return self._handle

    def _acquire(self) -> None:
        """Takes the session for one call; a second thread gets a RuntimeError instead of
        racing."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("the session is in use by another call (one thread at a time per session)")
        if not self._handle:
            self._busy.release()
            raise ValueError("the session is closed")

    @contextmanager
    def _use(self) -> Iterator[None]:
        self._acquire()
        try:
            yield
        finally:
            self._busy.release()

    def close(self) -> None:
        """Frees the session, after stopping a call still running on it (a chat on another
        thread raises :class:`CancelledError`; a chat_stream being consumed just ends) and
        waiting for it to return."""
        if not getattr(self, "_handle", None):
            return
        while not self._busy.acquire(timeout=0.05):
            closed = self._stream_closed
            if closed is not None:
                closed.set()
            lib.luhd_session_cancel(self._handle)
        try:
            lib.luhd_session_free(self._handle)
            self._handle = ctypes.c_void_p()
        finally:
            self._busy.release()

    def __repr__(self) -> str:
        if not self._handle:
            return "<llavauhd.Session (closed)>"
        used, size = self.context
        return f"<llavauhd.Session {used}/{size} positions>"
