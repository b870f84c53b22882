"""llavauhd.ray on a local Ray instance: the answers file of a question file equals the one the
single-process runner (`llavauhd eval`) writes, answer ids aside, and a run resumed after a
failure (answers already written, an incomplete last line) writes only the missing answers."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import ray
from conftest import REPO, UPSTREAM

import llavauhd.ray as lray

CLI = Path(os.environ.get("LLAVAUHD_CLI", REPO / "build" / "bin" / "llavauhd"))
CASE = "small-noslice"
QUESTIONS = [
    {"question_id": 1, "image": "input.png", "text": "What animal is this?"},
    {"question_id": "two", "image": "input.png", "text": "Describe the picture.\nAnswer briefly."},
    {"question_id": 3, "text": "Hello, caf\u00e9?", "category": "text-only"},
    {"question_id": 4, "image": "input.png", "text": "What colour is it?"},
]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def files(assets, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-eval")
    questions = folder / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    reference = folder / "reference.jsonl"
    subprocess.run([str(CLI), "eval", "--model", str(assets / "models" / CASE), "--questions", str(questions),
                    "--images", str(UPSTREAM / CASE), "--answers", str(reference), "--preresize", "0",
                    "--max-new-tokens", "6", "--threads", "1", "--quiet"], check=True)
    return folder, questions, reference


def without_ids(path: Path) -> list:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for line in lines:
        assert len(line.pop("answer_id")) == 22
    return lines


SETTINGS = lray.EvalSettings(preresize_long_side=0, max_new_tokens=6)


def test_answers_equal_the_single_process_runner(local_ray, files, assets):
    folder, questions, reference = files
    answers = folder / "ray.jsonl"
    written = lray.run_eval(questions, answers, model=str(assets / "models" / CASE), images=str(UPSTREAM / CASE),
                            actors=2, threads_per_actor=1, batch_size=1, settings=SETTINGS)
    assert written == len(QUESTIONS)
    assert without_ids(answers) == without_ids(reference)
    # Byte-for-byte the same line format (key order, separators, ASCII escapes).
    ref_lines = reference.read_text().splitlines()
    for mine, ref in zip(answers.read_text().splitlines(), ref_lines):
        assert mine.split('"answer_id"')[0] == ref.split('"answer_id"')[0]


def test_resumes_after_a_failure(local_ray, files, assets):
    folder, questions, reference = files
    answers = folder / "resumed.jsonl"
    first = reference.read_text().splitlines()[0]
    answers.write_text(first + "\n" + '{"question_id": "two", "pro')  # killed while writing
    written = lray.run_eval(questions, answers, model=str(assets / "models" / CASE), images=str(UPSTREAM / CASE),
                            actors=1, threads_per_actor=1, settings=SETTINGS)
    assert written == len(QUESTIONS) - 1
    assert without_ids(answers) == without_ids(reference)
    assert lray.run_eval(questions, answers, model=str(assets / "models" / CASE), images=str(UPSTREAM / CASE),
                         settings=SETTINGS) == 0


def test_missing_image_fails_before_any_work(local_ray, files, assets, tmp_path):
    _, questions, _ = files
    with pytest.raises(FileNotFoundError):
        lray.run_eval(questions, tmp_path / "a.jsonl", model=str(assets / "models" / CASE), images=str(tmp_path),
                      settings=SETTINGS)
    assert not (tmp_path / "a.jsonl").exists() or (tmp_path / "a.jsonl").read_text() == ""
