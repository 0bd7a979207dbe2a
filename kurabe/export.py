"""Exports of one stored session: Markdown, JSON lines, CSV, HTML and pairwise battles.

- ``md``: laid out like the seed page — a summary table of scores at the top, then per model a
  heading, ``Quality:`` (the verdict) and the note, ``Temp:``, the persona prompt in a code block,
  the settings block (model file, tokens/s and characters/s, names, the sampling that was sent),
  the transcript in a code block, and a table of the per-reply ratings and checks.
- ``jsonl``: one record per reply (every version, ``latest`` marks the newest) with the pane's
  settings, the figures, the checks and every rating.
- ``csv``: one flat row per reply (newest versions only) with the latest rating's columns and the
  checks; UTF-8 with a byte order mark by default so spreadsheets keep the Japanese intact, and
  a leading ``'`` on any text cell a spreadsheet would run as a formula (:mod:`kurabe.csvsafe`).
- ``html``: one self-contained page, the panes side by side per turn, as the rater saw them.
- ``battles``: pairwise results derived from the per-turn picks in FastChat's ``clean_battle``
  shape (``model_a``, ``model_b``, ``winner``, ``judge``, ``turn``, ``anony``, ``language``,
  ``tstamp``, ``conversation_a``, ``conversation_b``), one JSON object per line.

Every format carries the same replies (the newest version of each; jsonl also the older ones),
each with its state — ``complete``, ``incomplete`` (cancelled, cut off, or left streaming by a
process that stopped) or ``failed`` — and the reason (:func:`reply_state`): md in the transcript
and the per-reply table, html on each reply, csv and jsonl as ``state`` and ``reason``, battles
as ``replies_a`` / ``replies_b`` beside the conversations.

A pick of pane W among N panes gives N−1 battles (W against each other pane; the pairs W was not
part of are unknown and left out); a tie gives a ``tie`` for every pair and "all bad" a
``tie (bothbad)`` for every pair. Only the newest pick per (turn, rater) counts.

Sampling is what each pane's backend recorded as sent (:mod:`backends.sent`), never the profile's
wish: a setting that was not sent reads "model default" in every format, and a pane whose backend
recorded nothing says "not recorded". The md and html show it per pane, the csv in its sampling
columns, the jsonl and battles as ``sent``.

An LLM judge's ratings (kind ``judge``, :mod:`kurabe.judge`) never stand in for a person's: the
scores, means and "latest rating" of every format are people's. The jsonl lists every rating with
its ``kind`` and, per reply, every judgement (failed ones with the judge's raw answers); the md
and html end with a "Judge and agreement" section — the judge runs (rubric hash, temperature sent)
and this session's agreement figures (:mod:`kurabe.agreement`). The csv and battles carry
people's ratings only.

Blind sessions not yet revealed: every export says so, and shows the pane labels (A, B, …)
instead of model names, with the settings left out (model, file, backend, and the sampling sent,
which tells an API pane from a local one), unless ``reveal_names=True``
(``kurabe export --reveal-names``).

No API key or URL credential reaches an export: settings were scrubbed when stored and are
scrubbed again when read, and the output is scrubbed again of the current values of every key
variable the panes name.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backends.sent import MODEL_DEFAULT, SentSettings, sent_settings
from foundation.errors import KurabeError
from kurabe.csvsafe import spreadsheet_safe
from kurabe.pane_summary import PaneSummary, pane_summaries
from kurabe.secret_scrub import env_secrets, scrub_secrets
from kurabe.store import Store
from kurabe.store_records import PaneRecord, RatingRow, ReplyRow, SessionRecord
from kurabe.verdicts import verdict_label

FORMATS = ("md", "jsonl", "csv", "html", "battles")
LANGUAGE_NAMES = {"ja": "Japanese", "en": "English", "zh": "Chinese", "ko": "Korean"}
BLIND_NOTICE = (
    "Blind session, not revealed: models are shown as their pane labels "
    "(ブラインド評価中のため、モデル名は伏せてあります)."
)


# -- shared helpers ------------------------------------------------------------------------


def _score_labels() -> Mapping[int, str]:
    from foundation.errors import ConfigError
    from kurabe.rating_config import SCORE_LABELS_JA, load_rating_config

    try:
        return load_rating_config().score_labels
    except ConfigError:
        return SCORE_LABELS_JA


def _verdict_label(verdict: str | None) -> str:
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


def _secrets_of(record: SessionRecord) -> list[str]:
    names = []
    for pane in record.panes:
        profile = pane.settings.get("profile")
        if isinstance(profile, dict):
            names.append(profile.get("api_key_env"))
    return env_secrets(n for n in names if isinstance(n, str))


def _scrub_text(text: str, secrets: Iterable[str]) -> str:
    # Keys only: the replies in the text stay exact, even where they quote a URL.
    result = scrub_secrets(text, secrets, urls=False)
    return result if isinstance(result, str) else text


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _round(value: float | None, digits: int = 3) -> float | None:
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


@dataclass(frozen=True, slots=True)
class Battle:
    """One pairwise result derived from a per-turn pick."""

    session_id: int
    turn: int
    pane_a: int
    pane_b: int
    model_a: str
    model_b: str
    winner: str
    """``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``."""
    judge: str
    anony: bool
    tstamp: float
    scenario_id: str | None
    language: str


def derive_battles(record: SessionRecord, *, hide_names: bool = False) -> list[Battle]:
    """Pairwise results from the newest pick per (turn, rater); see the module docstring."""
    latest = record.latest_replies()
    language = LANGUAGE_NAMES.get(
        str(record.session.persona.get("language", "ja")),
        str(record.session.persona.get("language")),
    )
    panes = {p.position: p for p in record.panes}
    battles = []
    for pick in record.latest_picks_by_rater():
        present = sorted(pos for (pos, turn) in latest if turn == pick.turn)
        if len(present) < 2:
            continue
        pairs: list[tuple[int, int, str]] = []
        if pick.outcome == "pane":
            if pick.winner is None or pick.winner not in present:
                continue
            for other in present:
                if other == pick.winner:
                    continue
                a, b = sorted((pick.winner, other))
                pairs.append((a, b, "model_a" if a == pick.winner else "model_b"))
        else:
            result = "tie" if pick.outcome == "tie" else "tie (bothbad)"
            for i, a in enumerate(present):
                for b in present[i + 1 :]:
                    pairs.append((a, b, result))
        stamp = datetime.fromisoformat(pick.created_at).timestamp()
        for a, b, winner in pairs:
            name_a = panes[a].label if hide_names else panes[a].profile_name
            name_b = panes[b].label if hide_names else panes[b].profile_name
            if name_a == name_b:
                continue
            battles.append(
                Battle(
                    session_id=record.session.id,
                    turn=pick.turn,
                    pane_a=a,
                    pane_b=b,
                    model_a=name_a,
                    model_b=name_b,
                    winner=winner,
                    judge=pick.rater,
                    anony=pick.blind,
                    tstamp=stamp,
                    scenario_id=record.session.scenario_id,
                    language=language,
                )
            )
    return battles


def _pane_summary(record: SessionRecord, pane: int) -> PaneSummary:
    return next(summary for summary in pane_summaries(record) if summary.position == pane)


def _rating_dict(rating: RatingRow, labels: Mapping[int, str]) -> dict[str, Any]:
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


def _judgement_dicts(record: SessionRecord, reply: ReplyRow) -> list[dict[str, Any]]:
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
    from kurabe.agreement import agreement_from_records

    return agreement_from_records([record], session=record.session.id)


def _judge_run_lines(record: SessionRecord) -> list[str]:
    lines = []
    for run in record.judge_runs:
        rows = [j for j in record.judgements if j.run_id == run.id]
        ok = sum(1 for j in rows if j.ok)
        failed = len(rows) - ok
        sent = sent_settings(run.settings.get("backend") or {})
        temperature = sent_value(sent.value("temperature")) if sent else NOT_RECORDED
        lines.append(
            f"{run.judge} ({run.mode}, rubric {run.rubric_name} {run.rubric_hash[:12]}, "
            f"temperature {temperature}): {ok} judged, {failed} failed"
        )
    return lines


def agreement_markdown(view: ExportView) -> list[str]:
    """The md export's "Judge and agreement" section (empty when nobody judged or rated)."""
    record = view.record
    report = _agreement_report(record)
    runs = _judge_run_lines(record)
    if not runs and report.humans.units == 0:
        return []
    from kurabe.agreement import report_lines

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


def _pick_word(view: ExportView, turn: int) -> dict[str, Any] | None:
    pick = view.record.latest_pick(turn)
    if pick is None:
        return None
    winner = None
    if pick.outcome == "pane" and pick.winner is not None:
        pane = next(p for p in view.record.panes if p.position == pick.winner)
        winner = view.name(pane)
    return {"outcome": pick.outcome, "winner": winner, "rater": pick.rater, "blind": pick.blind}


# -- what was sent -------------------------------------------------------------------------------

SAMPLING_LABELS: dict[str, str] = {
    "temperature": "Temperature",
    "repeat_penalty": "Penalize repeat",
    "repeat_last_n": "Penalize tokens",
    "top_k": "Top-K",
    "top_p": "Top-P",
    "min_p": "Min-P",
    "max_tokens": "Max tokens",
    "seed": "Seed",
    "stop": "Stop",
}
"""The sampling settings in the seed page's order, with its words."""
NOT_RECORDED = "not recorded"
HIDDEN_SETTINGS = "hidden until the names are revealed"


def sent_value(value: Any) -> str:
    """One sent value as text; :data:`MODEL_DEFAULT` as it is."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def sent_lines(sent: SentSettings) -> list[str]:
    """``Label: value`` per sampling setting ("model default" where none was sent), then any
    other parameter the request carried and the headers it set."""
    lines = []
    for name, label in SAMPLING_LABELS.items():
        value = sent.value(name)
        line = f"{label}: {sent_value(value)}"
        if value != MODEL_DEFAULT and name in sent.wire_names:
            line += f" (sent as {sent.wire_names[name]})"
        lines.append(line)
    lines.extend(
        f"{name}: {sent_value(value)}"
        for name, value in sent.values.items()
        if name not in SAMPLING_LABELS
    )
    lines.extend(f"{name}: {value}" for name, value in sent.headers.items())
    return lines


def sent_summary(sent: SentSettings) -> str:
    """The sent sampling on one line: values first, then what was left to the model."""
    parts = [
        f"{label} {sent_value(sent.value(name))}"
        for name, label in SAMPLING_LABELS.items()
        if sent.value(name) != MODEL_DEFAULT
    ]
    parts.extend(
        f"{name} {sent_value(value)}"
        for name, value in sent.values.items()
        if name not in SAMPLING_LABELS
    )
    defaulted = [SAMPLING_LABELS[n] for n in SAMPLING_LABELS if sent.value(n) == MODEL_DEFAULT]
    if defaulted:
        parts.append(f"{MODEL_DEFAULT}: {', '.join(defaulted)}")
    parts.extend(f"{name}: {value}" for name, value in sent.headers.items())
    return " · ".join(parts)


def sent_record(sent: SentSettings | None) -> dict[str, Any] | None:
    """The jsonl/battles ``sent`` object: setting → value sent or "model default"."""
    return None if sent is None else dict(sent.values)


# -- Markdown ---------------------------------------------------------------------------------


def _fence(text: str) -> str:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _code_block(text: str) -> str:
    fence = _fence(text)
    return f"{fence}\n{text}\n{fence}"


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def to_markdown(view: ExportView) -> str:
    record = view.record
    info = record.session
    persona = info.persona
    labels = _score_labels()
    latest = record.latest_replies()
    out: list[str] = []
    title = f"# 比べ kurabe — session {info.id}"
    if info.scenario:
        title += f": {info.scenario.get('title', info.scenario_id)}"
    out.append(title)
    out.append("")
    if view.hide_names:
        out.append(f"> **{BLIND_NOTICE}**")
        out.append("")
    out.append(f"- Date: {info.created_at}")
    out.append(f"- Persona: {info.persona_id} ({persona.get('title', '')})")
    if info.scenario_id:
        out.append(f"- Scenario: {info.scenario_id}")
    out.append(f"- Rater: {info.rater}")
    blind_word = "no" if not info.blind else ("yes, revealed" if info.revealed else "yes")
    out.append(f"- Blind: {blind_word}")
    if info.seed is not None:
        out.append(f"- Seed: {info.seed}")
    out.append("")
    out.append("## Scores")
    out.append("")
    out.append(
        "| Pane | Model | Quality | Rated replies | Mean score | Best picks | tokens/s | chars/s |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---:|")
    for pane in record.panes:
        verdict = record.latest_verdict(pane.position)
        summary = _pane_summary(record, pane.position)
        out.append(
            f"| {pane.label} | {_md_cell(view.name(pane))} | "
            f"{_verdict_label(verdict.verdict) if verdict else '-'} | {len(summary.scores)} | "
            f"{_fmt(summary.mean_score, 2)} | {summary.wins} | "
            f"{_fmt(summary.tokens_per_s)} | {_fmt(summary.chars_per_s)} |"
        )
    out.append("")

    for pane in record.panes:
        out.append(f"## {view.name(pane)}")
        out.append("")
        verdict = record.latest_verdict(pane.position)
        out.append(f"Quality: {_verdict_label(verdict.verdict) if verdict else '(no verdict)'}")
        if verdict and verdict.note:
            out.append("")
            out.append(f"Note: {verdict.note}")
        out.append("")
        sent = view.sent(pane)
        if sent is not None:
            out.append(f"Temp: {sent_value(sent.value('temperature'))}")
            out.append("")
        out.append(_code_block(f"Prompt:\n{persona.get('system', '')}"))
        out.append("")
        out.append(_code_block(_settings_block(view, pane)))
        out.append("")
        template = view.profile_settings(pane).get("template")
        if template:
            out.append(_code_block(str(template)))
            out.append("")
        out.append(_code_block(_transcript_block(view, pane, latest)))
        out.append("")
        rows = _reply_table(view, pane, latest, labels)
        if rows:
            out.extend(rows)
            out.append("")
    out.extend(agreement_markdown(view))
    return "\n".join(out).rstrip() + "\n"


def _settings_block(view: ExportView, pane: PaneRecord) -> str:
    persona = view.session.persona
    backend = view.backend_settings(pane)
    profile = view.profile_settings(pane)
    sent = view.sent(pane)
    summary = _pane_summary(view.record, pane.position)
    lines = []
    if not view.hide_names:
        lines.append(str(backend.get("model_file") or pane.model))
    lines.append(f"{_fmt(summary.tokens_per_s)} tokens/s")
    lines.append(f"{_fmt(summary.chars_per_s)} chars/s")
    lines.append("")
    lines.append(str(persona.get("user_name", "ユーザー")))
    lines.append(str(persona.get("char_name", "アシスタント")))
    lines.append("")
    if view.hide_names:
        lines.append(f"Sampling: {HIDDEN_SETTINGS}")
    elif sent is None:
        lines.append(f"Sampling: {NOT_RECORDED}")
    else:
        lines.extend(sent_lines(sent))
    if not view.hide_names:
        local = pane.backend == "llama_cpp"
        extra = [
            ("Backend", pane.backend),
            ("Prompt format", profile.get("prompt_format") if local else None),
            ("Chat template", backend.get("chat_template")),
            ("Quantization", backend.get("quantization")),
            ("Model size", backend.get("model_size")),
            ("Fingerprint", backend.get("model_fingerprint")),
            ("GPU layers offloaded", backend.get("gpu_layers_offloaded")),
            ("Context", profile.get("n_ctx") if local else None),
            ("Base URL", profile.get("base_url")),
            ("llama-cpp-python", backend.get("llama_cpp_python")),
            ("SDK", backend.get("sdk")),
            ("Header", pane.header),
        ]
        for label, value in extra:
            if value not in (None, ""):
                lines.append(f"{label}: {value}")
    return "\n".join(lines)


def _transcript_block(
    view: ExportView, pane: PaneRecord, latest: Mapping[tuple[int, int], ReplyRow]
) -> str:
    persona = view.session.persona
    user = persona.get("user_name", "ユーザー")
    char = persona.get("char_name", "アシスタント")
    parts = []
    for turn in view.record.turns:
        parts.append(f"**{user}:** {turn.text}")
        reply = latest.get((pane.position, turn.idx))
        if reply is None:
            parts.append(f"**{char}:** [no reply]")
            continue
        text = f"**{char}:** {reply.text}"
        if not reply.completed:
            text += f"\n[{state_words(reply)}]"
        parts.append(text)
    return "\n\n".join(parts)


def _reply_table(
    view: ExportView,
    pane: PaneRecord,
    latest: Mapping[tuple[int, int], ReplyRow],
    labels: Mapping[int, str],
) -> list[str]:
    rows = [
        "| Turn | State | Score | Tags | Note | Checks | tokens/s | chars/s | Engine |",
        "|---:|---|---|---|---|---|---:|---:|---|",
    ]
    for turn in view.record.turns:
        reply = latest.get((pane.position, turn.idx))
        if reply is None:
            continue
        rating = view.record.latest_rating(reply.id)
        score = ""
        if rating is not None and rating.score is not None:
            score = f"{rating.score} {labels.get(rating.score, '')}".strip()
        tags = ", ".join(rating.tags) if rating else ""
        note = _md_cell(rating.note) if rating else ""
        flags = ", ".join(f.get("code", "") for f in reply.checks.get("flags", []))
        rows.append(
            f"| {turn.idx + 1} | {_md_cell(state_words(reply))} | {score} | {tags} | {note} | "
            f"{flags} | {_fmt(reply.tokens_per_s)} | {_fmt(reply.chars_per_s)} | "
            f"{'; '.join(reply.figures.engine_notes())} |"
        )
    return rows if len(rows) > 2 else []


# -- JSON lines ---------------------------------------------------------------------------


def reply_records(view: ExportView) -> list[dict[str, Any]]:
    """One dict per reply (every version), as written by the ``jsonl`` format."""
    record = view.record
    info = record.session
    labels = _score_labels()
    latest = record.latest_replies()
    turns = {t.idx: t for t in record.turns}
    panes = {p.position: p for p in record.panes}
    out = []
    for reply in record.replies:
        pane = panes[reply.pane]
        turn = turns[reply.turn]
        ratings = record.ratings_of(reply.id)
        newest = record.latest_rating(reply.id)
        verdict = record.latest_verdict(pane.position)
        out.append(
            {
                "session_id": info.id,
                "session_created_at": info.created_at,
                "persona_id": info.persona_id,
                "scenario_id": info.scenario_id,
                "blind": info.blind,
                "blind_unrevealed": info.hidden,
                "names_hidden": view.hide_names,
                "turn": reply.turn,
                "scenario_turn": turn.scenario_turn,
                "user_text": turn.text,
                "pane": pane.position,
                "label": pane.label,
                "model": view.name(pane),
                "backend": None if view.hide_names else pane.backend,
                "settings": view.settings(pane),
                "sent": sent_record(view.sent(pane)),
                "reply_id": reply.id,
                "version": reply.version,
                "latest": latest[(reply.pane, reply.turn)].id == reply.id,
                "status": reply.status,
                "state": reply_state(reply)[0],
                "reason": reply_state(reply)[1],
                "incomplete": reply.status != "complete",
                "text": reply.text,
                "finish_reason": reply.finish_reason,
                "error": reply.error,
                "error_kind": reply.error_kind,
                "figures": {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "ttft_s": reply.ttft_s,
                    "total_s": reply.total_s,
                    "chars": reply.chars,
                    "tokens_per_s": reply.tokens_per_s,
                    "chars_per_s": reply.chars_per_s,
                    "context_size": reply.context_size,
                    "cached_prompt_tokens": reply.cached_prompt_tokens,
                    "decoded_alongside": reply.decoded_alongside,
                    "history_trimmed_turns": reply.history_trimmed_turns,
                    "max_tokens_clamped": reply.max_tokens_clamped,
                },
                "checks": reply.checks,
                "ratings": [_rating_dict(r, labels) for r in ratings],
                "judgements": _judgement_dicts(record, reply),
                "latest_rating": _rating_dict(newest, labels) if newest else None,
                "verdict": None
                if verdict is None
                else {
                    "verdict": verdict.verdict,
                    "label": _verdict_label(verdict.verdict),
                    "note": verdict.note,
                    "rater": verdict.rater,
                },
                "pick": _pick_word(view, reply.turn),
                "started_at": reply.started_at,
                "finished_at": reply.finished_at,
            }
        )
    return out


def to_jsonl(view: ExportView) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reply_records(view))


# -- CSV ----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "session_id",
    "created_at",
    "persona",
    "scenario",
    "blind_unrevealed",
    "turn",
    "user_text",
    "pane",
    "label",
    "model",
    "backend",
    "prompt_format",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "max_tokens",
    "seed",
    "reply_id",
    "version",
    "status",
    "state",
    "reason",
    "incomplete",
    "text",
    "finish_reason",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "ttft_s",
    "total_s",
    "chars",
    "tokens_per_s",
    "chars_per_s",
    "cached_prompt_tokens",
    "decoded_alongside",
    "history_trimmed_turns",
    "max_tokens_clamped",
    "score",
    "score_label",
    "tags",
    "note",
    "rater",
    "rated_at",
    "pick",
    "verdict",
    "verdict_note",
    "japanese_share",
    "polite_share",
    "register",
    "chars_per_token",
    "check_flags",
)


CSV_SAMPLING_COLUMNS = (
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repeat_penalty",
    "repeat_last_n",
    "max_tokens",
    "seed",
)
"""The value sent, "model default" when none was, empty when nothing was recorded or the names
are hidden."""


def csv_rows(view: ExportView) -> list[dict[str, Any]]:
    """The ``csv`` format's rows: the newest version of every reply, flat."""
    labels = _score_labels()
    rows = []
    for item in reply_records(view):
        if not item["latest"]:
            continue
        sent = item["sent"] or {}
        rating = item["latest_rating"] or {}
        verdict = item["verdict"] or {}
        checks = item["checks"]
        figures = item["figures"]
        pick = item["pick"]
        pick_word = ""
        if pick is not None:
            if pick["outcome"] == "pane":
                pick_word = "best" if pick["winner"] == item["model"] else "not best"
            else:
                pick_word = pick["outcome"]
        rows.append(
            {
                "session_id": item["session_id"],
                "created_at": item["session_created_at"],
                "persona": item["persona_id"],
                "scenario": item["scenario_id"] or "",
                "blind_unrevealed": "yes" if item["blind_unrevealed"] else "no",
                "turn": item["turn"] + 1,
                "user_text": item["user_text"],
                "pane": item["pane"],
                "label": item["label"],
                "model": item["model"],
                "backend": item["backend"] or "",
                "prompt_format": item["settings"].get("profile", {}).get("prompt_format", ""),
                **{name: sent.get(name, "") for name in CSV_SAMPLING_COLUMNS},
                "reply_id": item["reply_id"],
                "version": item["version"],
                "status": item["status"],
                "state": item["state"],
                "reason": item["reason"] or "",
                "incomplete": "yes" if item["incomplete"] else "no",
                "text": item["text"],
                "finish_reason": item["finish_reason"] or "",
                "error": item["error"] or "",
                "prompt_tokens": _blank(figures["prompt_tokens"]),
                "completion_tokens": _blank(figures["completion_tokens"]),
                "ttft_s": _blank(_round(figures["ttft_s"])),
                "total_s": _blank(_round(figures["total_s"])),
                "chars": figures["chars"],
                "tokens_per_s": _blank(_round(figures["tokens_per_s"], 2)),
                "chars_per_s": _blank(_round(figures["chars_per_s"], 2)),
                "cached_prompt_tokens": _blank(figures["cached_prompt_tokens"]),
                "decoded_alongside": _blank(figures["decoded_alongside"]),
                "history_trimmed_turns": figures["history_trimmed_turns"],
                "max_tokens_clamped": _blank(figures["max_tokens_clamped"]),
                "score": _blank(rating.get("score")),
                "score_label": labels.get(rating["score"], "") if rating.get("score") else "",
                "tags": " ".join(rating.get("tags", [])),
                "note": rating.get("note", ""),
                "rater": rating.get("rater", ""),
                "rated_at": rating.get("created_at", ""),
                "pick": pick_word,
                "verdict": verdict.get("label", ""),
                "verdict_note": verdict.get("note", ""),
                "japanese_share": _blank(_round(checks.get("japanese_share"))),
                "polite_share": _blank(_round(checks.get("polite_share"))),
                "register": checks.get("register", ""),
                "chars_per_token": _blank(_round(checks.get("chars_per_token"))),
                "check_flags": " ".join(f.get("code", "") for f in checks.get("flags", [])),
            }
        )
    return rows


def _blank(value: Any) -> Any:
    return "" if value is None else value


def to_csv(view: ExportView, *, bom: bool = True) -> str:
    """The rows of :func:`csv_rows`, each text cell made :func:`spreadsheet_safe`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in csv_rows(view):
        writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
    return ("\ufeff" if bom else "") + buffer.getvalue()


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body{font-family:"Hiragino Sans","Noto Sans JP","Yu Gothic",sans-serif;margin:1.5rem;
color:#222;background:#fafafa}
h1{font-size:1.4rem}.notice{background:#fff3cd;border:1px solid #e0c060;padding:.6rem;
border-radius:6px}
table.summary{border-collapse:collapse;margin:1rem 0}table.summary td,table.summary th{
border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.turn{margin:1.2rem 0;padding:.8rem;background:#fff;border:1px solid #ddd;border-radius:8px}
.user{font-weight:bold;margin-bottom:.6rem}
.panes{display:grid;grid-template-columns:repeat(var(--n),minmax(0,1fr));gap:.6rem}
.pane{border:1px solid #ccc;border-radius:6px;padding:.5rem;background:#fdfdfd}
.pane.best{border:2px solid #2a9d4a;background:#f0fbf3}.pane h3{font-size:.9rem;margin:0 0 .4rem}
.text{white-space:pre-wrap;word-break:break-word}.meta{font-size:.75rem;color:#666;
margin-top:.4rem}.incomplete,.state.failed{color:#b00020;font-size:.8rem}
.state{font-size:.8rem;color:#2a6}.state.incomplete{color:#b06000}.tag{display:inline-block;
background:#eef;border-radius:4px;padding:0 .3rem;margin-right:.2rem;font-size:.75rem}
.flag{display:inline-block;background:#fee;border-radius:4px;padding:0 .3rem;
margin-right:.2rem;font-size:.75rem}.pick{font-size:.85rem;color:#2a6;margin-top:.4rem}
"""


def _sent_cell(view: ExportView, pane: PaneRecord) -> str:
    if view.hide_names:
        return HIDDEN_SETTINGS
    sent = view.sent(pane)
    return NOT_RECORDED if sent is None else sent_summary(sent)


def charts_html(view: ExportView) -> str:
    """The HTML export's charts: Bradley–Terry strength from this session's picks (every rater,
    as the leaderboard counts them) and speed per pane, as inline SVG (:mod:`kurabe.charts`).

    Self-contained: no script, no stylesheet rule (inline attributes only), nothing fetched.
    Names are hidden as everywhere else in a blind export.
    """
    from kurabe.charts import session_speed_bars, session_strength_bars, speed_svg, strength_svg

    record = view.record
    strength = session_strength_bars(record, hide_names=view.hide_names)
    speed = session_speed_bars(record, hide_names=view.hide_names)
    figure = '<figure style="margin:.8rem 0;overflow-x:auto">'
    parts = ['<section class="charts">', "<h2>Charts</h2>"]
    if strength:
        title = "Bradley–Terry strength (1000 = average) with its 95% interval"
        parts.append(f"{figure}{strength_svg(strength, title)}</figure>")
    else:
        parts.append('<p class="chart-empty">Bradley–Terry strength: no picks yet.</p>')
    if speed:
        parts.append(f"{figure}{speed_svg(speed, 'Speed: tok/s and 字/s per pane')}</figure>")
    else:
        parts.append('<p class="chart-empty">Speed: no completed replies yet.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def to_html(view: ExportView) -> str:
    record = view.record
    info = record.session
    labels = _score_labels()
    latest = record.latest_replies()
    esc = html.escape
    title = f"比べ kurabe — session {info.id}"
    if info.scenario:
        title += f": {info.scenario.get('title', info.scenario_id)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ja"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if view.hide_names:
        parts.append(f'<p class="notice">{esc(BLIND_NOTICE)}</p>')
    persona = info.persona
    parts.append(
        f"<p>Persona <b>{esc(info.persona_id)}</b> — {esc(str(persona.get('title', '')))}"
        f" · rater {esc(info.rater)} · {esc(info.created_at)}</p>"
    )
    parts.append(f'<pre class="text">{esc(str(persona.get("system", "")))}</pre>')
    parts.append(
        '<table class="summary"><tr><th>Pane</th><th>Model</th><th>Quality</th><th>Note</th>'
        "<th>Mean score</th><th>tokens/s</th><th>chars/s</th><th>Sent</th></tr>"
    )
    for pane in record.panes:
        verdict = record.latest_verdict(pane.position)
        summary = _pane_summary(record, pane.position)
        parts.append(
            f"<tr><td>{esc(pane.label)}</td><td>{esc(view.name(pane))}</td>"
            f"<td>{esc(_verdict_label(verdict.verdict) if verdict else '')}</td>"
            f"<td>{esc(verdict.note if verdict else '')}</td>"
            f"<td>{_fmt(summary.mean_score, 2)}</td>"
            f"<td>{_fmt(summary.tokens_per_s)}</td><td>{_fmt(summary.chars_per_s)}</td>"
            f'<td class="sent">{esc(_sent_cell(view, pane))}</td></tr>'
        )
    parts.append("</table>")
    parts.append(charts_html(view))
    n = len(record.panes)
    for turn in record.turns:
        pick = record.latest_pick(turn.idx)
        parts.append(f'<section class="turn" id="turn-{turn.idx + 1}">')
        parts.append(
            f'<div class="user">{turn.idx + 1}. {esc(str(persona.get("user_name", "ユーザー")))}: '
            f"{esc(turn.text)}</div>"
        )
        parts.append(f'<div class="panes" style="--n:{n}">')
        for pane in record.panes:
            reply = latest.get((pane.position, turn.idx))
            best = pick is not None and pick.outcome == "pane" and pick.winner == pane.position
            parts.append(f'<div class="pane{" best" if best else ""}">')
            parts.append(
                f"<h3>{esc(pane.label)} · {esc(view.name(pane))}{' ★' if best else ''}</h3>"
            )
            if reply is None:
                parts.append('<div class="incomplete">no reply</div></div>')
                continue
            state, _reason = reply_state(reply)
            parts.append(
                f'<div class="text" data-reply="{reply.id}" data-state="{state}">'
                f"{esc(reply.text)}</div>"
            )
            parts.append(f'<div class="state {state}">{esc(state_words(reply))}</div>')
            rating = record.latest_rating(reply.id)
            if rating is not None:
                bits = []
                if rating.score is not None:
                    bits.append(f"<b>{rating.score}</b> {esc(labels.get(rating.score, ''))}")
                bits.extend(f'<span class="tag">{esc(t)}</span>' for t in rating.tags)
                if rating.note:
                    bits.append(esc(rating.note))
                parts.append(f'<div class="meta">{" ".join(bits)}</div>')
            flags = reply.checks.get("flags", [])
            if flags:
                badges = " ".join(
                    f'<span class="flag" title="{esc(str(f.get("detail", "")))}">'
                    f"{esc(str(f.get('label', f.get('code', ''))))}</span>"
                    for f in flags
                )
                parts.append(f'<div class="meta">{badges}</div>')
            checks = reply.checks
            parts.append(
                f'<div class="meta">{reply.chars} chars · {_fmt(reply.chars_per_s)} chars/s · '
                f"{_fmt(reply.tokens_per_s)} tok/s · TTFT {_fmt(reply.ttft_s, 2)} s"
                + "".join(f" · {esc(note)}" for note in reply.figures.engine_notes())
                + (
                    f" · 日本語 {checks['japanese_share'] * 100:.0f}%"
                    if checks.get("japanese_share") is not None
                    else ""
                )
                + "</div>"
            )
            parts.append("</div>")
        parts.append("</div>")
        if pick is not None and pick.outcome != "pane":
            word = "tie" if pick.outcome == "tie" else "all bad"
            parts.append(f'<div class="pick">pick: {word}</div>')
        parts.append("</section>")
    parts.append(agreement_html(view))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- battles ------------------------------------------------------------------------------


def battle_records(view: ExportView) -> list[dict[str, Any]]:
    """The ``battles`` format's objects (FastChat clean_battle shape)."""
    record = view.record
    latest = record.latest_replies()
    panes = {p.position: p for p in record.panes}
    out = []
    for battle in derive_battles(record, hide_names=view.hide_names):
        out.append(
            {
                "question_id": f"kurabe-{battle.session_id}-{battle.turn + 1}",
                "model_a": battle.model_a,
                "model_b": battle.model_b,
                "winner": battle.winner,
                "judge": battle.judge,
                "turn": battle.turn + 1,
                "anony": battle.anony,
                "language": battle.language,
                "tstamp": battle.tstamp,
                "conversation_a": conversation_until(record, battle.pane_a, battle.turn, latest),
                "conversation_b": conversation_until(record, battle.pane_b, battle.turn, latest),
                "replies_a": replies_until(record, battle.pane_a, battle.turn, latest),
                "replies_b": replies_until(record, battle.pane_b, battle.turn, latest),
                "sent_a": sent_record(view.sent(panes[battle.pane_a])),
                "sent_b": sent_record(view.sent(panes[battle.pane_b])),
                "session_id": battle.session_id,
                "scenario_id": battle.scenario_id,
                "blind_unrevealed": record.session.hidden,
            }
        )
    return out


def to_battles(view: ExportView) -> str:
    return "".join(json.dumps(b, ensure_ascii=False) + "\n" for b in battle_records(view))


# -- writing a file -----------------------------------------------------------------------

_DATABASE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _is_database(path: Path, database: Path) -> bool:
    """True when ``path`` is the database file or one of SQLite's files beside it."""
    target = path.resolve()
    for suffix in _DATABASE_SIDE_FILES:
        candidate = database.with_name(database.name + suffix)
        if target == candidate.resolve():
            return True
        with contextlib.suppress(OSError):
            if path.exists() and candidate.exists() and os.path.samefile(path, candidate):
                return True
    return False


def write_export(path: Path, text: str, *, database: Path | None = None) -> Path:
    """Write an export to ``path`` whole or not at all; return the path written.

    The text goes to a temporary file beside ``path``, is flushed to disk, then renamed over
    ``path`` in one step: a failed export leaves the old file as it was (or none) and no half
    file. ``database``, the store's file, is refused as a target, and so are SQLite's files
    beside it.
    """
    path = path.expanduser()
    if database is not None and _is_database(path, database):
        raise KurabeError(f"refusing to write the export over the database {database}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KurabeError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp's file is private (0600); an export is an ordinary file, like the one replaced.
        os.chmod(temporary, (path.stat().st_mode & 0o777) if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise KurabeError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


# -- entry point --------------------------------------------------------------------------


def export_session(
    store: Store,
    session_id: int,
    fmt: str,
    *,
    reveal_names: bool = False,
    bom: bool = True,
) -> str:
    """Render one session in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise KurabeError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    record = store.load_record(session_id)
    view = make_view(record, reveal_names=reveal_names)
    if fmt == "md":
        text = to_markdown(view)
    elif fmt == "jsonl":
        text = to_jsonl(view)
    elif fmt == "csv":
        text = to_csv(view, bom=bom)
    elif fmt == "html":
        text = to_html(view)
    else:
        text = to_battles(view)
    return _scrub_text(text, _secrets_of(record))
