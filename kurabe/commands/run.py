"""``kurabe run (--tag TAG | --imported | SCENARIO…) --models A,B [...]``: replay many scenarios
across models as one run, many sessions at once, at the speed the endpoints allow.

Every (scenario, repeat) is its own session, all sharing the run's id (``kurabe sessions``
shows it; ``kurabe export --run ID`` and ``kurabe leaderboard --run ID`` select it). Within a
session the turns go in order; sessions proceed at once, each endpoint limited to its
``concurrency`` (lowered on a 429, raised after successes). A failed request is retried as a
fresh one within ``--retries``; a reply that still fails is stored as failed and its pane's
conversation stops there. ``--resume RUN`` does only what is missing or failed.
Exit status: 0 done (failed replies included: they are stored and listed), 2 configuration
error, 130 interrupted with Ctrl-C (everything so far is saved; resume with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from foundation.errors import KurabeError
from foundation.options import options_from
from kurabe.commands.shared_options import (
    add_db_option,
    add_model_source_options,
    add_models_option,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="replay many scenarios across models at once (a run)",
        description="Replay scenarios (a tag, a list, or every imported question) across models "
        "as one run; sessions proceed at once within each endpoint's limit.",
    )
    parser.add_argument("scenarios", metavar="SCENARIO", nargs="*", help="scenario ids")
    parser.add_argument("--tag", metavar="TAG", help="every scenario with this tag")
    parser.add_argument(
        "--imported", action="store_true", help="every scenario not built in (imported questions)"
    )
    add_models_option(parser)
    add_model_source_options(parser)
    add_db_option(parser)
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="play each scenario N times"
    )
    parser.add_argument("--seed", type=int, metavar="N", help="sampling seed (repeat i uses N + i)")
    parser.add_argument(
        "--persona", metavar="ID", default=argparse.SUPPRESS, help="override every persona"
    )
    parser.add_argument("--rater", metavar="NAME", default=argparse.SUPPRESS, help="rater name")
    parser.add_argument(
        "--retries", type=int, default=4, metavar="N", help="retries per reply (default 4)"
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="retry a request after S seconds without output (default 120; 0: never)",
    )
    parser.add_argument(
        "--sessions-at-once",
        type=int,
        default=None,
        metavar="N",
        help="sessions in flight (default: enough to keep every endpoint busy)",
    )
    parser.add_argument("--resume", metavar="RUN", default=None, help="continue a run")
    parser.add_argument(
        "--plain", action="store_true", help="plain progress lines even on a terminal"
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class RunOptions:
    """``kurabe run``'s options."""

    scenarios: Sequence[str] = ()
    tag: str | None = None
    imported: bool = False
    models: str | None = None
    models_file: str | None = None
    models_dir: Sequence[str] | None = None
    db: str | None = None
    repeat: int = 1
    seed: int | None = None
    persona: str | None = None
    rater: str | None = None
    retries: int = 4
    stall_timeout: float = 120.0
    sessions_at_once: int | None = None
    resume: str | None = None
    plain: bool = False


def chosen(catalog: Any, ids: Sequence[str], tag: str | None, imported: bool) -> list[Any]:
    """The scenarios named, tagged or imported (catalog order for the last two); one way."""
    from foundation.catalog import BUILT_IN

    ways = sum((bool(ids), tag is not None, imported))
    if ways != 1:
        raise KurabeError("name SCENARIOs, or give --tag or --imported (one of them)")
    if ids:
        return [catalog.get(scenario_id) for scenario_id in ids]
    if tag is not None:
        found = [scenario for scenario in catalog if tag in scenario.tags]
        if not found:
            raise KurabeError(f"no scenario has the tag {tag!r} (see `kurabe scenarios`)")
        return found
    found = [scenario for scenario in catalog if scenario.source != BUILT_IN]
    if not found:
        raise KurabeError("no imported scenario (see `kurabe import`)")
    return found


def _progress(plain: bool) -> Any:
    from kurabe.runs.progress import PlainRunProgress, RichRunProgress

    if not plain and sys.stdout.isatty():
        return RichRunProgress()
    return PlainRunProgress(sys.stdout)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from kurabe.commands.replay import choose_profiles
    from kurabe.core.rating_config import resolve_rater
    from kurabe.runs.attempts import RetryPolicy
    from kurabe.runs.runner import RunSettings, play_run, run_pairs, start_run
    from kurabe.store.store import Store
    from personas.loader import load_personas
    from scenarios.loader import load_scenarios

    options = options_from(RunOptions, args)
    if options.retries < 0:
        raise KurabeError("--retries must be 0 or more")
    stall = options.stall_timeout if options.stall_timeout > 0 else None
    policy = RetryPolicy(retries=options.retries, stall_timeout_s=stall)
    personas = load_personas()
    catalog = load_scenarios(personas=personas)
    progress = _progress(options.plain)
    started: list[int] = []
    with Store.open_default(options.db) as store:
        if options.resume is not None:
            run_id = _run_id(options.resume, store)
            recorded = store.runs.get(run_id).settings
            settings = RunSettings(
                models=str(recorded.get("models") or ""),
                repeat=int(recorded.get("repeat") or 1),
                seed=recorded.get("seed"),
                persona=recorded.get("persona"),
                policy=policy,
                rater=resolve_rater(options.rater),
                sessions_at_once=options.sessions_at_once,
            )
            pairs = run_pairs(recorded, catalog.get, personas.get)
            profiles = choose_profiles(settings.models, options.models_file, options.models_dir)
            started.append(run_id)
            coroutine: Any = play_run(store, run_id, pairs, profiles, settings, progress=progress)
        else:
            if options.models is None:
                raise KurabeError("choose the models with --models A,B")
            scenarios = chosen(catalog, options.scenarios, options.tag, options.imported)
            pairs = [(s, personas.get(options.persona or s.persona)) for s in scenarios]
            profiles = choose_profiles(options.models, options.models_file, options.models_dir)
            settings = RunSettings(
                models=options.models,
                repeat=options.repeat,
                seed=options.seed,
                persona=options.persona,
                policy=policy,
                rater=resolve_rater(options.rater),
                sessions_at_once=options.sessions_at_once,
            )
            coroutine = start_run(
                store, pairs, profiles, settings, progress=progress, on_run=started.append
            )
        try:
            asyncio.run(coroutine)
        except KeyboardInterrupt:
            where = f" (resume with: kurabe run --resume {started[0]})" if started else ""
            print(f"kurabe: interrupted; everything so far is saved{where}", file=sys.stderr)
            return 130
        figures = store.runs.figures(started[0])
    print(
        f"run {started[0]}: {figures.replies_ok} replies, {figures.replies_failed} failed, "
        f"{figures.retries} retries, {figures.requests} requests",
        flush=True,
    )
    return 0


def _run_id(text: str, store: Any) -> int:
    if text == "last":
        latest = store.runs.latest_id()
        if latest is None:
            raise KurabeError("no run yet")
        return int(latest)
    try:
        run_id = int(text)
    except ValueError:
        raise KurabeError(f"--resume takes a run id or 'last', not {text!r}") from None
    store.runs.get(run_id)
    return run_id
