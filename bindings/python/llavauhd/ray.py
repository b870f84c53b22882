"""Upstream question files answered on a Ray cluster: ``llavauhd eval`` scaled out with Ray Data.

Install with the ``ray`` extra (``pip install "llavauhd[ray]"``). The questions (JSON lines with
``question_id``, ``text`` and an optional ``image`` relative to ``images``; the format of
``llavauhd eval`` and upstream's ``model_vqa_loader.py``) become a Ray Dataset; a pool of actors,
each holding one :class:`llavauhd.Model` with ``threads_per_actor`` compute threads, answers them
in fresh conversations with upstream's eval settings (greedy, 128 new tokens, pre-resize 1024, at
most 9 slices, unless told otherwise); the driver appends every answer to the answers file as
soon as it arrives, one whole line per answer, in the question file's order, in exactly the form
``llavauhd eval`` writes::

    {"question_id": ..., "prompt": "...", "text": "...", "answer_id": "...", "model_id": "...", "metadata": {}}

Resumable like ``llavauhd eval``: questions whose id is already in the answers file are skipped
and an incomplete last line (a run killed mid-write) is removed first, so after any failure the
same call continues. Every node must see the model directory and the images at the same paths
(a shared file system, or the same copy on each node).

    import ray, llavauhd.ray
    ray.init(address="auto")
    llavauhd.ray.run_eval("questions.jsonl", "answers.jsonl", model="/models/LLaVA-UHD-v2",
                          images="/data/images", actors=8, threads_per_actor=4)
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import ray

from .image import Image
from .model import Model
from .session import Session
from .types import Sampling

log = logging.getLogger(__name__)

#: Upstream's answer_id alphabet (``shortuuid``: 57 letters without look-alikes), 22 characters.
_SHORTUUID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class Question:
    """One line of a question file."""
    question_id: Any
    text: str
    image: Optional[str]
    #: ``question_id`` as JSON text: the identity used to skip answered questions.
    key: str


@dataclass(frozen=True)
class EvalSettings:
    """How every question is answered (``llavauhd eval``'s options and defaults)."""
    preresize_long_side: int = 1024
    max_slices: int = 9
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    #: Extra ``Model.session`` keyword arguments (n_ctx, system_prompt...).
    session: dict = field(default_factory=dict)


def load_questions(path: str | os.PathLike[str]) -> list[Question]:
    """The questions of a JSON-lines file; a malformed line raises ValueError naming it."""
    questions = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            if not line.strip(b" \t"):
                continue
            try:
                value = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path} line {number}: {e}") from None
            if not isinstance(value, dict) or value.get("question_id") is None:
                raise ValueError(f"{path} line {number}: not a JSON object with a question_id")
            qid = value["question_id"]
            if isinstance(qid, (list, dict)):
                raise ValueError(f"{path} line {number}: question_id must be a number or a string")
            if not isinstance(value.get("text"), str):
                raise ValueError(f"{path} line {number}: no string \"text\" (the question)")
            image = value.get("image")
            if image is not None and not isinstance(image, str):
                raise ValueError(f"{path} line {number}: \"image\" must be a string (a file name)")
            questions.append(Question(qid, value["text"], image, json.dumps(qid)))
    return questions


def answered_ids(path: str | os.PathLike[str]) -> set[str]:
    """The ``question_id`` keys already in an answers file, after removing an incomplete last
    line (as ``llavauhd eval`` does when it resumes). A missing file holds none."""
    p = Path(path)
    if not p.exists():
        return set()
    data = p.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        log.warning("removing an incomplete last line from %s", path)
        with open(p, "r+b") as f:
            f.truncate(complete)
    keys = set()
    for number, line in enumerate(data[:complete].split(b"\n"), 1):
        if line.strip():
            try:
                keys.add(json.dumps(json.loads(line)["question_id"]))
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path} line {number} is not an answer line") from None
    return keys


def answer_line(question_id: Any, prompt: str, text: str, model_id: str) -> str:
    """One answers-file line, as upstream's script and ``llavauhd eval`` write it."""
    answer_id = "".join(secrets.choice(_SHORTUUID_ALPHABET) for _ in range(22))
    return json.dumps({"question_id": question_id, "prompt": prompt, "text": text.strip(),
                       "answer_id": answer_id, "model_id": model_id, "metadata": {}})


def upstream_model_name(model: str) -> str:
    """Upstream's ``get_model_name_from_path``: the folder's name, or ``parent_checkpoint-N``."""
    parts = [p for p in str(model).split("/") if p]
    if not parts:
        return str(model)
    if parts[-1].startswith("checkpoint-") and len(parts) >= 2:
        return parts[-2] + "_" + parts[-1]
    return parts[-1]


class _Answerer:
    """A Ray Data actor: one model, one session, each question in a fresh conversation (the
    session keeps its image cache, and the model shares encoded images between sessions)."""

    def __init__(self, model: str, threads: int, settings: dict) -> None:
        self.settings = EvalSettings(**settings)
        self.model = Model(model, n_threads=threads)
        s = self.settings
        self.session = Session(self.model, preresize_long_side=s.preresize_long_side, max_slices=s.max_slices,
                               **s.session)

    def __call__(self, batch: dict) -> dict:
        s = self.settings
        answers = []
        for text, image in zip(batch["text"], batch["image_path"]):
            self.session.reset()
            images = [Image.open(image)] if image else []
            answers.append(self.session.chat(text, images=images, sampling=Sampling(
                max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, seed=s.seed)))
        return {"key": list(batch["key"]), "answer": answers}


def _image_path(question: Question, images: str) -> str:
    if not question.image:
        return ""
    if question.image.startswith("/") or not images:
        return question.image
    return os.path.join(images, question.image)


def run_eval(questions: str | os.PathLike[str], answers: str | os.PathLike[str], *, model: str,
             images: str = "", actors: int = 1, threads_per_actor: int = 1, batch_size: int = 4,
             model_id: Optional[str] = None, settings: Optional[EvalSettings] = None) -> int:
    """Answers the questions not yet in ``answers`` on the connected Ray cluster (``ray.init``
    first; a local instance is started when none is), appending to ``answers``. Returns how
    many answers were written. A missing image raises FileNotFoundError before any work.
    ``settings`` defaults to upstream's eval settings (``EvalSettings()``)."""
    settings = settings if settings is not None else EvalSettings()
    todo, seen = [], answered_ids(answers)
    for q in load_questions(questions):
        if q.key not in seen:
            seen.add(q.key)
            todo.append(q)
    log.info("%d questions to answer, %d already in %s", len(todo), len(seen) - len(todo), answers)
    for q in todo:
        path = _image_path(q, images)
        if path and not os.path.isfile(path):
            raise FileNotFoundError(f"question_id {q.key}: no image file {path!r}")
    if not todo:
        return 0
    by_key = {q.key: q for q in todo}
    name = model_id or upstream_model_name(model)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    dataset = ray.data.from_items([{"key": q.key, "text": q.text, "image_path": _image_path(q, images)} for q in todo],
                                  override_num_blocks=max(1, min(len(todo), actors * 4)))
    answered = dataset.map_batches(
        _Answerer, batch_size=batch_size, concurrency=actors, num_cpus=threads_per_actor,
        fn_constructor_kwargs={"model": str(model), "threads": threads_per_actor, "settings": asdict(settings)})
    written = 0
    with open(answers, "a", encoding="utf-8") as out:
        for row in answered.iter_rows():
            q = by_key[row["key"]]
            out.write(answer_line(q.question_id, q.text, row["answer"], name) + "\n")
            out.flush()
            written += 1
            log.info("[%d/%d] question_id %s", written, len(todo), q.key)
    return written

