"""The ``battles`` export: one JSON object per line in FastChat's ``clean_battle`` shape, for
Chatbot-Arena tooling. The battles themselves are derived from the picks
(:mod:`kurabe.analysis.battles`) when the view is built (:mod:`kurabe.export.view`)."""

from __future__ import annotations

import json
from typing import Any

from kurabe.export.sent import sent_record
from kurabe.export.view import BattleView, ExportView


def battle_record(view: ExportView, shown: BattleView) -> dict[str, Any]:
    """One battle as the format writes it."""
    battle = shown.battle
    return {
        "question_id": f"kurabe-{battle.session_id}-{battle.turn + 1}",
        "model_a": battle.model_a,
        "model_b": battle.model_b,
        "winner": battle.winner,
        "judge": battle.judge,
        "turn": battle.turn + 1,
        "anony": battle.anony,
        "language": battle.language,
        "tstamp": battle.tstamp,
        "conversation_a": list(shown.conversation_a),
        "conversation_b": list(shown.conversation_b),
        "replies_a": list(shown.replies_a),
        "replies_b": list(shown.replies_b),
        "sent_a": sent_record(shown.sent_a),
        "sent_b": sent_record(shown.sent_b),
        "session_id": battle.session_id,
        "scenario_id": battle.scenario_id,
        "blind_unrevealed": view.session.hidden,
    }


def to_battles(view: ExportView) -> str:
    return "".join(
        json.dumps(battle_record(view, shown), ensure_ascii=False) + "\n" for shown in view.battles
    )
