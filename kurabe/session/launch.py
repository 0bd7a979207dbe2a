"""What ``kurabe`` (no subcommand) needs before the app opens: profiles, personas, scenarios, the
store, and the session to show. No Textual here, so config errors surface as one line (a
:class:`~foundation.errors.KurabeError` that the command line prints, exit code 2) before any screen
is drawn.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backends import create_backend
from backends.base import Backend
from backends.model_specs import SPEC_FORMS, resolve_spec
from backends.profiles import ModelProfile
from backends.readiness import unusable_reason
from foundation.catalog import Catalog
from foundation.errors import ConfigError, KurabeError
from foundation.options import options_from
from kurabe.core.model_catalog import load_model_catalog
from kurabe.core.pane_labels import MAX_PANES
from kurabe.store.session_number import resolve_session_id
from personas import Persona
from scenarios import Scenario

if TYPE_CHECKING:
    from kurabe.session.comparison import ComparisonSession
    from kurabe.store.store import Store

DEFAULT_PERSONA = "anime-fan"

BackendFactory = Callable[[ModelProfile], Backend]


@dataclass
class AppContext:
    """Everything the app needs to open sessions: it outlives any one session."""

    store: Store
    profiles: dict[str, ModelProfile]
    personas: Catalog[Persona]
    scenarios: Catalog[Scenario]
    backend_factory: BackendFactory = create_backend
    blind: bool = False
    rater: str = ""
    parallel_local: bool = False
    score_labels: dict[int, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    judge_profile: ModelProfile | None = None
    """What the judge key (j) asks: ``--judge PROFILE``, else ``judge`` in config.toml."""
    judge_badge: str = "after-rating"
    warnings: list[str] = field(default_factory=list)
    """Problems worth telling once the app is up (a user persona file that did not load…)."""

    def new_session(
        self,
        persona: Persona,
        profiles: Sequence[ModelProfile],
        scenario: Scenario | None = None,
        *,
        blind: bool | None = None,
    ) -> ComparisonSession:
        from kurabe.session.comparison import ComparisonSession

        return ComparisonSession.create(
            self.store,
            persona,
            list(profiles),
            scenario=scenario,
            blind=self.blind if blind is None else blind,
            rater=self.rater,
            parallel_local=self.parallel_local,
            backend_factory=self.backend_factory,
        )


def default_profiles(profiles: dict[str, ModelProfile]) -> list[ModelProfile]:
    """The ``default = true`` profiles that can run now (API ones only with their key set)."""
    usable = [p for p in profiles.values() if p.default and unusable_reason(p) is None]
    if usable:
        return usable[:MAX_PANES]
    # Nothing usable: show the local defaults anyway, their panes say what is wrong.
    local = [p for p in profiles.values() if p.default and p.is_local]
    return (local or [p for p in profiles.values() if p.default])[:MAX_PANES]


def parse_models_option(value: str, profiles: dict[str, ModelProfile]) -> list[ModelProfile]:
    """``--models a,b,c``: 1–6 model specs (a profile name, a GGUF path, ``openai:MODEL``, a
    server URL …; see :mod:`backends.model_specs`); a spec may repeat."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not 1 <= len(names) <= MAX_PANES:
        raise KurabeError(f"--models takes 1 to {MAX_PANES} profile names, got {len(names)}")
    chosen = []
    for name in names:
        profile = resolve_spec(name, profiles)
        if profile is None:
            known = ", ".join(profiles)
            raise KurabeError(
                f"unknown model profile '{name}'; known profiles: {known}; or {SPEC_FORMS}"
            )
        chosen.append(profile)
    return chosen


@dataclass
class StartPlan:
    """The session to open: a new one, or one to resume."""

    persona: Persona
    profiles: list[ModelProfile]
    scenario: Scenario | None = None
    resume_id: int | None = None


@dataclass(frozen=True)
class AppOptions:
    """What ``kurabe`` (no subcommand) takes from the command line."""

    persona: str | None = None
    scenario: str | None = None
    models: str | None = None
    models_file: str | None = None
    models_dir: Sequence[str] | None = None
    db: str | None = None
    blind: bool = False
    rater: str | None = None
    resume: str | None = None
    parallel_local: bool = False
    judge: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace | AppOptions) -> AppOptions:
        return args if isinstance(args, AppOptions) else options_from(cls, args)


def build_context(
    args: argparse.Namespace | AppOptions,
    *,
    store: Store | None = None,
    backend_factory: BackendFactory = create_backend,
) -> AppContext:
    """Load profiles, personas, scenarios, rating config and open the store. Raises
    :class:`KurabeError` (one line) for anything the user must fix first."""
    from kurabe.core.rating_config import SCORE_LABELS_JA, load_rating_config
    from kurabe.store.store import Store
    from personas.loader import load_personas
    from scenarios.loader import load_scenarios

    options = AppOptions.from_args(args)
    catalog = load_model_catalog(options.models_file, options.models_dir or ())
    profiles = catalog.profiles
    personas = load_personas()
    scenarios = load_scenarios(personas=personas)
    warnings = [f"skipped {problem}" for problem in [*personas.problems, *scenarios.problems]]
    warnings += catalog.problems
    score_labels = dict(SCORE_LABELS_JA)
    tags: tuple[str, ...] = ()
    judge_name = options.judge
    judge_badge = "after-rating"
    try:
        config = load_rating_config()
        score_labels = dict(config.score_labels)
        tags = tuple(config.tags)
        judge_name = judge_name or config.judge
        judge_badge = config.judge_badge
    except ConfigError as exc:
        warnings.append(f"ignored {exc}")
    judge_profile = None
    if judge_name:
        judge_profile = resolve_spec(judge_name, profiles)
        if judge_profile is None:
            known = ", ".join(profiles)
            raise KurabeError(
                f"unknown judge profile '{judge_name}'; known profiles: {known}; or {SPEC_FORMS}"
            )
    if store is None:
        store = Store.open_default(options.db)
    return AppContext(
        store=store,
        profiles=profiles,
        personas=personas,
        scenarios=scenarios,
        backend_factory=backend_factory,
        blind=options.blind,
        rater=options.rater or "",
        parallel_local=options.parallel_local,
        score_labels=score_labels,
        tags=tags,
        judge_profile=judge_profile,
        judge_badge=judge_badge,
        warnings=warnings,
    )


def plan_start(args: argparse.Namespace | AppOptions, context: AppContext) -> StartPlan:
    """Which persona, scenario and panes ``kurabe`` opens with, from the command line."""
    options = AppOptions.from_args(args)
    resume = options.resume
    if resume:
        session_id = resolve_session_id(resume, context.store, "--resume")
        row = context.store.sessions.get(session_id)
        return StartPlan(
            persona=row.persona_obj(),
            profiles=[],
            scenario=row.scenario_obj(),
            resume_id=session_id,
        )
    scenario = None
    if options.scenario:
        scenario = context.scenarios.get(options.scenario)
    persona_id = options.persona or (scenario.persona if scenario else None)
    persona = context.personas.get(persona_id or DEFAULT_PERSONA)
    models = options.models
    if models:
        profiles = parse_models_option(models, context.profiles)
        for profile in profiles:  # the picker offers the specs given too
            context.profiles.setdefault(profile.name, profile)
    else:
        profiles = default_profiles(context.profiles)
        if not profiles:
            raise KurabeError("no default model profile; pass --models a,b,c")
    return StartPlan(persona=persona, profiles=profiles, scenario=scenario)


def open_session(plan: StartPlan, context: AppContext) -> ComparisonSession:
    from kurabe.session.comparison import ComparisonSession

    if plan.resume_id is not None:
        return ComparisonSession.resume(
            context.store,
            plan.resume_id,
            profiles=context.profiles,
            persona=plan.persona,
            scenario=plan.scenario,
            backend_factory=context.backend_factory,
            rater=context.rater or None,
            parallel_local=context.parallel_local,
        )
    return context.new_session(plan.persona, plan.profiles, plan.scenario)
