"""``kurabe judge SESSION|last --judge PROFILE [--mode single|pairwise] [--rubric FILE]``: an LLM
judge scores a stored session's replies (single) or compares its panes turn by turn (pairwise,
both orders), next to the human rater; see :mod:`kurabe.judge.runner`.

Resumable: a second run skips what this judge already judged with the same rubric and mode. The
progress shows like ``kurabe replay``'s (rich on a terminal, plain lines otherwise). Exit status:
0 done (answers the judge gave in a wrong format are recorded as unparseable, never scored),
1 when some judgements failed on the judge's backend (run again to retry them), 2 configuration
error, 130 interrupted (every judgement made so far is saved).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from foundation.errors import KurabeError
from foundation.options import options_from
from kurabe.commands.shared_options import add_db_option, add_model_source_options

if TYPE_CHECKING:
    from kurabe.judge.answers import JudgeMode


def add_judge_options(parser: Any, *, prefix: str = "") -> None:
    """The options ``judge`` and ``replay --judge`` share (``prefix``: ``judge-`` for replay)."""
    parser.add_argument(
        f"--{prefix}mode",
        choices=("single", "pairwise"),
        default="single",
        help="single: a 1-5 score per reply; pairwise: each pair of panes, both orders",
    )
    parser.add_argument(
        f"--{prefix}rubric",
        metavar="FILE",
        default=None,
        help="judge rubric TOML (default: the bundled Japanese persona rubric)",
    )
    parser.add_argument(
        f"--{prefix}temperature",
        type=float,
        default=0.0,
        metavar="T",
        help="the judge's sampling temperature (default 0, as MT-Bench judges)",
    )
    parser.add_argument(
        f"--{prefix}attempts",
        type=int,
        default=3,
        metavar="N",
        help="answers asked for per judgement before it is recorded as unparseable (3)",
    )
    parser.add_argument(
        f"--{prefix}no-schema",
        action="store_true",
        help="no structured output: the rubric's prompt alone asks for the answer format",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "judge",
        help="an LLM judge scores or compares a session's replies",
        description="Judge a stored session with any model profile. SESSION is an id, or 'last'.",
    )
    parser.add_argument("session", metavar="SESSION", help="session id, or 'last'")
    parser.add_argument(
        "--judge",
        metavar="MODEL",
        required=True,
        help="the judge: a profile name, .gguf path, openai:MODEL, anthropic:MODEL or URL",
    )
    add_judge_options(parser)
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="ask again where the judge's earlier answers could not be parsed",
    )
    add_model_source_options(parser)
    add_db_option(parser)
    parser.add_argument(
        "--plain", action="store_true", help="plain progress lines even on a terminal"
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class JudgeSettings:
    """The options of :func:`add_judge_options` (``replay`` reads them prefixed ``judge_``)."""

    mode: JudgeMode = "single"
    rubric: str | None = None
    temperature: float = 0.0
    attempts: int = 3
    no_schema: bool = False


def make_judge(
    profile_name: str,
    models_file: str | None,
    settings: JudgeSettings,
    models_dirs: Sequence[str] | None = None,
) -> Any:
    """A :class:`kurabe.judge.runner.Judge` asking the model ``profile_name`` names (a profile
    or any model spec, :mod:`backends.model_specs`) with ``settings``."""
    from backends.model_specs import SPEC_FORMS, resolve_spec
    from kurabe.core.model_catalog import load_model_catalog
    from kurabe.judge.rubric import load_rubric
    from kurabe.judge.runner import Judge

    profiles = load_model_catalog(models_file, models_dirs).profiles
    profile = resolve_spec(profile_name, profiles)
    if profile is None:
        known = ", ".join(sorted(profiles))
        raise KurabeError(
            f"unknown judge profile {profile_name!r} (known: {known}; or {SPEC_FORMS})"
        )
    return Judge(
        profile,
        rubric=load_rubric(settings.rubric),
        mode=settings.mode,
        max_attempts=settings.attempts,
        temperature=settings.temperature,
        structured_output=not settings.no_schema,
    )


@dataclass(frozen=True)
class JudgeOptions:
    """``kurabe judge``'s options (the judge's settings are :class:`JudgeSettings`)."""

    session: str
    judge: str
    retry_failed: bool = False
    models_file: str | None = None
    models_dir: Sequence[str] | None = None
    db: str | None = None
    plain: bool = False


def run(args: argparse.Namespace) -> int:
    import asyncio

    from backends.api_errors import scrub_urls
    from kurabe.judge.progress import make_progress
    from kurabe.judge.runner import judge_sessions
    from kurabe.store.session_number import resolve_session_id
    from kurabe.store.store import Store

    options = options_from(JudgeOptions, args)
    judge = make_judge(
        options.judge, options.models_file, options_from(JudgeSettings, args), options.models_dir
    )
    with Store.open_default(options.db) as store:
        session_id = resolve_session_id(options.session, store)
        try:
            summaries = asyncio.run(
                judge_sessions(
                    store,
                    [session_id],
                    judge,
                    retry_failed=options.retry_failed,
                    progress=make_progress(options.plain),
                )
            )
        except KeyboardInterrupt:
            print(
                f"kurabe: interrupted; every judgement so far is saved (resume with: kurabe judge "
                f"{session_id} --judge {scrub_urls(options.judge)})",
                file=sys.stderr,
            )
            return 130
    return 1 if any(s.errors for s in summaries) else 0
