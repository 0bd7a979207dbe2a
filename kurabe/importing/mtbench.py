"""MT-Bench's published files in: model answers, reference answers and judgments (FastChat's
``fastchat/llm_judge/data/<bench>/``, one JSON object a line).

- **Model answers** (``model_answer/<model>.jsonl``: ``question_id``, ``answer_id``,
  ``model_id``, ``choices[0].turns``, ``tstamp``) become replies of a pane named by the
  ``model_id``, in a session of the question's scenario (``mtbench-<question_id>``, written by
  ``kurabe import --format mt-bench``). One session per question, so that a rater compares the
  models answer by answer: the first answer file makes an ``imported`` session, the next ones add
  their pane to it (``beside="imported"``), so two files for the same questions rate side by side,
  blind like any session. With ``beside="latest"`` the pane joins the question's newest session of
  any kind, e.g. a run's, beside its replies. The pane is marked imported: backend ``imported``,
  no speed figures and no sampling (FastChat's files record neither, and kurabe says so rather
  than invent them). The automatic Japanese checks run on each reply, as on any.
- **Reference answers** (``reference_answer/gpt-4.jsonl``, the model-answer shape) are read by
  :func:`read_references` and go into the questions' scenarios with them
  (``kurabe import question.jsonl --format mt-bench --reference gpt-4.jsonl``).
- **Judgments** (``model_judgment/gpt-4_single.jsonl``, ``gpt-4_pair.jsonl``) are stored as judge
  ratings under the judge's name (``judge:gpt-4``) on their own 1–10 scale
  (:mod:`kurabe.store.imported_judgements`); a score of -1 is kept as a failed judgment. Each is
  attached to the reply of its model (the pane named so) for its question and turn, in the
  newest session that has it.

Every file is read and checked whole before anything is written, and written in one
transaction: a malformed line is an error naming the file and line, question ids that were never
imported are one error naming them, and nothing is half-imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import ConfigError, KurabeError
from kurabe.checks.japanese import run_checks
from kurabe.core.mt_bench import scenario_id_for
from kurabe.core.pane_labels import MAX_PANES, PANE_LABELS
from kurabe.importing.questions import Record, jsonl_records, read_text
from kurabe.store.imported_judgements import PAIR_WINNERS
from kurabe.store.records import ReplyFigures, SessionRecord
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario

IMPORTED_BACKEND = "imported"
"""The backend of a pane whose replies were imported, not generated here."""
IMPORTED_KIND = "imported"
"""The kind of a session made by importing answers."""
IMPORTED_FINISH = "imported"
"""The finish reason of an imported reply."""
NOT_RECORDED = "not recorded: imported from an MT-Bench answer file, which has none"
FAILED_SCORE = -1
"""FastChat's score for a judgment whose answer held no ``[[rating]]``."""
BESIDE_CHOICES = ("imported", "latest")


@dataclass(frozen=True)
class ModelAnswer:
    """One line of a model-answer (or reference-answer) file."""

    question_id: str
    model_id: str
    turns: tuple[str, ...]
    answer_id: str
    tstamp: float | None
    line: int


@dataclass(frozen=True)
class SingleJudgment:
    """One line of ``gpt-4_single.jsonl``."""

    question_id: str
    model: str
    judge: str
    prompt_name: str
    score: int | None
    """None: FastChat's -1, a failed judgment."""
    turn: int
    judgment: str
    tstamp: float | None
    line: int


@dataclass(frozen=True)
class PairJudgment:
    """One line of ``gpt-4_pair.jsonl``."""

    question_id: str
    model_1: str
    model_2: str
    g1_winner: str
    g2_winner: str
    judge: str
    prompt_name: str
    turn: int
    g1_judgment: str
    g2_judgment: str
    tstamp: float | None
    line: int


Judgment = SingleJudgment | PairJudgment


@dataclass
class AnswerImport:
    """What :func:`import_answers` wrote: (question id, session id, model) per answer."""

    placed: list[tuple[str, int, str]] = field(default_factory=list)
    new_sessions: list[int] = field(default_factory=list)


@dataclass
class JudgmentImport:
    """What :func:`import_judgments` wrote."""

    stored: int = 0
    failed: int = 0
    """Of ``stored``: failed judgments (score -1, or a pairwise ``error``), kept as such."""
    skipped: int = 0
    """Already imported (same judge, prompt, replies), not written twice."""
    judges: list[str] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------------


def _question_id(record: Record) -> str:
    value = record.data.get("question_id")
    if value is None:
        raise record.error("question_id", "required field missing")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise record.error("question_id", "expected a number or a non-empty string")
    return str(value).strip()


def _tstamp(record: Record) -> float | None:
    value = record.data.get("tstamp")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise record.error("tstamp", "expected a number (seconds since the epoch)")
    return float(value)


def _name(record: Record, key: str) -> str:
    return record.one_line(key, record.data.get(key)) if record.has(key) else _missing(record, key)


def _missing(record: Record, key: str) -> str:
    raise record.error(key, "required field missing")


def _turn_texts(record: Record) -> tuple[str, ...]:
    choices = record.data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise record.error("choices", "expected a non-empty array of objects with 'turns'")
    turns = choices[0].get("turns")
    if not isinstance(turns, list) or not turns:
        raise record.error("choices[0].turns", "expected a non-empty array of strings")
    return tuple(
        record.check_text(f"choices[0].turns[{index}]", text, non_empty=False)
        for index, text in enumerate(turns)
    )


def read_model_answers(path: Path) -> list[ModelAnswer]:
    """Every answer in a model-answer file, checked; a second answer of one model to one
    question is an error naming both lines."""
    out: list[ModelAnswer] = []
    seen: dict[tuple[str, str], int] = {}
    for record in jsonl_records(path, read_text(path)):
        question = _question_id(record)
        model = _name(record, "model_id")
        answer_id = record.data.get("answer_id")
        if answer_id is not None and not isinstance(answer_id, (str, int)):
            raise record.error("answer_id", "expected a string")
        key = (question, model)
        if key in seen:
            raise record.error(
                "question_id",
                f"a second answer of {model} to {question} (first on line {seen[key]})",
            )
        seen[key] = record.line
        out.append(
            ModelAnswer(
                question_id=question,
                model_id=model,
                turns=_turn_texts(record),
                answer_id="" if answer_id is None else str(answer_id),
                tstamp=_tstamp(record),
                line=record.line,
            )
        )
    if not out:
        raise ConfigError(path, "no answers in the file (one JSON object a line)")
    return out


def read_references(path: Path) -> dict[str, tuple[str, ...]]:
    """Question id -> reference answer per turn, from ``reference_answer/gpt-4.jsonl``."""
    return {answer.question_id: answer.turns for answer in read_model_answers(path)}


def _judge(record: Record) -> tuple[str, str]:
    value = record.data.get("judge")
    if isinstance(value, str) and value.strip():
        return value.strip(), ""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(part, str) for part in value)
        and value[0].strip()
    ):
        return value[0].strip(), str(value[1]) if len(value) > 1 else ""
    raise record.error("judge", "expected [judge model, prompt name]")


def _turn(record: Record) -> int:
    value = record.data.get("turn", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise record.error("turn", "expected 1 or 2")
    return value


def _score(record: Record) -> int | None:
    value = record.data.get("score")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise record.error("score", "expected a number 1-10, or -1 for a failed judgment")
    if value == FAILED_SCORE:
        return None
    if value != int(value) or not 1 <= value <= 10:
        raise record.error(
            "score", f"{value} is not an integer 1-10 (MT-Bench's scale; -1 marks a failure)"
        )
    return int(value)


def _winner(record: Record, key: str) -> str:
    value = record.data.get(key)
    if value not in PAIR_WINNERS:
        raise record.error(key, f"expected one of {', '.join(PAIR_WINNERS)}, got {value!r}")
    return str(value)


def _text(record: Record, key: str) -> str:
    value = record.data.get(key)
    return "" if value is None else record.check_text(key, value, non_empty=False)


def read_judgments(path: Path) -> list[Judgment]:
    """Every judgment in a FastChat judgment file: single lines (``model``, ``score``) or
    pairwise lines (``model_1``, ``model_2``, ``g1_winner``, ``g2_winner``), checked."""
    out: list[Judgment] = []
    for record in jsonl_records(path, read_text(path)):
        question = _question_id(record)
        judge, prompt_name = _judge(record)
        if record.has("model_1") or record.has("model_2"):
            out.append(
                PairJudgment(
                    question_id=question,
                    model_1=_name(record, "model_1"),
                    model_2=_name(record, "model_2"),
                    g1_winner=_winner(record, "g1_winner"),
                    g2_winner=_winner(record, "g2_winner"),
                    judge=judge,
                    prompt_name=prompt_name,
                    turn=_turn(record),
                    g1_judgment=_text(record, "g1_judgment"),
                    g2_judgment=_text(record, "g2_judgment"),
                    tstamp=_tstamp(record),
                    line=record.line,
                )
            )
        elif record.has("model"):
            out.append(
                SingleJudgment(
                    question_id=question,
                    model=_name(record, "model"),
                    judge=judge,
                    prompt_name=prompt_name,
                    score=_score(record),
                    turn=_turn(record),
                    judgment=_text(record, "judgment"),
                    tstamp=_tstamp(record),
                    line=record.line,
                )
            )
        else:
            raise record.error(None, "neither a single judgment (model) nor a pair (model_1)")
    if not out:
        raise ConfigError(path, "no judgments in the file (one JSON object a line)")
    return out


def _unknown_questions(path: Path, questions: Iterable[str], known: Mapping[str, Any]) -> None:
    missing = sorted({q for q in questions if scenario_id_for(q) not in known}, key=_natural)
    if missing:
        raise KurabeError(
            f"{path}: question_id(s) not among the imported questions: {', '.join(missing)}"
            " (import question.jsonl with --format mt-bench first); nothing imported"
        )


def _natural(question: str) -> tuple[int, str]:
    return (int(question), "") if question.isdigit() else (1 << 62, question)


# -- model answers -----------------------------------------------------------------------------


def _target_session(store: Store, scenario_id: str, beside: str) -> int | None:
    for session_id in reversed(store.sessions.ids(scenario=scenario_id)):
        if beside == "latest" or store.sessions.get(session_id).kind == IMPORTED_KIND:
            return session_id
    return None


def _pane_settings(path: Path, answer: ModelAnswer) -> dict[str, Any]:
    """The pane's stored settings: a profile that resumes (its backend ``imported`` cannot
    generate, and the pane says so), where the answers came from, and what was not recorded."""
    return {
        "profile": {
            "name": answer.model_id,
            "backend": IMPORTED_BACKEND,
            "model": answer.model_id,
            "description": f"answers imported from {path.name}; {NOT_RECORDED}",
            "source": f"imported: {path.name}",
        },
        "imported": {
            "format": "mt-bench model answer",
            "file": path.name,
            "line": answer.line,
            "model_id": answer.model_id,
            "answer_id": answer.answer_id,
            "tstamp": answer.tstamp,
        },
        "sampling": NOT_RECORDED,
        "speed": NOT_RECORDED,
    }


def import_answers(
    store: Store,
    path: Path,
    scenarios: Mapping[str, Scenario],
    personas: Mapping[str, Persona],
    *,
    beside: str = "imported",
    blind: bool = False,
    rater: str = "",
) -> AnswerImport:
    """Import a model-answer file (see the module docstring); ``scenarios`` and ``personas`` by
    id. Everything is checked first, then written in one transaction."""
    if beside not in BESIDE_CHOICES:
        raise KurabeError(f"--beside is one of {', '.join(BESIDE_CHOICES)}")
    answers = read_model_answers(path)
    _unknown_questions(path, (a.question_id for a in answers), scenarios)
    plan: list[tuple[ModelAnswer, Scenario, int | None]] = []
    for answer in answers:
        scenario = scenarios[scenario_id_for(answer.question_id)]
        if len(answer.turns) > len(scenario.turns):
            raise ConfigError(
                path,
                f"{len(answer.turns)} answers for question {answer.question_id}, which has"
                f" {len(scenario.turns)} turn(s)",
                line=answer.line,
                key="choices[0].turns",
            )
        if scenario.persona not in personas:
            raise KurabeError(f"scenario {scenario.id}: unknown persona '{scenario.persona}'")
        target = _target_session(store, scenario.id, beside)
        if target is not None:
            panes = store.sessions.panes(target)
            if any(p.profile_name == answer.model_id for p in panes):
                raise ConfigError(
                    path,
                    f"session {target} (question {answer.question_id}) already has a pane"
                    f" {answer.model_id}; nothing imported",
                    line=answer.line,
                )
            if len(panes) >= MAX_PANES:
                raise ConfigError(
                    path,
                    f"session {target} (question {answer.question_id}) already has"
                    f" {MAX_PANES} panes; nothing imported",
                    line=answer.line,
                )
        plan.append((answer, scenario, target))
    result = AnswerImport()
    with store.database.transaction():
        for answer, scenario, target in plan:
            session_id = target
            if session_id is None:
                session_id = store.sessions.create(
                    personas[scenario.persona],
                    scenario,
                    blind=blind,
                    rater=rater,
                    kind=IMPORTED_KIND,
                )
                store.sessions.set_status(session_id, "finished")
                result.new_sessions.append(session_id)
            _add_answer(store, session_id, path, answer, scenario)
            result.placed.append((answer.question_id, session_id, answer.model_id))
    return result


def _add_answer(
    store: Store, session_id: int, path: Path, answer: ModelAnswer, scenario: Scenario
) -> None:
    position = len(store.sessions.panes(session_id))
    pane_id = store.sessions.add_pane(
        session_id,
        position,
        PANE_LABELS[position],
        profile_name=answer.model_id,
        backend=IMPORTED_BACKEND,
        model=answer.model_id,
        settings=_pane_settings(path, answer),
    )
    store.sessions.update_pane(
        pane_id, header=f"{answer.model_id} · imported · no speed figures, no sampling recorded"
    )
    persona = store.sessions.get(session_id).persona_obj()
    previous: str | None = None
    turns = {t.scenario_turn: t for t in store.replies.turns(session_id)}
    next_idx = max((t.idx for t in turns.values()), default=-1) + 1
    for index, text in enumerate(answer.turns):
        turn = turns.get(index)
        if turn is None:
            turn_id = store.replies.add_turn(
                session_id, next_idx, scenario.turns[index].text, index
            )
            next_idx += 1
        else:
            turn_id = turn.id
        reply_id, _ = store.replies.start_reply(turn_id, pane_id)
        store.replies.finish_reply(
            reply_id,
            text=text,
            finish_reason=IMPORTED_FINISH,
            figures=ReplyFigures(chars=len(text)),
            checks=run_checks(text, persona, previous_reply=previous or None).to_dict(),
        )
        previous = text
    store.sessions.add_event(
        session_id,
        "import",
        {"file": path.name, "line": answer.line, "model_id": answer.model_id},
    )


# -- judgments ---------------------------------------------------------------------------------


@dataclass
class _Answers:
    """The replies judgments attach to: (question, model, turn) -> (turn id, reply id), from the
    newest session of each question that has the model's pane."""

    store: Store
    records: dict[str, list[SessionRecord]] = field(default_factory=dict)

    def sessions_of(self, question: str) -> list[SessionRecord]:
        if question not in self.records:
            ids = self.store.sessions.ids(scenario=scenario_id_for(question))
            self.records[question] = [self.store.load_record(i) for i in reversed(ids)]
        return self.records[question]

    def reply(self, question: str, model: str, turn: int) -> tuple[int, int] | None:
        for record in self.sessions_of(question):
            latest = record.latest_replies()
            for pane in record.panes:
                if pane.profile_name != model:
                    continue
                for row in record.turns:
                    if row.scenario_turn == turn - 1:
                        reply = latest.get((pane.position, row.idx))
                        if reply is not None and reply.completed:
                            return row.id, reply.id
        return None


def import_judgments(store: Store, path: Path, scenarios: Mapping[str, Scenario]) -> JudgmentImport:
    """Import a FastChat judgment file (single or pairwise; see the module docstring)."""
    judgments = read_judgments(path)
    _unknown_questions(path, (j.question_id for j in judgments), scenarios)
    answers = _Answers(store)
    missing: list[str] = []
    planned: list[tuple[Judgment, tuple[int, int], tuple[int, int] | None]] = []
    for judgment in judgments:
        models = (
            (judgment.model,)
            if isinstance(judgment, SingleJudgment)
            else (judgment.model_1, judgment.model_2)
        )
        found = [answers.reply(judgment.question_id, m, judgment.turn) for m in models]
        for model, place in zip(models, found, strict=True):
            if place is None:
                missing.append(
                    f"question {judgment.question_id} turn {judgment.turn} {model}"
                    f" (line {judgment.line})"
                )
        first = found[0]
        if first is not None and all(place is not None for place in found):
            planned.append((judgment, first, found[1] if len(found) > 1 else None))
    if missing:
        shown = "; ".join(missing[:5]) + (
            f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise KurabeError(
            f"{path}: no imported or generated reply to judge for {shown}"
            " (import the model answers first); nothing imported"
        )
    existing = {
        (j.judge, j.prompt_name, j.mode, j.reply_id, j.other_reply_id)
        for j in store.imported_judgements.judgements()
    }
    result = JudgmentImport()
    with store.database.transaction():
        for judgment, (turn_id, reply_id), other in planned:
            rater = judge_rater_name(judgment.judge)
            mode = "single" if isinstance(judgment, SingleJudgment) else "pairwise"
            other_id = other[1] if other is not None else None
            key = (rater, judgment.prompt_name, mode, reply_id, other_id)
            if key in existing:
                result.skipped += 1
                continue
            existing.add(key)
            source = f"{path.name}:{judgment.line}"
            if isinstance(judgment, SingleJudgment):
                store.imported_judgements.add(
                    turn_id=turn_id,
                    reply_id=reply_id,
                    judge=rater,
                    prompt_name=judgment.prompt_name,
                    mode="single",
                    score=judgment.score,
                    judgment=judgment.judgment,
                    source=source,
                    tstamp=judgment.tstamp,
                )
                failed = judgment.score is None
            else:
                store.imported_judgements.add(
                    turn_id=turn_id,
                    reply_id=reply_id,
                    other_reply_id=other_id,
                    judge=rater,
                    prompt_name=judgment.prompt_name,
                    mode="pairwise",
                    g1_winner=judgment.g1_winner,
                    g2_winner=judgment.g2_winner,
                    judgment=judgment.g1_judgment,
                    judgment_2=judgment.g2_judgment,
                    source=source,
                    tstamp=judgment.tstamp,
                )
                failed = "error" in (judgment.g1_winner, judgment.g2_winner)
            result.stored += 1
            result.failed += int(failed)
            if rater not in result.judges:
                result.judges.append(rater)
    return result


def judge_rater_name(judge_model: str) -> str:
    """The rater name of an imported judge's ratings: ``judge:gpt-4``, as kurabe's own judges
    are ``judge:<profile>``."""
    return f"judge:{judge_model}"
