"""Snapshots of the main screen with Japanese replies, at 80×24 and 160×48.

Generate or refresh them with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at
the SVGs in ``tests/__snapshots__/test_tui_snapshots/`` before committing them.
"""

from __future__ import annotations

from typing import Any

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot

from tests.tui_support import FixedBackend, make_harness, wait_until

REPLIES = {
    "gemma-270m": (
        "うん、大好きだよ！お気に入りのアニメは何？最近は『鬼滅の刃』にハマってて、"
        "毎週の放送が楽しみなんだ。"
    ),
    "gemma-270m-llama2": (
        "もちろんです。アニメは大好きです。特に宮崎駿監督の作品が好きで、"
        "『風の谷のナウシカ』は何度も見ました。"
    ),
    "gpt-4.1-mini": "### 指示: あなたは大のアニメファンです\n### 応答: はい、[bold]好き[/bold]です",
}
HEADERS = {
    "gemma-270m": "Q4_K_M · GPU 0/18",
    "gemma-270m-llama2": "Q4_K_M · GPU 0/18",
    "gpt-4.1-mini": "api.openai.com",
}


def comparison_app() -> Any:
    backends = {name: FixedBackend([text], header=HEADERS[name]) for name, text in REPLIES.items()}
    return make_harness(backends, scenario="seed-gpt3")


async def one_rated_turn(pilot: Pilot[Any]) -> None:
    """Send the scenario's first line, then score pane A 4 and pick it as the best."""
    app: Any = pilot.app
    screen = app.main_screen
    screen.prompt.cursor_blink = False
    await wait_until(pilot, lambda: all(p.status == "ready" for p in app.session.panes))
    await pilot.press("enter")
    await wait_until(pilot, lambda: not app.session.busy and bool(app.session.user_turns))
    await pilot.press("tab", "4", "p", "a", "i")
    await pilot.pause(0.2)
    for widget in screen.pane_widgets:
        width = widget.transcript.scrollable_content_region.width
        assert all(cell_len(line) <= width for line in widget.transcript.plain_lines)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen_with_japanese_replies(snap_compare: Any, size: tuple[int, int]) -> None:
    harness = comparison_app()
    assert snap_compare(harness.app, terminal_size=size, run_before=one_rated_turn)
