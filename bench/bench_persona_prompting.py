"""Does the few-shot transcript make the embedded base model a better character? (issue 17)

Replays ``seed-gpt4`` and ``seed-elyza`` on the embedded Gemma 3 270M with two pairs of panes,
three seeds each (``kurabe replay SCENARIO --models A,B --seed N`` against a temporary
``KURABE_HOME``), and reports per pane, from kurabe's own checks (the reports stored with each
reply, :mod:`kurabe.checks.japanese`):

* **Japanese**: the share of replies that are mostly Japanese (Japanese share at least
  :data:`~kurabe.checks.japanese.NOT_JAPANESE_BELOW`; an empty reply is not);
* **register**: the share whose register is the persona's (``casual`` for the anime fan;
  ``unknown`` and ``mixed`` are not);
* **length**: the share with some text and at most the persona's ``max_reply_chars``.

The pairs:

* **before**, the old default panes, as they prompted before personas had examples: Gemma's chat
  template (``gemma-270m``) and the Llama-2 ``<<SYS>>`` format (``gemma-270m-llama2``), both with
  ``examples_as = "none"`` (written to a temporary models file);
* **after**, the new default panes as built in: ``gemma-270m`` (the chat template, the persona's
  examples as prior turns) and ``gemma-270m-transcript`` (the few-shot transcript).

Exit status 1 when the transcript pane is not better than both "before" panes on all three
(where a "before" pane is already at 100%, equal counts).
It loads the real model (with ``OMP_WAIT_POLICY=PASSIVE`` unless set: only the replies count, and
on a shared machine passive waiting is ten times faster); run it once. The two pairs can run as
two processes (``--pair before`` and ``--pair after``, each with its own ``--keep DIR``) and be
reported together with ``--tally DB DB``; only finished sessions count.

    .venv/bin/python bench/bench_persona_prompting.py [--seeds 1,2,3] [--keep DIR]
        [--pair before|after|both] [--tally DB ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCENARIOS = ("seed-gpt4", "seed-elyza")
BEFORE = ("gemma-270m-before", "gemma-270m-llama2-before")
AFTER = ("gemma-270m", "gemma-270m-transcript")
FEW_SHOT = "gemma-270m-transcript"
BEFORE_PROFILES = """
[models.gemma-270m-before]
backend = "llama_cpp"
model = "embedded:gemma-3-270m-q4_k_m"
prompt_format = "gguf"
n_ctx = 2048
examples_as = "none"
[models.gemma-270m-before.sampling]
max_tokens = 160

[models.gemma-270m-llama2-before]
backend = "llama_cpp"
model = "embedded:gemma-3-270m-q4_k_m"
prompt_format = "llama2-sys"
n_ctx = 2048
examples_as = "none"
[models.gemma-270m-llama2-before.sampling]
max_tokens = 160
"""
METRICS = ("japanese", "register", "length")


@dataclass
class Tally:
    replies: int = 0
    japanese: int = 0
    register: int = 0
    length: int = 0

    def share(self, metric: str) -> float:
        return getattr(self, metric) / self.replies if self.replies else 0.0


def replay_all(home: Path, seeds: Sequence[int], pairs: Sequence[tuple[str, str]]) -> Path:
    """Run every replay of ``pairs`` into one database under ``home``; return its path."""
    from kurabe.cli import main

    models_file = home / "before-models.toml"
    models_file.write_text(BEFORE_PROFILES, encoding="utf-8")
    db = home / "bench.sqlite3"
    for pair in pairs:
        for scenario in SCENARIOS:
            for seed in seeds:
                args = ["replay", scenario, "--models", ",".join(pair), "--seed", str(seed)]
                args += ["--models-file", str(models_file), "--db", str(db), "--plain"]
                print("#", " ".join(args), flush=True)
                code = main(args)
                if code != 0:
                    raise SystemExit(f"kurabe replay exited {code}")
    return db


def tally(databases: Sequence[Path]) -> dict[str, Tally]:
    """Per profile name, what the stored checks say of the newest version of every reply of a
    finished session."""
    from kurabe.store.store import Store

    tallies: dict[str, Tally] = {}
    for db in databases:
        with Store(db) as store:
            for session_id in store.sessions.ids():
                tally_session(store.load_record(session_id), tallies)
    return tallies


def tally_session(record: Any, tallies: dict[str, Tally]) -> None:
    """Add one session's replies to ``tallies`` (nothing when it did not finish)."""
    from kurabe.checks.japanese import NOT_JAPANESE_BELOW
    from kurabe.checks.report import load_check_report

    if record.session.status != "finished":
        return
    persona = record.session.persona_obj()
    names = {pane.position: pane.profile_name for pane in record.panes}
    for (pane, _turn), reply in sorted(record.latest_replies().items()):
        report = load_check_report(reply.checks)
        counts = tallies.setdefault(names[pane], Tally())
        counts.replies += 1
        if report is None or "empty" in report.flag_codes:
            continue
        share = report.japanese_share
        counts.japanese += share is not None and share >= NOT_JAPANESE_BELOW
        counts.register += report.register == persona.register
        limit = persona.max_reply_chars
        counts.length += limit is None or report.chars <= limit


def table(tallies: dict[str, Tally]) -> str:
    lines = [
        "| pair | pane | replies | mostly Japanese | persona's register | within length |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for pair_name, pair in (("before", BEFORE), ("after", AFTER)):
        for name in pair:
            counts = tallies.get(name, Tally())
            cells = " | ".join(
                f"{counts.share(m):.0%} ({getattr(counts, m)}/{counts.replies})" for m in METRICS
            )
            lines.append(f"| {pair_name} | {name} | {counts.replies} | {cells} |")
    return "\n".join(lines)


def few_shot_is_better(tallies: dict[str, Tally]) -> bool:
    """Better than each old pane on each measure; equal is enough where that pane is at 100%."""
    few_shot = tallies.get(FEW_SHOT, Tally())
    if not few_shot.replies:
        return False
    for metric in METRICS:
        for name in BEFORE:
            old = tallies.get(name, Tally())
            if not old.replies:
                return False
            ours, theirs = few_shot.share(metric), old.share(metric)
            if ours < theirs or (ours == theirs and theirs < 1.0):
                return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3", help="sampling seeds (default 1,2,3)")
    parser.add_argument("--keep", metavar="DIR", help="use DIR as KURABE_HOME and keep it")
    parser.add_argument("--pair", choices=("before", "after", "both"), default="both")
    parser.add_argument("--tally", nargs="+", type=Path, metavar="DB", help="only report these")
    args = parser.parse_args(argv)
    pairs = {"before": [BEFORE], "after": [AFTER], "both": [BEFORE, AFTER]}[args.pair]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    from foundation.paths import CACHE_ENV, HOME_ENV, cache_dir

    # The assembled model stays where it is; everything else goes to the temporary home.
    os.environ.setdefault(CACHE_ENV, str(cache_dir()))
    # Only the replies count here, not the speed: on a shared machine llama.cpp's spinning
    # threads slow it tenfold (README, Benchmarks), waiting passively does not.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.tally:
        tallies = tally(args.tally)
    else:
        with tempfile.TemporaryDirectory(prefix="kurabe-bench-persona-") as scratch:
            home = Path(args.keep) if args.keep else Path(scratch)
            home.mkdir(parents=True, exist_ok=True)
            os.environ[HOME_ENV] = str(home)
            tallies = tally([replay_all(home, seeds, pairs)])
    print()
    print(table(tallies))
    better = few_shot_is_better(tallies)
    print()
    verdict = "yes" if better else "NO"
    print(f"few-shot transcript better than both old panes on all three: {verdict}")
    print("(Japanese share at least 70%; the register is the persona's; within max_reply_chars)")
    return 0 if better else 1


if __name__ == "__main__":
    sys.exit(main())
