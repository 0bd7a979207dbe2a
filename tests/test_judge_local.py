"""A local judge: the llama.cpp backend on the embedded Gemma 3 270M judging a short session.

Left to the prompt alone, this model answered outside the format every time; held to the answer
schema by a grammar sampler, every answer must parse at the first attempt, in both modes (what
the answers say is another matter: a 270M judge is a poor one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.llama_cpp_backend import unload_all_models
from backends.profiles import BUILTIN_PROFILES
from kurabe.judge.answers import JudgeMode
from kurabe.judge.rubric import load_rubric
from kurabe.judge.runner import Judge, judge_session
from kurabe.store.store import Store
from tests.judge_support import make_session

pytestmark = pytest.mark.slow
GEMMA = next(p for p in BUILTIN_PROFILES if p.name == "gemma-270m")


@pytest.fixture(autouse=True)
def fresh_models() -> Iterator[None]:
    yield
    unload_all_models()


@pytest.mark.parametrize("mode", ["single", "pairwise"])
async def test_a_local_gemma_judge_answers_every_question_in_format(
    mode: JudgeMode, tmp_path: Path
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    session_id = await make_session(store, turns=1)
    judge = Judge(GEMMA, rubric=load_rubric(), mode=mode, max_attempts=1, retry_delay_s=0.0)
    try:
        summary = await judge_session(store, session_id, judge)
    finally:
        await judge.aclose()
    assert summary.planned == (2 if mode == "single" else 1)
    assert summary.ok == summary.planned, [r.attempts for r in summary.results]
    (run,) = store.load_record(session_id).judge_runs
    request = run.settings["backend"]["request"]
    assert request["sent"]["grammar"] == "json_schema"
    assert request["json_schema"]["name"] == f"kurabe_judge_{mode}"
