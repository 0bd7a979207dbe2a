"""Charts of the leaderboard and of speed: the numbers, laid out as text rows or as inline SVG.

Two charts, each from plain data so the TUI, the HTML export and the tests share them:

- **Bradley–Terry strength** (:class:`StrengthBar`): one horizontal bar per model on the Elo-like
  scale of :mod:`kurabe.analysis.leaderboard`, sorted strongest first, with its bootstrap 95%
  interval as a whisker. The bars diverge from 1000, the strength of the average model (ratings are
  normalised to a geometric mean of 1): a bar's length is how far the model is from average,
  which means something, where a bar from an arbitrary axis minimum would not.
- **Speed** (:class:`SpeedBar`): tokens/s and characters (字)/s per model, two bars each from
  zero on one shared scale (both are per-second rates of the same replies), sorted by tokens/s.

:func:`strength_lines` and :func:`speed_lines` lay a chart out in a given number of terminal
cells: rows of ``(text, role)`` pieces, the role (``label``, ``bar``, ``bar2``, ``interval``,
``axis``, ``value``, ``muted``) being what a viewer styles; :func:`plain` joins them into text.
Labels are measured in cells (:func:`rich.cells.cell_len`), so Japanese model names take their
two cells each and the bars stay aligned. Bars use the eighth blocks (``▏``…``█``) for rightward
ends and the half block ``▐`` for leftward ones (Unicode has no finer right-aligned blocks).

:func:`strength_svg` and :func:`speed_svg` draw the same charts as self-contained SVG (no script,
no stylesheet, no font or image to fetch) for the HTML export; each bar is a ``rect`` of class
``bar`` carrying ``data-label`` and ``data-value``, so a reader (or a test) can check the order
and the widths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from rich.cells import cell_len

from kurabe.analysis.leaderboard import BASE, ModelStats, interval_note
from kurabe.core.blind import shown_name

Piece = tuple[str, str]
"""A run of text and its role (see the module docstring)."""
Line = list[Piece]

RIGHT_EIGHTHS = " ▏▎▍▌▋▊▉"
"""Left-aligned partial blocks, 0/8 to 7/8 of a cell: the end of a bar growing rightwards."""
FULL = "█"
RIGHT_HALF = "▐"
TOKENS_LABEL = "tok/s"
CHARS_LABEL = "字/s"


@dataclass(frozen=True)
class StrengthBar:
    label: str
    rating: float
    low: float | None = None
    high: float | None = None
    battles: int = 0


@dataclass(frozen=True)
class SpeedBar:
    label: str
    tokens_per_s: float | None
    chars_per_s: float | None


# -- data ----------------------------------------------------------------------------------------


def strength_bars(models: Iterable[ModelStats]) -> list[StrengthBar]:
    """The models that have a rating, strongest first (equal ratings keep the given order: the
    leaderboard's, which breaks ties by mean score)."""
    bars = [
        StrengthBar(m.model, m.rating, m.ci_low, m.ci_high, m.battles)
        for m in models
        if m.rating is not None
    ]
    return sorted(bars, key=lambda bar: -bar.rating)


def speed_bars(models: Iterable[ModelStats]) -> list[SpeedBar]:
    """The models with any speed, fastest (tokens/s) first."""
    bars = [
        SpeedBar(m.model, m.tokens_per_s, m.chars_per_s)
        for m in models
        if m.tokens_per_s is not None or m.chars_per_s is not None
    ]
    return sort_speed(bars)


def sort_speed(bars: Iterable[SpeedBar]) -> list[SpeedBar]:
    return sorted(
        bars,
        key=lambda bar: (
            bar.tokens_per_s is None,
            -(bar.tokens_per_s or 0.0),
            -(bar.chars_per_s or 0.0),
            bar.label,
        ),
    )


def session_strength_bars(
    record: Any,
    *,
    hide_names: bool,
    rater: str | None = None,
    rounds: int | None = None,
    seed: int | None = None,
) -> list[StrengthBar]:
    """Bradley–Terry strength of one session's models from its per-turn picks.

    The same battles and fit as the leaderboard (:func:`kurabe.analysis.battles.derive_battles`,
    :func:`kurabe.analysis.leaderboard.fit_ratings`, bootstrap intervals), over this session only
    and the picks of ``rater`` (every rater when None). Labels are the pane letters followed by the
    model name, or the letters alone when names are hidden.
    """
    from kurabe.analysis.battles import derive_battles
    from kurabe.analysis.leaderboard import (
        BOOTSTRAP_ROUNDS,
        BOOTSTRAP_SEED,
        battle_score,
        bootstrap_intervals,
        fit_ratings,
        shown_interval,
    )

    battles = [
        b
        for b in derive_battles(record, hide_names=hide_names)
        if rater is None or b.judge == rater
    ]
    if not battles:
        return []
    matches = [(b.model_a, b.model_b, battle_score(b.winner)) for b in battles]
    ratings = fit_ratings(matches)
    intervals = bootstrap_intervals(
        matches,
        rounds=BOOTSTRAP_ROUNDS if rounds is None else rounds,
        seed=BOOTSTRAP_SEED if seed is None else seed,
    )
    played: dict[str, int] = {}
    points: dict[str, float] = {}
    for a, b, score in matches:
        played[a] = played.get(a, 0) + 1
        played[b] = played.get(b, 0) + 1
        points[a] = points.get(a, 0.0) + score
        points[b] = points.get(b, 0.0) + 1.0 - score
    labels = _pane_labels(record, hide_names)
    bars = []
    for model, rating in ratings.items():
        shown = shown_interval(
            rating,
            intervals.get(model),
            share=points.get(model, 0.0) / played[model] if played.get(model) else None,
            battles=played.get(model, 0),
        )
        low, high = shown if shown is not None else (None, None)
        bars.append(StrengthBar(labels.get(model, model), rating, low, high, played.get(model, 0)))
    return sorted(bars, key=lambda bar: (-bar.rating, bar.label))


def session_speed_bars(record: Any, *, hide_names: bool) -> list[SpeedBar]:
    """Mean tokens/s and characters/s of each pane's completed replies (newest versions)."""
    latest = record.latest_replies()
    bars = []
    for pane in record.panes:
        done = [r for r in latest.values() if r.pane == pane.position and r.completed]
        tokens = [r.tokens_per_s for r in done if r.tokens_per_s is not None]
        chars = [r.chars_per_s for r in done if r.chars_per_s is not None]
        if not tokens and not chars:
            continue
        label = shown_name(pane.label, f"{pane.label} {pane.profile_name}", hidden=hide_names)
        bars.append(
            SpeedBar(
                label,
                sum(tokens) / len(tokens) if tokens else None,
                sum(chars) / len(chars) if chars else None,
            )
        )
    return sort_speed(bars)


def _pane_labels(record: Any, hide_names: bool) -> dict[str, str]:
    """Battle model name -> ``A gemma-270m`` (``A C gemma`` when two panes share a model)."""
    letters: dict[str, list[str]] = {}
    for pane in record.panes:
        name = shown_name(pane.label, pane.profile_name, hidden=hide_names)
        letters.setdefault(name, []).append(pane.label)
    return {
        name: shown_name(name, f"{' '.join(found)} {name}", hidden=hide_names)
        for name, found in letters.items()
    }


# -- scales --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    low: float
    high: float
    ticks: tuple[float, ...]

    def fraction(self, value: float) -> float:
        """Where ``value`` sits between ``low`` (0) and ``high`` (1)."""
        span = self.high - self.low
        return 0.0 if span <= 0 else (value - self.low) / span


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``target_ticks`` ticks."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target_ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def nice_axis(values: Iterable[float], *, include: Iterable[float] = (), ticks: int = 5) -> Axis:
    """An axis covering ``values`` and ``include``, its ends on round ticks."""
    every = [v for v in (*values, *include) if math.isfinite(v)]
    if not every:
        return Axis(0.0, 1.0, (0.0, 1.0))
    low, high = min(every), max(every)
    if high == low:
        low, high = low - 1.0, high + 1.0
    step = nice_step(high - low, ticks)
    start = math.floor(low / step) * step
    end = math.ceil(high / step) * step
    count = round((end - start) / step)
    marks = tuple(round(start + i * step, 10) for i in range(count + 1))
    return Axis(start, end, marks)


def strength_axis(bars: Sequence[StrengthBar]) -> Axis:
    values = [bar.rating for bar in bars]
    values += [v for bar in bars for v in (bar.low, bar.high) if v is not None]
    return nice_axis(values, include=(BASE,), ticks=4)


def speed_axis(bars: Sequence[SpeedBar]) -> Axis:
    values = [v for bar in bars for v in (bar.tokens_per_s, bar.chars_per_s) if v is not None]
    return nice_axis(values, include=(0.0,), ticks=4)


def tick_text(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:g}"


# -- text ----------------------------------------------------------------------------------------


def fit_cells(text: str, width: int) -> str:
    """``text`` cut (with …) or padded with spaces to exactly ``width`` cells."""
    text = " ".join(text.split())
    if cell_len(text) > width:
        out = ""
        for char in text:
            if cell_len(out + char) > width - 1:
                break
            out += char
        text = out + "…"
    return text + " " * max(0, width - cell_len(text))


def _label_width(labels: Iterable[str], width: int) -> int:
    longest = max((cell_len(" ".join(label.split())) for label in labels), default=4)
    return max(4, min(longest, width // 4))


def _rightward(start: float, end: float, track: int) -> list[str]:
    """A bar from column ``start`` to ``end`` (cells, fractional), growing to the right."""
    cells = [" "] * track
    end = min(end, float(track))
    whole = math.floor(end + 1e-9)
    first = math.floor(start + 1e-9)
    for column in range(first, whole):
        cells[column] = FULL
    eighths = round((end - whole) * 8)
    if eighths >= 8 and whole < track:
        cells[whole] = FULL
    elif eighths > 0 and whole < track:
        cells[whole] = RIGHT_EIGHTHS[eighths]
    return cells


def _leftward(end: float, start: float, track: int) -> list[str]:
    """A bar from column ``start`` back to ``end`` (``end`` < ``start``), growing to the left."""
    cells = [" "] * track
    end = max(end, 0.0)
    first_full = math.ceil(end - 1e-9)
    for column in range(first_full, min(math.floor(start + 1e-9), track)):
        cells[column] = FULL
    partial = first_full - end
    if first_full - 1 >= 0 and partial >= 0.25:
        cells[first_full - 1] = FULL if partial >= 0.75 else RIGHT_HALF
    return cells


def _column(axis: Axis, value: float, track: int) -> float:
    return max(0.0, min(float(track), axis.fraction(value) * track))


def _axis_line(axis: Axis, track: int, indent: int, value_width: int) -> list[Line]:
    """A ruler (``└──┴──┘``) under the track and the tick values under their marks."""
    rule = ["─"] * track
    labels = [" "] * (track + value_width)
    for tick in axis.ticks:
        column = min(track - 1, int(axis.fraction(tick) * track))
        rule[column] = "┴"
        text = tick_text(tick)
        start = max(0, min(len(labels) - len(text), column - len(text) // 2))
        if all(cell == " " for cell in labels[max(0, start - 1) : start + len(text) + 1]):
            labels[start : start + len(text)] = list(text)
    return [
        [(" " * indent, "label"), ("".join(rule), "axis")],
        [(" " * indent, "label"), ("".join(labels).rstrip(), "axis")],
    ]


def strength_lines(bars: Sequence[StrengthBar], width: int) -> list[Line]:
    """The strength chart in ``width`` cells: per model a bar row and an interval row, an axis."""
    if not bars:
        return [[("no picks yet: p then a letter picks the best pane of a turn", "muted")]]
    axis = strength_axis(bars)
    label_width = _label_width((bar.label for bar in bars), width)
    value_width = max(len(_interval_text(bar)) for bar in bars) + 1
    value_width = max(value_width, 6)
    track = max(10, width - label_width - 1 - value_width)
    base = _column(axis, BASE, track)
    lines: list[Line] = []
    for bar in bars:
        end = _column(axis, bar.rating, track)
        cells = _rightward(base, end, track) if end >= base else _leftward(end, base, track)
        base_cell = min(int(base), track - 1)
        if cells[base_cell] == " ":
            cells[base_cell] = "│"
        lines.append(
            [
                (fit_cells(bar.label, label_width) + " ", "label"),
                ("".join(cells), "bar"),
                (f" {bar.rating:.0f}".ljust(value_width), "value"),
            ]
        )
        whisker = [" "] * track
        if bar.low is not None and bar.high is not None:
            low = min(track - 1, int(_column(axis, bar.low, track)))
            high = min(track - 1, int(_column(axis, bar.high, track)))
            for column in range(low, high + 1):
                whisker[column] = "─"
            whisker[low] = "├"
            whisker[high] = "┤"
        whisker[min(track - 1, int(end))] = "●"
        lines.append(
            [
                (" " * (label_width + 1), "label"),
                ("".join(whisker), "interval"),
                (f" {_interval_text(bar)}".ljust(value_width), "muted"),
            ]
        )
    lines += _axis_line(axis, track, label_width + 1, value_width)
    return lines


def wide_interval_note(bars: Sequence[StrengthBar]) -> str | None:
    """Why some bars show a wide interval, not the bootstrap's
    (:func:`kurabe.analysis.leaderboard.interval_note`); None when none do."""
    for bar in bars:
        if (note := interval_note(bar.battles)) is not None:
            return note
    return None


def _interval_text(bar: StrengthBar) -> str:
    if bar.low is None or bar.high is None:
        return ""
    return f"{bar.low:.0f}–{bar.high:.0f}"


def _speed_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def speed_lines(bars: Sequence[SpeedBar], width: int) -> list[Line]:
    """The speed chart in ``width`` cells: per model a tok/s row and a 字/s row, an axis."""
    if not bars:
        return [[("no completed replies yet", "muted")]]
    axis = speed_axis(bars)
    label_width = _label_width((bar.label for bar in bars), width)
    series_width = max(cell_len(TOKENS_LABEL), cell_len(CHARS_LABEL)) + 1
    value_width = 8
    indent = label_width + 1 + series_width
    track = max(10, width - indent - value_width)
    lines: list[Line] = []
    for bar in bars:
        for index, (series, value, role) in enumerate(
            ((TOKENS_LABEL, bar.tokens_per_s, "bar"), (CHARS_LABEL, bar.chars_per_s, "bar2"))
        ):
            label = fit_cells(bar.label if index == 0 else "", label_width) + " "
            cells = (
                [" "] * track
                if value is None
                else _rightward(0, _column(axis, value, track), track)
            )
            lines.append(
                [
                    (label, "label"),
                    (fit_cells(series, series_width), "muted"),
                    ("".join(cells), role),
                    (f" {_speed_text(value)}".ljust(value_width), "value"),
                ]
            )
    lines += _axis_line(axis, track, indent, value_width)
    return lines


def plain(lines: Iterable[Line]) -> str:
    """The chart as text, trailing spaces removed."""
    return "\n".join("".join(text for text, _ in line).rstrip() for line in lines)


# -- SVG -----------------------------------------------------------------------------------------

SVG_FONT = '"Hiragino Sans","Noto Sans JP","Yu Gothic",sans-serif'
CELL_PX = 7.0
"""Width of one terminal cell of label text at font-size 12 (a kanji is two)."""
ROW_PX = 26
BAR_PX = 14
TRACK_PX = 560
COLOURS = {"bar": "#3b6fb6", "bar2": "#e0a030", "interval": "#222", "axis": "#888"}


def _xml_text(text: str) -> str:
    """Escaped for XML, with the control characters XML 1.0 cannot hold replaced by U+FFFD."""
    cleaned = "".join(
        "\ufffd" if (ord(c) < 0x20 and c not in "\t\n\r") or 0xFFFE <= ord(c) <= 0xFFFF else c
        for c in text
    )
    return escape(" ".join(cleaned.split()), quote=True)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _svg_open(kind: str, width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" role="img" '
        f'width="{_num(width)}" height="{_num(height)}" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'font-family="{escape(SVG_FONT, quote=True)}" font-size="12">',
        f"<title>{_xml_text(title)}</title>",
    ]


def _svg_axis(axis: Axis, left: float, top: float, unit: str = "") -> list[str]:
    out = [
        f'<line class="axis" x1="{_num(left)}" y1="{_num(top)}" x2="{_num(left + TRACK_PX)}" '
        f'y2="{_num(top)}" stroke="{COLOURS["axis"]}"/>'
    ]
    for tick in axis.ticks:
        x = left + axis.fraction(tick) * TRACK_PX
        out.append(
            f'<line class="tick" x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" '
            f'y2="{_num(top + 4)}" stroke="{COLOURS["axis"]}"/>'
        )
        out.append(
            f'<text class="tick-label" x="{_num(x)}" y="{_num(top + 16)}" '
            f'text-anchor="middle" fill="#555">{tick_text(tick)}{unit}</text>'
        )
    return out


def strength_svg(bars: Sequence[StrengthBar], title: str) -> str:
    """The strength chart as an SVG element (see the module docstring)."""
    axis = strength_axis(bars)
    left = 12 + CELL_PX * max((cell_len(bar.label) for bar in bars), default=4)
    top = 28
    width = left + TRACK_PX + 120
    note = wide_interval_note(bars)
    height = top + ROW_PX * len(bars) + 30 + (18 if note else 0)
    base_x = left + axis.fraction(BASE) * TRACK_PX
    out = _svg_open("strength", width, height, title)
    out.append(
        f'<text class="chart-title" x="0" y="16" font-weight="bold">{_xml_text(title)}</text>'
    )
    for index, bar in enumerate(bars):
        y = top + index * ROW_PX
        x = left + axis.fraction(bar.rating) * TRACK_PX
        low_x, high_x = min(base_x, x), max(base_x, x)
        interval = (
            f' data-low="{_num(bar.low)}" data-high="{_num(bar.high)}"'
            if bar.low is not None and bar.high is not None
            else ""
        )
        out.append(
            f'<g class="row" data-label="{_xml_text(bar.label)}" data-value="{_num(bar.rating)}"'
            f'{interval} data-battles="{bar.battles}">'
        )
        out.append(
            f'<text class="label" x="{_num(left - 8)}" y="{_num(y + BAR_PX - 2)}" '
            f'text-anchor="end">{_xml_text(bar.label)}</text>'
        )
        out.append(
            f'<rect class="bar" data-label="{_xml_text(bar.label)}" '
            f'data-value="{_num(bar.rating)}" x="{_num(low_x)}" y="{_num(y)}" '
            f'width="{_num(high_x - low_x)}" height="{BAR_PX}" fill="{COLOURS["bar"]}"/>'
        )
        middle = y + BAR_PX / 2
        if bar.low is not None and bar.high is not None:
            lx = left + axis.fraction(bar.low) * TRACK_PX
            hx = left + axis.fraction(bar.high) * TRACK_PX
            stroke = f'stroke="{COLOURS["interval"]}" stroke-width="1.5"'
            out.append(
                f'<line class="interval" x1="{_num(lx)}" y1="{_num(middle)}" x2="{_num(hx)}" '
                f'y2="{_num(middle)}" {stroke}/>'
            )
            for cap in (lx, hx):
                out.append(
                    f'<line class="interval-cap" x1="{_num(cap)}" y1="{_num(middle - 5)}" '
                    f'x2="{_num(cap)}" y2="{_num(middle + 5)}" {stroke}/>'
                )
        text = f"{bar.rating:.0f}"
        if bar.low is not None and bar.high is not None:
            text += f" ({bar.low:.0f}–{bar.high:.0f})"
        out.append(
            f'<text class="value" x="{_num(left + TRACK_PX + 6)}" y="{_num(y + BAR_PX - 2)}">'
            f"{text}</text>"
        )
        out.append("</g>")
    bottom = top + ROW_PX * len(bars)
    out.append(
        f'<line class="baseline" x1="{_num(base_x)}" y1="{top - 4}" x2="{_num(base_x)}" '
        f'y2="{_num(bottom)}" stroke="{COLOURS["axis"]}" stroke-dasharray="3 3"/>'
    )
    out += _svg_axis(axis, left, bottom)
    if note:
        out.append(
            f'<text class="interval-note" x="0" y="{_num(height - 4)}">{_xml_text(note)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def speed_svg(bars: Sequence[SpeedBar], title: str) -> str:
    """The speed chart as an SVG element: per model a tok/s bar and a 字/s bar from zero."""
    axis = speed_axis(bars)
    left = 12 + CELL_PX * max((cell_len(bar.label) for bar in bars), default=4)
    top = 44
    row = 2 * BAR_PX + 12
    width = left + TRACK_PX + 90
    height = top + row * len(bars) + 30
    out = _svg_open("speed", width, height, title)
    out.append(
        f'<text class="chart-title" x="0" y="16" font-weight="bold">{_xml_text(title)}</text>'
    )
    for index, (name, role) in enumerate(((TOKENS_LABEL, "bar"), (CHARS_LABEL, "bar2"))):
        x = left + index * 90
        out.append(
            f'<rect class="legend" x="{_num(x)}" y="24" width="10" height="10" '
            f'fill="{COLOURS[role]}"/><text x="{_num(x + 14)}" y="33">{_xml_text(name)}</text>'
        )
    for index, bar in enumerate(bars):
        y = top + index * row
        out.append(f'<g class="row" data-label="{_xml_text(bar.label)}">')
        out.append(
            f'<text class="label" x="{_num(left - 8)}" y="{_num(y + BAR_PX + 4)}" '
            f'text-anchor="end">{_xml_text(bar.label)}</text>'
        )
        for offset, (series, value, role) in enumerate(
            (("tokens", bar.tokens_per_s, "bar"), ("chars", bar.chars_per_s, "bar2"))
        ):
            bar_y = y + offset * BAR_PX
            if value is None:
                out.append(
                    f'<text class="value missing" x="{_num(left + 4)}" '
                    f'y="{_num(bar_y + BAR_PX - 3)}" fill="#888">–</text>'
                )
                continue
            bar_width = axis.fraction(value) * TRACK_PX
            out.append(
                f'<rect class="bar {series}" data-label="{_xml_text(bar.label)}" '
                f'data-value="{_num(value)}" x="{_num(left)}" y="{_num(bar_y)}" '
                f'width="{_num(bar_width)}" height="{BAR_PX - 1}" fill="{COLOURS[role]}"/>'
            )
            out.append(
                f'<text class="value" x="{_num(left + bar_width + 4)}" '
                f'y="{_num(bar_y + BAR_PX - 3)}" font-size="11">{value:.1f}</text>'
            )
        out.append("</g>")
    out += _svg_axis(axis, left, top + row * len(bars) - 6)
    out.append("</svg>")
    return "\n".join(out)


# -- the leaderboard as a page -------------------------------------------------------------------

_PAGE_CSS = (
    'body{font-family:"Hiragino Sans","Noto Sans JP","Yu Gothic",sans-serif;margin:1.5rem;'
    "color:#222;background:#fafafa}h1{font-size:1.4rem}table{border-collapse:collapse;"
    "margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
    "td.n{text-align:right}figure{margin:.8rem 0;overflow-x:auto}"
)


def leaderboard_page(board: Any) -> str:
    """``kurabe leaderboard --format html``: the ranking table and both charts on one
    self-contained page (inline CSS and SVG, no script, nothing fetched)."""

    def number(value: float | None, digits: int = 1) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    title = f"比べ kurabe leaderboard — {board.sessions} sessions, {board.battles} battles"
    scope = [f"scenario {board.scenario}"] if board.scenario else []
    scope += [f"rater {board.rater}"] if board.rater else []
    if scope:
        title += " (" + ", ".join(scope) + ")"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ja"><head><meta charset="utf-8">',
        f"<title>{_xml_text(title)}</title><style>{_PAGE_CSS}</style></head><body>",
        f"<h1>{_xml_text(title)}</h1>",
        "<table><tr><th>Model</th><th>Rating</th><th>95% interval</th><th>Battles</th>"
        "<th>Win share</th><th>Mean score</th><th>tok/s</th><th>字/s</th></tr>",
    ]
    for m in board.models:
        interval = "–" if m.ci_low is None else f"{m.ci_low:.0f}–{m.ci_high:.0f}"
        if m.rating is not None and interval_note(m.battles):
            interval += " *"
        share = "–" if m.win_share is None else f"{m.win_share * 100:.0f}%"
        parts.append(
            f"<tr><td>{_xml_text(m.model)}</td><td class='n'>{number(m.rating, 0)}</td>"
            f"<td class='n'>{interval}</td><td class='n'>{m.battles}</td>"
            f"<td class='n'>{share}</td><td class='n'>{number(m.mean_score, 2)}</td>"
            f"<td class='n'>{number(m.tokens_per_s)}</td><td class='n'>{number(m.chars_per_s)}</td>"
            "</tr>"
        )
    parts.append("</table>")
    notes = {interval_note(m.battles) for m in board.models if m.rating is not None}
    notes.discard(None)
    parts += [f"<p class='interval-note'>* {_xml_text(str(note))}</p>" for note in notes]
    strength = strength_bars(board.models)
    speed = speed_bars(board.models)
    if strength:
        chart = strength_svg(strength, "Bradley–Terry strength (1000 = average), 95% interval")
        parts.append(f"<figure>{chart}</figure>")
    else:
        parts.append("<p>Bradley–Terry strength: no picks yet.</p>")
    if speed:
        parts.append(f"<figure>{speed_svg(speed, 'Speed: tok/s and 字/s per model')}</figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
