"""MT-Bench's shared vocabulary: how a question id names its scenario (``mtbench-81``, what
``kurabe import --format mt-bench`` writes) and back, and the categories that MT-Bench's judge
grades against a reference answer (FastChat's ``NEED_REF_CATS``). The importer, the judge, the
answer export and the MT-Bench table all read them here."""

from __future__ import annotations

MT_BENCH_TAG = "mt-bench"
"""The tag every imported MT-Bench question carries (``kurabe replay --tag mt-bench``)."""
SCENARIO_PREFIX = "mtbench"
"""An imported question's scenario id is ``mtbench-<question_id>``."""
REFERENCE_CATEGORIES: tuple[str, ...] = ("math", "reasoning", "coding")
"""The categories MT-Bench judges with a reference answer in the prompt (``single-math-v1``,
``pair-math-v1``)."""


def scenario_id_for(question_id: str | int) -> str:
    """The scenario id of an MT-Bench question: ``mtbench-81``."""
    return f"{SCENARIO_PREFIX}-{question_id}"


def question_id_for(scenario_id: str | None) -> int | str | None:
    """The MT-Bench question id of a scenario (an int where it is a number, as FastChat writes
    it), or None for a scenario that is not an imported MT-Bench question."""
    prefix = f"{SCENARIO_PREFIX}-"
    if not scenario_id or not scenario_id.startswith(prefix) or len(scenario_id) == len(prefix):
        return None
    question = scenario_id[len(prefix) :]
    return int(question) if question.isdigit() else question


def uses_reference(tags: tuple[str, ...] | list[str]) -> bool:
    """Whether a scenario with ``tags`` is an MT-Bench question judged against its reference."""
    lowered = {tag.lower() for tag in tags}
    return MT_BENCH_TAG in lowered and any(cat in lowered for cat in REFERENCE_CATEGORIES)
