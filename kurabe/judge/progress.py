"""How a judge run shows its progress, like ``kurabe replay``: a live rich display on a terminal,
one plain line per judgement otherwise (pipes, logs, CI)::

    judge session 12: judge:local-server, single, rubric persona_ja caa0b61ef273 — 8 to judge
    judge 1/8 turn 1 [gemma-270m] 4: 短くカジュアルで、キャラクターを保っている。
    judge 2/8 turn 1 [gemma-270m-llama2] unparseable after 3 attempts: the answer is not …

Panes are named as the session shows them (their letter while a blind session is not revealed).
A judge's reason is model output: it is printed as text, never read as rich markup.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from backends.base import one_line
from kurabe.core.blind import shown_name
from kurabe.judge.runner import ItemResult, Judge, JudgeSummary
from kurabe.store.records import SessionRecord


def pane_name(record: SessionRecord, position: int) -> str:
    for pane in record.panes:
        if pane.position == position:
            return shown_name(pane.label, pane.profile_name, hidden=record.session.hidden)
    return str(position)


def describe(record: SessionRecord, result: ItemResult) -> str:
    """``turn 2 [A] 4: reason`` or ``turn 2 [A] vs [B]: A wins (reason)``, one line."""
    item = result.item
    names = [f"[{pane_name(record, r.pane)}]" for r in item.replies]
    head = f"turn {item.turn.idx + 1} {' vs '.join(names)}"
    if result.status != "ok":
        return f"{head} {result.failure}"
    if len(item.replies) == 1:
        return one_line(f"{head} {result.score}: {result.reason}", 160)
    winner = result.winner_pane
    outcome = "tie" if winner is None else f"{pane_name(record, winner)} wins"
    return one_line(f"{head}: {outcome} — {result.reason}", 160)


def _title(record: SessionRecord, judge: Judge, todo: int, skipped: int) -> str:
    rubric = judge.rubric
    before = f", {skipped} done before" if skipped else ""
    return (
        f"judge session {record.session.id}: {judge.rater}, {judge.mode}, rubric {rubric.name} "
        f"{rubric.short_hash} — {todo} to judge{before}"
    )


def _totals(summary: JudgeSummary) -> str:
    return (
        f"session {summary.session_id}: {summary.ok} judged, {summary.unparseable} unparseable, "
        f"{summary.errors} errors, {summary.skipped} already judged"
    )


class PlainJudgeProgress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def begin(self, record: SessionRecord, judge: Judge, todo: int, skipped: int) -> None:
        self._print(_title(record, judge, todo, skipped))

    def result(self, record: SessionRecord, result: ItemResult, done: int, todo: int) -> None:
        self._print(f"judge {done}/{todo} {describe(record, result)}")

    def end(self, summary: JudgeSummary) -> None:
        self._print(_totals(summary))


class RichJudgeProgress:
    """A progress bar with the last judgement under it."""

    def __init__(self, console: Any | None = None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.progress: Any = None
        self.task: Any = None

    def begin(self, record: SessionRecord, judge: Judge, todo: int, skipped: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.text import Text

        self.console.print(Text(_title(record, judge, todo, skipped), style="bold"))
        if not todo:
            return
        self.progress = Progress(
            TextColumn("judging"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}", markup=False),
            console=self.console,
            refresh_per_second=8,
        )
        self.task = self.progress.add_task("judge", total=todo, last="")
        self.progress.start()

    def result(self, record: SessionRecord, result: ItemResult, done: int, todo: int) -> None:
        from rich.text import Text

        line = describe(record, result)
        if self.progress is None:
            return
        style = "" if result.status == "ok" else "red"
        self.progress.console.print(Text(line, style=style))
        self.progress.update(self.task, advance=1, last=one_line(line, 50))

    def end(self, summary: JudgeSummary) -> None:
        from rich.text import Text

        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.console.print(Text(_totals(summary)))


def make_progress(plain: bool) -> PlainJudgeProgress | RichJudgeProgress:
    if not plain and sys.stdout.isatty():
        return RichJudgeProgress()
    return PlainJudgeProgress(sys.stdout)
