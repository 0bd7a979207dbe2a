"""The row of panes: equal-width columns, or a horizontally scrolling row when the terminal is
too narrow for all of them (each pane then keeps at least :data:`MIN_PANE_WIDTH` cells and the
focused pane is scrolled into view)."""

from __future__ import annotations

from textual.containers import HorizontalScroll
from textual.events import Resize

from tui.model_pane import ModelPane

MIN_PANE_WIDTH = 32
"""Below this a Japanese reply wraps after ~15 characters: scroll sideways instead."""


def columns_that_fit(width: int, panes: int) -> int:
    """How many panes are shown side by side in ``width`` cells."""
    return max(1, min(panes, width // MIN_PANE_WIDTH))


class PaneRow(HorizontalScroll, can_focus=False, inherit_bindings=False):
    DEFAULT_CSS = """
    PaneRow {
        height: 1fr;
        overflow-x: auto;
        overflow-y: hidden;
        scrollbar-size-horizontal: 1;
    }
    """

    @property
    def panes(self) -> list[ModelPane]:
        return list(self.query_children(ModelPane))

    def on_resize(self, event: Resize) -> None:
        self.fit_columns(event.size.width)

    def on_mount(self) -> None:
        self.call_after_refresh(lambda: self.fit_columns(self.size.width))

    def fit_columns(self, width: int) -> None:
        panes = self.panes
        if not panes or width <= 0:
            return
        shown = columns_that_fit(width, len(panes))
        narrow = shown < len(panes)
        self.set_class(narrow, "-narrow")
        for pane in panes:
            if narrow:
                pane.styles.width = width // shown
            else:
                pane.styles.width = "1fr"

    def on_descendant_focus(self) -> None:
        focused = self.screen.focused
        for pane in self.panes:
            if focused is not None and pane in focused.ancestors_with_self:
                self.scroll_to_widget(pane, animate=False)
                break
