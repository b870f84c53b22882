"""Conversations (``luhd_session``): chat, streaming, and the low-level eval / logits / sample path."""
from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Optional, Union

import numpy as np

from ._callbacks import CallbackErrors, abort_trampoline, inside_session_callback, session_callback_scope
from ._closing import Closing
from ._errors import CancelledError
from ._lib import INT32_MAX, INT32_MIN, TEXT_CALLBACK, SamplingParams, c_text, check, int_in_range, lib
from ._lib import ChatStats as _CChatStats
from ._slicing import slice_params
from .image import Image
from .model import Model
from .types import ChatStats, KVType, Sampling

#: Text given to the library: ``str`` is encoded as UTF-8; ``bytes`` are passed unchanged (so
#: invalid UTF-8 reaches the library and raises :class:`InvalidUTF8Error`).
Text = Union[str, bytes]


def _utf8(text: Text) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


class _CSampling:
    """A ``luhd_sampling_params`` made from a :class:`Sampling`, and the buffers its pointers
    refer to (kept alive with it)."""

    def __init__(self, sampling: Optional[Sampling]):
        s = sampling if sampling is not None else Sampling()
        if not isinstance(s, Sampling):
            raise TypeError(f"sampling must be a llavauhd.Sampling, got {type(s).__name__}")
        p: SamplingParams = lib.luhd_sampling_default_params()
        p.temperature = s.temperature
        p.top_k = s.top_k
        p.top_p = s.top_p
        p.min_p = s.min_p
        p.repetition_penalty = s.repetition_penalty
        p.penalty_last_n = s.penalty_last_n
        p.seed = s.seed
        p.max_new_tokens = s.max_new_tokens
        stops = [c_text(text, f"stop[{i}]") for i, text in enumerate(s.stop)]
        self._stops = (ctypes.c_char_p * max(1, len(stops)))(*stops)
        if stops:
            p.stop_strings = self._stops
            p.n_stop_strings = len(stops)
        self.params = p


class Session(Closing):
    """One conversation on a :class:`Model`: its KV cache, chat history and a cache of image
    embeddings (``luhd_session``). Use it as a context manager or call :meth:`close`.

    A session is used by one thread at a time: a call that overlaps another (from a second
    thread, or from inside a callback of the running call) raises ``RuntimeError``. Two calls
    are exempt: :meth:`cancel`, which any thread may call at any time, and :meth:`close` from
    another thread, which stops the running call and waits for it. Sessions on one model may
    run on different threads at the same time.

    Args:
        model: the model.
        n_ctx: positions the context holds (default ``min(4096, max_position_embeddings)``).
        image_cache_size: encoded images kept for reuse (default 4; 0 disables the cache).
        system_prompt: replaces the chat template's system text (``str`` or UTF-8 ``bytes``;
            a NUL character is refused with ValueError).
        preresize_long_side, max_slices: how images are sliced (see :meth:`Model.plan`).
        kv_type: how the KV cache stores keys and values: :attr:`KVType.F16` (the default) or
            :attr:`KVType.BF16` (half the memory of F32, logits within the bounds the library's
            tests state), or :attr:`KVType.F32` (exact). Another value raises ``ValueError``.
        abort: polled during image encoding, prefill and decoding; returning True stops the
            work with :class:`CancelledError`. If it raises, the work stops and its exception
            propagates. It may be called from the library's threads.
    """

    _kind = "session"

    def __init__(self, model: Model, *, n_ctx: int = 0, image_cache_size: int = 4,
                 system_prompt: Optional[Text] = None, preresize_long_side: Optional[int] = None,
                 max_slices: Optional[int] = None, abort: Optional[Callable[[], bool]] = None,
                 kv_type: KVType = KVType.F16):
        self._start(model, None, n_ctx=n_ctx, image_cache_size=image_cache_size, system_prompt=system_prompt,
                    preresize_long_side=preresize_long_side, max_slices=max_slices, abort=abort, kv_type=kv_type)

    @classmethod
    def load(cls, model: Model, path: Union[str, os.PathLike[str]], *, n_ctx: int = 0, image_cache_size: int = 4,
             abort: Optional[Callable[[], bool]] = None, kv_type: KVType = KVType.F16) -> Session:
        """A session that continues the conversation :meth:`save` wrote to ``path`` with the same
        model (``luhd_session_load``): the next :meth:`chat` answers as the saving session would
        have, and :meth:`logits` / :meth:`sample` continue where it stood. The saved KV rows are
        copied back, not recomputed. The system prompt and slicing are the saved conversation's;
        the other arguments are those of :class:`Session`. A ``kv_type`` other than the saved one
        converts the rows (exact when widening to F32; the continuation is then not identical to
        the saving session's).

        Raises:
            BadSessionFileError: not a session file, damaged, truncated, inconsistent, or another
                format version.
            SessionMismatchError: a session saved with another model.
            ContextFullError: the saved conversation holds more positions than ``n_ctx``.
            FileAccessError: the file cannot be read.
        """
        session = cls.__new__(cls)
        session._start(model, c_text(os.fsencode(path), "path"), n_ctx=n_ctx, image_cache_size=image_cache_size,
                       system_prompt=None, preresize_long_side=None, max_slices=None, abort=abort, kv_type=kv_type)
        return session

    def _start(self, model: Model, saved: Optional[bytes], *, n_ctx: int, image_cache_size: int,
               system_prompt: Optional[Text], preresize_long_side: Optional[int], max_slices: Optional[int],
               abort: Optional[Callable[[], bool]], kv_type: KVType) -> None:
        """Creates the C session: a new one, or the one saved at the path ``saved``."""
        super().__init__(lib.luhd_session_free)
        self._model = model  # the Python object; the C session holds its own model reference
        self._busy = threading.Lock()
        self._errors = CallbackErrors()
        self._abort_callback = None
        self._stream_closed: Optional[threading.Event] = None
        # Threads currently inside one of this session's callbacks (text, abort): close() there
        # would wait for the call it is part of.
        self._callback_threads: set[int] = set()
        self.last_stats: Optional[ChatStats] = None
        params = lib.luhd_session_default_params()
        params.n_ctx = int_in_range(n_ctx, "n_ctx", INT32_MIN, INT32_MAX)
        params.image_cache_size = int_in_range(image_cache_size, "image_cache_size", INT32_MIN, INT32_MAX)
        system = None if system_prompt is None else c_text(system_prompt, "system_prompt")
        params.kv_type = KVType(kv_type).value
        if system is not None:
            params.system_prompt = system
        slicing = slice_params(preresize_long_side, max_slices)
        params.preresize_long_side = slicing.preresize_long_side
        params.max_slices = slicing.max_slices
        if abort is not None:
            self._abort_callback = abort_trampoline(self._tracked(abort), self._errors)
            params.abort_callback = ctypes.cast(self._abort_callback, ctypes.c_void_p)
        out = ctypes.c_void_p()
        with model._borrow() as model_handle:
            if saved is None:
                check(lib.luhd_session_create(model_handle, ctypes.byref(params), ctypes.byref(out)))
            else:
                check(lib.luhd_session_load(model_handle, saved, ctypes.byref(params), ctypes.byref(out)))
        self._adopt(out)

    def _tracked(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` marked as a callback of this session while it runs."""

        def run(*args: Any) -> Any:
            me = threading.get_ident()
            with self._handle_lock:
                self._callback_threads.add(me)
            try:
                with session_callback_scope():
                    return function(*args)
            finally:
                with self._handle_lock:
                    self._callback_threads.discard(me)
        return run

    # ------------------------------------------------------------------------------------------
    # Chat

    def chat(self, text: Text, images: Sequence[Image] = (), *, sampling: Optional[Sampling] = None,
             on_text: Optional[Callable[[str], Optional[bool]]] = None) -> str:
        """One turn of chat (``luhd_session_chat``): the user's ``text`` with ``images``, and
        the model's answer, which is returned and joins the conversation.

        ``text`` may hold ``"<image>"`` placeholders, one per image; otherwise each image goes
        before the text. It is passed with its length, so NUL characters are text, and the
        answer is returned whole even when it contains one. Earlier turns stay in the KV cache,
        and an image the session has already encoded is taken from its cache. ``sampling``
        (default: greedy, 128 new tokens) says how the answer is generated. ``on_text(piece)``
        receives the answer as it is generated, in whole characters; returning False stops it
        there (the call still succeeds). If it raises, the answer stops and the exception
        propagates.

        :attr:`last_stats` then says why the answer ended and where the time went (None after
        a failed or cancelled turn).

        Raises:
            InvalidArgumentError: placeholder count differs from the images, bad parameters.
            InvalidUTF8Error: ``text`` or a stop text (given as bytes) is not UTF-8.
            ContextFullError: the prompt does not fit; the session is unchanged.
            UnsupportedModelError: ``images`` given to a text-only model (``Model.has_vision``
                False), or a text-only model with no recognised chat template; the session
                is unchanged.
            CancelledError: :meth:`cancel` or the abort callback stopped it; what was
                generated stays in the conversation, so the session remains usable.
        """
        c_sampling = _CSampling(sampling)
        with self._use():
            return self._chat(_utf8(text), images, c_sampling, on_text)

    def chat_stream(self, text: Text, images: Sequence[Image] = (), *,
                    sampling: Optional[Sampling] = None) -> Iterator[str]:
        """Like :meth:`chat`, but a generator of the answer's pieces (whole characters) as they
        are generated; :attr:`last_stats` is set once it is exhausted.

        The C call runs on a background thread and nothing starts before the first ``next()``.
        Closing the generator early (``break`` out of the loop, or ``close()``) stops the
        answer: the text callback refuses the next piece and a prompt still being evaluated is
        cancelled. What was generated so far stays in the conversation and the session remains
        usable. Errors are raised from the generator.
        """
        return self._stream(_utf8(text), list(images), _CSampling(sampling))

    def _stream(self, data: bytes, images: list[Image], sampling: _CSampling) -> Iterator[str]:
        pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
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
            except BaseException as e:
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
                    self.cancel()
                    worker.join(0.05)
                outcome.pop("error", None)
        error = outcome.get("error")
        if error is not None and not (closed.is_set() and isinstance(error, CancelledError)):
            raise error

    def _chat(self, data: bytes, images: Sequence[Image], sampling: _CSampling,
              on_text: Optional[Callable[[str], Optional[bool]]]) -> str:
        """The ``luhd_session_chat`` call; the caller holds the session."""
        callback = TEXT_CALLBACK()
        if on_text is not None:
            errors = self._errors

            def trampoline(piece: Optional[int], length: int, _user: object) -> bool:
                try:
                    text = ctypes.string_at(piece, length).decode("utf-8", "replace") if piece and length else ""
                    return on_text(text) is not False
                except BaseException as e:
                    errors.record(e)
                    return False
            callback = TEXT_CALLBACK(self._tracked(trampoline))
        stats = _CChatStats()
        stats.struct_size = ctypes.sizeof(_CChatStats)
        answer = ctypes.POINTER(ctypes.c_char)()
        length = ctypes.c_size_t()
        self._errors.clear()
        self.last_stats = None
        with self._borrow() as handle, _borrowed_images(images) as (handles, n_images):
            status = lib.luhd_session_chat(handle, data, len(data), handles, n_images, ctypes.byref(sampling.params),
                                           callback, None, ctypes.byref(answer), ctypes.byref(length),
                                           ctypes.byref(stats))
        try:
            text = ctypes.string_at(answer, length.value).decode("utf-8") if answer else ""
        finally:
            lib.luhd_string_free(answer)
        self._errors.raise_pending()
        check(status)
        self.last_stats = ChatStats.from_c(stats)
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
        ids = [int_in_range(i, f"ids[{k}]", -2**31, INT32_MAX) for k, i in enumerate(ids)]
        array = (ctypes.c_int32 * max(1, len(ids)))(*ids)
        with self._use():
            self._errors.clear()
            with self._borrow() as handle, _borrowed_images(images) as (handles, n_images):
                status = lib.luhd_session_eval(handle, array if ids else None, len(ids), handles, n_images)
            self._errors.raise_pending()
            check(status)

    def logits(self) -> np.ndarray:
        """A float32 copy of the logits after the last evaluated position (by :meth:`eval` or
        :meth:`chat`), shape (vocab,) (``luhd_session_logits``). Raises
        :class:`InvalidArgumentError` when nothing has been evaluated since the session started
        or was reset."""
        pointer = ctypes.POINTER(ctypes.c_float)()
        n = ctypes.c_int32()
        with self._use(), self._borrow() as handle:
            check(lib.luhd_session_logits(handle, ctypes.byref(pointer), ctypes.byref(n)))
            logits: np.ndarray = np.ctypeslib.as_array(pointer, shape=(n.value,)).copy()
            return logits

    def sample(self, sampling: Optional[Sampling] = None) -> int:
        """The next token sampled from the logits, greedy by default (``luhd_session_sample``).
        The evaluated ids are the repetition-penalty history; the seeded random stream
        continues across calls while the parameters stay the same; ``max_new_tokens`` and
        ``stop`` are ignored. The token is not evaluated: pass it to :meth:`eval` to continue."""
        c_sampling = _CSampling(sampling)
        token = ctypes.c_int32()
        with self._use(), self._borrow() as handle:
            check(lib.luhd_session_sample(handle, ctypes.byref(c_sampling.params), ctypes.byref(token)))
        return token.value

    # ------------------------------------------------------------------------------------------
    # State

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Writes the conversation to ``path`` (``luhd_session_save``): the KV rows in use, the
        history, the conversation's encoded images, the last logits and the sampling stream, with
        a header tying the file to the model. The file is replaced atomically (written under a
        temporary name, then renamed). :meth:`load` continues it.

        Raises:
            FileAccessError: the file cannot be written.
        """
        encoded = c_text(os.fsencode(path), "path")
        with self._use(), self._borrow() as handle:
            check(lib.luhd_session_save(handle, encoded))

    def reset(self) -> None:
        """Forgets the conversation and the context; the image-embedding cache is kept."""
        with self._use(), self._borrow() as handle:
            check(lib.luhd_session_reset(handle))
        self.last_stats = None

    def cancel(self) -> None:
        """Stops the chat or eval running on another thread, which raises :class:`CancelledError`
        (``luhd_session_cancel``). No effect when nothing is running or the session is closed.
        Any thread may call it at any time, also while another thread closes the session."""
        with self._handle_lock:  # close() frees under this lock: the handle cannot go mid-call
            if self._handle:
                check(lib.luhd_session_cancel(self._handle))

    @property
    def context(self) -> tuple[int, int]:
        """(positions used, positions the context holds)."""
        used, size = ctypes.c_int32(), ctypes.c_int32()
        with self._use(), self._borrow() as handle:
            check(lib.luhd_session_context(handle, ctypes.byref(used), ctypes.byref(size)))
        return used.value, size.value

    @property
    def model(self) -> Model:
        """The model the session runs on."""
        return self._model

    def _acquire(self) -> None:
        """Takes the session for one call; an overlapping call gets a RuntimeError instead of
        racing."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("the session is in use by another call (one thread at a time per session, "
                               "and a callback may call only cancel() on its own session)")
        if self.closed:
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
        """Frees the session, after stopping a call still running on it from another thread (a
        chat there raises :class:`CancelledError`; a chat_stream being consumed just ends) and
        waiting for it to return. From inside one of the session's own callbacks it raises
        RuntimeError, since it would wait for the call it is part of: call :meth:`cancel` there
        and close the session once the call has returned. From inside a callback of another
        session it does not wait, since the running call may be waiting for the pass of batched
        decoding that the callback is part of: it stops the call, and the session is freed when
        that call returns."""
        lock = getattr(self, "_handle_lock", None)
        if lock is None or self.closed:
            return
        with lock:
            inside_callback = threading.get_ident() in self._callback_threads
        if inside_callback:
            raise RuntimeError("Session.close() called from inside one of the session's callbacks; "
                               "call cancel() there and close the session after the call returns")
        acquired = self._busy.acquire(blocking=False)
        if not acquired and inside_session_callback():
            closed = self._stream_closed
            if closed is not None:
                closed.set()
            self.cancel()
            super().close()  # the handle is freed when the running call stops borrowing it
            return
        while not acquired:
            closed = self._stream_closed
            if closed is not None:
                closed.set()
            self.cancel()
            acquired = self._busy.acquire(timeout=0.05)
        try:
            super().close()
        finally:
            self._busy.release()

    def __repr__(self) -> str:
        if self.closed:
            return "<llavauhd.Session (closed)>"
        return "<llavauhd.Session>"


@contextmanager
def _borrowed_images(images: Sequence[Image]) -> Iterator[tuple[Any, int]]:
    """A C array of image handles (None when empty) and its length, with every image kept open
    until the block ends (another thread's Image.close() then frees it afterwards)."""
    images = list(images)
    if not images:
        yield None, 0
        return
    with ExitStack() as stack:
        handles = [stack.enter_context(img._borrow()).value for img in images]
        yield (ctypes.c_void_p * len(handles))(*handles), len(handles)
