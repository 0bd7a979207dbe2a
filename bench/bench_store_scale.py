"""How ``kurabe sessions`` and the leaderboard grow with the store: 1,000 and 10,000 sessions, and
1,000, 10,000 and 100,000 battles.

Each size is a fresh SQLite store filled with synthetic but realistically shaped sessions: two
panes of six models with planted strengths, four turns, eight replies of a few hundred Japanese
characters (the hand-written comparison's real replies, ``tests/data/seed_replies.toml``, joined,
with the automatic checks' stored report), about 3% of them failed, a score per completed reply,
a best-of pick per turn drawn from the planted strengths (so four battles per session), a verdict
per pane; a third of the sessions blind, half of those revealed. The rows are written through the
store's :class:`~kurabe.store.database.Database` in one transaction, so building 10,000 sessions
takes seconds.

Then it times the listing (``store.sessions.summaries()`` and the command's own formatting,
:func:`kurabe.commands.sessions.table_lines`) and the leaderboard with its bootstrap
(:func:`kurabe.analysis.leaderboard.build_leaderboard`, 200 resamples), and prints the times and
the growth from the smallest size to the largest. It exits non-zero when 10,000 sessions take
over 2 s to list, when the listing grows by more than ×15 for ×10 sessions (clearly worse than
linear), or when the leaderboard over 100,000 battles takes over 30 s.

Every measurement is a function taking a :class:`~kurabe.store.store.Store`
(:func:`fill_store`, :func:`time_sessions`, :func:`time_leaderboard`), so another engine behind
the same ``Database`` seam is one more ``Store`` handed to them.

With ``--command`` it also times the whole ``kurabe leaderboard`` command in-process (the board
and the agreement figures it prints after it), for comparison, without a limit.

    .venv/bin/python bench/bench_store_scale.py [--memory] [--quick] [--command]
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kurabe.analysis.leaderboard import build_leaderboard  # noqa: E402
from kurabe.checks.japanese import run_checks  # noqa: E402
from kurabe.commands.sessions import table_lines  # noqa: E402
from kurabe.store.database import to_json  # noqa: E402
from kurabe.store.records import persona_to_dict  # noqa: E402
from kurabe.store.store import Store  # noqa: E402
from personas import Persona  # noqa: E402
from tests.test_checks import load_labelled_set  # noqa: E402

SESSION_SIZES = (1_000, 10_000)
BATTLE_SIZES = (1_000, 10_000, 100_000)
TURNS = 4
"""Turns per session: two panes, so eight replies and four battles (one pick per turn)."""
SESSIONS_LIMIT_S = 2.0
GROWTH_LIMIT = 15.0
LEADERBOARD_LIMIT_S = 30.0
MODELS = {
    "gpt-4": 1.0,
    "claude-3": 0.8,
    "elyza-7b": 0.0,
    "swallow-13b": 0.3,
    "weblab-10b": -0.6,
    "rinna-4b": -0.9,
}
"""Planted strengths, in log-odds: P(a beats b) = 1 / (1 + exp(b − a))."""
PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。返信は短くカジュアルなものにする必要があります。",
    char_name="オタク",
    register="casual",
    max_reply_chars=400,
)


def reply_texts(count: int = 12) -> list[tuple[str, str]]:
    """``count`` replies of a few hundred characters, each with its checks' JSON."""
    _, cases = load_labelled_set()
    texts = [case.text for case in cases if case.source == "seed" and case.text.strip()]
    rng = random.Random(1)
    out = []
    for _ in range(count):
        parts: list[str] = []
        while sum(map(len, parts)) < 250:
            parts.append(rng.choice(texts))
        text = "\n".join(parts)
        out.append((text, to_json(run_checks(text, PERSONA).to_dict())))
    return out


def fill_store(store: Store, sessions: int, *, seed: int = 0) -> None:
    """Write ``sessions`` synthetic sessions (see the module docstring) in one transaction."""
    rng = random.Random(seed)
    database = store.database
    persona_json = to_json(persona_to_dict(PERSONA))
    replies = reply_texts()
    names = list(MODELS)
    stamp = "2026-12-01T10:00:00.000+00:00"
    with database.transaction():
        for number in range(sessions):
            blind = number % 3 == 0
            session_id = database.insert(
                "INSERT INTO sessions (created_at, updated_at, kind, persona_id, persona_json,"
                " scenario_id, scenario_json, blind, revealed, rater, status, seed,"
                " kurabe_version) VALUES (?, ?, 'replay', ?, ?, ?, NULL, ?, ?, 'bench', ?, ?,"
                " 'bench')",
                (
                    stamp,
                    stamp,
                    PERSONA.id,
                    persona_json,
                    "seed-elyza" if number % 2 else None,
                    int(blind),
                    int(blind and number % 2 == 0),
                    "complete" if number % 10 else "open",
                    number,
                ),
            )
            pair = rng.sample(names, 2)
            pane_ids = [
                database.insert(
                    "INSERT INTO panes (session_id, position, label, profile_name, backend,"
                    " model, settings_json) VALUES (?, ?, ?, ?, 'openai', ?, ?)",
                    (session_id, position, "AB"[position], name, name, '{"temperature": 0.7}'),
                )
                for position, name in enumerate(pair)
            ]
            for idx in range(TURNS):
                turn_id = database.insert(
                    "INSERT INTO turns (session_id, idx, text, scenario_turn, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (session_id, idx, "ねえ、アニメ好きなの？", idx, stamp),
                )
                for pane_id in pane_ids:
                    text, checks = rng.choice(replies)
                    failed = rng.random() < 0.03
                    reply_id = database.insert(
                        "INSERT INTO replies (turn_id, pane_id, version, status, incomplete,"
                        " text, finish_reason, error, prompt_tokens, completion_tokens, ttft_s,"
                        " total_s, chars, chars_per_s, tokens_per_s, started_at, finished_at,"
                        " checks_json) VALUES (?, ?, 1, ?, ?, ?, ?, ?, 120, 180, 0.4, 3.2, ?,"
                        " 95.0, 56.0, ?, ?, ?)",
                        (
                            turn_id,
                            pane_id,
                            "failed" if failed else "complete",
                            int(failed),
                            text[:40] if failed else text,
                            None if failed else "stop",
                            "connection reset" if failed else None,
                            len(text),
                            stamp,
                            stamp,
                            "{}" if failed else checks,
                        ),
                    )
                    if not failed:
                        database.insert(
                            "INSERT INTO ratings (reply_id, score, tags_json, note, rater, blind,"
                            " created_at, kind) VALUES (?, ?, '[]', '', 'bench', ?, ?, 'human')",
                            (reply_id, rng.randint(1, 5), int(blind), stamp),
                        )
                strength_a, strength_b = (MODELS[name] for name in pair)
                draw = rng.random()
                if draw < 0.1:
                    winner, outcome = None, "tie"
                elif draw < 0.1 + 0.9 / (1 + 2.718281828459045 ** (strength_b - strength_a)):
                    winner, outcome = pane_ids[0], "pane"
                else:
                    winner, outcome = pane_ids[1], "pane"
                database.insert(
                    "INSERT INTO picks (turn_id, winner_pane_id, outcome, rater, blind,"
                    " created_at) VALUES (?, ?, ?, 'bench', ?, ?)",
                    (turn_id, winner, outcome, int(blind), stamp),
                )
            for pane_id in pane_ids:
                database.insert(
                    "INSERT INTO verdicts (pane_id, verdict, note, rater, blind, created_at)"
                    " VALUES (?, ?, '', 'bench', ?, ?)",
                    (pane_id, rng.choice(("great", "ok", "subpar")), int(blind), stamp),
                )


def timed(action: Callable[[], Any], *, memory: bool) -> tuple[float, float | None]:
    """Seconds ``action`` took, and its peak of Python allocations in MB when ``memory``."""
    gc.collect()
    if memory:
        tracemalloc.start()
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    peak = None
    if memory:
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return elapsed, peak


def time_sessions(store: Store, *, memory: bool = False) -> tuple[float, float | None]:
    """``kurabe sessions``' work on ``store``: the summaries and the command's formatting."""

    def listing() -> None:
        with redirect_stdout(io.StringIO()):
            for line in table_lines(store.sessions.summaries()):
                print(line)

    return timed(listing, memory=memory)


def time_leaderboard(store: Store, *, memory: bool = False) -> tuple[float, float | None]:
    """The leaderboard of ``store`` with its bootstrap intervals (200 resamples)."""
    return timed(lambda: build_leaderboard(store), memory=memory)


def time_leaderboard_command(db: str, *, memory: bool = False) -> tuple[float, float | None]:
    """``kurabe leaderboard --db DB`` in-process, output captured: the board and the agreement
    figures the command adds (:func:`kurabe.analysis.agreement.build_agreement`). Not judged
    against a limit here; printed for comparison."""
    from kurabe.cli import main

    def command() -> None:
        with redirect_stdout(io.StringIO()):
            main(["leaderboard", "--db", db])

    return timed(command, memory=memory)


def report(
    name: str, sizes: tuple[int, ...], unit: str, results: dict[int, tuple[float, float | None]]
) -> None:
    for size in sizes:
        seconds, peak = results[size]
        line = f"{name:12} {size:>8,} {unit:9} {seconds:8.2f} s"
        if peak is not None:
            line += f"  peak {peak:7.1f} MB"
        print(line, flush=True)


def growth(results: dict[int, tuple[float, float | None]], small: int, large: int) -> float:
    return results[large][0] / max(results[small][0], 1e-6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", action="store_true", help="also trace the peak allocations")
    parser.add_argument("--quick", action="store_true", help="only the smaller sizes")
    parser.add_argument(
        "--command",
        action="store_true",
        help="also time the whole `kurabe leaderboard` command (it adds the agreement figures)",
    )
    args = parser.parse_args()
    session_sizes = SESSION_SIZES[:1] if args.quick else SESSION_SIZES
    battle_sizes = BATTLE_SIZES[:2] if args.quick else BATTLE_SIZES
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kurabe-bench-") as folder:
        listing: dict[int, tuple[float, float | None]] = {}
        for size in session_sizes:
            with Store(Path(folder) / f"sessions-{size}.sqlite3") as store:
                started = time.perf_counter()
                fill_store(store, size)
                print(f"built {size:,} sessions in {time.perf_counter() - started:.1f} s")
                listing[size] = time_sessions(store, memory=args.memory)
        report("sessions", session_sizes, "sessions", listing)
        board: dict[int, tuple[float, float | None]] = {}
        commands: dict[int, tuple[float, float | None]] = {}
        for size in battle_sizes:
            with Store(Path(folder) / f"battles-{size}.sqlite3") as store:
                started = time.perf_counter()
                fill_store(store, size // TURNS, seed=size)
                print(f"built {size // TURNS:,} sessions in {time.perf_counter() - started:.1f} s")
                board[size] = time_leaderboard(store, memory=args.memory)
            if args.command:
                commands[size] = time_leaderboard_command(str(store.path), memory=args.memory)
        report("leaderboard", battle_sizes, "battles", board)
        if args.command:
            report("command", battle_sizes, "battles", commands)
    if len(session_sizes) > 1:
        factor = growth(listing, session_sizes[0], session_sizes[-1])
        print(f"sessions growth ×{factor:.1f} for ×10 sessions")
        if factor > GROWTH_LIMIT:
            failures.append(f"listing grows ×{factor:.1f} for ×10 sessions (limit ×15)")
        if listing[session_sizes[-1]][0] > SESSIONS_LIMIT_S:
            failures.append(f"10,000 sessions listed in over {SESSIONS_LIMIT_S:.0f} s")
    for size in battle_sizes[1:]:
        factor = growth(board, battle_sizes[0], size)
        print(f"leaderboard growth ×{factor:.1f} from {battle_sizes[0]:,} to {size:,} battles")
    if battle_sizes[-1] == 100_000 and board[100_000][0] > LEADERBOARD_LIMIT_S:
        failures.append(f"leaderboard over 100,000 battles took over {LEADERBOARD_LIMIT_S:.0f} s")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
