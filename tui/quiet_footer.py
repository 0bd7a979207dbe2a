"""A Footer that redraws only when the keys it shows change.

Textual's Footer recomposes itself (and so lays the whole screen out again) whenever the focus
moves. Moving from pane to pane while six panes stream does not change the keys on show, so
this footer compares what it would show and skips the recompose when nothing changed
(:mod:`tui.textual_internals`, 3).
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

from tui.textual_internals import mark_bindings_ready


class QuietFooter(Footer):
    DEFAULT_CSS = """
    QuietFooter { height: 1; }
    """

    def __init__(self, *, compact: bool = True) -> None:
        super().__init__(compact=compact)
        self._shown: tuple[tuple[str, str, str, bool], ...] | None = None

    def _signature(self, screen: Screen[object]) -> tuple[tuple[str, str, str, bool], ...]:
        return tuple(
            (key, binding.action, binding.description, enabled)
            for key, (_node, binding, enabled, _tooltip) in screen.active_bindings.items()
            if binding.show
        )

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self.is_attached and screen is self.screen:
            signature = self._signature(screen)
            if signature == self._shown and mark_bindings_ready(self):
                return
            self._shown = signature
        super().bindings_changed(screen)
