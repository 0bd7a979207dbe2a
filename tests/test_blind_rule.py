"""The blind rule in every place that names a pane: while a blind session is not revealed each
shows the pane's label (the summary screen a "?"), never the model; after the reveal, the model.
The rule itself lives in :mod:`kurabe.core.blind` (one definition: test_single_definitions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from kurabe.analysis.battles import derive_battles
from kurabe.analysis.charts import session_speed_bars, session_strength_bars
from kurabe.core.blind import names_hidden, shown_name
from kurabe.export.exporter import export_session
from kurabe.export.view import build_view
from kurabe.judge.progress import pane_name
from kurabe.session.comparison import ComparisonSession
from kurabe.session.sent_prompt import sent_prompt
from kurabe.store.records import SessionRecord
from kurabe.store.store import Store
from personas import Persona
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile
from tui.summary_screen import pane_rows

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")

PERSONA = Persona(id="anime-fan", title="アニメファン", system="あなたはアニメファンです。")
MODELS = ("gpt-3.5", "claude", "weblab")


def test_the_rule() -> None:
    assert names_hidden(blind=True, revealed=False)
    assert not names_hidden(blind=True, revealed=True)
    assert not names_hidden(blind=False, revealed=False)
    assert shown_name("A", "gpt-3.5", hidden=True) == "A"
    assert shown_name("A", "gpt-3.5", hidden=False) == "gpt-3.5"


async def blind_session(store: Store) -> ComparisonSession:
    backends = {
        name: FakeBackend(
            name, [Script.text(f"{name}です", completion_tokens=3, delay_s=0.002)] * 2
        )
        for name in MODELS
    }
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile(name) for name in MODELS],
        blind=True,
        rater="はな",
        backend_factory=fake_factory(backends),
        shuffle_seed=3,
    )
    await session.send("ねえ")
    session.pick_best(0, 0)
    await session.send("それで？")
    session.pick_best(1, 1)
    return session


def without_letters(name: str) -> str:
    """``A gpt-3.5`` → ``gpt-3.5`` (the charts put the letter before a model's name)."""
    head, _, rest = name.partition(" ")
    return rest if rest and len(head) == 1 else name


Place = Callable[[Store, ComparisonSession, SessionRecord], set[str]]
PLACES: dict[str, Place] = {
    "the session list": lambda store, session, record: set(store.sessions.summaries()[0].models),
    "the session's panes": lambda store, session, record: {
        shown_name(p.label, p.profile.name, hidden=session.hidden) for p in session.panes
    },
    "the export view": lambda store, session, record: {p.name for p in build_view(record).panes},
    "the battles export": lambda store, session, record: {
        name
        for line in export_session(store, session.id, "battles").splitlines()
        for name in (json.loads(line)["model_a"], json.loads(line)["model_b"])
    },
    "the battles": lambda store, session, record: {
        name
        for b in derive_battles(record, hide_names=record.session.hidden)
        for name in (b.model_a, b.model_b)
    },
    "the judge's progress": lambda store, session, record: {
        pane_name(record, p.position) for p in record.panes
    },
    "the strength chart": lambda store, session, record: {
        without_letters(bar.label)
        for bar in session_strength_bars(record, hide_names=record.session.hidden, rounds=10)
    },
    "the speed chart": lambda store, session, record: {
        without_letters(bar.label)
        for bar in session_speed_bars(record, hide_names=record.session.hidden)
    },
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "kurabe.sqlite3")


@pytest.mark.parametrize("place", sorted(PLACES))
async def test_labels_until_the_reveal_then_models(store: Store, place: str) -> None:
    session = await blind_session(store)
    record = store.load_record(session.id)
    labels = {pane.label for pane in record.panes}
    assert PLACES[place](store, session, record) == labels
    session.reveal()
    record = store.load_record(session.id)
    assert PLACES[place](store, session, record) == set(MODELS)


async def test_summary_screen_and_sent_prompt_until_the_reveal(store: Store) -> None:
    session = await blind_session(store)
    record = store.load_record(session.id)
    assert {row[1] for row in pane_rows(record, record.session.hidden, "はな")} == {"?"}
    assert sent_prompt(session, 0, 0).note.startswith("Hidden in a blind session")
    session.reveal()
    record = store.load_record(session.id)
    assert {row[1] for row in pane_rows(record, record.session.hidden, "はな")} == set(MODELS)
    assert not sent_prompt(session, 0, 0).note.startswith("Hidden")
