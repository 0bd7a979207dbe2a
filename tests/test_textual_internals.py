"""The Textual internals the TUI relies on (tui/textual_internals.py) are still there.

When this fails, the app still works (each workaround has a fallback) but is slower: the
message names the workaround to revisit against the new Textual.
"""

from __future__ import annotations

from textual.app import App, ComposeResult

from tui.quiet_footer import QuietFooter
from tui.textual_internals import missing_internals


class _FooterApp(App[None]):
    def compose(self) -> ComposeResult:
        yield QuietFooter()


async def test_installed_textual_still_has_what_the_workarounds_touch() -> None:
    app = _FooterApp()
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        missing = missing_internals(app, app.query_one(QuietFooter))
    assert not missing, "Textual internals gone, revisit these workarounds: " + "; ".join(missing)
