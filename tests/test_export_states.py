"""Every export format carries the same replies, each marked complete, incomplete or failed.

One session holds every kind: complete replies, a reply cancelled mid-stream, a reply left
``streaming`` by a process that stopped (and one such reply marked ``interrupted`` by a resume),
failed replies with and without partial text. The md, html, csv, jsonl and battles exports of it
must list the same (pane, turn, state, reason) set, with each reply's text where it has any.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from backends.base import StreamError
from kurabe.export.exporter import export_session
from kurabe.export.view import STILL_STREAMING
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from personas import Persona
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")

PERSONA = Persona(
    id="anime-fan",
    title="アニメファン",
    system="あなたは大のアニメファンです。",
    char_name="オタク",
)
ERROR = StreamError("server error 500", retryable=True)
INTERRUPTED = "interrupted: the process stopped while streaming"
Entry = tuple[str, int, str, "str | None"]


async def build(store: Store) -> tuple[int, dict[str, str], dict[Entry, str]]:
    backends = {
        "ok": FakeBackend("ok", ["うん、大好き！", "トトロだよ"]),
        "cut": FakeBackend("cut", [Script(chunks=("途中まで",), stall=True), "そうだね"]),
        "bad": FakeBackend(
            "bad",
            [Script(chunks=("壊れ",), error=ERROR), Script(chunks=(), error=ERROR)],
        ),
    }
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile(name) for name in backends],
        rater="はな",
        backend_factory=fake_factory(backends),
    )
    index = {p.profile.name: p.index for p in session.panes}
    label = {p.profile.name: p.label for p in session.panes}
    first = asyncio.create_task(session.send("アニメ好き？"))
    while not backends["cut"].calls or session.panes[index["ok"]].status != "ready":
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    session.cancel(index["cut"])
    await first
    await session.send("何が好き？")
    # Turn 3 as a process that stopped mid-reply leaves it: a reply still 'streaming' with its
    # partial text, one a later resume marked 'interrupted', one that failed before it stopped.
    turn_id = store.replies.add_turn(session.id, 2, "ジブリは？", None)
    panes = {p.profile.name: p.db_id for p in session.panes}
    cut_id, _ = store.replies.start_reply(turn_id, panes["cut"])
    store.replies.update_partial(cut_id, "ジブリは")
    store.replies.mark_interrupted(session.id)
    ok_id, _ = store.replies.start_reply(turn_id, panes["ok"])
    store.replies.update_partial(ok_id, "書きかけの")
    bad_id, _ = store.replies.start_reply(turn_id, panes["bad"])
    store.replies.fail_reply(bad_id, status="failed", text="", error="timed out after 60 s")
    store.ratings.add_pick(
        turn_id, winner_pane_id=panes["ok"], outcome="pane", rater="はな", blind=False
    )
    await session.aclose()

    expected = {
        (label["ok"], 1, "complete", None): "うん、大好き！",
        (label["ok"], 2, "complete", None): "トトロだよ",
        (label["ok"], 3, "incomplete", STILL_STREAMING): "書きかけの",
        (label["cut"], 1, "incomplete", "cancelled"): "途中まで",
        (label["cut"], 2, "complete", None): "そうだね",
        (label["cut"], 3, "incomplete", INTERRUPTED): "ジブリは",
        (label["bad"], 1, "failed", "server error 500"): "壊れ",
        # the rule after a failure: bad's conversation stopped at turn 1, turn 2 was not sent
        (label["bad"], 2, "not sent", "the conversation stopped at turn 1, which failed"): "",
        (label["bad"], 3, "failed", "timed out after 60 s"): "",
    }
    return session.id, {name: label[name] for name in label}, expected


def split_state(words: str) -> tuple[str, str | None]:
    state, _, reason = words.partition(": ")
    return state, reason or None


def from_md(text: str, labels: dict[str, str]) -> set[Entry]:
    found = set()
    for section in re.split(r"^## ", text, flags=re.M)[2:]:
        name = section.splitlines()[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("| ") and cells[0].isdigit():
                found.add((labels[name], int(cells[0]), *split_state(cells[1])))
    return found


class _Replies(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.turn = 0
        self.label = ""
        self.where = ""
        self.states: set[Entry] = set()
        self.texts: dict[tuple[str, int], str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and (values.get("id") or "").startswith("turn-"):
            self.turn = int((values["id"] or "").removeprefix("turn-"))
        classes = (values.get("class") or "").split()
        self.where = tag if tag == "h3" else ("state" if "state" in classes else "")
        if "text" in classes and values.get("data-reply"):
            self.where = "text"
            self.texts[(self.label, self.turn)] = ""

    def handle_data(self, data: str) -> None:
        if self.where == "h3":
            self.label = data.split(" · ")[0]
        elif self.where == "state":
            self.states.add((self.label, self.turn, *split_state(data)))
        elif self.where == "text":
            self.texts[(self.label, self.turn)] += data

    def handle_endtag(self, tag: str) -> None:
        self.where = ""


async def test_every_format_carries_the_same_replies_with_their_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "kurabe.sqlite3")
    session_id, labels, expected = await build(store)
    want = set(expected)

    md = export_session(store, session_id, "md")
    assert from_md(md, labels) == want
    for (_, _, state, reason), text in expected.items():
        if text:
            assert f"**オタク:** {text}" in md
        if state != "complete":
            assert f"[{state}: {reason}]" in md

    parser = _Replies()
    parser.feed(export_session(store, session_id, "html"))
    assert parser.states == want
    assert {key: parser.texts[key[:2]] for key in expected} == expected

    rows = list(csv.DictReader(io.StringIO(export_session(store, session_id, "csv")[1:])))
    assert {(r["label"], int(r["turn"]), r["state"], r["reason"] or None) for r in rows} == want
    assert {
        (r["label"], int(r["turn"]), r["state"], r["reason"] or None): r["text"] for r in rows
    } == expected

    records = [json.loads(line) for line in export_session(store, session_id, "jsonl").splitlines()]
    latest = {
        (r["label"], r["turn"] + 1, r["state"], r["reason"]): r["text"]
        for r in records
        if r["latest"]
    }
    assert latest == expected

    battles = [
        json.loads(line) for line in export_session(store, session_id, "battles").splitlines()
    ]
    assert len(battles) == 2  # the pick on turn 3: ok against each other pane
    in_battles = set()
    for battle in battles:
        for side in ("a", "b"):
            label = labels[battle[f"model_{side}"]]
            for reply in battle[f"replies_{side}"]:
                in_battles.add((label, reply["turn"], reply["state"], reply["reason"]))
    assert in_battles == want
