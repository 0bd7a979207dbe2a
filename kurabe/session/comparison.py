"""The comparison session: one persona, 1–6 panes, the same user turn fanned out to every pane.

Each pane is a model profile with its own backend, its own settings and its own conversation
history. :meth:`ComparisonSession.send` records the user's turn, starts one stream per usable pane
and returns when every pane has finished, failed or been cancelled. Whoever displays the session
(the TUI, the headless replay) subscribes to the events of :mod:`kurabe.session.events`; listeners
are called synchronously, in order, on the session's event loop.

Scheduling
    API panes run concurrently. Local (llama.cpp) panes on the CPU go by model file: panes on the
    same file stream together (the engine decodes them in one batch, and each reply records how
    many panes it was decoded alongside), while panes on another file wait until that file's
    panes are done, so tokens/s is not split between two models competing for the same cores.
    The order of files is rotated every turn so no model always goes first. A local pane runs
    beside everything instead when the session was created with ``parallel_local=True``
    (``--parallel-local``) or when its model is wholly on a GPU
    (:func:`~kurabe.session.compute_sharing.runs_on_gpu`); a partly offloaded model still competes
    for the CPU (:class:`~kurabe.session.compute_sharing.ComputeTurnstile` keeps the order).

Failure is per pane
    A backend error, a cancelled stream or a stall (no output for ``stall_timeout_s``) ends only
    that pane's reply: it is kept with its partial text and marked incomplete. After a failure
    the pane's conversation stops at that turn (the rule in :mod:`kurabe.session.turns`): the
    later turns are not sent to it but recorded ``blocked``, and :meth:`retry` runs it again from
    the failed turn on. A reply the user cancelled is kept as they saw it and the conversation
    goes on; :meth:`retry` runs a cancelled latest reply again. :meth:`regenerate` makes a new
    version of the latest reply. Every version stays in the store; a pane's history uses the
    newest version of each turn.

Persistence
    Every step is committed as it happens (see :mod:`kurabe.store.store`). The per-delta path does
    no database write: the partial text is saved with the first delta and then at most every
    :data:`PARTIAL_FLUSH_S` seconds, so a killed process leaves the half-streamed reply in the
    database, marked incomplete.

This module never imports Textual.

Where the parts live
    This module holds :class:`ComparisonSession`: the fan-out of a turn, retry, regenerate,
    cancelling and closing, and the public API the TUI and the command line use. Beside it:
    a pane (:mod:`kurabe.session.pane`), building and resuming the panes
    (:mod:`kurabe.session.setup`), loading them (:mod:`kurabe.session.pane_loading`), the turns and
    newest replies held in memory with the scenario cursor (:mod:`kurabe.session.turns`), one
    reply's stream from its start to its end (:mod:`kurabe.session.reply_stream`), ratings, verdicts
    and picks (:mod:`kurabe.session.ratings`), the events and their listeners
    (:mod:`kurabe.session.events`), CPU sharing and the order of local panes
    (:mod:`kurabe.session.compute_sharing`), the rating configuration and the rater
    (:mod:`kurabe.core.rating_config`), verdict words (:mod:`kurabe.core.verdicts`), speed
    figures (:mod:`kurabe.session.reply_figures`), profile snapshots
    (:mod:`kurabe.core.profile_snapshot`) and the views read back for redraw and resume
    (:mod:`kurabe.session.views`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping, Sequence

from backends import create_backend
from backends.base import Backend, ChatMessage, Conversation
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.core.blind import names_hidden
from kurabe.core.pane_labels import MAX_PANES
from kurabe.core.persona_conversation import persona_conversation
from kurabe.core.rating_config import resolve_rater
from kurabe.core.secret_scrub import env_secrets
from kurabe.session.compute_sharing import ComputeTurnstile, cpu_order, model_key
from kurabe.session.events import (
    EventListeners,
    PaneFailed,
    SessionEvent,
    TurnFinished,
    TurnStarted,
)
from kurabe.session.pane import Pane, PaneStatus, pane_at
from kurabe.session.pane_loading import load_pane, refresh_headers
from kurabe.session.ratings import SessionRatings
from kurabe.session.reply_stream import PARTIAL_FLUSH_S, ReplyStream
from kurabe.session.setup import add_panes, pane_order, restore_turns, stored_panes
from kurabe.session.turns import ReplyState, SessionTurns
from kurabe.session.views import PickWinner, RatingView, TurnView, turn_views
from kurabe.store.records import JudgementRow, SessionEnd, SessionRecord
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario

__all__ = ["PARTIAL_FLUSH_S", "ComparisonSession", "Pane", "PaneStatus"]

log = logging.getLogger(__name__)


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
        turns: SessionTurns | None = None,
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
        self._turns = turns if turns is not None else SessionTurns()
        self._ratings = SessionRatings(store, session_id, panes, self._turns)
        self._events = EventListeners()
        self._cpu_turnstile: ComputeTurnstile | None = None
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
        order = pane_order(len(profiles), blind=blind, shuffle_seed=shuffle_seed)
        rater = resolve_rater(rater)
        secrets = env_secrets(p.api_key_env for p in profiles)
        session_id = store.sessions.create(
            persona, scenario, blind=blind, rater=rater, kind=kind, seed=seed
        )
        panes = add_panes(
            store,
            session_id,
            profiles,
            order,
            backend_factory=backend_factory,
            secrets=secrets,
        )
        store.sessions.add_event(
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
        store.sessions.get(session_id)  # a clear error for an unknown id
        store.replies.mark_interrupted(session_id)
        record = store.load_record(session_id)
        info = record.session
        persona = persona or info.persona_obj()
        scenario = scenario or info.scenario_obj()
        panes = stored_panes(record, profiles, backend_factory=backend_factory)
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
            secrets=env_secrets(p.profile.api_key_env for p in panes),
            turns=restore_turns(record, panes),
        )
        store.sessions.add_event(session_id, "resumed", {"rater": session.rater})
        return session

    # -- events -----------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[SessionEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns the function that stops it."""
        return self._events.subscribe(listener)

    def _bind_loop(self) -> None:
        self._events.bind_loop()
        if self._cpu_turnstile is None:
            self._cpu_turnstile = ComputeTurnstile()

    # -- state ------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._turn_running or any(p.busy for p in self.panes)

    @property
    def hidden(self) -> bool:
        """Blind and not revealed."""
        return names_hidden(blind=self.blind, revealed=self.revealed)

    @property
    def user_turns(self) -> list[str]:
        """What the user said, turn by turn."""
        return self._turns.texts

    def reply_status(self, pane: int, turn: int) -> str | None:
        return self._turns.reply_status(pane, turn)

    def _pane(self, pane: int) -> Pane:
        return pane_at(self.panes, pane)

    # -- loading ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Load every pane's backend (concurrently; local model loads run off the loop).

        Emits :class:`~kurabe.session.events.PaneLoading` /
        :class:`~kurabe.session.events.PaneReady`, or
        :class:`~kurabe.session.events.PaneFailed` with ``reply_id=None`` and status ``unusable``
        (missing key, missing GGUF, load error); see :mod:`kurabe.session.pane_loading`.
        """
        self._bind_loop()
        pending = [p for p in self.panes if p.status == "loading"]
        await asyncio.gather(*(self._load_pane(p) for p in pending))
        refresh_headers(self.panes, store=self.store, secrets=self._secrets, events=self._events)

    async def _load_pane(self, pane: Pane) -> None:
        await load_pane(
            pane, store=self.store, session_id=self.id, secrets=self._secrets, events=self._events
        )

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
            turn_id = self.store.replies.add_turn(self.id, index, text, scenario_turn)
            self._turns.add(text, turn_id, scenario_turn)
            self._events.emit(TurnStarted(index, text))
            usable = [p for p in self.panes if not p.unusable]
            await self._run_panes(usable, index, rotate=True)
            self._events.emit(TurnFinished(index))
            if self.scenario is not None and self.next_scenario_turn() is None:
                self.finish("finished")
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
        return self._turns.scenario_turn_of(turn)

    def next_scenario_turn(self) -> int | None:
        """Index of the next scripted turn not yet sent (None when done or no scenario)."""
        return self._turns.next_scenario_turn(self.scenario)

    async def play_scenario(self) -> str | None:
        """Play the scenario to its end, as replay and runs do: load the panes, fill in what is
        missing, send the remaining lines, and record how the session ended (``finished``;
        ``interrupted`` when cancelled). Returns why no pane can run, the session then ended
        ``failed``; None otherwise."""
        try:
            await self.load()
            if all(p.unusable for p in self.panes):
                self.finish("failed")
                return "; ".join(f"{p.profile.name}: {p.last_error}" for p in self.panes)
            await self.fill_missing()
            while await self.send_scenario_turn() is not None:
                pass
            self.finish("finished")
        except asyncio.CancelledError:
            self.finish("interrupted")
            raise
        return None

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
                    if not p.unusable and self.reply_status(p.index, turn) != "complete"
                ]
                if missing:
                    self.store.sessions.add_event(
                        self.id, "fill", {"turn": turn, "panes": [p.index for p in missing]}
                    )
                    await self._run_panes(missing, turn, rotate=True)
                    count += len(missing)
        finally:
            self._turn_running = False
        return count

    def first_incomplete_turn(self) -> int | None:
        """The first recorded turn where a usable pane has no completed reply."""
        return self._turns.first_incomplete_turn(p.index for p in self.panes if not p.unusable)

    async def retry(self, pane: int) -> None:
        """Run the pane again from the turn where its conversation stopped (a failed reply, then
        each later turn it was not sent, in order, until one fails again), or its cancelled
        latest reply (a new version of each, same turns)."""
        target = self._pane(pane)
        latest = self._latest_turn_of(target)
        stopped = self._turns.stopped_at(target.index, latest + 1)
        if stopped is None:
            if self.reply_status(pane, latest) == "complete":
                raise KurabeError(
                    f"pane {target.label}'s latest reply is complete; regenerate it instead"
                )
            await self._rerun(target, latest, "retry")
            return
        for turn in range(stopped, latest + 1):
            await self._rerun(target, turn, "retry")
            if self.reply_status(pane, turn) != "complete":
                break

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
        self.store.sessions.add_event(self.id, kind, {"pane": pane.index, "turn": turn})
        await self._run_panes([pane], turn, rotate=False)

    async def _run_panes(self, panes: Sequence[Pane], turn: int, *, rotate: bool) -> None:
        panes = [pane for pane in panes if not self._blocked(pane, turn)]
        concurrent, serial = cpu_order(
            panes, turn, rotate=rotate, parallel_local=self.parallel_local
        )
        replies: list[ReplyStream] = []
        for pane in concurrent + serial:
            reply = ReplyStream(
                pane,
                turn,
                store=self.store,
                turns=self._turns,
                persona=self.persona,
                emit=self._events.emit,
                conversation=functools.partial(self.conversation_for, pane.index, turn),
                stall_timeout_s=self.stall_timeout_s,
            )
            pane.stream = reply
            if pane in serial:
                assert self._cpu_turnstile is not None
                reply.start(self._cpu_turnstile, model_key(pane))
            else:
                reply.start()
            replies.append(reply)
        await asyncio.gather(*(reply.wait() for reply in replies))

    def _blocked(self, pane: Pane, turn: int) -> bool:
        """True, with the turn recorded ``blocked`` for the pane, when its conversation stopped
        at an earlier failed turn (the rule in :mod:`kurabe.session.turns`)."""
        stopped = self._turns.stopped_at(pane.index, turn)
        if stopped is None:
            return False
        why = f"the conversation stopped at turn {stopped + 1}, which failed"
        turn_id = self._turns.ids[turn]
        reply_id, version = self.store.replies.block_reply(turn_id, pane.db_id, why)
        reason = f"not sent: {why}"
        self._turns.set_reply(pane.index, turn, ReplyState(reply_id, version, "", "blocked"))
        pane.status = "failed"
        pane.last_reply_id = reply_id
        pane.last_error = reason
        self._events.emit(
            PaneFailed(
                pane=pane.index,
                reply_id=reply_id,
                reason=reason,
                retryable=True,
                partial_text="",
                cancelled=False,
            )
        )
        return True

    def cancel(self, pane: int | None = None) -> None:
        """Cancel the current streams (all, or one pane); partial text is kept and the reply is
        marked cancelled. A pane still waiting for its turn is cancelled before it starts."""
        targets = self.panes if pane is None else [self._pane(pane)]
        cancelled = [t for t in targets if t.stream is not None and t.stream.cancel()]
        if cancelled:
            self.store.sessions.add_event(
                self.id, "cancel", {"pane": pane if pane is not None else "all"}
            )

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
        return self._ratings.rate_reply(
            reply_id, score=score, tags=tags, note=note, rater=self.rater, blind=self.hidden
        )

    def rating_of(self, reply_id: int) -> RatingView:
        """This rater's newest rating of a reply (an empty one when there is none)."""
        return self._ratings.rating_of(reply_id, self.rater)

    def ratings(self) -> dict[int, RatingView]:
        """Reply id → this rater's newest rating of it, for every reply this rater rated."""
        return self._ratings.ratings(self.rater)

    def set_verdict(self, pane: int, verdict: str, note: str = "") -> tuple[str, str]:
        """The verdict on a pane's whole conversation: great / ok / subpar / out-of-character.
        Returns (verdict, note) as stored (the verdict normalised)."""
        return self._ratings.set_verdict(pane, verdict, note, rater=self.rater, blind=self.hidden)

    def verdict_of(self, pane: int) -> tuple[str, str] | None:
        """This rater's latest (verdict, note) for a pane, or None."""
        return self._ratings.verdict_of(pane, self.rater)

    def pick_best(self, turn: int, winner: PickWinner) -> PickWinner:
        """The best pane of a turn (its index), or ``"tie"``, or ``"bothbad"`` (all bad).
        Returns the pick as stored."""
        return self._ratings.pick_best(turn, winner, rater=self.rater, blind=self.hidden)

    def pick_of(self, turn: int) -> PickWinner | None:
        """This rater's newest pick for a turn, or None."""
        return self.picks().get(turn)

    def picks(self) -> dict[int, PickWinner]:
        """Turn → this rater's newest pick for it, for every turn this rater picked."""
        return self._ratings.picks(self.rater)

    def reveal(self) -> None:
        """Show the model names of a blind session (recorded as an event)."""
        self.revealed = True
        self.store.sessions.set_revealed(self.id)

    def conversation_for(self, pane: int, turn: int) -> Conversation:
        """What pane ``pane`` is (or was) given for ``turn``: the persona (with its examples), the
        pane's own history before that turn and the turn's user line (as
        :class:`~kurabe.session.reply_stream.ReplyStream` sends it)."""
        target = self._pane(pane)
        if not 0 <= turn < len(self.user_turns):
            raise KurabeError(f"no turn {turn} in this session")
        history = self._turns.history_before(target.index, turn)
        return persona_conversation(
            self.persona,
            (*history, ChatMessage("user", self.user_turns[turn])),
            conversation_id=f"kurabe-{self.id}-{target.index}",
        )

    # -- status -----------------------------------------------------------------------------

    def finish(self, status: SessionEnd) -> None:
        """Record how the session ended: ``finished`` (:meth:`send` says so itself once the
        scenario's last line was answered), ``interrupted`` (also logged as an event with how many
        turns were played) or ``failed``."""
        self.store.sessions.set_status(self.id, status)
        if status == "interrupted":
            self.store.sessions.add_event(self.id, "interrupted", {"turns": len(self.user_turns)})

    def reopen(self) -> None:
        """Mark the session ``open`` again (a resumed replay plays on)."""
        self.store.sessions.set_status(self.id, "open")

    # -- views ------------------------------------------------------------------------------

    def record(self) -> SessionRecord:
        """The whole session as stored now: panes, turns, every version of every reply, every
        rating, verdict, pick and judgement (what exports and summaries read)."""
        return self.store.load_record(self.id)

    def judgements(self) -> list[JudgementRow]:
        """Every judgement an LLM judge made in this session, oldest first."""
        return self.store.judging.judgements(self.id)

    def transcript(self) -> list[TurnView]:
        """Per turn: the user's text, each pane's latest reply (with figures, checks and this
        rater's latest rating) and this rater's pick. For redraw and resume."""
        return turn_views(self.record(), self.rater)

    # -- closing ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Cancel what still streams (saving it), then release every backend: a local model no
        other session or judge holds is freed (switching panes to other models starts a new
        session and closes this one)."""
        running = [p.stream for p in self.panes if p.stream is not None and not p.stream.done]
        if running:
            self.cancel()
            await asyncio.gather(*(stream.wait() for stream in running), return_exceptions=True)
        for pane in self.panes:
            try:
                await pane.backend.aclose()
            except Exception:
                log.exception("closing pane %s failed", pane.label)
