"""Plain-text flow for the transcript: literal display and cell-width-aware wrapping.

Model output is shown as text, never interpreted: :func:`make_visible` turns control characters
(terminal escape sequences included) into visible stand-ins so nothing raw reaches the terminal,
and Rich markup stays literal because the view builds segments from plain strings.

:func:`wrap_paragraph` wraps one paragraph greedily by terminal cells (Japanese wide characters
take two), breaking at spaces in Latin text and between any two wide characters elsewhere, never
inside a grapheme, and following the simplest kinsoku rule (a closing mark such as 。 or 」 does
not start a line when the character before it can move down with it).

:class:`GrowingText` keeps a reply wrapped while it streams: appending re-wraps only the last,
still-growing line, so the cost of an append does not depend on how long the reply already is.
This module does not import Textual.
"""

from __future__ import annotations

import re

from rich.cells import cell_len, split_graphemes

_C0_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)}
_C0_PICTURES[0x7F] = "\u2421"  # ␡
_TAB_SPACES = "    "

# C0 and C1 controls, DEL, and the bidirectional overrides that can reorder what the terminal
# shows. Tabs and newlines are handled separately (expanded / kept as paragraph breaks).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _picture(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code in _C0_PICTURES:
        return _C0_PICTURES[code]
    return f"<U+{code:04X}>"


def make_visible(text: str) -> str:
    """Return ``text`` with every control character replaced by a visible stand-in.

    ``\\x1b`` becomes ``␛`` (so ``\\x1b[31m`` shows as ``␛[31m``), other C0 controls become their
    Unicode control pictures, C1 controls and bidi overrides become ``<U+XXXX>``. ``\\r\\n`` is a
    line break, a lone ``\\r`` shows as ``␍``, tabs become four spaces. Newlines are kept.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if "\t" in text:
        text = text.replace("\t", _TAB_SPACES)
    return _UNSAFE.sub(_picture, text)


# Characters that should not begin a line (closing brackets and marks, small kana, prolonged
# sound mark) — the common subset of JIS X 4051 行頭禁則.
NO_LINE_START = frozenset(
    "、。，．・：；？！ー―‐〜～…‥」』）］｝〕〉》】〙〗’”"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
    ")]},.!?:;%"
)
# Characters that should not end a line (opening brackets) — 行末禁則.
NO_LINE_END = frozenset("「『（［｛〔〈《【〘〖‘“([{")


def wrap_paragraph(text: str, width: int) -> list[tuple[int, int]]:
    """Wrap one paragraph (no newlines) to ``width`` cells.

    Returns ``(start, end)`` offsets into ``text`` for each line; a line's text is
    ``text[start:end]``. An empty paragraph is one empty line. Spaces at a break are dropped.
    """
    if width < 1:
        width = 1
    if not text:
        return [(0, 0)]
    spans, total = split_graphemes(text)
    if total <= width:
        return [(0, len(text))]

    lines: list[tuple[int, int]] = []
    line_start = 0  # string offset where the current line begins
    line_cells = 0
    # Best break seen on the current line: (span index of the first grapheme of the next line,
    # string offset where the current line would end).
    break_at: tuple[int, int] | None = None
    index = 0
    count = len(spans)
    while index < count:
        start, end, cells = spans[index]
        char = text[start]
        if char == " ":
            # A space is always a break opportunity; it is dropped at the break.
            if line_cells + cells > width:
                lines.append((line_start, start))
                index += 1
                while index < count and text[spans[index][0]] == " ":
                    index += 1
                line_start = spans[index][0] if index < count else len(text)
                line_cells = 0
                break_at = None
                continue
            line_cells += cells
            break_at = (index + 1, start)
            index += 1
            continue
        if start > line_start and _can_break_before(text, spans, index):
            break_at = (index, start)
        if line_cells + cells <= width:
            line_cells += cells
            index += 1
            continue
        # Overflow: break at the best opportunity on this line, or hard-break here.
        if break_at is not None and break_at[1] > line_start:
            next_index, line_end = break_at
        else:
            next_index, line_end = index, start
            if line_end == line_start:  # a grapheme wider than the line: give it a line
                next_index, line_end = index + 1, end
        lines.append((line_start, _rstrip_spaces(text, line_start, line_end)))
        while next_index < count and text[spans[next_index][0]] == " ":
            next_index += 1
        index = next_index
        line_start = spans[index][0] if index < count else len(text)
        line_cells = 0
        break_at = None
    if line_start < len(text) or not lines:
        lines.append((line_start, len(text)))
    return lines


def _rstrip_spaces(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] == " ":
        end -= 1
    return end


def _is_wide(cells: int) -> bool:
    return cells >= 2


def _can_break_before(text: str, spans: list[tuple[int, int, int]], index: int) -> bool:
    """May a line end between grapheme ``index - 1`` and grapheme ``index``?"""
    start, _end, cells = spans[index]
    prev_start, _prev_end, prev_cells = spans[index - 1]
    char = text[start]
    prev = text[prev_start]
    if prev == " ":
        return True
    if not (_is_wide(cells) or _is_wide(prev_cells)):
        return False  # inside a Latin word
    return not (char in NO_LINE_START or prev in NO_LINE_END)


class GrowingText:
    """A text that grows at its end, kept wrapped to a width line by line.

    ``lines`` holds every wrapped line; only the last one can still change on :meth:`append`.
    Appended text must already be visible (see :func:`make_visible`). The finished part of the
    text is kept as a list of pieces so an append never copies the whole reply.
    """

    def __init__(self, width: int, text: str = "") -> None:
        self.width = max(1, width)
        self.lines: list[str] = [""]
        self._head: list[str] = []
        """Text before the last line, in pieces."""
        self._tail = ""
        """Text of the last (still growing) line, from its first character on."""
        if text:
            self.append(text)

    @property
    def text(self) -> str:
        return "".join(self._head) + self._tail

    def append(self, chunk: str) -> int:
        """Add ``chunk``; returns the index of the first line that changed."""
        first_changed = len(self.lines) - 1
        if not chunk:
            return first_changed
        tail = self._tail + chunk
        new_lines: list[str] = []
        offset = 0
        paragraphs = tail.split("\n")
        last = len(paragraphs) - 1
        for number, paragraph in enumerate(paragraphs):
            spans = wrap_paragraph(paragraph, self.width)
            new_lines.extend(paragraph[start:end] for start, end in spans)
            if number == last:
                tail_start = offset + spans[-1][0]
            offset += len(paragraph) + 1
        if tail_start:
            self._head.append(tail[:tail_start])
        self._tail = tail[tail_start:]
        self.lines[first_changed:] = new_lines
        return first_changed

    def rewrap(self, width: int) -> None:
        """Wrap everything again for a new width."""
        text = self.text
        self.width = max(1, width)
        self.lines = [""]
        self._head = []
        self._tail = ""
        self.append(text)


def line_cells(line: str) -> int:
    """Terminal cells taken by ``line``."""
    return cell_len(line)
