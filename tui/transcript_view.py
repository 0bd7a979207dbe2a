"""The body of a pane: one conversation, streamed in, wrapped by terminal cells, shown literally.

A Line API widget (:class:`~textual.scroll_view.ScrollView` with :meth:`render_line`). The
conversation is a list of blocks (the user's lines, the model's replies, notices); each block keeps
its text wrapped to the current width (:class:`~tui.textflow.GrowingText`), and the view keeps one
flat list of display lines. Appending to a streaming reply re-wraps only its last line and
refreshes only the lines that changed, so the cost of a flush does not grow with the length of the
reply or of the conversation. A width change re-wraps everything once.

Model text never goes through Rich markup or Markdown: lines are plain strings turned into
segments, with control characters made visible first (:func:`~tui.textflow.make_visible`).

Text can be selected with the mouse (Textual's selection; ctrl+c copies it): each rendered line
carries its (character, line) offsets, and the selected characters take the
``transcript--selected`` style. What is copied is the text as displayed, wrapped lines joined.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil
from typing import ClassVar, Literal

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip

from tui.textflow import GrowingText, make_visible
from tui.textual_internals import set_scroll_limits

Span = tuple[str, str]
"""A piece of a display line: its text and the name of its component class ("" for plain)."""
Line = tuple[Span, ...]
BlockKind = Literal["user", "reply", "notice"]

SELECTED = "transcript--selected"
"""The component class of text selected with the mouse."""
USER_PREFIX = "› "
USER_INDENT = "  "


class _Block:
    """One user line, reply or notice, wrapped to the view's width."""

    __slots__ = ("badge_spans", "badges", "flow", "kind", "reply_id", "spacer", "style", "turn")

    def __init__(
        self,
        kind: BlockKind,
        width: int,
        text: str = "",
        *,
        reply_id: int | None = None,
        turn: int | None = None,
        style: str = "",
    ) -> None:
        self.kind: BlockKind = kind
        self.reply_id = reply_id
        self.turn = turn
        self.style = style or f"transcript--{kind}"
        self.flow = GrowingText(self._text_width(width), make_visible(text))
        self.badge_spans: list[Span] = []
        self.badges: list[Line] = []
        """``badge_spans`` laid out in lines of the current width."""
        self.spacer = kind == "reply"

    def _text_width(self, width: int) -> int:
        return max(1, width - len(USER_PREFIX)) if self.kind == "user" else max(1, width)

    def rewrap(self, width: int) -> None:
        self.flow.rewrap(self._text_width(width))
        self.badges = flow_badges(self.badge_spans, width)

    def line_count(self) -> int:
        return len(self.flow.lines) + len(self.badges) + int(self.spacer)

    def text_line(self, index: int) -> Line:
        text = self.flow.lines[index]
        if self.kind == "user":
            prefix = USER_PREFIX if index == 0 else USER_INDENT
            return ((prefix, "transcript--user-prefix"), (text, self.style))
        return ((text, self.style),)

    def lines_from(self, first: int) -> list[Line]:
        """Display lines of this block from text line ``first`` to the end."""
        lines = [self.text_line(index) for index in range(first, len(self.flow.lines))]
        lines.extend(self.badges)
        if self.spacer:
            lines.append(())
        return lines


class TranscriptView(ScrollView, can_focus=False, inherit_bindings=False):
    """One pane's conversation. It does not take the focus (its pane's header does, and scrolls
    it); the mouse wheel scrolls it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "transcript--user",
        "transcript--user-prefix",
        "transcript--reply",
        "transcript--reply-cut",
        "transcript--notice",
        "transcript--badge",
        "transcript--score",
        "transcript--flag",
        "transcript--pick",
        "transcript--error",
        "transcript--judge",
        SELECTED,
    }

    DEFAULT_CSS = """
    TranscriptView {
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        background: $surface;
    }
    TranscriptView > .transcript--user { color: $text-accent; text-style: bold; }
    TranscriptView > .transcript--user-prefix { color: $text-accent; }
    TranscriptView > .transcript--reply { color: $foreground; }
    TranscriptView > .transcript--reply-cut { color: $text-muted; }
    TranscriptView > .transcript--notice { color: $text-muted; text-style: italic; }
    TranscriptView > .transcript--badge { color: $text-muted; }
    TranscriptView > .transcript--score { color: $text-warning; text-style: bold; }
    TranscriptView > .transcript--flag { color: $text-error; }
    TranscriptView > .transcript--pick { color: $text-success; text-style: bold; }
    TranscriptView > .transcript--error { color: $text-error; }
    TranscriptView > .transcript--judge { color: $text-secondary; text-style: bold italic; }
    TranscriptView > .transcript--selected {
        background: $screen-selection-background;
        color: $screen-selection-foreground;
    }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._blocks: list[_Block] = []
        self._starts: list[int] = []
        """First display line of each block."""
        self._lines: list[Line] = []
        self._width = 0
        """The width the blocks are wrapped to (0 until the first layout)."""
        self._render_width = 0
        self._padded_height = 0
        """Blank lines kept below the text after a jump scroll count into the virtual height."""
        self._styles: dict[str, Style] = {}

    # -- reading -------------------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def plain_lines(self) -> list[str]:
        """The display lines as plain text (for tests and copying)."""
        return ["".join(text for text, _ in line) for line in self._lines]

    def reply_text(self, reply_id: int) -> str | None:
        block = self._find_reply(reply_id)
        return None if block is None else block[1].flow.text

    def has_reply(self, reply_id: int) -> bool:
        return self._find_reply(reply_id) is not None

    # -- writing -------------------------------------------------------------------------------

    def clear(self) -> None:
        self._blocks.clear()
        self._starts.clear()
        self._lines.clear()
        self._padded_height = 0
        self._update_size()
        self.refresh()

    def add_user(self, text: str, turn: int | None = None) -> None:
        self._add_block(_Block("user", self._wrap_width, text, turn=turn))

    def add_notice(self, text: str) -> None:
        self._add_block(_Block("notice", self._wrap_width, text))

    def start_reply(self, reply_id: int, turn: int | None = None, text: str = "") -> None:
        """Begin a reply (or replace the text of an existing one with the same id)."""
        found = self._find_reply(reply_id)
        if found is not None:
            self.set_reply_text(reply_id, text)
            return
        self._add_block(_Block("reply", self._wrap_width, text, reply_id=reply_id, turn=turn))

    def replace_reply(self, old_reply_id: int, new_reply_id: int, text: str = "") -> None:
        """A retried or regenerated reply takes the place of the one it replaces."""
        found = self._find_reply(old_reply_id)
        if found is None:
            self.start_reply(new_reply_id, text=text)
            return
        index, block = found
        block.reply_id = new_reply_id
        block.badge_spans = []
        block.badges = []
        block.style = "transcript--reply"
        block.flow = GrowingText(block.flow.width, make_visible(text))
        self._rebuild_block(index)

    def append(self, reply_id: int, text: str) -> None:
        """Add streamed text to a reply. Only the lines that change are re-wrapped and redrawn."""
        found = self._find_reply(reply_id)
        if found is None:
            self.start_reply(reply_id, text=text)
            return
        index, block = found
        first = block.flow.append(make_visible(text))
        self._splice(index, first, block.lines_from(first))

    def set_reply_text(self, reply_id: int, text: str) -> None:
        """Set a reply's whole text (the final text of a finished reply, a resumed reply)."""
        found = self._find_reply(reply_id)
        if found is None:
            self.start_reply(reply_id, text=text)
            return
        index, block = found
        visible = make_visible(text)
        if visible == block.flow.text:
            return
        block.flow = GrowingText(block.flow.width, visible)
        self._rebuild_block(index)

    def set_reply_style(self, reply_id: int, style: str) -> None:
        """``transcript--reply`` or ``transcript--reply-cut`` (cancelled or failed midway)."""
        found = self._find_reply(reply_id)
        if found is None or found[1].style == style:
            return
        found[1].style = style
        self._rebuild_block(found[0])

    def set_badges(self, reply_id: int, badges: Sequence[Span]) -> None:
        """The small marks under a reply (rating, tags, check flags, markers), flowed into as
        many lines as the width needs. Their text is shown literally."""
        found = self._find_reply(reply_id)
        if found is None:
            return
        index, block = found
        spans = [(make_visible(text), style) for text, style in badges if text]
        if spans == block.badge_spans:
            return
        block.badge_spans = spans
        block.badges = flow_badges(spans, self._wrap_width)
        self._splice(index, len(block.flow.lines), block.lines_from(len(block.flow.lines)))

    # -- internals -----------------------------------------------------------------------------

    @property
    def _wrap_width(self) -> int:
        return self._width if self._width > 0 else 40

    def _find_reply(self, reply_id: int) -> tuple[int, _Block] | None:
        # Replies being streamed are at the end: search backwards.
        for index in range(len(self._blocks) - 1, -1, -1):
            block = self._blocks[index]
            if block.reply_id == reply_id and block.kind == "reply":
                return index, block
        return None

    def _add_block(self, block: _Block) -> None:
        self._blocks.append(block)
        self._starts.append(len(self._lines))
        new_lines = block.lines_from(0)
        at_end = self._at_end()
        start = len(self._lines)
        self._lines.extend(new_lines)
        self._after_change(start, len(new_lines), at_end, moved=False)

    def _rebuild_block(self, index: int) -> None:
        self._splice(index, 0, self._blocks[index].lines_from(0))

    def _splice(self, index: int, first: int, new_part: list[Line]) -> None:
        """Replace the display lines of block ``index`` from its text line ``first`` on."""
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self._lines)
        at_end = self._at_end()
        old_count = end - (start + first)
        self._lines[start + first : end] = new_part
        delta = len(new_part) - old_count
        if delta:
            for later in range(index + 1, len(self._starts)):
                self._starts[later] += delta
        moved = bool(delta) and index + 1 < len(self._blocks)
        # When the block got shorter, the lines it no longer covers must be redrawn too.
        self._after_change(start + first, max(len(new_part), old_count), at_end, moved=moved)

    def _after_change(self, first_line: int, count: int, at_end: bool, *, moved: bool) -> None:
        if not self.is_mounted:
            return
        if at_end:
            height = self.scrollable_content_region.height
            if height > 0 and len(self._lines) > self.scroll_offset.y + height:
                # Jump scroll: the text ran past the bottom. Scroll so that half of the view is
                # free below it; the next lines fill that space without moving the others, so
                # the whole view is repainted once per half page instead of once per new line.
                self._padded_height = len(self._lines) + max(1, height // 2)
                self._update_size()
                self.scroll_end(animate=False, immediate=True, x_axis=False)
                self.refresh()
                return
        self._update_size()
        if moved:
            self.refresh()
        else:
            self.refresh_lines(first_line, max(1, count))

    def _at_end(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    def _update_size(self) -> None:
        size = Size(self._wrap_width, max(len(self._lines), self._padded_height))
        old_size = self.virtual_size
        if size == old_size:
            return
        if not self.is_mounted or not self.container_size:
            self.virtual_size = size
            return
        # Setting the reactive would lay out the whole screen again for every new line. The
        # vertical scrollbar is always shown (overflow-y: scroll), so nothing outside this
        # widget moves: update the scroll limits, and redraw the scrollbar only when its thumb
        # visibly changes (a full-height scrollbar redrawn per line costs a full-screen update).
        # (:mod:`tui.textual_internals`, 4.)
        bar = self.vertical_scrollbar
        height = self.scrollable_content_region.height
        before = thumb_cells(height, bar.window_virtual_size, bar.window_size, bar.position)
        after = thumb_cells(height, size.height, height, bar.position)
        set_scroll_limits(self, size, bar, height)
        if before != after:
            bar.refresh()
        if size.height < old_size.height:
            self.scroll_y = self.validate_scroll_y(self.scroll_y)

    def _rewrap_all(self, width: int) -> None:
        self._width = width
        self._lines = []
        self._starts = []
        self._padded_height = 0
        for block in self._blocks:
            block.rewrap(width)
            self._starts.append(len(self._lines))
            self._lines.extend(block.lines_from(0))
        self._update_size()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        self._render_width = width
        if width > 0 and width != self._width:
            at_end = self._at_end()
            self._rewrap_all(width)
            self.refresh()
            if at_end:
                self.scroll_end(animate=False, immediate=True, x_axis=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.rich_style
            if name:
                style = style + self.get_component_rich_style(name, partial=True)
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self._render_width or self.scrollable_content_region.width
        if index >= len(self._lines) or index < 0:
            return Strip.blank(width, self._style(""))
        # Textual caches the rendered line until it is refreshed; no cache of our own here
        # (cached Strips are many small objects that make every garbage collection slower).
        line = self._lines[index]
        selection = self.text_selection
        selected = None if selection is None else selection.get_span(index)
        if selected is not None:
            line = select_spans(line, *selected)
        segments = [Segment(text, self._style(name)) for text, name in line if text]
        used = sum(cell_len(text) for text, _ in line)
        if used > width:  # only a badge wider than the pane: cut it
            return Strip(segments).crop_extend(0, width, self._style("")).apply_offsets(0, index)
        if used < width:
            pad, plain = " " * (width - used), self._style("")
            if segments and segments[-1].style == plain:
                # One segment, as before offsets made neighbours unequal: cheaper to draw.
                segments[-1] = Segment(segments[-1].text + pad, plain)
            else:
                segments.append(Segment(pad, plain))
        # Lines are wrapped to the width: pad them there and then, one Strip instead of two.
        # The offsets let Textual map a mouse position to (character, line) for selection.
        return Strip(segments, width).apply_offsets(0, index)

    # -- mouse selection -----------------------------------------------------------------------

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected text, as shown (wrapped lines joined by newlines)."""
        return selection.extract("\n".join(self.plain_lines)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()


def select_spans(line: Line, start: int, end: int) -> Line:
    """``line`` with characters ``start`` to ``end`` (``-1``: to the end) in the selection style."""
    result: list[Span] = []
    position = 0
    for text, name in line:
        after = position + len(text)
        stop = after if end == -1 else min(end, after)
        first = max(start, position)
        if first >= stop:
            result.append((text, name))
        else:
            cut_in, cut_out = first - position, stop - position
            for part, part_name in (
                (text[:cut_in], name),
                (text[cut_in:cut_out], SELECTED),
                (text[cut_out:], name),
            ):
                if part:
                    result.append((part, part_name))
        position = after
    return tuple(result)


def thumb_cells(size: int, virtual: int, window: int, position: float) -> tuple[int, int]:
    """Where a vertical scrollbar's thumb starts and ends, in eighths of a cell (as drawn)."""
    if not (window and size and virtual and size != virtual and virtual != window):
        return (0, 0)
    thumb = max(1.0, window / (virtual / size))
    offset = (size - thumb) * (position / (virtual - window))
    start = int(offset * 8)
    return start, start + ceil(thumb * 8)


def flow_badges(spans: Sequence[Span], width: int) -> list[Line]:
    """Lay badges out left to right, two spaces apart, starting a new line when one would not
    fit (a badge wider than the line gets a line of its own and is cut by the view)."""
    lines: list[Line] = []
    current: list[Span] = []
    used = 0
    for text, style in spans:
        cells = cell_len(text)
        gap = 2 if current else 0
        if current and used + gap + cells > width:
            lines.append(tuple(current))
            current, used, gap = [], 0, 0
        if gap:
            current.append(("  ", "transcript--badge"))
        current.append((text, style))
        used += gap + cells
    if current:
        lines.append(tuple(current))
    return lines
