"""The table-like exports: JSON lines (one record per reply, every version) and CSV (one flat
row per newest reply, spreadsheet-safe, with a byte order mark by default)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from backends.profiles import SAMPLING_FIELDS
from kurabe.core.csvsafe import spreadsheet_safe
from kurabe.export.sent import sent_record
from kurabe.export.view import ExportView, TurnView, round_to, verdict_text
from kurabe.store.records import RatingRow

# -- JSON lines ---------------------------------------------------------------------------


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


def pick_dict(turn: TurnView) -> dict[str, Any] | None:
    pick = turn.pick
    if pick is None:
        return None
    return {
        "outcome": pick.outcome,
        "winner": turn.pick_winner,
        "rater": pick.rater,
        "blind": pick.blind,
    }


def reply_records(view: ExportView) -> list[dict[str, Any]]:
    """One dict per reply (every version), as written by the ``jsonl`` format."""
    info = view.session
    labels = view.score_labels
    panes = {p.pane.position: p for p in view.panes}
    turns = {t.turn.idx: t for t in view.turns}
    out = []
    for shown in view.replies:
        reply = shown.reply
        pane_view = panes[reply.pane]
        pane = pane_view.pane
        turn = shown.turn
        newest = shown.latest_rating
        verdict = pane_view.summary.verdict
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
                "model": pane_view.name,
                "backend": None if view.hide_names else pane.backend,
                "settings": pane_view.settings,
                "sent": sent_record(pane_view.sent),
                "reply_id": reply.id,
                "version": reply.version,
                "latest": shown.latest,
                "status": reply.status,
                "state": shown.state,
                "reason": shown.reason,
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
                "ratings": [rating_dict(r, labels) for r in shown.ratings],
                "judgements": list(shown.judgements),
                "latest_rating": rating_dict(newest, labels) if newest else None,
                "verdict": None
                if verdict is None
                else {
                    "verdict": verdict.verdict,
                    "label": verdict_text(verdict.verdict),
                    "note": verdict.note,
                    "rater": verdict.rater,
                },
                "pick": pick_dict(turns[reply.turn]),
                "started_at": reply.started_at,
                "finished_at": reply.finished_at,
            }
        )
    return out


def to_jsonl(view: ExportView) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reply_records(view))


# -- CSV ----------------------------------------------------------------------------------

CSV_SAMPLING_COLUMNS = tuple(name for name in SAMPLING_FIELDS if name != "stop")
"""The sampling sent, one column each (the stop strings are left to the jsonl)."""
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
    *CSV_SAMPLING_COLUMNS,
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


"""The value sent, "model default" when none was, empty when nothing was recorded or the names
are hidden."""


def csv_rows(view: ExportView) -> list[dict[str, Any]]:
    """The ``csv`` format's rows: the newest version of every reply, flat."""
    labels = view.score_labels
    rows = []
    for shown, item in zip(view.replies, reply_records(view), strict=True):
        if not item["latest"]:
            continue
        sent = item["sent"] or {}
        rating = item["latest_rating"] or {}
        verdict = item["verdict"] or {}
        report = shown.reply.check_report
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
                "ttft_s": _blank(round_to(figures["ttft_s"])),
                "total_s": _blank(round_to(figures["total_s"])),
                "chars": figures["chars"],
                "tokens_per_s": _blank(round_to(figures["tokens_per_s"], 2)),
                "chars_per_s": _blank(round_to(figures["chars_per_s"], 2)),
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
                "japanese_share": _blank(round_to(report.japanese_share if report else None)),
                "polite_share": _blank(round_to(report.polite_share if report else None)),
                "register": report.register if report else "",
                "chars_per_token": _blank(round_to(report.chars_per_token if report else None)),
                "check_flags": " ".join(report.flag_codes) if report else "",
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
