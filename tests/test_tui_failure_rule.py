"""The app after a pane's reply fails: the pane is not sent the next turn, its transcript and
status say so, and **r** runs it again from the failed turn on."""

from __future__ import annotations

from pathlib import Path

from backends.base import StreamError
from tests.fake_backends import FakeBackend, Script
from tests.tui_support import make_harness, type_text, wait_until


async def test_a_failed_pane_stops_shows_it_and_r_goes_on_from_there(tmp_path: Path) -> None:
    backends = {
        "alpha": FakeBackend("alpha", ["好きだよ！", "ナウシカ！"]),
        "gamma": FakeBackend(
            "gamma",
            [
                Script(chunks=("途中",), error=StreamError("HTTP 503 from server", retryable=True)),
                "やっぱり好き。",
                "風の谷の話だよ。",
            ],
        ),
    }
    harness = make_harness(backends, db_path=tmp_path / "kurabe.sqlite3")
    session = harness.session
    async with harness.app.run_test(size=(120, 30)) as pilot:
        screen = harness.screen
        await wait_until(pilot, lambda: all(p.status == "ready" for p in session.panes))
        await type_text(pilot, "アニメ好き？")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and session.panes[1].status == "failed")
        await type_text(pilot, "ナウシカは？")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not session.busy and len(backends["alpha"].calls) == 2)
        assert len(backends["gamma"].calls) == 1  # not sent the second line
        text = " ".join(screen.pane_widget(1).transcript.plain_lines)
        assert "not sent: the conversation stopped at turn 1, which failed" in text
        assert "not sent" in screen.pane_widget(1).status_text

        await pilot.press("tab", "b", "r")
        await wait_until(pilot, lambda: not session.busy and len(backends["gamma"].calls) == 3)
        await wait_until(
            pilot,
            lambda: "風の谷の話だよ。" in "".join(screen.pane_widget(1).transcript.plain_lines),
        )
        assert [m.content for m in backends["gamma"].calls[2].turns] == [
            "アニメ好き？",
            "やっぱり好き。",
            "ナウシカは？",
        ]
