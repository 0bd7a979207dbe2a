"""What a run shows while it works: done / total with an ETA, each endpoint's requests in flight
and current limit, retries and failures so far.

:class:`RunTally` counts (the runner updates it); :class:`RichRunProgress` is a live display for
a terminal, :class:`PlainRunProgress` prints a line per finished session and one every few
seconds otherwise (``--plain``, pipes, logs).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from kurabe.runs.endpoints import AdaptiveLimit


@dataclass
class RunTally:
    """A run's counts so far (this process's part of it, plus what was already done)."""

    run_id: int
    sessions_total: int
    replies_total: int
    limits: dict[str, AdaptiveLimit] = field(default_factory=dict)
    sessions_done: int = 0
    replies_ok: int = 0
    replies_failed: int = 0
    replies_blocked: int = 0
    replies_skipped: int = 0
    """Already complete when the run was resumed."""
    requests: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def replies_done(self) -> int:
        return self.replies_ok + self.replies_failed + self.replies_blocked + self.replies_skipped

    def eta_s(self) -> float | None:
        """Seconds left at this process's pace so far (None before the first reply)."""
        done_here = self.replies_ok + self.replies_failed + self.replies_blocked
        if done_here == 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / done_here * max(0, self.replies_total - self.replies_done)

    def endpoints_line(self) -> str:
        return " · ".join(
            f"{limit.endpoint.label} {limit.in_flight}/{limit.limit}"
            for limit in self.limits.values()
        )

    def line(self) -> str:
        eta = self.eta_s()
        parts = [
            f"{self.replies_done}/{self.replies_total} replies",
            f"{self.sessions_done}/{self.sessions_total} sessions",
            f"ETA {_duration(eta)}" if eta is not None else "ETA -",
            f"{self.retries} retries",
            f"{self.replies_failed} failed",
        ]
        if self.replies_blocked:
            parts.append(f"{self.replies_blocked} not sent")
        endpoints = self.endpoints_line()
        return " · ".join(parts) + (f" | in flight/limit: {endpoints}" if endpoints else "")


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class RunProgress(Protocol):
    """Receives what a run does; implementations only display."""

    interval_s: float
    """How often :meth:`tick` is called."""

    def begin(self, tally: RunTally) -> None: ...

    def session_done(
        self, tally: RunTally, session_id: int, scenario_id: str, note: str
    ) -> None: ...

    def tick(self, tally: RunTally) -> None: ...

    def end(self, tally: RunTally) -> None: ...


class NullRunProgress:
    interval_s = 1.0

    def begin(self, tally: RunTally) -> None:
        pass

    def session_done(self, tally: RunTally, session_id: int, scenario_id: str, note: str) -> None:
        pass

    def tick(self, tally: RunTally) -> None:
        pass

    def end(self, tally: RunTally) -> None:
        pass


class PlainRunProgress:
    """A line per finished session and the figures every few seconds."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = 5.0) -> None:
        self.stream = stream or sys.stdout
        self.interval_s = interval_s

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def begin(self, tally: RunTally) -> None:
        self._print(
            f"run {tally.run_id}: {tally.sessions_total} sessions, {tally.replies_total} replies"
        )

    def session_done(self, tally: RunTally, session_id: int, scenario_id: str, note: str) -> None:
        self._print(
            f"[{tally.sessions_done}/{tally.sessions_total}] session {session_id} "
            f"{scenario_id}: {note}"
        )

    def tick(self, tally: RunTally) -> None:
        self._print(tally.line())

    def end(self, tally: RunTally) -> None:
        self._print(
            f"run {tally.run_id} done in {_duration(time.monotonic() - tally.started)}: "
            + tally.line()
        )


class RichRunProgress:
    """A live bar of replies with the figures beside it, for a terminal."""

    interval_s = 0.25

    def __init__(self, console: Any | None = None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.progress: Any = None
        self.task: Any = None

    def begin(self, tally: RunTally) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console.print(
            f"[bold]run {tally.run_id}[/bold]: {tally.sessions_total} sessions, "
            f"{tally.replies_total} replies"
        )
        self.progress = Progress(
            TextColumn("replies"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            refresh_per_second=4,
        )
        self.task = self.progress.add_task("run", total=tally.replies_total, status="")
        self.progress.start()
        self.tick(tally)

    def session_done(self, tally: RunTally, session_id: int, scenario_id: str, note: str) -> None:
        if self.progress is not None and note != "complete":
            self.progress.console.print(f"session {session_id} {scenario_id}: {note}")
        self.tick(tally)

    def tick(self, tally: RunTally) -> None:
        if self.progress is None:
            return
        eta = tally.eta_s()
        status = " · ".join(
            [
                f"{tally.sessions_done}/{tally.sessions_total} sessions",
                f"ETA {_duration(eta)}" if eta is not None else "ETA -",
                f"{tally.retries} retries",
                f"{tally.replies_failed} failed",
                tally.endpoints_line(),
            ]
        )
        self.progress.update(self.task, completed=tally.replies_done, status=status)

    def end(self, tally: RunTally) -> None:
        if self.progress is not None:
            self.tick(tally)
            self.progress.stop()
            self.progress = None
        self.console.print(tally.line())
