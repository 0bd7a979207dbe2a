"""The comparison session: one persona, 1–6 panes, the same user turn fanned out to every pane.

Each pane is a model profile with its own backend, its own settings and its own conversation
history. :meth:`ComparisonSession.send` records the user's turn, starts one stream per usable pane
and returns when every pane has finished, failed or been cancelled. Whoever displays the session
(the TUI, the headless replay) subscribes to the events of :mod:`kurabe.events`; listeners are
called synchronously, in order, on the session's event loop.

Scheduling
    API panes run concurrently. Local (llama.cpp) panes on the CPU go by model file: panes on the
    same file stream together (the engine decodes them in one batch, and each reply records how
    many panes it was decoded alongside), while panes on another file wait until that file's
    panes are done, so tokens/s is not split between two models competing for the same cores.
    The order of files is rotated every turn so no model always goes first. A local pane runs
    beside everything instead when the session was created with ``parallel_local=True``
    (``--parallel-local``) or when its model is wholly on a GPU
    (:func:`~kurabe.compute_sharing.runs_on_gpu`); a partly offloaded model still competes for
    the CPU (:class:`~kurabe.compute_sharing.ComputeTurnstile` keeps the order).

Failure is per pane
    A backend error, a cancelled stream or a stall (no output for ``stall_timeout_s``) ends only
    that pane's reply: it is kept with its partial text and marked incomplete. :meth:`retry` runs
    the pane's failed or cancelled latest reply again; :meth:`regenerate` makes a new version of
    its latest reply. Both keep every version in the store; a pane's history always uses the
    newest version of each turn (a turn whose newest version has no text is left out of that
    pane's history, so its conversation still alternates user / assistant).

Persistence
    Every step is committed as it happens (see :mod:`kurabe.store`). The per-delta path does no
    database write: the partial text is saved with the first delta and then at most every
    :data:`PARTIAL_FLUSH_S` seconds, so a killed process leaves the half-streamed reply in the
    database, marked incomplete.

This module never imports Textual.

Why one module of about a thousand lines: :class:`ComparisonSession` is one object around one
event loop and one store, and creating or resuming it, scheduling the panes, a reply's stream
from its start to its end and the ratings all work on that shared state. What does not lives
beside it: the rating configuration and the rater (:mod:`kurabe.rating_config`), verdict words
(:mod:`kurabe.verdicts`), speed figures (:mod:`kurabe.reply_figures`), CPU sharing
(:mod:`kurabe.compute_sharing`), profile snapshots (:mod:`kurabe.profile_snapshot`) and the views
read back for redraw and resume (:mod:`kurabe.session_views`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from backends import create_backend
from backends.base import (
    Backend,
    ChatMessage,
    Conversation,
    StreamDone,
    StreamError,
    TextDelta,
    one_line,
)
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.compute_sharing import ComputeTurnstile, runs_on_gpu
from kurabe.events import (
    PaneDelta,
    PaneFailed,
    PaneFinished,
    PaneLoading,
    PaneReady,
    PaneStarted,
    SessionEvent,
    TurnFinished,
    TurnStarted,
)
from kurabe.pane_labels import MAX_PANES, PANE_LABELS
from kurabe.profile_snapshot import profile_from_snapshot, profile_snapshot
from kurabe.rating_config import resolve_rater
from kurabe.reply_figures import compute_figures
from kurabe.secret_scrub import env_secrets
from kurabe.session_views import PickWinner, RatingView, TurnView, turn_views
from kurabe.store import Store
from kurabe.store_records import SessionRecord, newest, newest_by
from kurabe.verdicts import normalize_verdict
from personas import Persona
from scenarios import Scenario

log = logging.getLogger(__name__)

PARTIAL_FLUSH_S = 0.5
"""How often a streaming reply's partial text is written to the database."""

PaneStatus = Literal["loading", "ready", "busy", "failed", "unusable"]


class _UnusableBackend(Backend):
    """Stands in for a backend that could not even be built (its pane shows why)."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def stream(self, conversation: Conversation) -> Any:  # pragma: no cover - never called
        raise KurabeError(self._reason)

    def unusable_reason(self) -> str | None:
        return self._reason


# -- panes and views ------------------------------------------------------------------------


@dataclass
class Pane:
    """One column of the comparison: a model profile, its backend and its own conversation."""

    index: int
    label: str
    profile: ModelProfile
    backend: Backend
    db_id: int
    history: list[ChatMessage] = field(default_factory=list)
    status: PaneStatus = "loading"
    header: str = ""
    last_reply_id: int | None = None
    last_error: str | None = None
    hidden: bool = False
    """The session is blind and not revealed: show the label, not the model."""
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _cancel_requested: bool = field(default=False, repr=False)
    _entered: bool = field(default=False, repr=False)

    @property
    def display_name(self) -> str:
        return self.label if self.hidden else self.profile.name

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def unusable(self) -> bool:
        """Its backend cannot run (missing key, missing file …): :attr:`last_error` says why."""
        return self.status == "unusable"


@dataclass
class _ReplyState:
    reply_id: int
    version: int
    text: str
    status: str


@dataclass
class _Run:
    """One pane's reply in progress."""

    pane: Pane
    turn: int
    task: asyncio.Task[Any] | None = None
    reply_id: int | None = None
    version: int = 0
    parts: list[str] = field(default_factory=list)
    started: float = 0.0
    first_token: float | None = None
    last_activity: float = 0.0
    timed_out: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)


# -- the session ----------------------------------------------------------------------------


class ComparisonSession:
    """A persona, 1–6 panes and optionally a scenario; see the module docstring."""

    def __init__(
        self,
        *,
        store: Store,
        session_id: int,
        persona: Persona,
        scenario: Scenario | None,
        panes: list[Pane],
        blind: bool,
        revealed: bool,
        rater: str,
        parallel_local: bool = False,
        stall_timeout_s: float | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.id = session_id
        self.persona = persona
        self.scenario = scenario
        self.panes = panes
        self.blind = blind
        self.revealed = revealed
        self.rater = rater
        self.parallel_local = parallel_local
        self.stall_timeout_s = stall_timeout_s
        """Cancel a pane's stream as timed out after this many seconds without output."""
        self.user_turns: list[str] = []
        self._turn_ids: list[int] = []
        self._scenario_turns: list[int | None] = []
        self._replies: dict[tuple[int, int], _ReplyState] = {}
        self._listeners: list[Callable[[SessionEvent], None]] = []
        self._cpu_turnstile: ComputeTurnstile | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._turn_running = False
        self._secrets = list(secrets)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        store: Store,
        persona: Persona,
        profiles: Sequence[ModelProfile],
        *,
        scenario: Scenario | None = None,
        blind: bool = False,
        rater: str = "",
        parallel_local: bool = False,
        backend_factory: Callable[[ModelProfile], Backend] = create_backend,
        kind: str = "interactive",
        seed: int | None = None,
        stall_timeout_s: float | None = None,
        shuffle_seed: int | None = None,
    ) -> ComparisonSession:
        """Record a new session and build (not load) one backend per profile.

        Blind sessions shuffle the panes (``shuffle_seed`` makes it repeatable) and store the
        order; labels A–F follow the display order.
        """
        if not 1 <= len(profiles) <= MAX_PANES:
            raise KurabeError(f"a session has 1 to {MAX_PANES} panes, got {len(profiles)}")
        order = list(range(len(profiles)))
        if blind:
            rng: random.Random = (
                random.Random(shuffle_seed) if shuffle_seed is not None else random.SystemRandom()
            )
            rng.shuffle(order)
        rater = resolve_rater(rater)
        secrets = env_secrets(p.api_key_env for p in profiles)
        session_id = store.create_session(
            persona, scenario, blind=blind, rater=rater, kind=kind, seed=seed
        )
        panes: list[Pane] = []
        for position, source in enumerate(order):
            profile = profiles[source]
            backend = _build_backend(backend_factory, profile)
            settings = {"profile": profile_snapshot(profile), "backend": _snapshot(backend)}
            pane_id = store.add_pane(
                session_id,
                position,
                PANE_LABELS[position],
                profile_name=profile.name,
                backend=profile.backend,
                model=profile.model,
                settings=settings,
                secrets=secrets,
            )
            panes.append(
                Pane(
                    index=position,
                    label=PANE_LABELS[position],
                    profile=profile,
                    backend=backend,
                    db_id=pane_id,
                    hidden=blind,
                )
            )
        store.add_event(
            session_id,
            "created",
            {
                "blind": blind,
                "order": order,
                "profiles": [p.name for p in profiles],
                "parallel_local": parallel_local,
                "seed": seed,
            },
        )
        return cls(
            store=store,
            session_id=session_id,
            persona=persona,
            scenario=scenario,
            panes=panes,
            blind=blind,
            revealed=False,
            rater=rater,
            parallel_local=parallel_local,
            stall_timeout_s=stall_timeout_s,
            secrets=secrets,
        )

    @classmethod
    def resume(
        cls,
        store: Store,
        session_id: int,
        *,
        profiles: Mapping[str, ModelProfile],
        persona: Persona | None = None,
        scenario: Scenario | None = None,
        backend_factory: Callable[[ModelProfile], Backend] = create_backend,
        rater: str | None = None,
        parallel_local: bool = False,
        stall_timeout_s: float | None = None,
    ) -> ComparisonSession:
        """Reopen a stored session: each pane's history is rebuilt from the newest version of
        each of its replies. Replies a dead process left ``streaming`` become ``interrupted``.

        A pane's profile is taken from ``profiles`` by name, else rebuilt from the stored
        snapshot. ``persona`` and ``scenario`` default to the stored snapshots.
        """
        store.session(session_id)  # a clear error for an unknown id
        store.mark_interrupted(session_id)
        record = store.load_record(session_id)
        info = record.session
        persona = persona or info.persona_obj()
        scenario = scenario or info.scenario_obj()
        panes: list[Pane] = []
        used_profiles: list[ModelProfile] = []
        for row in record.panes:
            profile = profiles.get(row.profile_name)
            if profile is None:
                snapshot = row.settings.get("profile")
                if not isinstance(snapshot, Mapping):
                    raise KurabeError(
                        f"session {session_id}: no model profile named {row.profile_name!r}"
                    )
                profile = profile_from_snapshot(snapshot)
            used_profiles.append(profile)
            panes.append(
                Pane(
                    index=row.position,
                    label=row.label,
                    profile=profile,
                    backend=_build_backend(backend_factory, profile),
                    db_id=row.id,
                    header=row.header,
                    hidden=info.hidden,
                )
            )
        session = cls(
            store=store,
            session_id=session_id,
            persona=persona,
            scenario=scenario,
            panes=panes,
            blind=info.blind,
            revealed=info.revealed,
            rater=resolve_rater(rater) if rater else (info.rater or resolve_rater(None)),
            parallel_local=parallel_local,
            stall_timeout_s=stall_timeout_s,
            secrets=env_secrets(p.api_key_env for p in used_profiles),
        )
        session._restore(record)
        store.add_event(session_id, "resumed", {"rater": session.rater})
        return session

    def _restore(self, record: SessionRecord) -> None:
        for turn_row in record.turns:
            self.user_turns.append(turn_row.text)
            self._turn_ids.append(turn_row.id)
            self._scenario_turns.append(turn_row.scenario_turn)
        for key, reply in record.latest_replies().items():
            self._replies[key] = _ReplyState(reply.id, reply.version, reply.text, reply.status)
        for pane in self.panes:
            mine = [(t, state) for (p, t), state in self._replies.items() if p == pane.index]
            if mine:
                _, last = max(mine, key=lambda item: item[0])
                pane.last_reply_id = last.reply_id
                if last.status != "complete":
                    rows = [r for r in record.replies if r.id == last.reply_id]
                    pane.last_error = rows[0].error if rows else None
            pane.history = self._history_before(pane, len(self.user_turns))

    # -- events -----------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[SessionEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns the function that stops it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, event: SessionEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("session listener failed on %r", type(event).__name__)

    def _emit_threadsafe(self, event: SessionEvent) -> None:
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._emit, event)
        else:
            self._emit(event)

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._cpu_turnstile = ComputeTurnstile()

    # -- state ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._turn_running or any(p.busy for p in self.panes)

    @property
    def hidden(self) -> bool:
        """Blind and not revealed."""
        return self.blind and not self.revealed

    def reply_status(self, pane: int, turn: int) -> str | None:
        state = self._replies.get((pane, turn))
        return None if state is None else state.status

    def _pane(self, pane: int) -> Pane:
        if not 0 <= pane < len(self.panes):
            raise KurabeError(f"no pane {pane} (this session has {len(self.panes)})")
        return self.panes[pane]

    def _history_before(self, pane: Pane, turn: int) -> list[ChatMessage]:
        messages: list[ChatMessage] = []
        for index in range(turn):
            state = self._replies.get((pane.index, index))
            if state is not None and state.text:
                messages.append(ChatMessage("user", self.user_turns[index]))
                messages.append(ChatMessage("assistant", state.text))
        return messages

    def _is_serial(self, pane: Pane) -> bool:
        return pane.profile.is_local and not self.parallel_local and not runs_on_gpu(pane.backend)

    @staticmethod
    def _model_key(pane: Pane) -> str:
        key = getattr(pane.backend, "model_key", None)
        return key if isinstance(key, str) and key else pane.profile.model

    # -- loading ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Load every pane's backend (concurrently; local model loads run off the loop).

        Emits :class:`PaneLoading` / :class:`PaneReady`, or :class:`PaneFailed` with
        ``reply_id=None`` and status ``unusable`` (missing key, missing GGUF, load error).
        """
        self._bind_loop()
        pending = [p for p in self.panes if p.status == "loading"]
        await asyncio.gather(*(self._load_pane(p) for p in pending))

    async def _load_pane(self, pane: Pane) -> None:
        try:
            reason = pane.backend.unusable_reason()
        except Exception as exc:
            reason = one_line(f"{type(exc).__name__}: {exc}")
        if reason:
            self._mark_unusable(pane, reason)
            return
        self._emit(PaneLoading(pane.index, f"loading {pane.profile.name}…"))

        def progress(message: str) -> None:
            self._emit_threadsafe(PaneLoading(pane.index, one_line(message)))

        try:
            await pane.backend.load(progress)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = getattr(exc, "reason", None)
            if isinstance(reason, str) and reason:
                message = reason
            elif isinstance(exc, KurabeError):
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc}"
            self._mark_unusable(pane, one_line(f"load failed: {message}"))
            return
        try:
            pane.header = pane.backend.header() or pane.profile.name
        except Exception:
            pane.header = pane.profile.name
        settings = {"profile": profile_snapshot(pane.profile), "backend": _snapshot(pane.backend)}
        self.store.update_pane(
            pane.db_id, settings=settings, header=pane.header, secrets=self._secrets
        )
        pane.status = "ready"
        self._emit(PaneReady(pane.index, pane.header))

    def _mark_unusable(self, pane: Pane, reason: str) -> None:
        pane.status = "unusable"
        pane.last_error = reason
        self.store.add_event(self.id, "pane_unusable", {"pane": pane.index, "reason": reason})
        self._emit(PaneFailed(pane.index, None, reason, retryable=False))

    # -- sending ----------------------------------------------------------------------------

    async def send(self, text: str, *, scenario_turn: int | None = None) -> int:
        """Record the user's turn, fan it out to every usable pane, return the turn's index
        once every pane has finished, failed or been cancelled.

        ``scenario_turn`` marks the turn as the scenario's line of that index; when omitted and
        ``text`` is exactly the next scripted line, it is marked so automatically.
        """
        if self.busy:
            raise KurabeError("a turn is still running; wait for it or cancel it")
        if not text.strip():
            raise KurabeError("nothing to send")
        self._bind_loop()
        self._turn_running = True
        try:
            if any(p.status == "loading" for p in self.panes):
                await self.load()
            if scenario_turn is None:
                upcoming = self.next_scenario_turn()
                if (
                    upcoming is not None
                    and self.scenario is not None
                    and self.scenario.turns[upcoming].text == text
                ):
                    scenario_turn = upcoming
            index = len(self.user_turns)
            turn_id = self.store.add_turn(self.id, index, text, scenario_turn)
            self.user_turns.append(text)
            self._turn_ids.append(turn_id)
            self._scenario_turns.append(scenario_turn)
            self._emit(TurnStarted(index, text))
            usable = [p for p in self.panes if p.status != "unusable"]
            await self._run_panes(usable, index, rotate=True)
            self._emit(TurnFinished(index))
            if self.scenario is not None and self.next_scenario_turn() is None:
                self.store.set_session_status(self.id, "finished")
            return index
        finally:
            self._turn_running = False

    async def send_scenario_turn(self) -> int | None:
        """Send the scenario's next scripted line; None when there is none left."""
        upcoming = self.next_scenario_turn()
        if upcoming is None or self.scenario is None:
            return None
        return await self.send(self.scenario.turns[upcoming].text, scenario_turn=upcoming)

    def scenario_turn_of(self, turn: int) -> int | None:
        """The scenario turn that user turn ``turn`` played, or None for a free-typed line."""
        if 0 <= turn < len(self._scenario_turns):
            return self._scenario_turns[turn]
        return None

    def next_scenario_turn(self) -> int | None:
        """Index of the next scripted turn not yet sent (None when done or no scenario)."""
        if self.scenario is None:
            return None
        sent = [t for t in self._scenario_turns if t is not None]
        upcoming = max(sent) + 1 if sent else 0
        return upcoming if upcoming < len(self.scenario.turns) else None

    async def fill_missing(self) -> int:
        """Run again, turn by turn, every usable pane whose newest reply to a recorded turn is
        not complete (failed, cancelled, interrupted or never started). Used to resume an
        interrupted replay. Returns how many replies were run."""
        if self.busy:
            raise KurabeError("a turn is still running")
        self._bind_loop()
        self._turn_running = True
        count = 0
        try:
            if any(p.status == "loading" for p in self.panes):
                await self.load()
            for turn in range(len(self.user_turns)):
                missing = [
                    p
                    for p in self.panes
                    if p.status != "unusable" and self.reply_status(p.index, turn) != "complete"
                ]
                if missing:
                    self.store.add_event(
                        self.id, "fill", {"turn": turn, "panes": [p.index for p in missing]}
                    )
                    await self._run_panes(missing, turn, rotate=True)
                    count += len(missing)
        finally:
            self._turn_running = False
        return count

    def first_incomplete_turn(self) -> int | None:
        """The first recorded turn where a usable pane has no completed reply."""
        for turn in range(len(self.user_turns)):
            for pane in self.panes:
                if pane.status != "unusable" and self.reply_status(pane.index, turn) != "complete":
                    return turn
        return None

    async def retry(self, pane: int) -> None:
        """Run the pane's failed or cancelled latest reply again (a new version, same turn)."""
        target = self._pane(pane)
        turn = self._latest_turn_of(target)
        status = self.reply_status(pane, turn)
        if status == "complete":
            raise KurabeError(
                f"pane {target.label}'s latest reply is complete; regenerate it instead"
            )
        await self._rerun(target, turn, "retry")

    async def regenerate(self, pane: int) -> None:
        """A new version of the pane's latest reply; the old one stays in the database."""
        target = self._pane(pane)
        turn = self._latest_turn_of(target)
        await self._rerun(target, turn, "regenerate")

    def _latest_turn_of(self, pane: Pane) -> int:
        if not self.user_turns:
            raise KurabeError("nothing has been sent yet")
        if pane.unusable:
            raise KurabeError(f"pane {pane.label} is unusable: {pane.last_error}")
        return len(self.user_turns) - 1

    async def _rerun(self, pane: Pane, turn: int, kind: str) -> None:
        if pane.busy:
            raise KurabeError(f"pane {pane.label} is still streaming")
        self._bind_loop()
        if pane.status == "loading":
            await self._load_pane(pane)
            if pane.unusable:
                return
        self.store.add_event(self.id, kind, {"pane": pane.index, "turn": turn})
        await self._run_panes([pane], turn, rotate=False)

    async def _run_panes(self, panes: Sequence[Pane], turn: int, *, rotate: bool) -> None:
        serial = [p for p in panes if self._is_serial(p)]
        if rotate and serial:
            files = list(dict.fromkeys(self._model_key(p) for p in serial))
            shift = turn % len(files)
            files = files[shift:] + files[:shift]
            serial = [p for key in files for p in serial if self._model_key(p) == key]
        concurrent = [p for p in panes if p not in serial]
        tasks = []
        for pane in concurrent + serial:
            pane._cancel_requested = False
            pane._entered = False
            run = _Run(pane, turn)
            task = asyncio.create_task(
                self._run_pane(run, serial=pane in serial), name=f"kurabe-pane-{pane.label}"
            )
            run.task = task
            pane._task = task
            tasks.append(task)
        try:
            await asyncio.gather(*tasks)
        finally:
            for pane in panes:
                if pane._task is not None and pane._task.done():
                    pane._task = None

    async def _run_pane(self, run: _Run, *, serial: bool) -> None:
        pane = run.pane
        pane._entered = True
        try:
            if pane._cancel_requested:
                raise asyncio.CancelledError
            if serial:
                assert self._cpu_turnstile is not None
                async with self._cpu_turnstile.hold(self._model_key(pane)):
                    await self._stream(run)
            else:
                await self._stream(run)
        except asyncio.CancelledError:
            if run.timed_out:
                self._uncancel()
                self._end_failed(
                    run,
                    StreamError(
                        reason=f"no output for {self.stall_timeout_s:g} s: timed out",
                        retryable=True,
                        kind="timeout",
                        partial=bool(run.parts),
                    ),
                )
                return
            self._end_cancelled(run)
            if pane._cancel_requested:
                self._uncancel()
                return
            raise
        except Exception as exc:  # a backend that raised instead of yielding a StreamError
            log.exception("pane %s stream raised", pane.label)
            self._end_failed(
                run,
                StreamError(
                    reason=one_line(f"{type(exc).__name__}: {exc}"),
                    retryable=True,
                    partial=bool(run.parts),
                ),
            )

    @staticmethod
    def _uncancel() -> None:
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()

    def _begin_reply(self, run: _Run) -> None:
        pane = run.pane
        run.reply_id, run.version = self.store.start_reply(self._turn_ids[run.turn], pane.db_id)
        pane.status = "busy"
        pane.last_reply_id = run.reply_id
        pane.last_error = None
        self._replies[(pane.index, run.turn)] = _ReplyState(
            run.reply_id, run.version, "", "streaming"
        )
        self._emit(PaneStarted(pane.index, run.turn, run.reply_id))

    async def _stream(self, run: _Run) -> None:
        pane = run.pane
        conversation = self.conversation_for(pane.index, run.turn)
        self._begin_reply(run)
        reply_id = run.reply_id
        assert reply_id is not None
        clock = time.perf_counter
        run.started = run.last_activity = clock()
        last_flush = float("-inf")  # the first delta is saved at once, then every half second
        watchdog = None
        if self.stall_timeout_s is not None and self.stall_timeout_s > 0:
            watchdog = asyncio.create_task(self._watchdog(run, self.stall_timeout_s))
        pane_index = pane.index
        parts = run.parts
        emit = self._emit
        stream = pane.backend.stream(conversation)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    now = clock()
                    run.last_activity = now
                    if run.first_token is None:
                        run.first_token = now
                    parts.append(event.text)
                    emit(PaneDelta(pane_index, reply_id, event.text))
                    if now - last_flush >= PARTIAL_FLUSH_S:
                        self.store.update_partial(reply_id, "".join(parts))
                        last_flush = now
                elif isinstance(event, StreamDone):
                    self._end_done(run, event)
                    return
                elif isinstance(event, StreamError):
                    self._end_failed(run, event)
                    return
            self._end_failed(
                run,
                StreamError(
                    reason="the stream ended without a final event",
                    retryable=True,
                    partial=bool(parts),
                ),
            )
        finally:
            if watchdog is not None:
                watchdog.cancel()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.exception("closing pane %s's stream failed", pane.label)

    async def _watchdog(self, run: _Run, timeout: float) -> None:
        interval = max(min(timeout / 4, 1.0), 0.01)
        while True:
            await asyncio.sleep(interval)
            if time.perf_counter() - run.last_activity > timeout:
                run.timed_out = True
                if run.task is not None:
                    run.task.cancel()
                return

    def _measured_ttft(self, run: _Run) -> float | None:
        return None if run.first_token is None else run.first_token - run.started

    def _end_done(self, run: _Run, done: StreamDone) -> None:
        pane = run.pane
        assert run.reply_id is not None
        text = run.text
        ttft = done.ttft_s if done.ttft_s is not None else self._measured_ttft(run)
        total = done.total_s if done.total_s else time.perf_counter() - run.started
        figures = dataclasses.replace(
            compute_figures(
                len(text),
                prompt_tokens=done.prompt_tokens,
                completion_tokens=done.completion_tokens,
                ttft_s=ttft,
                total_s=total,
                context_size=done.context_size,
            ),
            cached_prompt_tokens=done.cached_prompt_tokens,
            decoded_alongside=done.decoded_alongside,
            history_trimmed_turns=done.history_trimmed_turns,
            max_tokens_clamped=done.max_tokens_clamped,
        )
        checks = self._checks(run, text, done)
        self.store.finish_reply(
            run.reply_id,
            text=text,
            finish_reason=done.finish_reason,
            figures=figures,
            checks=checks,
        )
        self._replies[(pane.index, run.turn)] = _ReplyState(
            run.reply_id, run.version, text, "complete"
        )
        pane.status = "ready"
        pane.last_error = None
        pane.history = self._history_before(pane, len(self.user_turns))
        self._emit(
            PaneFinished(
                pane=pane.index,
                reply_id=run.reply_id,
                text=text,
                finish_reason=done.finish_reason,
                figures=figures,
                checks=checks,
            )
        )

    def _checks(self, run: _Run, text: str, done: StreamDone) -> dict[str, Any]:
        from kurabe.checks import run_checks

        previous = self._replies.get((run.pane.index, run.turn - 1)) if run.turn > 0 else None
        try:
            report = run_checks(
                text,
                self.persona,
                previous_reply=previous.text if previous is not None and previous.text else None,
                finish_reason=done.finish_reason,
                completion_tokens=done.completion_tokens,
            )
            result: dict[str, Any] = report.to_dict()
            return result
        except Exception:
            log.exception("the Japanese checks failed on reply %s", run.reply_id)
            return {}

    def _end_failed(self, run: _Run, error: StreamError) -> None:
        pane = run.pane
        if run.reply_id is None:
            self._begin_reply(run)
        assert run.reply_id is not None
        text = run.text
        ttft = error.ttft_s if error.ttft_s is not None else self._measured_ttft(run)
        total = error.total_s if error.total_s is not None else time.perf_counter() - run.started
        figures = compute_figures(
            len(text),
            prompt_tokens=error.prompt_tokens,
            completion_tokens=error.completion_tokens,
            ttft_s=ttft,
            total_s=total if run.started else None,
        )
        reason = one_line(error.reason)
        self.store.fail_reply(
            run.reply_id,
            status="cancelled" if error.kind == "cancelled" else "failed",
            text=text,
            error=reason,
            error_kind=error.kind,
            retryable=error.retryable,
            figures=figures,
        )
        status = "cancelled" if error.kind == "cancelled" else "failed"
        self._replies[(pane.index, run.turn)] = _ReplyState(run.reply_id, run.version, text, status)
        pane.status = "failed"
        pane.last_error = reason
        pane.history = self._history_before(pane, len(self.user_turns))
        self._emit(
            PaneFailed(
                pane=pane.index,
                reply_id=run.reply_id,
                reason=reason,
                retryable=error.retryable,
                partial_text=text,
                cancelled=error.kind == "cancelled",
            )
        )

    def _end_cancelled(self, run: _Run) -> None:
        self._end_failed(
            run,
            StreamError(
                reason="cancelled", retryable=True, kind="cancelled", partial=bool(run.parts)
            ),
        )

    def cancel(self, pane: int | None = None) -> None:
        """Cancel the current streams (all, or one pane); partial text is kept and the reply is
        marked cancelled. A pane still waiting for its turn is cancelled before it starts."""
        targets = self.panes if pane is None else [self._pane(pane)]
        for target in targets:
            if not target.busy:
                continue
            target._cancel_requested = True
            if target._entered and target._task is not None:
                target._task.cancel()
        if any(t._cancel_requested for t in targets):
            self.store.add_event(self.id, "cancel", {"pane": pane if pane is not None else "all"})

    # -- rating -----------------------------------------------------------------------------

    def rate_reply(
        self,
        reply_id: int,
        *,
        score: int | None = None,
        tags: Sequence[str] | None = None,
        note: str | None = None,
    ) -> RatingView:
        """Rate a reply; returns the rating as stored. Fields left ``None`` keep this rater's
        previous value, so pressing a score and then adding a tag gives one rating with both;
        every press is a committed row (the history is kept, the newest counts)."""
        if self.store.reply_session(reply_id) != self.id:
            raise KurabeError(f"reply {reply_id} is not in session {self.id}")
        if score is not None and (isinstance(score, bool) or not 1 <= int(score) <= 5):
            raise KurabeError(f"score must be 1 to 5, got {score!r}")
        previous = self.rating_of(reply_id)
        merged = RatingView(
            score=previous.score if score is None else score,
            tags=previous.tags
            if tags is None
            else tuple(dict.fromkeys(t.strip() for t in tags if t.strip())),
            note=previous.note if note is None else note,
            rater=self.rater,
        )
        self.store.add_rating(
            reply_id,
            score=merged.score,
            tags=merged.tags,
            note=merged.note,
            rater=self.rater,
            blind=self.hidden,
        )
        return merged

    def rating_of(self, reply_id: int) -> RatingView:
        """This rater's newest rating of a reply (an empty one when there is none)."""
        return self.ratings().get(reply_id, RatingView(rater=self.rater))

    def ratings(self) -> dict[int, RatingView]:
        """Reply id → this rater's newest rating of it, for every reply this rater rated."""

        mine = (
            r for r in self.store.ratings(self.id) if r.rater == self.rater and r.kind == "human"
        )
        return {
            reply_id: RatingView(score=row.score, tags=row.tags, note=row.note, rater=row.rater)
            for reply_id, row in newest_by(mine, lambda r: r.reply_id).items()
        }

    def set_verdict(self, pane: int, verdict: str, note: str = "") -> tuple[str, str]:
        """The verdict on a pane's whole conversation: great / ok / subpar / out-of-character.
        Returns (verdict, note) as stored (the verdict normalised)."""
        target = self._pane(pane)
        stored = normalize_verdict(verdict)
        self.store.add_verdict(
            target.db_id,
            verdict=stored,
            note=note,
            rater=self.rater,
            blind=self.hidden,
        )
        return stored, note

    def pick_best(self, turn: int, winner: PickWinner) -> PickWinner:
        """The best pane of a turn (its index), or ``"tie"``, or ``"bothbad"`` (all bad).
        Returns the pick as stored."""
        if not 0 <= turn < len(self.user_turns):
            raise KurabeError(f"no turn {turn} in this session")
        if winner in ("tie", "bothbad"):
            self.store.add_pick(
                self._turn_ids[turn],
                winner_pane_id=None,
                outcome=str(winner),
                rater=self.rater,
                blind=self.hidden,
            )
            return winner
        if isinstance(winner, bool) or not isinstance(winner, int):
            raise KurabeError(f"pick a pane index, 'tie' or 'bothbad', not {winner!r}")
        target = self._pane(winner)
        self.store.add_pick(
            self._turn_ids[turn],
            winner_pane_id=target.db_id,
            outcome="pane",
            rater=self.rater,
            blind=self.hidden,
        )
        return winner

    def pick_of(self, turn: int) -> PickWinner | None:
        """This rater's newest pick for a turn, or None."""
        return self.picks().get(turn)

    def picks(self) -> dict[int, PickWinner]:
        """Turn → this rater's newest pick for it, for every turn this rater picked."""

        mine = (p for p in self.store.picks(self.id) if p.rater == self.rater)
        found: dict[int, PickWinner] = {}
        for turn, row in newest_by(mine, lambda p: p.turn).items():
            if row.outcome == "pane" and row.winner is not None:
                found[turn] = row.winner
            else:
                found[turn] = "tie" if row.outcome == "tie" else "bothbad"
        return found

    def reveal(self) -> None:
        """Show the model names of a blind session (recorded as an event)."""
        self.revealed = True
        for pane in self.panes:
            pane.hidden = False
        self.store.set_revealed(self.id)

    def verdict_of(self, pane: int) -> tuple[str, str] | None:
        """This rater's latest (verdict, note) for a pane, or None."""

        target = self._pane(pane)
        row = newest(
            v
            for v in self.store.verdicts(self.id)
            if v.pane_id == target.db_id and v.rater == self.rater
        )
        return None if row is None else (row.verdict, row.note)

    def conversation_for(self, pane: int, turn: int) -> Conversation:
        """What pane ``pane`` is (or was) given for ``turn``: the persona, the pane's own history
        before that turn and the turn's user line (as :meth:`_stream` sends it)."""
        target = self._pane(pane)
        if not 0 <= turn < len(self.user_turns):
            raise KurabeError(f"no turn {turn} in this session")
        history = self._history_before(target, turn)
        return Conversation(
            system=self.persona.system,
            turns=(*history, ChatMessage("user", self.user_turns[turn])),
            char_name=self.persona.char_name,
            user_name=self.persona.user_name,
            conversation_id=f"kurabe-{self.id}-{target.index}",
        )

    # -- views ------------------------------------------------------------------------------

    def transcript(self) -> list[TurnView]:
        """Per turn: the user's text, each pane's latest reply (with figures, checks and this
        rater's latest rating) and this rater's pick. For redraw and resume."""
        return turn_views(self.store.load_record(self.id), self.rater)

    # -- closing ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Cancel what still streams (saving it), then release every backend."""
        running = [p._task for p in self.panes if p._task is not None and not p._task.done()]
        if running:
            self.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        for pane in self.panes:
            try:
                await pane.backend.aclose()
            except Exception:
                log.exception("closing pane %s failed", pane.label)


def _build_backend(factory: Callable[[ModelProfile], Backend], profile: ModelProfile) -> Backend:
    try:
        return factory(profile)
    except Exception as exc:
        message = str(exc) if isinstance(exc, KurabeError) else f"{type(exc).__name__}: {exc}"
        return _UnusableBackend(one_line(f"cannot create backend: {message}"))


def _snapshot(backend: Backend) -> dict[str, Any]:
    try:
        return dict(backend.settings_snapshot())
    except Exception as exc:
        return {"error": one_line(f"settings unavailable: {exc}")}
