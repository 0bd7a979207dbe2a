"""``kurabe import FILE --format mt-bench-answers|mt-bench-judgments``: FastChat's model answers
and judgments into the database (:mod:`kurabe.importing.mtbench`), against the MT-Bench
questions imported as scenarios. Prints what went where, and how to see it."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO


def import_into_database(
    path: Path, fmt: str, out: TextIO, *, db: str | None, beside: str, blind: bool
) -> int:
    """Import ``path`` in ``fmt`` (``mt-bench-answers`` or ``mt-bench-judgments``)."""
    from kurabe.importing.mtbench import import_answers, import_judgments
    from kurabe.store.store import Store
    from personas.loader import load_personas
    from scenarios.loader import load_scenarios

    scenarios = dict(load_scenarios().items)
    with Store.open_default(db) as store:
        if fmt == "mt-bench-answers":
            personas = dict(load_personas().items)
            result = import_answers(store, path, scenarios, personas, beside=beside, blind=blind)
            models = sorted({model for _, _, model in result.placed})
            sessions = sorted({session for _, session, _ in result.placed})
            out.write(
                f"imported {len(result.placed)} answer(s) of {', '.join(models)} into"
                f" {len(sessions)} session(s) ({len(result.new_sessions)} new); no speed figures"
                " and no sampling: the answer file records neither\n"
            )
            out.write("rate them: kurabe --resume SESSION; list: kurabe sessions\n")
            return 0
        judged = import_judgments(store, path, scenarios)
    out.write(
        f"imported {judged.stored} judgment(s) by {', '.join(judged.judges) or 'no judge'}"
        f" on MT-Bench's 1-10 scale ({judged.failed} failed, kept without a score;"
        f" {judged.skipped} already there)\n"
    )
    out.write("see them: kurabe leaderboard --mt-bench\n")
    return 0
