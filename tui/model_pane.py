"""One model's column: a header, the conversation streaming in, and a status line.

The header shows the pane's letter and, unless the session is blind and not yet revealed, the
profile name with its backend details (quantization and GPU layers, or the API host). The status
line shows load progress, live streaming figures, the last reply's figures (time to first token,
tokens/s, characters/s, context used), or a one-line error with the key that retries.

Everything shown here that comes from a model or a config file is plain text: it goes into
:class:`~textual.content.Content` as literal spans, never parsed as markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from kurabe.session.comparison import PaneStatus
from kurabe.store.records import ReplyFigures
from tui.pane_header import PaneHeader
from tui.textflow import make_visible
from tui.transcript_view import TranscriptView

StatusState = PaneStatus | Literal["done", "cancelled"]
"""What colours a pane's status line: the pane's own status, or how its last reply ended."""
STATUS_CLASSES = tuple(f"-{state}" for state in (*get_args(PaneStatus), "done", "cancelled"))


def format_figures(figures: ReplyFigures, *, compact: bool = False) -> str:
    """``ttft 0.42s · 31.0tok/s · 48字/s · ctx 312/4096`` — only the figures that are known.

    ``compact``: the same in fewer cells for narrow panes (``ttft 0.42s 31.0t/s 48字/s 312/4096``).
    """
    parts: list[str] = []
    if figures.ttft_s is not None:
        parts.append(f"ttft {figures.ttft_s:.2f}s")
    if figures.tokens_per_s is not None:
        parts.append(f"{figures.tokens_per_s:.1f}{'t' if compact else 'tok'}/s")
    if figures.chars_per_s is not None:
        parts.append(f"{figures.chars_per_s:.0f}字/s")
    used = (figures.prompt_tokens or 0) + (figures.completion_tokens or 0)
    if used and figures.context_size:
        parts.append(
            f"{used}/{figures.context_size}" if compact else f"ctx {used}/{figures.context_size}"
        )
    elif used:
        parts.append(f"{used}tok")
    if compact:
        if figures.decoded_alongside:
            parts.append(f"+{figures.decoded_alongside}batched")
        if figures.history_trimmed_turns:
            parts.append(f"trim{figures.history_trimmed_turns}")
        if figures.max_tokens_clamped is not None:
            parts.append(f"cap{figures.max_tokens_clamped}")
    else:
        parts.extend(figures.engine_notes())
    if not parts:
        return "done"
    return (" " if compact else " · ").join(parts)


class ModelPane(Vertical):
    """A pane of the comparison. Not focusable itself: its header takes the focus."""

    DEFAULT_CSS = (Path(__file__).with_name("model_pane.tcss")).read_text(encoding="utf-8")

    def __init__(self, index: int, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = index
        self.label = label
        self._title = ""
        self._detail = ""
        self._verdict = ""
        self._status_text = ""
        self._status_full = ""
        self._status_short: str | None = None
        self._state: StatusState = "loading"

    def compose(self) -> ComposeResult:
        transcript = TranscriptView(classes="pane-body")
        header = PaneHeader(transcript, classes="pane-header")
        header.update(self._header_content())
        yield header
        yield transcript
        yield Static(
            Content(self._status_text), classes=f"pane-status -{self._state}", markup=False
        )

    @property
    def transcript(self) -> TranscriptView:
        return self.query_one(TranscriptView)

    @property
    def header(self) -> PaneHeader:
        return self.query_one(PaneHeader)

    def focus_pane(self) -> None:
        """Give the pane the focus (its header takes it; see :mod:`tui.pane_header`)."""
        self.header.focus()

    def on_click(self) -> None:
        self.focus_pane()

    @property
    def header_text(self) -> str:
        return self._header_content().plain

    @property
    def status_text(self) -> str:
        return self._status_text

    def set_title(self, title: str, detail: str = "") -> None:
        """``title`` is the model's display name (the letter alone when blind)."""
        self._title = title
        self._detail = detail
        if self.is_mounted:
            self.header.update(self._header_content(), layout=False)

    def set_verdict(self, verdict: str) -> None:
        """The rater's verdict on this pane's conversation, shown as a badge in the header."""
        self._verdict = verdict
        if self.is_mounted:
            self.header.update(self._header_content(), layout=False)

    def _header_content(self) -> Content:
        spans: list[tuple[str, str] | str] = [(f" {self.label} ", "reverse bold")]
        if self._title and self._title != self.label:
            spans.append(" ")
            spans.append((make_visible(self._title), "bold"))
        if self._verdict:
            spans.append(("  ✔ " + make_visible(self._verdict), "bold $text-success"))
        if self._detail:
            spans.append(("  " + make_visible(self._detail), "dim"))
        return Content.assemble(*spans)

    def set_status(self, text: str, state: StatusState, *, short: str | None = None) -> None:
        """One line; ``state`` picks the colour (loading, ready, busy, failed, done…);
        ``short`` is shown instead when ``text`` does not fit the pane's width."""
        self._status_full = " ".join(make_visible(text).split())
        self._status_short = None if short is None else " ".join(make_visible(short).split())
        if not self.is_mounted:
            self._status_text = self._status_full
            self._state = state
            return
        status = self.query_one(".pane-status", Static)
        if state != self._state:
            # The class goes on the one-line status widget, not the pane, so that a change of
            # state restyles one line rather than the whole pane.
            self._state = state
            for name in STATUS_CLASSES:
                status.set_class(name == f"-{state}", name)
        self._show_status()

    def _show_status(self) -> None:
        line = self._status_full
        width = self.size.width - 1
        if self._status_short is not None and width > 0 and cell_len(line) > width:
            line = self._status_short
        if line != self._status_text:
            self._status_text = line
            self.query_one(".pane-status", Static).update(Content(line), layout=False)

    def on_resize(self) -> None:
        if self._status_full:
            self._show_status()
