"""A reply's score: an integer on a scale (or none yet). The one rule every writer and reader of
a score checks — a person's rating, a judge's answer, the agreement statistics' labels, an
imported MT-Bench judgment; the database's ``CHECK`` constraints (:mod:`kurabe.store.schema`) say
it once more in SQL.

kurabe's own scale is 1–5 (:data:`SCORES`). Imported MT-Bench judgments keep FastChat's 1–10
(:data:`MT_BENCH_SCALE`): a score is never moved from one scale to another, and every figure made
from scores names the scale it shows (:func:`scale_label`)."""

from __future__ import annotations

from foundation.errors import KurabeError

SCORES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Every score there is on kurabe's own scale, lowest first."""
KURABE_SCALE = "1-5"
"""kurabe's own scale: people's ratings and its LLM judge."""
MT_BENCH_SCALE = "1-10"
"""MT-Bench's single-answer grading (FastChat's ``[[rating]]``), kept as it was given."""
SCALES: dict[str, tuple[int, ...]] = {
    KURABE_SCALE: SCORES,
    MT_BENCH_SCALE: tuple(range(1, 11)),
}
"""Every scale by name, with its scores lowest first."""


def is_score(value: object, scale: str = KURABE_SCALE) -> bool:
    """Whether ``value`` is a score on ``scale``: one of its scores, as an integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value in SCALES[scale]


def check_score(value: int | None, scale: str = KURABE_SCALE) -> None:
    """Refuse (:class:`~foundation.errors.KurabeError`) a score that is neither None nor one of
    ``scale``'s scores (an unknown scale too)."""
    if scale not in SCALES:
        raise KurabeError(f"unknown score scale {scale!r}; known: {', '.join(SCALES)}")
    if value is not None and not is_score(value, scale):
        scores = SCALES[scale]
        raise KurabeError(f"score must be {scores[0]} to {scores[-1]}, got {value!r}")


def scale_label(scale: str) -> str:
    """How a table names the scale it shows: ``scale 1–10``."""
    scores = SCALES[scale]
    return f"scale {scores[0]}–{scores[-1]}"
