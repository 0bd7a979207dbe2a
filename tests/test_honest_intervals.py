"""Intervals that tell the truth at small numbers: one pick gave Bradley–Terry 1140 against 860
with a "95% interval" of 1140–1140 (every bootstrap resample is the same battle). Below
MIN_BATTLES_FOR_INTERVAL battles the leaderboard, the HTML export and the summary's chart show
the win share's wide Wilson interval and say why; from there on, the bootstrap's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kurabe.analysis.leaderboard import MIN_BATTLES_FOR_INTERVAL
from kurabe.cli import main
from kurabe.store.store import Store
from tests.study_support import stored_session


def picked_session(db: Path, picks: int) -> int:
    """A two-pane session of ``picks`` turns where pane A is picked every time but one."""
    with Store(db) as store:
        session_id, turns = stored_session(store, picks)
        panes = store.sessions.panes(session_id)
        for number, turn_id in enumerate(turns):
            winner = panes[1 if number == 1 else 0]
            store.ratings.add_pick(
                turn_id, winner_pane_id=winner.id, outcome="pane", rater="はな", blind=False
            )
    return session_id


def intervals_in(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"(\d{3,4})–(\d{3,4})", text)]


def test_one_pick_shows_a_wide_interval_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "k.sqlite3"
    session_id = picked_session(db, 1)
    assert main(["leaderboard", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    found = intervals_in(table)
    assert len(found) == 2
    assert all(high - low >= 300 for low, high in found)
    assert f"under {MIN_BATTLES_FOR_INTERVAL} battles" in table
    assert "1140–1140" not in table

    out = tmp_path / "s.html"
    assert main(["export", str(session_id), "-f", "html", "-o", str(out), "--db", str(db)]) == 0
    page = out.read_text(encoding="utf-8")
    lows = [float(v) for v in re.findall(r'data-low="([\d.]+)"', page)]
    highs = [float(v) for v in re.findall(r'data-high="([\d.]+)"', page)]
    assert lows and all(h - lo >= 300 for lo, h in zip(lows, highs, strict=True))
    assert "Wilson" in page

    assert main(["leaderboard", "--db", str(db), "--format", "html"]) == 0
    board_page = capsys.readouterr().out
    assert "Wilson" in board_page


def test_enough_battles_show_the_bootstrap_and_no_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "k.sqlite3"
    picked_session(db, MIN_BATTLES_FOR_INTERVAL + 2)
    assert main(["leaderboard", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert len(intervals_in(table)) == 2
    assert "Wilson" not in table
