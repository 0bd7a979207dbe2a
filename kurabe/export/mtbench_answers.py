"""``kurabe export --format mt-bench-answers``: a set of sessions' replies as FastChat model-answer
files, one per model (``<model>.jsonl``), which FastChat's ``gen_judgment.py`` reads from
``data/<bench>/model_answer/``; the judgments it writes come back with ``kurabe import``.

One line per question a model answered: ``question_id`` (from the scenario id ``mtbench-N``
written by the MT-Bench question importer), ``answer_id``, ``model_id`` (the file's name, as
FastChat names a model by its file), ``choices[0].turns`` (the newest complete reply of each
turn, in the question's turn order) and ``tstamp`` (when the last of them finished); imported
answers keep the ``answer_id`` and ``tstamp`` they came with. Sessions of
other scenarios, and answers with a turn missing or unfinished, are left out and counted.
Where several of the sessions hold one model's answer to one question, the newest session's
counts. A blind session not yet revealed is refused unless ``reveal_names``: the files name the
models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from foundation.errors import KurabeError
from kurabe.core.mt_bench import question_id_for
from kurabe.store.store import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def answer_model_id(profile_name: str) -> str:
    """A model's id in the files, and its file's name: the profile name with characters unsafe
    in a file name (``/``, ``:`` …) replaced by ``_``."""
    return _UNSAFE.sub("_", profile_name).strip("._") or "model"


@dataclass
class AnswerExport:
    """Model id -> its answer lines (question order); what was left out."""

    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    not_mt_bench: list[int] = field(default_factory=list)
    """Sessions whose scenario is not an imported MT-Bench question."""
    incomplete: list[str] = field(default_factory=list)
    """``question Q model M``: a turn missing or unfinished."""


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def collect_answers(
    store: Store, session_ids: Sequence[int], *, reveal_names: bool = False
) -> AnswerExport:
    """The answers of ``session_ids`` per model (see the module docstring)."""
    out = AnswerExport()
    chosen: dict[tuple[str, int | str], dict[str, Any]] = {}
    for session_id in sorted(session_ids):
        record = store.load_record(session_id)
        question = question_id_for(record.session.scenario_id)
        scenario = record.session.scenario_obj()
        if question is None or scenario is None:
            out.not_mt_bench.append(session_id)
            continue
        if record.session.hidden and not reveal_names:
            raise KurabeError(
                f"session {session_id} is blind and not revealed; the answer files name the"
                " models (--reveal-names exports it anyway)"
            )
        latest = record.latest_replies()
        by_scenario_turn = {t.scenario_turn: t for t in record.turns if t.scenario_turn is not None}
        for pane in record.panes:
            model = answer_model_id(pane.profile_name)
            texts: list[str] = []
            finished: list[float] = []
            for index in range(len(scenario.turns)):
                turn = by_scenario_turn.get(index)
                reply = latest.get((pane.position, turn.idx)) if turn is not None else None
                if reply is None or not reply.completed:
                    break
                texts.append(reply.text)
                stamp = _epoch(reply.finished_at)
                if stamp is not None:
                    finished.append(stamp)
            if len(texts) < len(scenario.turns):
                out.incomplete.append(f"question {question} model {model} (session {session_id})")
                continue
            imported = pane.settings.get("imported")
            origin = imported if isinstance(imported, dict) else {}
            chosen[(model, question)] = {
                "question_id": question,
                "answer_id": origin.get("answer_id") or f"kurabe-{session_id}-{pane.label}",
                "model_id": model,
                "choices": [{"index": 0, "turns": texts}],
                "tstamp": origin.get("tstamp") or (max(finished) if finished else None),
            }
    for (model, _), line in sorted(chosen.items(), key=lambda kv: (kv[0][0], _order(kv[0][1]))):
        out.answers.setdefault(model, []).append(line)
    return out


def _order(question: int | str) -> tuple[int, str]:
    return (question, "") if isinstance(question, int) else (1 << 62, question)


def answer_file_text(lines: Sequence[dict[str, Any]]) -> str:
    """One model's answer file: a JSON object a line, as FastChat writes it."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def write_answer_files(out_dir: Path, export: AnswerExport) -> list[Path]:
    """Write ``<model>.jsonl`` per model into ``out_dir`` (made if missing), each replaced in
    one step; returns the files written."""
    from kurabe.export.exporter import write_export

    if not export.answers:
        raise KurabeError("no complete MT-Bench answers in the chosen sessions; nothing written")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for model, lines in sorted(export.answers.items()):
        written.append(write_export(out_dir / f"{model}.jsonl", answer_file_text(lines)))
    return written
