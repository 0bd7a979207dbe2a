"""The rating queue in the app (``kurabe study rate``): rate, skip, go back and amend, finish;
the model names stay hidden until the study allows them; long items scroll."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.message import Message
from textual.widgets import Static

from kurabe.store.store import Store
from tests.study_support import MODELS, stored_session
from tui.study_screen import StudyApp, StudyScreen
from tui.transcript_view import TranscriptView

LONG_REPLY = "とても長い返事です。" * 120 + "{model} {turn}"


def make_study(
    tmp_path: Path, *, reveal: str = "closed", reply_text: str = "{model}の返事"
) -> Store:
    store = Store(tmp_path / "k.sqlite3")
    _, turns = stored_session(store, 3, reply_text=reply_text)
    store.studies.create("q", turns, per_item=2, raters=["hana", "ken"], reveal=reveal)
    return store


def titles(app: StudyApp) -> list[str]:
    return [str(s.content) for s in app.screen.query(".study-pane-title").results(Static)]


def title_text(app: StudyApp) -> str:
    return str(app.screen.query_one("#study-title", Static).content)


async def test_rate_skip_go_back_amend_and_finish(tmp_path: Path) -> None:
    store = make_study(tmp_path)
    study = store.studies.get("q")
    changes: list[str] = []

    def hook(message: Message) -> None:
        if isinstance(message, StudyScreen.Changed):
            changes.append(message.text)

    app = StudyApp(store, study, "hana")
    async with app.run_test(size=(120, 36), message_hook=hook) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, StudyScreen)
        assert "0 / 3" in title_text(app)
        assert titles(app) == ["A", "B"]
        first = app.screen.shown
        assert first is not None

        await pilot.press("2", "enter")
        await pilot.pause()
        assert "1 / 3" in title_text(app)
        second = app.screen.shown
        assert second is not None and second.item.id != first.item.id

        await pilot.press("s")
        await pilot.pause()
        third = app.screen.shown
        assert third is not None and third.item.id not in (first.item.id, second.item.id)

        await pilot.press("b", "5", "p", "a")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.shown is None
        assert "Nothing left" in str(app.screen.query_one("#study-question", Static).content)
        assert "2 / 2" in title_text(app)

        await pilot.press("left_square_bracket")  # back to the third item
        await pilot.pause()
        assert app.screen.shown is not None and app.screen.shown.item.id == third.item.id
        assert titles(app) == ["A", "B"]  # finished, but the study is not closed: still blind
        await pilot.press("left_square_bracket", "left_square_bracket")  # the skipped, the first
        await pilot.pause()
        assert app.screen.shown is not None and app.screen.shown.item.id == first.item.id
        await pilot.press("a", "4")
        await pilot.pause()
        await pilot.press("q")

    scores = [(s.item_id, s.shown_position, s.score) for s in store.studies.scores(study.id)]
    assert scores == [
        (first.item.id, 0, 2),
        (third.item.id, 1, 5),
        (first.item.id, 0, 4),  # the amendment is appended; the first score stays
    ]
    picks = store.studies.picks(study.id)
    assert [(p.item_id, p.winner_shown_position, p.rater) for p in picks] == [
        (third.item.id, 0, "hana")
    ]
    assert [(s.item_id, s.rater) for s in store.studies.skips(study.id)] == [
        (second.item.id, "hana")
    ]
    assert any("1 / 3" in text for text in changes)
    store.close()


async def test_names_show_once_the_study_is_closed(tmp_path: Path) -> None:
    store = make_study(tmp_path)
    study = store.studies.get("q")
    claim = store.studies.claim_next(study, "ken")
    assert claim is not None
    store.studies.add_score(claim.item_id, "ken", 0, score=3)
    store.studies.finish(claim.item_id, "ken")
    store.studies.close(study.id)
    closed = store.studies.get("q")
    app = StudyApp(store, closed, "ken")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "closed" in str(app.screen.query_one("#study-question", Static).content)
        await pilot.press("left_square_bracket")
        await pilot.pause()
        expected = [MODELS[position] for position in claim.positions]
        assert titles(app) == expected
        await pilot.press("1")  # a closed study's ratings no longer change
        await pilot.pause()
        await pilot.press("q")
    assert [s.score for s in store.studies.scores(study.id)] == [3]
    store.close()


async def test_names_show_to_a_rater_who_finished_when_the_study_says_so(tmp_path: Path) -> None:
    store = make_study(tmp_path, reveal="finished")
    study = store.studies.get("q")
    app = StudyApp(store, study, "ken")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert titles(app) == ["A", "B"]
        for _ in range(3):
            await pilot.press("3", "enter")
            await pilot.pause()
        assert app.screen.shown is None
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert sorted(titles(app)) == sorted(MODELS)
        await pilot.press("q")
    store.close()


async def test_a_long_item_scrolls_and_wraps_wide_characters(tmp_path: Path) -> None:
    store = make_study(tmp_path, reply_text=LONG_REPLY)
    study = store.studies.get("q")
    app = StudyApp(store, study, "hana")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.pause()
        view = app.screen.query(TranscriptView).first()
        assert view.line_count > view.size.height
        assert view.scroll_offset.y > 0  # opened at the turn's reply, the end
        assert all(len(line) <= view.size.width * 2 for line in view.plain_lines)
        await pilot.press("home")
        await pilot.pause()
        assert view.scroll_offset.y == 0
        await pilot.press("q")
    store.close()


async def test_a_rater_sees_nobody_elses_marks(tmp_path: Path) -> None:
    store = make_study(tmp_path)
    study = store.studies.get("q")
    app = StudyApp(store, study, "hana")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        shown = app.screen.shown
        assert shown is not None
        store.studies.claim_item(study, shown.item.id, "ken")
        store.studies.add_score(shown.item.id, "ken", shown.panes[0][0], score=5, note="ken")
        store.studies.add_pick(shown.item.id, "ken", position=shown.panes[0][0], outcome="pane")
        await pilot.press("b")  # redraws the marks
        await pilot.pause()
        marks = [str(m.content) for m in app.screen.query(".study-marks").results(Static)]
        assert marks == ["—", "—"]
        await pilot.press("q")
    store.close()


async def test_a_claim_released_while_away_is_not_rated_over_another_rater(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "k.sqlite3")
    _, turns = stored_session(store, 1)
    store.studies.create("q", turns, per_item=1, claim_timeout_s=1)
    study = store.studies.get("q")
    told: list[str] = []
    app = StudyApp(store, study, "hana")
    async with app.run_test(size=(120, 36)) as pilot:
        monkeypatch.setattr(app, "notify", lambda message, **_: told.append(message))
        await pilot.pause()
        assert app.screen.shown is not None
        time.sleep(1.1)
        assert store.studies.claim_next(study, "ken") is not None  # hana's claim ran out
        await pilot.press("3", "enter")
        await pilot.pause()
        await pilot.press("q")
    assert store.studies.scores(study.id) == []
    assert any("all the raters it needs" in message for message in told)
    store.close()


async def test_y_copies_the_focused_panes_reply(tmp_path: Path) -> None:
    store = make_study(tmp_path)
    app = StudyApp(store, store.studies.get("q"), "hana")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, StudyScreen) and screen.shown is not None
        shown = screen.shown
        await pilot.press("b", "y")
        await pilot.pause()
        record = store.load_record(shown.item.session_id)
        position = shown.panes[1][0]
        reply = record.latest_replies()[(position, shown.item.turn)]
        assert app.clipboard == reply.text
