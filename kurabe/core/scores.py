"""A reply's score: an integer from 1 to 5 (or none yet). The one rule every writer and reader of
a score checks — a person's rating, a judge's answer, the agreement statistics' labels; the
database's ``CHECK`` constraints (:mod:`kurabe.store.schema`) say it once more in SQL."""

from __future__ import annotations

from foundation.errors import KurabeError

SCORES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Every score there is, lowest first."""


def is_score(value: object) -> bool:
    """Whether ``value`` is a score: one of :data:`SCORES`, as an integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value in SCORES


def check_score(value: int | None) -> None:
    """Refuse (:class:`~foundation.errors.KurabeError`) a score that is neither None nor one of
    :data:`SCORES`."""
    if value is not None and not is_score(value):
        raise KurabeError(f"score must be {SCORES[0]} to {SCORES[-1]}, got {value!r}")
