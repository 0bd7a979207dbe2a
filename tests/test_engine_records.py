"""What the local engine did to a reply reaches the store, the status line and every export:
the prefix reused, the panes it was decoded with, history trimmed, a clamped reply budget."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from kurabe.export.exporter import export_session
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from personas import Persona
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile
from tui.model_pane import format_figures

PERSONA = Persona(
    id="anime-fan",
    title="大のアニメファン",
    system="あなたは大のアニメファンで、友達と会話しています。",
    char_name="オタク",
    user_name="ユーザー",
)
ENGINE = {
    "cached_prompt_tokens": 412,
    "decoded_alongside": 2,
    "history_trimmed_turns": 3,
    "max_tokens_clamped": 96,
}


async def test_engine_figures_are_stored_shown_and_exported(tmp_path: Path) -> None:
    store = Store(tmp_path / "kurabe.sqlite3")
    profiles = [fake_profile("gemma", local=True), fake_profile("elyza", local=True)]
    backends = {
        "gemma": FakeBackend("gemma", [Script.text("うん、大好きだよ！", engine=ENGINE)]),
        "elyza": FakeBackend("elyza", ["もちろん！"]),
    }
    session = ComparisonSession.create(
        store, PERSONA, profiles, backend_factory=fake_factory(backends), rater="hana"
    )
    await session.load()
    await session.send("ねえ、アニメ好きなの？")

    rows = {r.pane: r for r in store.replies.replies(session.id)}
    trimmed, plain = rows[0], rows[1]
    assert (trimmed.cached_prompt_tokens, trimmed.decoded_alongside) == (412, 2)
    assert (trimmed.history_trimmed_turns, trimmed.max_tokens_clamped) == (3, 96)
    assert plain.history_trimmed_turns == 0 and plain.decoded_alongside is None

    notes = ["decoded with 2 other panes", "history trimmed: 3 turns", "max_tokens clamped to 96"]
    assert trimmed.figures.engine_notes() == notes
    assert plain.figures.engine_notes() == []
    status = format_figures(trimmed.figures)
    assert all(note in status for note in notes)

    markdown = export_session(store, session.id, "md", reveal_names=True)
    assert "decoded with 2 other panes; history trimmed: 3 turns; max_tokens clamped to 96" in (
        markdown
    )
    html = export_session(store, session.id, "html", reveal_names=True)
    assert "history trimmed: 3 turns" in html
    records = [
        json.loads(line)
        for line in export_session(store, session.id, "jsonl", reveal_names=True).splitlines()
    ]
    figures = {r["pane"]: r["figures"] for r in records}
    assert {k: figures[0][k] for k in ENGINE} == ENGINE
    table = list(
        csv.DictReader(io.StringIO(export_session(store, session.id, "csv").lstrip("\ufeff")))
    )
    first = next(r for r in table if r["history_trimmed_turns"] == "3")
    assert (first["decoded_alongside"], first["max_tokens_clamped"]) == ("2", "96")
    assert first["cached_prompt_tokens"] == "412"
