"""Stored sessions to build rating studies on, written through the store's repositories (no
backend, no app): each turn has one complete reply per pane."""

from __future__ import annotations

from collections.abc import Sequence

from kurabe.store.records import ReplyFigures
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario

PERSONA = Persona(id="anime-fan", title="大のアニメファン", system="あなたは大のアニメファンです。")
MODELS = ("gemma-270m", "gemma-270m-transcript")


def stored_session(
    store: Store,
    turns: int,
    *,
    models: Sequence[str] = MODELS,
    scenario: Scenario | None = None,
    reply_text: str = "{model}の返事 {turn}",
) -> tuple[int, list[int]]:
    """A session of ``turns`` turns with one complete reply per pane; (session id, turn ids)."""
    session_id = store.sessions.create(PERSONA, scenario, rater="はな")
    pane_ids = [
        store.sessions.add_pane(
            session_id,
            position,
            "ABCDEF"[position],
            profile_name=model,
            backend="fake",
            model=f"{model}.gguf",
            settings={},
        )
        for position, model in enumerate(models)
    ]
    turn_ids = []
    for turn in range(turns):
        turn_id = store.replies.add_turn(session_id, turn, f"質問 {turn + 1}：アニメは好き？")
        turn_ids.append(turn_id)
        for model, pane_id in zip(models, pane_ids, strict=True):
            reply_id, _ = store.replies.start_reply(turn_id, pane_id)
            text = reply_text.format(model=model, turn=turn + 1)
            store.replies.finish_reply(
                reply_id, text=text, finish_reason="stop", figures=ReplyFigures(chars=len(text))
            )
    return session_id, turn_ids
