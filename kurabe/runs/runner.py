"""A run: scenarios × repeats replayed across the same models, many sessions at once.

:func:`start_run` records a run (what it was asked: scenario ids, models, repeats, seed) and plays
it; :func:`resume_run` plays again what a run has not finished: a session not yet created is
created, a session with a reply missing or failed is resumed (the turns it has are filled from
the first reply that is not complete, then its remaining lines are sent; see
:meth:`~kurabe.session.comparison.ComparisonSession.fill_missing`), a finished one is left
alone. Each reply is keyed by its session's scenario and repeat, its turn and its pane (profile,
sampling, seed), so nothing is asked twice and nothing is lost.

Within one session the turns go in order (each turn waits for every pane); different sessions
proceed at once. A bounded pool of workers takes the scenarios one at a time from a lazy
iterator, so only the sessions in flight are held in memory, however long the run. What limits
the requests is each endpoint's :class:`~kurabe.runs.endpoints.AdaptiveLimit`; the pool only
has to be large enough to keep every endpoint busy.

Every pane's backend is wrapped in a :class:`~kurabe.runs.attempts.RetryingBackend` (the one
retry layer; the SDKs' ``max_retries`` is set to 0), and every request is recorded in
``store.runs`` (``reply_attempts``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends import create_backend
from backends.base import Backend
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.runs.attempts import AttemptReport, RetryingBackend, RetryPolicy
from kurabe.runs.endpoints import DEFAULT_LOCAL_LIMIT, Endpoints, endpoint_of
from kurabe.runs.progress import NullRunProgress, RunProgress, RunTally
from kurabe.session.comparison import ComparisonSession
from kurabe.session.events import PaneFailed, PaneFinished, PaneStarted, SessionEvent
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario

log = logging.getLogger(__name__)

MAX_SESSIONS_AT_ONCE = 64


@dataclass(frozen=True)
class RunItem:
    """One session of a run: a scenario, the persona it is played with, which repeat."""

    scenario: Scenario
    persona: Persona
    repeat: int


@dataclass(frozen=True)
class RunSettings:
    """How a run plays; what :func:`start_run` records with it (``models`` as given, so that a
    resume resolves the same profiles)."""

    models: str
    repeat: int = 1
    seed: int | None = None
    persona: str | None = None
    """A persona for every scenario instead of each scenario's own."""
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rater: str = ""
    sessions_at_once: int | None = None
    """How many sessions play at once (default: enough to keep every endpoint busy)."""

    def record(self, scenario_ids: Sequence[str]) -> dict[str, Any]:
        return {
            "scenarios": list(scenario_ids),
            "models": self.models,
            "repeat": self.repeat,
            "seed": self.seed,
            "persona": self.persona,
            "retries": self.policy.retries,
            "stall_timeout_s": self.policy.stall_timeout_s,
        }


def items_of(pairs: Sequence[tuple[Scenario, Persona]], repeat: int) -> Iterator[RunItem]:
    """Every (scenario, repeat) of a run, repeats of one scenario together, built lazily."""
    for scenario, persona in pairs:
        for index in range(repeat):
            yield RunItem(scenario, persona, index)


def seeded(profile: ModelProfile, seed: int | None) -> ModelProfile:
    if seed is None:
        return profile
    return dataclasses.replace(profile, sampling=dataclasses.replace(profile.sampling, seed=seed))


async def start_run(
    store: Store,
    pairs: Sequence[tuple[Scenario, Persona]],
    profiles: Sequence[ModelProfile],
    settings: RunSettings,
    *,
    progress: RunProgress | None = None,
    backend_factory: Callable[[ModelProfile], Backend] = create_backend,
    on_run: Callable[[int], None] | None = None,
) -> int:
    """Record a run of ``pairs`` × ``settings.repeat`` across ``profiles`` and play it; returns
    the run's id (``on_run`` hears it as soon as it exists)."""
    if settings.repeat < 1:
        raise KurabeError("--repeat must be at least 1")
    if not pairs:
        raise KurabeError("a run needs at least one scenario")
    run_id = store.runs.create(settings.record([scenario.id for scenario, _ in pairs]))
    if on_run is not None:
        on_run(run_id)
    await play_run(
        store,
        run_id,
        pairs,
        profiles,
        settings,
        progress=progress,
        backend_factory=backend_factory,
    )
    return run_id


async def play_run(
    store: Store,
    run_id: int,
    pairs: Sequence[tuple[Scenario, Persona]],
    profiles: Sequence[ModelProfile],
    settings: RunSettings,
    *,
    progress: RunProgress | None = None,
    backend_factory: Callable[[ModelProfile], Backend] = create_backend,
) -> RunTally:
    """Play (or resume) run ``run_id``: every (scenario, repeat) not finished yet."""
    progress = progress or NullRunProgress()
    endpoints = Endpoints()
    for profile in profiles:
        endpoints.limit_for(profile)
    tally = RunTally(
        run_id=run_id,
        sessions_total=len(pairs) * settings.repeat,
        replies_total=sum(len(s.turns) for s, _ in pairs) * settings.repeat * len(profiles),
        limits=endpoints.limits,
    )
    player = _RunPlayer(store, run_id, profiles, settings, endpoints, tally, backend_factory)
    keepers = await player.hold_local_models() + await player.share_api_backends()
    store.runs.set_status(run_id, "running")
    progress.begin(tally)
    ticker = asyncio.create_task(_tick(progress, tally))
    items = items_of(pairs, settings.repeat)
    workers = settings.sessions_at_once or player.default_sessions_at_once()
    try:
        await asyncio.gather(*(player.work(items, progress) for _ in range(workers)))
        store.runs.set_status(run_id, "finished")
    except asyncio.CancelledError:
        store.runs.set_status(run_id, "interrupted")
        raise
    finally:
        ticker.cancel()
        for keeper in keepers:
            await keeper.aclose()
        progress.end(tally)
    return tally


async def _tick(progress: RunProgress, tally: RunTally) -> None:
    while True:
        await asyncio.sleep(progress.interval_s)
        progress.tick(tally)


class _RunPlayer:
    """Plays the sessions of one run: creates or resumes each, wraps its backends, counts."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        profiles: Sequence[ModelProfile],
        settings: RunSettings,
        endpoints: Endpoints,
        tally: RunTally,
        backend_factory: Callable[[ModelProfile], Backend],
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.profiles = list(profiles)
        self.settings = settings
        self.endpoints = endpoints
        self.tally = tally
        self.backend_factory = backend_factory
        self.shared: dict[ModelProfile, Backend] = {}
        """One loaded backend per API profile (and seed) for every session of the run: one SDK
        client whose connections stay open from one session to the next."""

    def default_sessions_at_once(self) -> int:
        """Every endpoint kept busy even while a session waits on its slowest pane."""
        ceilings = [limit.ceiling for limit in self.endpoints.limits.values()] or [1]
        return max(2, min(MAX_SESSIONS_AT_ONCE, 2 * max(ceilings) + 2))

    async def share_api_backends(self) -> list[Backend]:
        """Build and load the run's API backends once (see :attr:`shared`)."""
        seeds = (
            [None]
            if self.settings.seed is None
            else [self.settings.seed + r for r in range(self.settings.repeat)]
        )
        made: list[Backend] = []
        for profile in self.profiles:
            if profile.is_local:
                continue
            for seed in seeds:
                quiet = dataclasses.replace(seeded(profile, seed), max_retries=0)
                backend = self.backend_factory(quiet)
                if backend.unusable_reason() is None:
                    await backend.load()
                self.shared[quiet] = backend
                made.append(backend)
        return made

    async def hold_local_models(self) -> list[Backend]:
        """Load each local model once for the whole run (a pane's backend frees a model no one
        else holds; sessions come and go, the model stays), learning its engine's capacity."""
        keepers: list[Backend] = []
        seen: set[str] = set()
        for profile in self.profiles:
            if not profile.is_local:
                continue
            endpoint = endpoint_of(profile)
            if endpoint.key in seen:
                continue
            seen.add(endpoint.key)
            backend = self.backend_factory(profile)
            if backend.unusable_reason() is not None:
                continue
            try:
                await backend.load()
            except Exception:
                log.exception("loading %s for the run failed", profile.name)
                await backend.aclose()
                continue
            capacity = backend.parallel_capacity
            limit = self.endpoints.limit_for(profile)
            limit.set_ceiling(capacity if capacity is not None else DEFAULT_LOCAL_LIMIT)
            keepers.append(backend)
        return keepers

    async def work(self, items: Iterator[RunItem], progress: RunProgress) -> None:
        """Take the next item until there is none (the iterator is shared by every worker)."""
        for item in items:
            try:
                session_id, note = await self.play(item)
            except Exception as exc:  # one session's bug must not stop the others
                log.exception("session of %s failed", item.scenario.id)
                session_id, note = 0, f"failed: {type(exc).__name__}: {exc}"
            self.tally.sessions_done += 1
            progress.session_done(self.tally, session_id, item.scenario.id, note)

    def _factory(self, holder: list[int]) -> Callable[[ModelProfile], Backend]:
        """Backends for one session: the SDK retries off, the run's limits and retry layer."""

        def record(report: AttemptReport) -> None:
            self.tally.requests += 1
            if report.outcome == "retried":
                self.tally.retries += 1
            if holder:
                self.store.runs.add_attempt(
                    holder[0],
                    profile_name=report.profile_name,
                    turn=report.turn,
                    attempt=report.attempt,
                    endpoint=report.endpoint,
                    outcome=report.outcome,
                    error_kind=report.error_kind,
                    reason=report.reason,
                    duration_s=report.duration_s,
                )

        def make(profile: ModelProfile) -> Backend:
            quiet = dataclasses.replace(profile, max_retries=0)
            shared = self.shared.get(quiet)
            return RetryingBackend(
                shared or self.backend_factory(quiet),
                profile_name=profile.name,
                limit=self.endpoints.limit_for(profile),
                policy=self.settings.policy,
                on_attempt=record,
                shared=shared is not None,
            )

        return make

    def _open(self, item: RunItem, holder: list[int]) -> ComparisonSession | None:
        """The item's session, created or resumed; None when it is already finished."""
        seed = None if self.settings.seed is None else self.settings.seed + item.repeat
        profiles = [seeded(p, seed) for p in self.profiles]
        factory = self._factory(holder)
        existing = self.store.runs.session_of(self.run_id, item.scenario.id, item.repeat)
        if existing is not None and len(self.store.sessions.panes(existing)) != len(profiles):
            self.store.runs.remove_session(existing)  # a kill left it half created
            existing = None
        if existing is not None:
            turns = self.store.replies.turns(existing)
            unfinished = self.store.runs.unfinished_replies(existing)
            if len(turns) >= len(item.scenario.turns) and unfinished == 0:
                self.tally.replies_skipped += len(turns) * len(profiles)
                return None
            done = len(turns) * len(profiles) - unfinished
            self.tally.replies_skipped += done
            holder.append(existing)
            resumed = ComparisonSession.resume(
                self.store,
                existing,
                profiles={p.name: p for p in profiles},
                backend_factory=factory,
                rater=self.settings.rater or None,
            )
            resumed.reopen()
            return resumed
        session = ComparisonSession.create(
            self.store,
            item.persona,
            profiles,
            scenario=item.scenario,
            rater=self.settings.rater,
            backend_factory=factory,
            kind="run",
            seed=seed,
        )
        self.store.runs.attach(session.id, self.run_id, item.repeat)
        holder.append(session.id)
        return session

    async def play(self, item: RunItem) -> tuple[int, str]:
        """Play one session of the run to its end; returns its id and how it ended."""
        holder: list[int] = []
        session = self._open(item, holder)
        if session is None:
            return (holder[0] if holder else 0), "already done"
        started: set[int] = set()
        failures: list[str] = []

        def count(event: SessionEvent) -> None:
            if isinstance(event, PaneStarted):
                started.add(event.reply_id)
            elif isinstance(event, PaneFinished):
                self.tally.replies_ok += 1
            elif isinstance(event, PaneFailed) and event.reply_id is not None:
                if event.reply_id in started:
                    self.tally.replies_failed += 1
                    failures.append(event.reason)
                else:
                    self.tally.replies_blocked += 1

        session.subscribe(count)
        try:
            unusable = await session.play_scenario()
            if unusable is not None:
                self.tally.replies_failed += len(item.scenario.turns) * len(session.panes)
                return session.id, f"no pane can run ({unusable})"
        except Exception:
            session.finish("failed")
            raise
        finally:
            await session.aclose()
        if failures:
            return session.id, f"{len(failures)} failed ({failures[0]})"
        return session.id, "complete"


def run_pairs(
    settings: Mapping[str, Any],
    scenario_of: Callable[[str], Scenario],
    persona_of: Callable[[str], Persona],
) -> list[tuple[Scenario, Persona]]:
    """A recorded run's (scenario, persona) pairs, looked up again by id."""
    override = settings.get("persona")
    pairs = []
    for scenario_id in settings.get("scenarios", []):
        scenario = scenario_of(str(scenario_id))
        pairs.append((scenario, persona_of(str(override or scenario.persona))))
    return pairs
