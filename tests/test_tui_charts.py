"""The summary screen's charts: a snapshot after four rated turns, the bars' text in order, the
leaderboard view (``l``), and a blind session that keeps its names hidden in the charts."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from kurabe.analysis.charts import plain
from tests.tui_support import FixedBackend, make_harness, wait_until
from tui.bar_chart import BarChart
from tui.summary_screen import SummaryScreen

REPLIES = {
    "gemma-270m": "うん、大好きだよ！最近は『鬼滅の刃』にハマってて、毎週の放送が楽しみなんだ。",
    "gemma-270m-llama2": "もちろんです。アニメは大好きです。特に宮崎駿監督の作品が好きで、『風の谷のナウシカ』は何度も見ました。",
    "gpt-4.1-mini": "好き！",
}
HEADERS = {
    "gemma-270m": "Q4_K_M · GPU 0/18",
    "gemma-270m-llama2": "Q4_K_M · GPU 0/18",
    "gpt-4.1-mini": "api.openai.com",
}
PICKS = ["a", "b", "a", "a"]
"""The best pane of turns 1-4: A wins three, B one, C none."""


def comparison_app(*, blind: bool = False) -> Any:
    backends = {name: FixedBackend([text], header=HEADERS[name]) for name, text in REPLIES.items()}
    return make_harness(backends, scenario="seed-gpt3", blind=blind)


async def rated_turns_then_summary(pilot: Pilot[Any]) -> None:
    """Send four of the scenario's lines, score pane A and pick a best pane each turn, press s."""
    app: Any = pilot.app
    screen = app.main_screen
    screen.prompt.cursor_blink = False
    await wait_until(pilot, lambda: all(p.status == "ready" for p in app.session.panes))
    for number, pick in enumerate(PICKS, start=1):
        await pilot.press("i")
        await wait_until(pilot, lambda: bool(screen.prompt.text.strip()))
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda number=number: not app.session.busy and len(app.session.user_turns) == number,
        )
        await pilot.press("tab", "4", "p", pick)
        await pilot.pause(0.1)
    await pilot.press("s")
    await wait_until(
        pilot, lambda: isinstance(app.screen, SummaryScreen) and app.screen.charts_ready
    )
    await pilot.pause(0.2)


def chart_text(app: Any, chart_id: str) -> str:
    chart = app.screen.query_one(f"#{chart_id}", BarChart)
    return plain(chart.rows(chart.content_size.width))


def test_summary_charts_snapshot(snap_compare: Any) -> None:
    harness = comparison_app()
    assert snap_compare(harness.app, terminal_size=(160, 48), run_before=rated_turns_then_summary)


async def test_summary_charts_show_the_sessions_bars_in_order() -> None:
    harness = comparison_app()
    async with harness.app.run_test(size=(160, 48)) as pilot:
        await rated_turns_then_summary(pilot)
        strength = chart_text(harness.app, "strength-chart").splitlines()
        labels = [line.split("  ")[0] for line in strength[0:6:2]]
        assert labels == ["A gemma-270m", "B gemma-270m-llama2", "C gpt-4.1-mini"]
        # A won three picks: its bar grows right of 1000; C won none: its bar grows left
        assert "█" in strength[0] and strength[0].rstrip().split()[-1].isdigit()
        assert int(strength[0].split()[-1]) > 1000 > int(strength[4].split()[-1])
        assert "├" in strength[1] and "┤" in strength[1] and "●" in strength[1]
        speed = chart_text(harness.app, "speed-chart").splitlines()
        # sorted by tok/s: the longest reply is the fastest (FixedBackend: chars/2 tokens in 1 s)
        assert speed[0].startswith("B gemma-270m-llama2") and "tok/s" in speed[0]
        assert "字/s" in speed[1]
        assert speed[4].startswith("C gpt-4.1-mini")


async def test_l_switches_to_every_session_and_blind_refuses_it() -> None:
    harness = comparison_app()
    async with harness.app.run_test(size=(160, 48)) as pilot:
        await rated_turns_then_summary(pilot)
        await pilot.press("l")
        await wait_until(pilot, lambda: harness.app.screen.charts_ready)
        title = str(harness.app.screen.query_one("#strength-title").render())
        assert "all sessions" in title
        # the leaderboard names models without pane letters
        assert chart_text(harness.app, "strength-chart").startswith("gemma-270m ")
    blind = comparison_app(blind=True)
    async with blind.app.run_test(size=(160, 48)) as pilot:
        await rated_turns_then_summary(pilot)
        text = chart_text(blind.app, "strength-chart") + chart_text(blind.app, "speed-chart")
        assert "gemma" not in text and "gpt" not in text
        await pilot.press("l")
        await pilot.pause(0.1)
        assert "this session" in str(blind.app.screen.query_one("#strength-title").render())


@pytest.mark.parametrize("width", [40, 80, 120])
def test_chart_rows_fit_the_width(width: int) -> None:
    from rich.cells import cell_len

    from kurabe.analysis.charts import SpeedBar, StrengthBar, speed_lines, strength_lines

    strength = [StrengthBar("A 日本語のとても長いモデルの名前", 1100, 1000, 1200)]
    strength.append(StrengthBar("B x", 900, 800, 1000))
    for rows in (strength_lines(strength, width), speed_lines([SpeedBar("A 日本語", 3, 4)], width)):
        assert all(cell_len("".join(text for text, _ in row)) <= width for row in rows)
