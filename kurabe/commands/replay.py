"""``kurabe replay SCENARIO --models A,B [...]``: run a scenario across models without the TUI.

Prints a live display on a terminal and plain lines otherwise, then ``session <id>`` per run.
``--resume SESSION`` continues an interrupted replay from the first turn that has no completed
reply. ``--tag TAG`` replays every scenario with that tag, one after another (each its own
session): an imported question set (``kurabe import`` tags them ``mt-bench`` or
``elyza-tasks-100``) is one scenario per question, so that no answer leaks into the next prompt.
``--judge PROFILE`` has an LLM judge judge each session right after the replay (``--judge-mode``,
``--judge-rubric``, ``--judge-temperature``, ``--judge-attempts`` as in ``kurabe judge``; see
:mod:`kurabe.judge.runner`); ``kurabe judge SESSION`` resumes it if interrupted.
Exit status: 0 done, 2 configuration error (unknown scenario or model, no usable pane), 130
interrupted with Ctrl-C (everything so far is saved).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from foundation.errors import KurabeError
from foundation.options import options_from
from kurabe.commands.judge import add_judge_options
from kurabe.commands.shared_options import (
    add_db_option,
    add_model_source_options,
    add_models_option,
)
from kurabe.core.pane_labels import MAX_PANES


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run a scenario across models headless",
        description="Replay a scenario across models without the TUI; prints the session id.",
    )
    parser.add_argument("scenario", metavar="SCENARIO", nargs="?", help="scenario id")
    parser.add_argument(
        "--tag", metavar="TAG", help="replay every scenario with this tag, one after another"
    )
    add_models_option(parser)
    add_model_source_options(parser)
    add_db_option(parser)
    parser.add_argument("--seed", type=int, metavar="N", help="sampling seed for every pane")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="run the scenario N times (N sessions)"
    )
    parser.add_argument(
        "--resume", metavar="SESSION", default=argparse.SUPPRESS, help="continue a replay"
    )
    parser.add_argument("--rater", metavar="NAME", default=argparse.SUPPRESS, help="rater name")
    parser.add_argument(
        "--persona", metavar="ID", default=argparse.SUPPRESS, help="override the scenario's persona"
    )
    parser.add_argument(
        "--parallel-local",
        action="store_true",
        default=argparse.SUPPRESS,
        help="run local panes at the same time",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="fail a pane after S seconds without output (default 300; 0: never)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="plain progress lines even on a terminal"
    )
    parser.add_argument(
        "--judge", metavar="MODEL", default=None, help="judge each session after replaying it"
    )
    add_judge_options(parser, prefix="judge-")
    parser.set_defaults(func=run)


def choose_profiles(
    names: str | None, models_file: str | None, models_dirs: Sequence[str] | None = None
) -> list[Any]:
    """The models named in ``--models`` (comma-separated specs: profile names, GGUF paths,
    ``openai:MODEL`` …; see :mod:`backends.model_specs`), else the usable defaults."""
    from backends.model_specs import SPEC_FORMS, resolve_specs
    from kurabe.core.model_catalog import load_model_catalog

    profiles = load_model_catalog(models_file, models_dirs).profiles
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        resolved = resolve_specs(wanted, profiles)
        unknown = [spec for spec, profile in resolved if profile is None]
        if unknown:
            known = ", ".join(sorted(profiles))
            raise KurabeError(
                f"unknown model profile {', '.join(unknown)} (known: {known}; or {SPEC_FORMS})"
            )
        chosen = [profile for _, profile in resolved]
    else:
        chosen = [p for p in profiles.values() if p.default and p.missing_key_reason() is None]
    if not 1 <= len(chosen) <= MAX_PANES:
        raise KurabeError(f"choose 1 to {MAX_PANES} models with --models, got {len(chosen)}")
    return chosen


def chosen_scenarios(catalog: Any, scenario_id: str | None, tag: str | None) -> list[Any]:
    """The scenario named, or every scenario with ``tag`` (in catalog order); one, not both."""
    if scenario_id and tag:
        raise KurabeError("name a SCENARIO or give --tag, not both")
    if tag:
        tagged = [scenario for scenario in catalog if tag in scenario.tags]
        if not tagged:
            raise KurabeError(f"no scenario has the tag {tag!r} (see `kurabe scenarios`)")
        return tagged
    if not scenario_id:
        raise KurabeError("name a SCENARIO to replay (see `kurabe scenarios`), --tag, or --resume")
    return [catalog.get(scenario_id)]


def _progress(plain: bool) -> Any:
    from kurabe.session.replay import PlainProgress, RichProgress

    if not plain and sys.stdout.isatty():
        return RichProgress()
    return PlainProgress(sys.stdout)


async def _then_judge(replay: Any, store: Any, started: list[int], judge: Any, plain: bool) -> None:
    """The replay, then the judge over every session it made (one judge, loaded once)."""
    from kurabe.judge.progress import make_progress
    from kurabe.judge.runner import judge_sessions

    try:
        await replay
    except BaseException:
        await judge.aclose()
        raise
    await judge_sessions(store, list(started), judge, progress=make_progress(plain))


STORE_WAIT_S = 30.0
"""How long a replay waits for a database server that went away before it stops (resumable)."""


@dataclass(frozen=True)
class ReplayOptions:
    """``kurabe replay``'s options (the judge's settings, ``--judge-…``, are read apart)."""

    scenario: str | None = None
    tag: str | None = None
    models: str | None = None
    models_file: str | None = None
    models_dir: Sequence[str] | None = None
    db: str | None = None
    seed: int | None = None
    repeat: int = 1
    resume: str | None = None
    rater: str | None = None
    persona: str | None = None
    parallel_local: bool = False
    stall_timeout: float = 300.0
    plain: bool = False
    judge: str | None = None


def run(args: argparse.Namespace) -> int:
    import asyncio

    from kurabe.core.rating_config import resolve_rater
    from kurabe.session.replay import resume_replay, run_replay
    from kurabe.store.database import StoreUnavailable
    from kurabe.store.session_number import resolve_session_id
    from kurabe.store.store import Store

    options = options_from(ReplayOptions, args)
    models_file = options.models_file
    rater = resolve_rater(options.rater)
    parallel_local = options.parallel_local
    stall = options.stall_timeout if options.stall_timeout and options.stall_timeout > 0 else None
    resume = options.resume
    progress = _progress(options.plain)
    started: list[int] = []
    judge = None
    if options.judge:
        from kurabe.commands.judge import JudgeSettings, make_judge

        judge = make_judge(
            options.judge,
            models_file,
            options_from(JudgeSettings, args, prefix="judge_"),
            options.models_dir,
        )

    with Store.open_default(options.db) as store:
        if resume is not None:
            from backends.profiles import load_profiles

            session_id = resolve_session_id(resume, store, "--resume")
            profiles = load_profiles(models_file)
            started.append(session_id)
            coroutine: Any = resume_replay(
                store,
                session_id,
                profiles=profiles,
                rater=options.rater,
                parallel_local=parallel_local,
                progress=progress,
                stall_timeout_s=stall,
            )
        else:
            from personas.loader import load_personas
            from scenarios.loader import load_scenarios

            personas = load_personas()
            scenarios = chosen_scenarios(
                load_scenarios(personas=personas), options.scenario, options.tag
            )
            pairs = [
                (scenario, personas.get(options.persona or scenario.persona))
                for scenario in scenarios
            ]
            profiles_chosen = choose_profiles(options.models, models_file, options.models_dir)

            async def replay_each() -> None:
                for scenario, persona in pairs:
                    await run_replay(
                        store,
                        scenario,
                        persona,
                        profiles_chosen,
                        repeat=options.repeat,
                        seed=options.seed,
                        rater=rater,
                        parallel_local=parallel_local,
                        progress=progress,
                        stall_timeout_s=stall,
                        on_session=started.append,
                    )

            coroutine = replay_each()
        if judge is not None:
            coroutine = _then_judge(coroutine, store, started, judge, options.plain)
        # A team's server that restarts is waited for, statement by statement, this long.
        store.database.reconnect_s = STORE_WAIT_S
        try:
            asyncio.run(coroutine)
        except StoreUnavailable as exc:
            for session_id in started:
                print(f"session {session_id}", flush=True)
            print(
                f"kurabe: replay stopped: {exc} (waited {STORE_WAIT_S:g} s); what was saved"
                " before is kept"
                + (f" (resume with: kurabe replay --resume {started[-1]})" if started else ""),
                file=sys.stderr,
            )
            return 1
        except KeyboardInterrupt:
            for session_id in started:
                print(f"session {session_id}", flush=True)
            print(
                "kurabe: interrupted; everything so far is saved"
                + (f" (resume with: kurabe replay --resume {started[-1]})" if started else ""),
                file=sys.stderr,
            )
            return 130
    for session_id in started:
        print(f"session {session_id}", flush=True)
    return 0
