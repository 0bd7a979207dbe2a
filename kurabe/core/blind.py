"""The blind rule, the tool's integrity claim: while a blind session is not revealed, a pane
shows its label (A, B, …) and never its model. Every place that names a pane (the TUI, the
exports, the battles, the charts, the judge's progress, the session list) asks here."""

from __future__ import annotations


def names_hidden(*, blind: bool, revealed: bool) -> bool:
    """True while the session is blind and not revealed: model names must not be shown."""
    return blind and not revealed


def shown_name(label: str, model: str, *, hidden: bool) -> str:
    """The name a pane shows: its ``label`` while names are :func:`names_hidden`, else ``model``."""
    return label if hidden else model


def study_names_hidden(
    *, blind: bool, closed: bool, reveal_when_finished: bool, rater_finished: bool
) -> bool:
    """The same rule for one rater of a rating study: a blind study hides the model names until
    it is closed, or (when the study says so) until this rater has finished their queue."""
    return names_hidden(blind=blind, revealed=closed or (reveal_when_finished and rater_finished))
