"""Headless replay: a scenario run across several models without the TUI.

:func:`run_replay` creates one session per repeat, sends the scenario's lines one after another
and records everything as it happens (the session does the recording). :func:`resume_replay`
reopens an interrupted replay, runs again every reply that did not complete — starting from the
first turn that has no completed reply — and then sends the scenario's remaining lines.

Progress goes to a :class:`ReplayProgress`: :class:`RichProgress` (a live display, for a
terminal) or :class:`PlainProgress` (one line per event, e.g.
``turn 3/6 [gemma-270m] 42 chars 18.3 tok/s 35.0 chars/s``).

When the task is cancelled (Ctrl-C), the running replies are saved as cancelled with their
partial text, the session is marked ``interrupted`` and the cancellation propagates; everything
completed before was already committed.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TextIO

from backends import create_backend
from backends.base import Backend, one_line
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.core.blind import shown_name
from kurabe.session.comparison import ComparisonSession
from kurabe.session.events import (
    PaneDelta,
    PaneFailed,
    PaneFinished,
    PaneLoading,
    PaneReady,
    PaneStarted,
    SessionEvent,
    TurnStarted,
)
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario

DEFAULT_STALL_TIMEOUT_S = 300.0
"""A headless pane with no output for this long is failed as timed out (nobody can cancel it)."""


class ReplayProgress(Protocol):
    """Receives what a replay does; implementations only display."""

    def begin(self, session: ComparisonSession, run: int, runs: int) -> None: ...

    def event(self, event: SessionEvent) -> None: ...

    def end(self, session: ComparisonSession) -> None: ...


class NullProgress:
    def begin(self, session: ComparisonSession, run: int, runs: int) -> None:
        pass

    def event(self, event: SessionEvent) -> None:
        pass

    def end(self, session: ComparisonSession) -> None:
        pass


def _rate(value: float | None, unit: str) -> str:
    return f"{value:.1f} {unit}" if value is not None else f"- {unit}"


class PlainProgress:
    """One plain line per event worth a line (pipes, logs, CI)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.session: ComparisonSession | None = None
        self.turns = 0
        self.reply_turn: dict[int, int] = {}
        self.prefix = ""

    def _print(self, line: str) -> None:
        print(self.prefix + line, file=self.stream, flush=True)

    def _name(self, pane: int) -> str:
        assert self.session is not None
        shown = self.session.panes[pane]
        return shown_name(shown.label, shown.profile.name, hidden=self.session.hidden)

    def begin(self, session: ComparisonSession, run: int, runs: int) -> None:
        self.session = session
        self.turns = len(session.scenario.turns) if session.scenario else len(session.user_turns)
        self.prefix = f"[run {run}/{runs}] " if runs > 1 else ""
        names = ", ".join(
            shown_name(p.label, p.profile.name, hidden=session.hidden) for p in session.panes
        )
        title = session.scenario.id if session.scenario else "-"
        self._print(f"session {session.id}: {title} × {names}")

    def event(self, event: SessionEvent) -> None:
        if isinstance(event, PaneStarted):
            self.reply_turn[event.reply_id] = event.turn
        elif isinstance(event, TurnStarted):
            self._print(f"turn {event.turn + 1}/{self.turns} > {one_line(event.text, 40)}")
        elif isinstance(event, PaneReady):
            self._print(f"[{self._name(event.pane)}] ready: {event.header}")
        elif isinstance(event, PaneFinished):
            turn = self.reply_turn.get(event.reply_id, 0) + 1
            figures = event.figures
            report = event.check_report
            flags = list(report.flag_codes) if report is not None else []
            self._print(
                f"turn {turn}/{self.turns} [{self._name(event.pane)}] {figures.chars} chars "
                f"{_rate(figures.tokens_per_s, 'tok/s')} {_rate(figures.chars_per_s, 'chars/s')}"
                + (f" flags: {' '.join(flags)}" if flags else "")
                + "".join(f" ({note})" for note in figures.engine_notes())
            )
        elif isinstance(event, PaneFailed):
            name = self._name(event.pane)
            if event.reply_id is None:
                self._print(f"[{name}] unusable: {event.reason}")
                return
            turn = self.reply_turn.get(event.reply_id, 0) + 1
            what = "cancelled" if event.cancelled else f"failed: {event.reason}"
            self._print(f"turn {turn}/{self.turns} [{name}] {what}")

    def end(self, session: ComparisonSession) -> None:
        pass


class RichProgress:
    """A live display for a terminal: one progress row per pane, updated as text streams."""

    def __init__(self, console: Any | None = None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.progress: Any = None
        self.tasks: dict[int, Any] = {}
        self.session: ComparisonSession | None = None
        self.turns = 0
        self.chars: dict[int, int] = {}
        self.turn_of: dict[int, int] = {}
        self.last_update = 0.0

    def begin(self, session: ComparisonSession, run: int, runs: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.session = session
        self.turns = len(session.scenario.turns) if session.scenario else 0
        run_text = f" (run {run}/{runs})" if runs > 1 else ""
        title = session.scenario.title if session.scenario else ""
        self.console.print(f"[bold]session {session.id}[/bold]{run_text} {title}")
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            refresh_per_second=8,
        )
        for pane in session.panes:
            name = shown_name(pane.label, pane.profile.name, hidden=session.hidden)
            self.tasks[pane.index] = self.progress.add_task(
                f"[{pane.label}] {name}", total=self.turns or None, status="loading…"
            )
        self.progress.start()

    def _status(self, pane: int, text: str, advance: int = 0) -> None:
        if self.progress is not None:
            self.progress.update(self.tasks[pane], status=text, advance=advance)

    def event(self, event: SessionEvent) -> None:
        if isinstance(event, PaneLoading):
            self._status(event.pane, one_line(event.message, 50))
        elif isinstance(event, PaneReady):
            self._status(event.pane, one_line(event.header, 50))
        elif isinstance(event, TurnStarted):
            if self.progress is not None:
                self.progress.console.print(f"turn {event.turn + 1}/{self.turns} > {event.text}")
        elif isinstance(event, PaneStarted):
            self.chars[event.pane] = 0
            self.turn_of[event.pane] = event.turn
            self._status(event.pane, f"turn {event.turn + 1}: streaming…")
        elif isinstance(event, PaneDelta):
            self.chars[event.pane] = self.chars.get(event.pane, 0) + len(event.text)
            now = time.monotonic()
            if now - self.last_update > 0.1:
                self.last_update = now
                turn = self.turn_of.get(event.pane, 0) + 1
                self._status(event.pane, f"turn {turn}: {self.chars[event.pane]} chars")
        elif isinstance(event, PaneFinished):
            f = event.figures
            self._status(
                event.pane,
                " · ".join(
                    [
                        f"{f.chars} chars",
                        _rate(f.tokens_per_s, "tok/s"),
                        _rate(f.chars_per_s, "chars/s"),
                        *f.engine_notes(),
                    ]
                ),
                advance=1,
            )
        elif isinstance(event, PaneFailed):
            if event.reply_id is None:
                self._status(event.pane, f"[red]unusable: {one_line(event.reason, 60)}[/red]")
            else:
                word = "cancelled" if event.cancelled else f"failed: {one_line(event.reason, 50)}"
                self._status(event.pane, f"[red]{word}[/red]", advance=1)

    def end(self, session: ComparisonSession) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.tasks.clear()


def seeded(profiles: Sequence[ModelProfile], seed: int | None) -> list[ModelProfile]:
    """The profiles with their sampling seed replaced by ``seed`` (unchanged when None)."""
    if seed is None:
        return list(profiles)
    return [
        dataclasses.replace(p, sampling=dataclasses.replace(p.sampling, seed=seed))
        for p in profiles
    ]


async def _play(session: ComparisonSession, progress: ReplayProgress) -> None:
    """Fill what is missing, then send the scenario's remaining lines; mark the outcome."""
    try:
        unusable = await session.play_scenario()
        if unusable is not None:
            raise KurabeError(f"no pane can run ({unusable})")
    finally:
        progress.end(session)
        await session.aclose()


async def run_replay(
    store: Store,
    scenario: Scenario,
    persona: Persona,
    profiles: Sequence[ModelProfile],
    *,
    repeat: int = 1,
    seed: int | None = None,
    rater: str = "",
    parallel_local: bool = False,
    backend_factory: Callable[[ModelProfile], Backend] = create_backend,
    progress: ReplayProgress | None = None,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    on_session: Callable[[int], None] | None = None,
) -> list[int]:
    """Replay ``scenario`` across ``profiles`` ``repeat`` times; returns the session ids.

    With ``seed``, run *i* (0-based) samples with seed ``seed + i`` in every pane, so a repeat
    is reproducible and the repeats still differ. ``on_session`` hears each id as soon as its
    session exists (so an interrupted caller can still name it).
    """
    if repeat < 1:
        raise KurabeError("--repeat must be at least 1")
    progress = progress or NullProgress()
    ids: list[int] = []
    for run in range(repeat):
        run_seed = None if seed is None else seed + run
        session = ComparisonSession.create(
            store,
            persona,
            seeded(profiles, run_seed),
            scenario=scenario,
            rater=rater,
            parallel_local=parallel_local,
            backend_factory=backend_factory,
            kind="replay",
            seed=run_seed,
            stall_timeout_s=stall_timeout_s,
        )
        ids.append(session.id)
        if on_session is not None:
            on_session(session.id)
        session.subscribe(progress.event)
        progress.begin(session, run + 1, repeat)
        await _play(session, progress)
    return ids


async def resume_replay(
    store: Store,
    session_id: int,
    *,
    profiles: Mapping[str, ModelProfile],
    rater: str | None = None,
    parallel_local: bool = False,
    backend_factory: Callable[[ModelProfile], Backend] = create_backend,
    progress: ReplayProgress | None = None,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
) -> int:
    """Continue an interrupted replay from the first turn without a completed reply."""
    info = store.sessions.get(session_id)
    if info.scenario is None:
        raise KurabeError(f"session {session_id} has no scenario to replay")
    chosen: dict[str, ModelProfile] = {}
    for pane in store.sessions.panes(session_id):
        if pane.profile_name in profiles:
            chosen[pane.profile_name] = seeded([profiles[pane.profile_name]], info.seed)[0]
    session = ComparisonSession.resume(
        store,
        session_id,
        profiles=chosen,
        rater=rater,
        parallel_local=parallel_local,
        backend_factory=backend_factory,
        stall_timeout_s=stall_timeout_s,
    )
    progress = progress or NullProgress()
    session.subscribe(progress.event)
    progress.begin(session, 1, 1)
    session.reopen()
    await _play(session, progress)
    return session_id
