"""Charts: the text layout (cells, order, lengths, whiskers), the SVG parsed with its bars in order
and widths following the values, and the HTML export's charts (blind ones included)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.cells import cell_len

from kurabe.analysis.charts import (
    BASE,
    TRACK_PX,
    SpeedBar,
    StrengthBar,
    nice_axis,
    plain,
    session_speed_bars,
    session_strength_bars,
    speed_lines,
    speed_svg,
    strength_axis,
    strength_bars,
    strength_lines,
    strength_svg,
)
from kurabe.analysis.leaderboard import ModelStats, build_leaderboard
from kurabe.export.exporter import export_session
from kurabe.session.comparison import ComparisonSession
from kurabe.store.store import Store
from personas import Persona
from scenarios import Scenario, Turn
from tests.fake_backends import FakeBackend, Script, fake_factory, fake_profile

SVG = "{http://www.w3.org/2000/svg}"
STRENGTH = [
    StrengthBar("C 日本語モデル", 930.0, 850.0, 1010.0, 4),
    StrengthBar("A gemma-270m", 1100.0, 1020.0, 1190.0, 4),
    StrengthBar("B weblab", 1010.0, None, None, 4),
]


# -- text -----------------------------------------------------------------------------------


def bar_columns(row: str) -> tuple[int, int]:
    """First and last+1 cell of the block characters in a bar row (measured in cells)."""
    cells = [char for char in row for _ in range(cell_len(char))]
    blocks = [i for i, c in enumerate(cells) if c in "█▏▎▍▌▋▊▉▐"]
    return blocks[0], blocks[-1] + 1


def test_strength_text_sorts_aligns_and_diverges_from_1000() -> None:
    bars = sorted(STRENGTH, key=lambda bar: -bar.rating)
    rows = plain(strength_lines(bars, 90)).splitlines()
    assert [rows[i].split("  ")[0].strip() for i in (0, 2, 4)] == [
        "A gemma-270m",
        "B weblab",
        "C 日本語モデル",
    ]
    # every bar row starts its track at the same cell, Japanese label or not
    label_cells = {cell_len(strength_lines(bars, 90)[i][0][0]) for i in (0, 2, 4)}
    assert len(label_cells) == 1
    axis = strength_axis(bars)
    first_a, end_a = bar_columns(rows[0])
    first_c, end_c = bar_columns(rows[4])
    assert end_c <= first_a  # C (930) ends where A (1100) starts: both touch 1000
    # lengths follow the distance from 1000 (within the half-cell resolution of the ends)
    cells_per_point = (end_a - first_a) / (1100 - BASE)
    assert (end_c - first_c) == pytest.approx(cells_per_point * (BASE - 930), abs=1.0)
    assert axis.low <= 850 and axis.high >= 1190
    # the interval row: ├ at the low end, ┤ at the high end, ● at the rating
    assert rows[1].index("├") < rows[1].index("●") < rows[1].index("┤")
    assert rows[1].rstrip().endswith("1020–1190")
    assert "├" not in rows[3] and "●" in rows[3]  # B has no interval
    assert rows[-1].split() == ["800", "900", "1000", "1100", "1200"]


def test_speed_text_has_two_series_per_model_on_one_scale() -> None:
    rows = plain(speed_lines([SpeedBar("A 日本語", 40.0, 20.0), SpeedBar("B", 10.0, None)], 80))
    lines = rows.splitlines()
    assert lines[0].startswith("A 日本語") and "tok/s" in lines[0] and lines[0].endswith("40.0")
    assert "字/s" in lines[1] and lines[1].endswith("20.0")
    assert lines[3].endswith("–") and "█" not in lines[3]
    tokens = bar_columns(lines[0])
    chars = bar_columns(lines[1])
    assert tokens[0] == chars[0]
    assert (tokens[1] - tokens[0]) == pytest.approx(2 * (chars[1] - chars[0]), abs=1)


def test_empty_charts_say_why() -> None:
    assert "no picks yet" in plain(strength_lines([], 60))
    assert "no completed replies" in plain(speed_lines([], 60))


def test_nice_axis_ends_on_round_ticks() -> None:
    axis = nice_axis([933.0, 1187.0], include=[1000.0], ticks=4)
    assert axis.ticks == (900.0, 1000.0, 1100.0, 1200.0)
    assert nice_axis([0.0, 37.0], ticks=4).ticks == (0.0, 10.0, 20.0, 30.0, 40.0)
    assert nice_axis([5.0]).low < 5.0 < nice_axis([5.0]).high


def test_strength_bars_from_the_leaderboard_skip_unrated_models() -> None:
    models = [ModelStats("x", rating=990.0), ModelStats("y"), ModelStats("z", rating=1010.0)]
    assert [bar.label for bar in strength_bars(models)] == ["z", "x"]
    # equal ratings keep the leaderboard's order (its tie-break is the mean score)
    tied = [ModelStats("b", rating=960.0, mean_score=3.0), ModelStats("a", rating=960.0)]
    assert [bar.label for bar in strength_bars(tied)] == ["b", "a"]


# -- SVG ------------------------------------------------------------------------------------


def rects(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    found = [r for r in root.iter(f"{SVG}rect") if "bar" in r.get("class", "").split()]
    return sorted(found, key=lambda r: float(r.get("y", "0")))


def test_strength_svg_bars_in_order_with_widths_from_1000() -> None:
    bars = sorted(STRENGTH, key=lambda bar: -bar.rating)
    svg = strength_svg(bars, "Bradley–Terry")
    found = rects(svg)
    assert [r.get("data-label") for r in found] == [b.label for b in bars]
    assert [float(r.get("data-value", "0")) for r in found] == [b.rating for b in bars]
    axis = strength_axis(bars)
    px_per_point = TRACK_PX / (axis.high - axis.low)
    for rect, bar in zip(found, bars, strict=True):
        assert float(rect.get("width", "0")) == pytest.approx(
            abs(bar.rating - BASE) * px_per_point, abs=0.02
        )
    # bars above 1000 start at the 1000 line, those below end there
    base_x = {round(float(r.get("x", "0")), 1) for r in found[:2]}
    c = found[2]
    assert base_x == {round(float(c.get("x", "0")) + float(c.get("width", "0")), 1)}
    root = ET.fromstring(svg)
    intervals = [line for line in root.iter(f"{SVG}line") if line.get("class") == "interval"]
    assert len(intervals) == 2  # B has none
    low, high = (float(intervals[0].get(k, "0")) for k in ("x1", "x2"))
    assert high - low == pytest.approx((1190 - 1020) * px_per_point, abs=0.02)
    assert "<script" not in svg and "href" not in svg


def test_speed_svg_widths_follow_the_values_from_zero() -> None:
    bars = [SpeedBar("A", 31.5, 24.0), SpeedBar("B 日本語", 12.0, None)]
    found = rects(speed_svg(bars, "Speed"))
    assert [(r.get("class"), r.get("data-label")) for r in found] == [
        ("bar tokens", "A"),
        ("bar chars", "A"),
        ("bar tokens", "B 日本語"),
    ]
    widths = [float(r.get("width", "0")) for r in found]
    values = [31.5, 24.0, 12.0]
    ratios = [w / v for w, v in zip(widths, values, strict=True)]
    assert max(ratios) - min(ratios) < 0.01
    assert len({r.get("x") for r in found}) == 1


def test_svg_text_is_escaped_and_xml_safe() -> None:
    label = 'A <b>&"x"\x01'
    svg = strength_svg([StrengthBar(label, 1000.0)], "t<")
    root = ET.fromstring(svg)  # parses: no raw <, &, quote or control character
    assert rects(svg)[0].get("data-label") == 'A <b>&"x"\ufffd'
    assert root.find(f"{SVG}title") is not None


# -- the HTML export ------------------------------------------------------------------------

PERSONA = Persona(id="anime-fan", title="アニメファン", system="あなたはアニメファンです。")
SCENARIO = Scenario(
    id="charts",
    title="グラフ",
    persona="anime-fan",
    turns=tuple(Turn(f"質問{i}") for i in range(4)),
)


async def rated_session(store: Store, *, blind: bool = False) -> ComparisonSession:
    names = ("gpt-3.5", "claude", "weblab")
    replies = {"gpt-3.5": "うん、大好きだよ！" * 3, "claude": "ああ、好きだよ。", "weblab": "はい"}
    backends = {
        name: FakeBackend(
            name, [Script.text(replies[name], completion_tokens=6, delay_s=0.002)] * 4
        )
        for name in names
    }
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile(name) for name in names],
        scenario=SCENARIO,
        blind=blind,
        rater="はな",
        backend_factory=fake_factory(backends),
        shuffle_seed=3,
    )
    position = {p.profile.name: p.index for p in session.panes}
    for turn, winner in enumerate(("gpt-3.5", "gpt-3.5", "claude", "tie")):
        await session.send_scenario_turn()
        session.pick_best(turn, "tie" if winner == "tie" else position[winner])
    return session


def svgs_in(html_text: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html_text, flags=re.S)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "kurabe.sqlite3")


async def test_html_export_has_both_charts_in_order(store: Store) -> None:
    session = await rated_session(store)
    page = export_session(store, session.id, "html")
    strength, speed = svgs_in(page)
    assert 'class="chart strength"' in strength and 'class="chart speed"' in speed
    labels = [r.get("data-label") or "" for r in rects(strength)]
    assert [label.split(" ", 1)[1] for label in labels] == ["gpt-3.5", "claude", "weblab"]
    ratings = [float(r.get("data-value", "0")) for r in rects(strength)]
    assert ratings == sorted(ratings, reverse=True) and ratings[0] > BASE > ratings[-1]
    # the same numbers the leaderboard finds for this one session
    board = {m.model: m.rating for m in build_leaderboard(store).models}
    for label, rating in zip(labels, ratings, strict=True):
        assert rating == pytest.approx(board[label.split(" ", 1)[1]], abs=0.01)
    record = store.load_record(session.id)
    expected = session_speed_bars(record, hide_names=False)
    tokens = [r for r in rects(speed) if r.get("class") == "bar tokens"]
    with_tokens = [bar.label for bar in expected if bar.tokens_per_s is not None]
    assert [r.get("data-label") for r in tokens] == with_tokens
    values = [float(r.get("data-value", "0")) for r in tokens]
    assert values == sorted(values, reverse=True)
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


async def test_blind_html_export_charts_show_letters_only(store: Store) -> None:
    session = await rated_session(store, blind=True)
    page = export_session(store, session.id, "html")
    charts = "".join(svgs_in(page))
    assert charts and all(name not in charts for name in ("gpt-3.5", "claude", "weblab"))
    record = store.load_record(session.id)
    letters = [bar.label for bar in session_strength_bars(record, hide_names=True)]
    assert sorted(letters) == ["A", "B", "C"]
    assert [r.get("data-label") for r in rects(svgs_in(page)[0])] == letters


async def test_html_export_without_picks_says_so(store: Store) -> None:
    session = ComparisonSession.create(
        store,
        PERSONA,
        [fake_profile("solo")],
        scenario=SCENARIO,
        rater="はな",
        backend_factory=fake_factory({"solo": FakeBackend("solo", ["はい"])}),
    )
    page = export_session(store, session.id, "html")
    assert "no picks yet" in page and "no completed replies yet" in page
    assert svgs_in(page) == []


async def test_leaderboard_html_page_charts_every_session(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kurabe.cli import main

    await rated_session(store)
    await rated_session(store)
    capsys.readouterr()
    assert main(["leaderboard", "--format", "html", "--db", str(tmp_path / "kurabe.sqlite3")]) == 0
    page = capsys.readouterr().out
    assert "2 sessions, 18 battles" in page  # per session: 2 + 2 + 2 + a three-way tie
    strength, speed = svgs_in(page)
    board = build_leaderboard(store)
    assert [r.get("data-label") for r in rects(strength)] == [m.model for m in board.models]
    assert [float(r.get("data-value", "0")) for r in rects(strength)] == [
        pytest.approx(m.rating, abs=0.01) for m in board.models
    ]
    assert {r.get("data-label") for r in rects(speed)} == {"gpt-3.5", "claude", "weblab"}
    assert "<script" not in page
