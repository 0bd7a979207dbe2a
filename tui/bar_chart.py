"""A horizontal bar chart drawn in text: :mod:`kurabe.analysis.charts` lays it out, this widget
colours it.

The widget holds a *drawing*, a function from a width in cells to the chart's rows of
``(text, role)`` pieces (:func:`kurabe.analysis.charts.strength_lines`,
:func:`kurabe.analysis.charts.speed_lines`), so it lays itself out again for whatever width it gets,
and its height is the number of rows. Each role is a component class (``bar-chart--bar`` …) styled
in ``bar_chart.tcss``. Text is appended as text, never parsed as markup: a model named ``[bold]x``
shows as written.

Why not ``textual-plotext`` (the kept plotting widget for Textual): tried with Textual 8.2.8,
textual-plotext 1.0.1 and plotext 5.3.2 (it pins plotext < 6), a horizontal bar chart renders, but
its labels are measured in characters, not cells, so a Japanese model name pushed the bar rows
out of line with the axis; its bars start at zero, which means nothing on the Elo-like scale
(ratings sit around 1000); and a bar chart has no interval whiskers. The text layout here handles
all three and needs no dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from kurabe.analysis.charts import Line

Drawing = Callable[[int], list[Line]]
"""Width in cells -> the chart's rows."""

ROLES = ("label", "bar", "bar2", "interval", "axis", "value", "muted")
MIN_WIDTH = 30


class BarChart(Widget):
    DEFAULT_CSS = Path(__file__).with_name("bar_chart.tcss").read_text(encoding="utf-8")
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"bar-chart--{role}" for role in ROLES}

    def __init__(
        self, drawing: Drawing, *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._drawing = drawing

    def show(self, drawing: Drawing) -> None:
        """Draw another chart (or the same one from new data) in place."""
        self._drawing = drawing
        self.refresh(layout=True)

    def rows(self, width: int) -> list[Line]:
        return self._drawing(max(width, MIN_WIDTH))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.rows(width))

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="crop", end="")
        styles = {role: self.get_component_rich_style(f"bar-chart--{role}") for role in ROLES}
        for index, line in enumerate(self.rows(self.content_size.width)):
            if index:
                text.append("\n")
            for piece, role in line:
                text.append(piece, style=styles.get(role))
        return text
