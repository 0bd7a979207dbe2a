"""How long all the Japanese checks take on a 2,000-character reply, against the 5 ms budget.

The reply is built from the hand-written comparison's real replies
(``tests/data/seed_replies.toml``), joined in page order and cut at 2,000 characters; the previous
reply is the rest of them (about 800 characters), so the repeats-previous check does its full work.
Two harder shapes run beside it: a reply that falls into a loop, and one full of leaked markers and
English. Afterwards the precision and recall of each check on the labelled set are printed.

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

from kurabe.checks.japanese import run_checks  # noqa: E402
from personas import Persona  # noqa: E402
from tests.test_checks import format_scores, load_labelled_set, score  # noqa: E402

BUDGET_MS = 5.0
REPLY_CHARS = 2000


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


def time_checks(text: str, persona: Persona, previous: str, runs: int) -> dict[str, float]:
    """Wall-clock and CPU milliseconds per call (mean, p95) over ``runs`` calls after a warm-up.

    CPU time (this thread's) leaves out the time the process waited for a core, which on a
    shared machine is most of the spread in wall-clock time.
    """
    for _ in range(20):
        run_checks(text, persona, previous_reply=previous, completion_tokens=1100)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        wall_start = time.perf_counter_ns()
        cpu_start = time.thread_time_ns()
        run_checks(
            text, persona, previous_reply=previous, finish_reason="stop", completion_tokens=1100
        )
        cpu.append((time.thread_time_ns() - cpu_start) / 1e6)
        wall.append((time.perf_counter_ns() - wall_start) / 1e6)
    wall.sort()
    cpu.sort()
    return {
        "wall_mean": statistics.fmean(wall),
        "wall_median": statistics.median(wall),
        "wall_p95": percentile(wall, 0.95),
        "cpu_mean": statistics.fmean(cpu),
        "cpu_p95": percentile(cpu, 0.95),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1000, help="timed runs per reply shape")
    args = parser.parse_args(argv)

    personas, cases = load_labelled_set()
    persona = personas["anime-fan"]
    seed = "\n".join(case.text for case in cases if case.source == "seed" and case.text.strip())
    if len(seed) <= REPLY_CHARS:
        raise SystemExit(f"the seed replies hold only {len(seed)} characters")
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
    previous = seed[REPLY_CHARS:]

    print(f"run_checks on a {REPLY_CHARS}-character reply, {args.runs} runs each; milliseconds")
    print(
        f"{'reply':<16} {'wall mean':>9} {'median':>7} {'p95':>7} {'cpu mean':>9} {'cpu p95':>8}"
        "  flags"
    )
    worst_wall = worst_cpu = 0.0
    for name, text in shapes.items():
        assert len(text) == REPLY_CHARS, name
        flags = run_checks(text, persona, previous_reply=previous).flag_codes
        t = time_checks(text, persona, previous, args.runs)
        worst_wall = max(worst_wall, t["wall_p95"])
        worst_cpu = max(worst_cpu, t["cpu_p95"])
        print(
            f"{name:<16} {t['wall_mean']:9.3f} {t['wall_median']:7.3f} {t['wall_p95']:7.3f} "
            f"{t['cpu_mean']:9.3f} {t['cpu_p95']:8.3f}  " + ",".join(flags)
        )
    for what, worst in (("wall-clock", worst_wall), ("CPU", worst_cpu)):
        verdict = "within" if worst < BUDGET_MS else "OVER"
        print(
            f"worst {what} p95 {worst:.3f} ms = {worst / BUDGET_MS:.2f} x the {BUDGET_MS:g} ms "
            f"budget ({verdict})"
        )

    print("\nAgreement with the labelled set (tests/data/seed_replies.toml):")
    for source in ("seed", "hard", "heldout"):
        print(format_scores(source, score((c for c in cases if c.source == source), personas)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
