"""The judge key in the app: j asks the judge about the latest turn in the background; its score
is a badge of its own, hidden until the rater has scored that reply (or always shown when the
rater asked for that); the screen answers keys while the judge is still thinking."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message
from textual.notifications import Notify

from kurabe.store.store import Store
from tests.fake_backends import FakeBackend, Script
from tests.test_tui_app import panes_text
from tests.tui_support import make_harness, settle, wait_until

JUDGE_ANSWER = '{"score": 4, "reason": "キャラを保っている。"}'


def pane_lines(harness: object, index: int) -> str:
    screen = harness.screen  # type: ignore[attr-defined]
    return "\n".join(screen.pane_widget(index).transcript.plain_lines)


async def test_the_judges_badge_stays_hidden_until_the_rater_has_scored(tmp_path: Path) -> None:
    judge = FakeBackend("judge", [JUDGE_ANSWER])
    backends = {
        "hidden-name-one": FakeBackend("one", ["うん、大好きだよ！"]),
        "hidden-name-two": FakeBackend("two", ["はい、好きです。"]),
    }
    db = tmp_path / "k.sqlite3"
    harness = make_harness(backends, db_path=db, judge=judge)
    session = harness.session
    async with harness.app.run_test(size=(120, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in session.panes))
        screen.prompt.set_text("ねえ、アニメ好きなの？")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and session.user_turns != [])
        await pilot.press("tab", "a", "j")
        await wait_until(pilot, lambda: len(screen.judge_results) == 2)
        await settle(pilot)
        assert "⚖ judged · score to see" in pane_lines(harness, 0)
        assert "⚖4" not in panes_text(screen)  # nothing to anchor on before the human rates

        await pilot.press("3")  # the rater scores pane A's reply
        await settle(pilot)
        assert "★3" in pane_lines(harness, 0)
        assert "⚖4 judge" in pane_lines(harness, 0)
        assert "⚖4" not in pane_lines(harness, 1)  # B is not rated yet
        assert "⚖ judged · score to see" in pane_lines(harness, 1)

    # blind: the judge was never told a profile or model name
    assert len(judge.calls) == 2
    for conversation in judge.calls:
        said = conversation.system + "".join(t.content for t in conversation.turns)
        assert "hidden-name" not in said and "ねえ、アニメ好きなの？" in said
    judged = [r for r in Store(db).ratings.ratings(session.id) if r.kind == "judge"]
    assert sorted(r.rater for r in judged) == ["judge:judge-fake"] * 2
    assert {r.score for r in judged} == {4}


async def test_always_shows_the_judge_at_once_and_keys_work_while_it_thinks() -> None:
    slow = Script.text(JUDGE_ANSWER, chunk=4, delay_s=0.05)  # about a second per answer
    judge = FakeBackend("judge", [slow])
    backends = {
        "one": FakeBackend("one", ["うん、大好きだよ！"]),
        "two": FakeBackend("two", ["はい、好きです。"]),
    }
    harness = make_harness(backends, judge=judge, judge_badge="always")
    session = harness.session
    async with harness.app.run_test(size=(120, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in session.panes))
        screen.prompt.set_text("ねえ、アニメ好きなの？")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and session.user_turns != [])
        await pilot.press("tab", "b", "j")
        await pilot.pause(0.1)
        # the judge is still answering: the rater's keys are handled meanwhile
        assert screen.judge_results == {}
        await pilot.press("5")
        await settle(pilot)
        assert "★5" in pane_lines(harness, 1)
        assert screen.judge_results == {}
        await wait_until(pilot, lambda: len(screen.judge_results) == 2, timeout=15)
        await settle(pilot)
        assert "⚖4 judge" in pane_lines(harness, 0)  # shown although A is not rated
        await pilot.press("j")  # asked again: nothing new to judge
        await pilot.pause(0.2)
        assert len(judge.calls) == 2


async def test_without_a_judge_the_key_says_how_to_get_one() -> None:
    backends = {"one": FakeBackend("one", ["うん"])}
    harness = make_harness(backends)
    messages: list[str] = []

    def note_notifications(message: Message) -> None:
        if isinstance(message, Notify):
            messages.append(message.notification.message)

    async with harness.app.run_test(size=(100, 24), message_hook=note_notifications) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await pilot.press("tab", "a", "j")
        await pilot.pause(0.1)
        assert any("--judge PROFILE" in m for m in messages)


async def test_the_screen_lets_its_judge_go_when_it_is_closed() -> None:
    judge = FakeBackend("judge", [JUDGE_ANSWER])
    harness = make_harness({"one": FakeBackend("one", ["うん"])}, judge=judge)
    session = harness.session
    async with harness.app.run_test(size=(100, 24)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: session.panes[0].status == "ready")
        screen.prompt.set_text("やあ")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and session.user_turns != [])
        await pilot.press("tab", "a", "j")
        await wait_until(pilot, lambda: len(screen.judge_results) == 1)
        assert not judge.closed  # kept for the next j
        await pilot.press("ctrl+q")
    assert judge.closed  # the screen that opened it closed it
