"""The export's view: a stored session read once and computed once, as a plain frozen record
(:class:`ExportView`) that each format only formats (:mod:`kurabe.export.markdown`,
:mod:`kurabe.export.tables`, :mod:`kurabe.export.html`, :mod:`kurabe.export.battles`).

:func:`build_view` decides the names (:mod:`kurabe.core.blind`), scrubs the settings, gives each
reply its state and reason, and computes the per-pane summaries, the battles, the charts' bars
and the "Judge and agreement" lines. Entry point: :mod:`kurabe.export.exporter`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.sent import STRUCTURED_OUTPUT_FIELDS, SentSettings, sent_settings
from foundation.errors import ConfigError
from kurabe.analysis.agreement import agreement_from_records, report_lines
from kurabe.analysis.battles import Battle, derive_battles
from kurabe.analysis.charts import (
    SpeedBar,
    StrengthBar,
    session_speed_bars,
    session_strength_bars,
)
from kurabe.core.blind import names_hidden, shown_name
from kurabe.core.rating_config import SCORE_LABELS_JA, load_rating_config
from kurabe.core.secret_scrub import env_secrets, scrub_secrets
from kurabe.core.verdicts import verdict_label
from kurabe.export.pane_summary import PaneSummary, pane_summaries
from kurabe.export.sent import NOT_RECORDED, sent_value
from kurabe.store.records import (
    PaneRecord,
    PickRow,
    RatingRow,
    ReplyRow,
    SessionRecord,
    SessionRow,
    TurnRow,
)

BLIND_NOTICE = (
    "Blind session, not revealed: models are shown as their pane labels "
    "(ブラインド評価中のため、モデル名は伏せてあります)."
)
STILL_STREAMING = "still streaming, or the process stopped mid-reply"


# -- the record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaneView:
    """One pane as the export shows it."""

    pane: PaneRecord
    name: str
    """The model's name, or the pane's label while names are hidden."""
    settings: dict[str, Any]
    """The stored settings, URL credentials dropped again (rows stored before the store dropped
    them); none while names are hidden (they identify the model)."""
    profile_settings: dict[str, Any]
    backend_settings: dict[str, Any]
    sent: SentSettings | None
    """The sampling the pane's backend recorded as sent; None when hidden or not recorded."""
    summary: PaneSummary
    examples_given: str | None
    """How the persona's example exchanges were given (``turns``, ``system``, ``dialogue`` …);
    None when the persona has none or the settings are hidden."""


@dataclass(frozen=True)
class ReplyView:
    """One stored reply (any version) with what the formats say about it."""

    reply: ReplyRow
    turn: TurnRow
    state: str
    """``complete``, ``incomplete``, ``failed`` or ``not sent`` (:func:`reply_state`)."""
    reason: str | None
    state_words: str
    """``complete``, or the state and its reason: ``incomplete: cancelled``."""
    latest: bool
    """The newest version of its (pane, turn)."""
    ratings: tuple[RatingRow, ...]
    """Every rating of the reply, people's and judges', oldest first."""
    latest_rating: RatingRow | None
    """People's newest rating (a judge's never stands in for it)."""
    judgements: tuple[dict[str, Any], ...]
    """Every judgement of the reply, failed ones with the judge's raw answers."""


@dataclass(frozen=True)
class TurnView:
    """One turn: the user's line, each pane's newest reply and the newest pick."""

    turn: TurnRow
    replies: Mapping[int, ReplyView]
    """Pane position → the newest version of its reply to this turn."""
    pick: PickRow | None
    pick_winner: str | None
    """The name shown for the picked pane (None unless one pane was picked)."""


@dataclass(frozen=True)
class BattleView:
    """One battle with the two conversations as the models saw them."""

    battle: Battle
    conversation_a: tuple[dict[str, str], ...]
    conversation_b: tuple[dict[str, str], ...]
    replies_a: tuple[dict[str, Any], ...]
    replies_b: tuple[dict[str, Any], ...]
    sent_a: SentSettings | None
    sent_b: SentSettings | None


@dataclass(frozen=True)
class ExportView:
    """Everything an export shows, computed; see the module docstring."""

    session: SessionRow
    hide_names: bool
    score_labels: Mapping[int, str]
    persona_examples: str
    """The persona's example exchanges as named lines (empty when it has none)."""
    panes: tuple[PaneView, ...]
    turns: tuple[TurnView, ...]
    replies: tuple[ReplyView, ...]
    """Every reply, every version, in the store's order."""
    battles: tuple[BattleView, ...]
    judge_lines: tuple[str, ...]
    """The "Judge and agreement" section's lines: the judge runs, then this session's agreement
    figures; empty when nobody judged or rated (or when not asked for: :func:`build_view`)."""
    strength_bars: tuple[StrengthBar, ...]
    speed_bars: tuple[SpeedBar, ...]
    """The charts' bars (empty when not asked for)."""
    secrets: tuple[str, ...]
    """The current values of the key variables the panes name (scrubbed from the output)."""


# -- building it -----------------------------------------------------------------------------


def build_view(
    record: SessionRecord,
    *,
    reveal_names: bool = False,
    with_agreement: bool = True,
    with_charts: bool = True,
) -> ExportView:
    """The view of a stored session; names hidden while it is blind and not revealed, unless
    ``reveal_names``. The agreement figures and the charts' bars (their bootstrap intervals take
    seconds) are left empty unless asked for."""
    info = record.session
    hidden = names_hidden(blind=info.blind, revealed=info.revealed or reveal_names)
    summaries = {summary.position: summary for summary in pane_summaries(record)}
    has_examples = bool(info.persona.get("examples"))
    panes = tuple(
        _pane_view(pane, summaries[pane.position], hidden, has_examples) for pane in record.panes
    )
    names = {pane.pane.position: pane.name for pane in panes}
    latest = record.latest_replies()
    turns_by_idx = {turn.idx: turn for turn in record.turns}
    replies = tuple(
        _reply_view(record, reply, turns_by_idx[reply.turn], latest) for reply in record.replies
    )
    newest = {reply.reply.id: reply for reply in replies if reply.latest}
    turns = tuple(_turn_view(record, turn, latest, newest, names) for turn in record.turns)
    by_position = {pane.pane.position: pane for pane in panes}
    battles = tuple(
        _battle_view(record, battle, latest, by_position)
        for battle in derive_battles(record, hide_names=hidden)
    )
    return ExportView(
        session=info,
        hide_names=hidden,
        score_labels=score_labels(),
        persona_examples=persona_examples_text(info.persona),
        panes=panes,
        turns=turns,
        replies=replies,
        battles=battles,
        judge_lines=tuple(_judge_lines(record)) if with_agreement else (),
        strength_bars=(
            tuple(session_strength_bars(record, hide_names=hidden)) if with_charts else ()
        ),
        speed_bars=tuple(session_speed_bars(record, hide_names=hidden)) if with_charts else (),
        secrets=tuple(_secrets_of(record)),
    )


def _pane_view(
    pane: PaneRecord, summary: PaneSummary, hidden: bool, has_examples: bool
) -> PaneView:
    settings: dict[str, Any] = {}
    if not hidden:
        clean = scrub_secrets(pane.settings)
        settings = clean if isinstance(clean, dict) else {}
    profile = settings.get("profile")
    backend = settings.get("backend")
    backend = backend if isinstance(backend, dict) else {}
    return PaneView(
        pane=pane,
        name=shown_name(pane.label, pane.profile_name, hidden=hidden),
        settings=settings,
        profile_settings=profile if isinstance(profile, dict) else {},
        backend_settings=backend,
        sent=sent_settings(backend),
        summary=summary,
        examples_given=str(backend["examples"])
        if has_examples and backend.get("examples")
        else None,
    )


def _reply_view(
    record: SessionRecord,
    reply: ReplyRow,
    turn: TurnRow,
    latest: Mapping[tuple[int, int], ReplyRow],
) -> ReplyView:
    state, reason = reply_state(reply)
    return ReplyView(
        reply=reply,
        turn=turn,
        state=state,
        reason=reason,
        state_words=state if reason is None else f"{state}: {reason}",
        latest=latest[(reply.pane, reply.turn)].id == reply.id,
        ratings=tuple(record.ratings_of(reply.id)),
        latest_rating=record.latest_rating(reply.id),
        judgements=tuple(_judgement_dicts(record, reply)),
    )


def _turn_view(
    record: SessionRecord,
    turn: TurnRow,
    latest: Mapping[tuple[int, int], ReplyRow],
    newest: Mapping[int, ReplyView],
    names: Mapping[int, str],
) -> TurnView:
    pick = record.latest_pick(turn.idx)
    winner = None
    if pick is not None and pick.outcome == "pane" and pick.winner is not None:
        winner = names[pick.winner]
    return TurnView(
        turn=turn,
        replies={
            position: newest[reply.id]
            for (position, idx), reply in latest.items()
            if idx == turn.idx
        },
        pick=pick,
        pick_winner=winner,
    )


def _battle_view(
    record: SessionRecord,
    battle: Battle,
    latest: Mapping[tuple[int, int], ReplyRow],
    panes: Mapping[int, PaneView],
) -> BattleView:
    return BattleView(
        battle=battle,
        conversation_a=tuple(_conversation_until(record, battle.pane_a, battle.turn, latest)),
        conversation_b=tuple(_conversation_until(record, battle.pane_b, battle.turn, latest)),
        replies_a=tuple(_replies_until(record, battle.pane_a, battle.turn, latest)),
        replies_b=tuple(_replies_until(record, battle.pane_b, battle.turn, latest)),
        sent_a=panes[battle.pane_a].sent,
        sent_b=panes[battle.pane_b].sent,
    )


def persona_examples_text(persona: Mapping[str, Any]) -> str:
    """The stored persona's example exchanges as named lines (empty when it has none)."""
    user = str(persona.get("user_name", "ユーザー"))
    char = str(persona.get("char_name", "アシスタント"))
    lines: list[str] = []
    for example in persona.get("examples") or ():
        if isinstance(example, Mapping):
            lines += [f"{user}: {example.get('user', '')}", f"{char}: {example.get('char', '')}"]
    return "\n".join(lines)


def score_labels() -> Mapping[int, str]:
    try:
        return load_rating_config().score_labels
    except ConfigError:
        return SCORE_LABELS_JA


def _secrets_of(record: SessionRecord) -> list[str]:
    names = []
    for pane in record.panes:
        profile = pane.settings.get("profile")
        if isinstance(profile, dict):
            names.append(profile.get("api_key_env"))
    return env_secrets(n for n in names if isinstance(n, str))


def reply_state(reply: ReplyRow) -> tuple[str, str | None]:
    """(``complete`` | ``incomplete`` | ``failed`` | ``not sent``, the reason or None), the same
    in every format. ``not sent``: the pane's conversation stopped at an earlier failed turn, so
    this turn was never asked of it (the rule in :mod:`kurabe.session.turns`).

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
    if reply.status == "blocked":
        return "not sent", reply.error or "the conversation stopped at an earlier failed turn"
    return "incomplete", reply.error or reply.status


def _replies_until(
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


def _conversation_until(
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


def _judgement_dicts(record: SessionRecord, reply: ReplyRow) -> list[dict[str, Any]]:
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


def _judge_lines(record: SessionRecord) -> list[str]:
    """The judge runs, then this session's agreement figures; empty when nobody judged or
    rated (:mod:`kurabe.analysis.agreement`)."""
    report = agreement_from_records([record], session=record.session.id)
    runs = _judge_run_lines(record)
    if not runs and report.humans.units == 0:
        return []
    return [*runs, *report_lines(report)]


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


# -- what the formats share ------------------------------------------------------------------


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    # Keys only: the replies in the text stay exact, even where they quote a URL.
    result = scrub_secrets(text, secrets, urls=False)
    return result if isinstance(result, str) else text


def verdict_text(verdict: str | None) -> str:
    return "" if verdict is None else verdict_label(verdict)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def round_to(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
