"""What every export format shares: the :class:`ExportView` (a stored session plus whether model
names are hidden), each reply's state and reason, the per-pane summary, ratings and judgements as
plain values, and the "Judge and agreement" section. Formats: :mod:`kurabe.export.exporter`."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.sent import STRUCTURED_OUTPUT_FIELDS, SentSettings, sent_settings
from kurabe.core.secret_scrub import env_secrets, scrub_secrets
from kurabe.core.verdicts import verdict_label
from kurabe.export.pane_summary import PaneSummary, pane_summaries
from kurabe.export.sent import NOT_RECORDED, sent_value
from kurabe.store.records import PaneRecord, RatingRow, ReplyRow, SessionRecord

LANGUAGE_NAMES = {"ja": "Japanese", "en": "English", "zh": "Chinese", "ko": "Korean"}
BLIND_NOTICE = (
    "Blind session, not revealed: models are shown as their pane labels "
    "(ブラインド評価中のため、モデル名は伏せてあります)."
)


# -- shared helpers ------------------------------------------------------------------------


def score_labels() -> Mapping[int, str]:
    from foundation.errors import ConfigError
    from kurabe.core.rating_config import SCORE_LABELS_JA, load_rating_config

    try:
        return load_rating_config().score_labels
    except ConfigError:
        return SCORE_LABELS_JA


def persona_examples_text(persona: Mapping[str, Any]) -> str:
    """The stored persona's example exchanges as named lines (empty when it has none)."""
    user = str(persona.get("user_name", "ユーザー"))
    char = str(persona.get("char_name", "アシスタント"))
    lines: list[str] = []
    for example in persona.get("examples") or ():
        if isinstance(example, Mapping):
            lines += [f"{user}: {example.get('user', '')}", f"{char}: {example.get('char', '')}"]
    return "\n".join(lines)


def verdict_text(verdict: str | None) -> str:
    return "" if verdict is None else verdict_label(verdict)


@dataclass(frozen=True)
class ExportView:
    """A record plus the decision whether model names are hidden."""

    record: SessionRecord
    hide_names: bool

    @property
    def session(self) -> Any:
        return self.record.session

    def name(self, pane: PaneRecord) -> str:
        return pane.label if self.hide_names else pane.profile_name

    def settings(self, pane: PaneRecord) -> dict[str, Any]:
        """The pane's stored settings, URL credentials dropped again (rows stored before the
        store dropped them); none when names are hidden (they identify the model)."""
        if self.hide_names:
            return {}
        clean = scrub_secrets(pane.settings)
        return clean if isinstance(clean, dict) else {}

    def profile_settings(self, pane: PaneRecord) -> dict[str, Any]:
        profile = self.settings(pane).get("profile")
        return profile if isinstance(profile, dict) else {}

    def backend_settings(self, pane: PaneRecord) -> dict[str, Any]:
        backend = self.settings(pane).get("backend")
        return backend if isinstance(backend, dict) else {}

    def sent(self, pane: PaneRecord) -> SentSettings | None:
        """The sampling the pane's backend recorded as sent; None when hidden or not recorded."""
        return sent_settings(self.backend_settings(pane))


def make_view(record: SessionRecord, *, reveal_names: bool = False) -> ExportView:
    return ExportView(record, hide_names=record.session.hidden and not reveal_names)


def secrets_of(record: SessionRecord) -> list[str]:
    names = []
    for pane in record.panes:
        profile = pane.settings.get("profile")
        if isinstance(profile, dict):
            names.append(profile.get("api_key_env"))
    return env_secrets(n for n in names if isinstance(n, str))


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    # Keys only: the replies in the text stay exact, even where they quote a URL.
    result = scrub_secrets(text, secrets, urls=False)
    return result if isinstance(result, str) else text


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def round_to(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


STILL_STREAMING = "still streaming, or the process stopped mid-reply"


def reply_state(reply: ReplyRow) -> tuple[str, str | None]:
    """(``complete`` | ``incomplete`` | ``failed``, the reason or None), the same in every format.

    ``failed``: the backend or the server reported an error (any text that had arrived is
    kept). ``incomplete``: cancelled, interrupted (the process stopped and the session was
    resumed), or still ``streaming`` in the store (a process that stopped mid-reply and was not
    resumed, or one still running)."""
    if reply.status == "complete":
        return "complete", None
    if reply.status == "failed":
        return "failed", reply.error or "failed"
    if reply.status == "streaming":
        return "incomplete", reply.error or STILL_STREAMING
    return "incomplete", reply.error or reply.status


def state_words(reply: ReplyRow) -> str:
    """``complete``, or the state and its reason: ``incomplete: cancelled``."""
    state, reason = reply_state(reply)
    return state if reason is None else f"{state}: {reason}"


def replies_until(
    record: SessionRecord, pane: int, turn: int, latest: Mapping[tuple[int, int], ReplyRow]
) -> list[dict[str, Any]]:
    """The pane's newest replies up to and including ``turn``, with their state (battles)."""
    out = []
    for row in record.turns:
        if row.idx > turn:
            break
        reply = latest.get((pane, row.idx))
        if reply is not None:
            state, reason = reply_state(reply)
            out.append(
                {"turn": row.idx + 1, "reply_id": reply.id, "state": state, "reason": reason}
            )
    return out


def conversation_until(
    record: SessionRecord, pane: int, turn: int, latest: Mapping[tuple[int, int], ReplyRow]
) -> list[dict[str, str]]:
    """The pane's conversation up to and including ``turn``, as the model saw it (earlier turns
    without reply text are left out, as in the session's history) plus its reply to ``turn``."""
    messages: list[dict[str, str]] = []
    for row in record.turns:
        if row.idx > turn:
            break
        reply = latest.get((pane, row.idx))
        if row.idx < turn and (reply is None or not reply.text):
            continue
        messages.append({"role": "user", "content": row.text})
        messages.append({"role": "assistant", "content": reply.text if reply else ""})
    return messages


def pane_summary(record: SessionRecord, pane: int) -> PaneSummary:
    return next(summary for summary in pane_summaries(record) if summary.position == pane)


def rating_dict(rating: RatingRow, labels: Mapping[int, str]) -> dict[str, Any]:
    return {
        "score": rating.score,
        "score_label": labels.get(rating.score) if rating.score is not None else None,
        "tags": list(rating.tags),
        "note": rating.note,
        "rater": rating.rater,
        "kind": rating.kind,
        "blind": rating.blind,
        "created_at": rating.created_at,
    }


# -- the LLM judge and the agreement figures ---------------------------------------------------


def judgement_dicts(record: SessionRecord, reply: ReplyRow) -> list[dict[str, Any]]:
    """Every judgement of a reply, failed ones with the judge's raw answers (jsonl)."""
    out = []
    for row in record.judgements_of(reply.id):
        other = row.other_reply_id if row.reply_id == reply.id else row.reply_id
        if row.mode == "pairwise" and row.ok:
            outcome = (
                "tie"
                if row.winner_reply_id is None
                else ("won" if row.winner_reply_id == reply.id else "lost")
            )
        else:
            outcome = None
        out.append(
            {
                "judge": row.judge,
                "mode": row.mode,
                "rubric_hash": row.rubric_hash,
                "status": row.status,
                "score": row.score,
                "against_reply_id": other if row.mode == "pairwise" else None,
                "outcome": outcome,
                "reason": row.reason,
                "attempts": row.attempts,
                "created_at": row.created_at,
            }
        )
    return out


def _agreement_report(record: SessionRecord) -> Any:
    from kurabe.analysis.agreement import agreement_from_records

    return agreement_from_records([record], session=record.session.id)


def _judge_run_lines(record: SessionRecord) -> list[str]:
    lines = []
    for run in record.judge_runs:
        rows = [j for j in record.judgements if j.run_id == run.id]
        ok = sum(1 for j in rows if j.ok)
        failed = len(rows) - ok
        sent = sent_settings(run.settings.get("backend") or {})
        temperature = sent_value(sent.value("temperature")) if sent else NOT_RECORDED
        schema = "".join(
            f", {name}: {value}"
            for name, value in (sent.values.items() if sent else ())
            if name in STRUCTURED_OUTPUT_FIELDS
        )
        lines.append(
            f"{run.judge} ({run.mode}, rubric {run.rubric_name} {run.rubric_hash[:12]}, "
            f"temperature {temperature}{schema}): {ok} judged, {failed} failed"
        )
    return lines


def agreement_markdown(view: ExportView) -> list[str]:
    """The md export's "Judge and agreement" section (empty when nobody judged or rated)."""
    record = view.record
    report = _agreement_report(record)
    runs = _judge_run_lines(record)
    if not runs and report.humans.units == 0:
        return []
    from kurabe.analysis.agreement import report_lines

    out = ["## Judge and agreement", ""]
    out.extend(f"- {line}" for line in runs)
    out.extend(f"- {line}" for line in report_lines(report))
    out.append("")
    return out


def agreement_html(view: ExportView) -> str:
    """The html export's judge and agreement section ("" when nobody judged or rated)."""
    lines = agreement_markdown(view)
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in lines if line.startswith("- "))
    return f'<section class="agreement"><h2>Judge and agreement</h2><ul>{items}</ul></section>'


def pick_word(view: ExportView, turn: int) -> dict[str, Any] | None:
    pick = view.record.latest_pick(turn)
    if pick is None:
        return None
    winner = None
    if pick.outcome == "pane" and pick.winner is not None:
        pane = next(p for p in view.record.panes if p.position == pick.winner)
        winner = view.name(pane)
    return {"outcome": pick.outcome, "winner": winner, "rater": pick.rater, "blind": pick.blind}
