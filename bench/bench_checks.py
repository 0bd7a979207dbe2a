"""How long all the Japanese checks take on a 2,000-character reply, against the 5 ms budget.

The reply is built from the seed page's real replies (``tests/data/seed_replies.toml``), joined in
page order and cut at 2,000 characters; the previous reply is the next 2,000 characters, so the
repeats-previous check does its full work. Two harder shapes run beside it: a reply that falls
into a loop, and one full of leaked markers and English. Afterwards the precision and recall of
each check on the labelled set are printed.

    .venv/bin/python bench/bench_checks.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kurabe.checks import run_checks  # noqa: E402
from personas import Persona  # noqa: E402
from tests.test_checks import format_scores, load_labelled_set, score  # noqa: E402

BUDGET_MS = 5.0
REPLY_CHARS = 2000


def time_checks(
    text: str, persona: Persona, previous: str, runs: int
) -> tuple[float, float, float, tuple[str, ...]]:
    """(mean ms, p95 ms, max ms, flag codes) over ``runs`` runs after a warm-up."""
    report = run_checks(text, persona, previous_reply=previous, completion_tokens=1100)
    for _ in range(20):
        run_checks(text, persona, previous_reply=previous, completion_tokens=1100)
    timings: list[float] = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        run_checks(
            text, persona, previous_reply=previous, finish_reason="stop", completion_tokens=1100
        )
        timings.append((time.perf_counter_ns() - start) / 1e6)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    return statistics.fmean(timings), p95, timings[-1], report.flag_codes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1000, help="timed runs per reply shape")
    args = parser.parse_args(argv)

    personas, cases = load_labelled_set()
    persona = personas["anime-fan"]
    seed = "\n".join(case.text for case in cases if case.source == "seed" and case.text.strip())
    if len(seed) < 2 * REPLY_CHARS:
        seed = (seed + "\n") * (2 * REPLY_CHARS // len(seed) + 1)
    loop_sentence = "ネコバスに乗ってトトロに会いに行きたいな。"
    leaky_lines = (
        "うん、好きだよ！\n### 指示:\nWhat is your favourite anime?\n### 応答:\n"
        "<|im_start|>assistant\nオタク: 鬼滅の刃かな。As an AI, I love it.\n"
    )
    shapes = {
        "seed replies": seed[:REPLY_CHARS],
        "looping reply": (seed[:400] + loop_sentence * 200)[:REPLY_CHARS],
        "leaks + English": (leaky_lines * 40)[:REPLY_CHARS],
    }
    previous = seed[REPLY_CHARS : 2 * REPLY_CHARS]

    print(f"run_checks on a {REPLY_CHARS}-character reply, {args.runs} runs each")
    print(f"{'reply':<16} {'mean ms':>8} {'p95 ms':>8} {'max ms':>8} {'p95/budget':>10}  flags")
    worst_p95 = 0.0
    for name, text in shapes.items():
        assert len(text) == REPLY_CHARS, name
        mean, p95, worst, flags = time_checks(text, persona, previous, args.runs)
        worst_p95 = max(worst_p95, p95)
        print(
            f"{name:<16} {mean:8.3f} {p95:8.3f} {worst:8.3f} {p95 / BUDGET_MS:10.2f}  "
            + ",".join(flags)
        )
    verdict = "within" if worst_p95 < BUDGET_MS else "OVER"
    print(
        f"worst p95 {worst_p95:.3f} ms = {worst_p95 / BUDGET_MS:.2f} x the {BUDGET_MS} ms budget "
        f"({verdict})"
    )

    print("\nAgreement with the labelled set (tests/data/seed_replies.toml):")
    for source in ("seed", "hard", "heldout"):
        print(format_scores(source, score((c for c in cases if c.source == source), personas)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
