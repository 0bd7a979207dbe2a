"""``kurabe study`` on the command line: create from session ids or a scenario tag, status,
export with the pane order each rater saw, close; ``kurabe leaderboard --study``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from kurabe.cli import main
from kurabe.store.store import Store
from scenarios import Scenario
from tests.study_support import stored_session

SCENARIO = Scenario(id="s1", title="t", persona="anime-fan", turns=(), tags=("seed",))


def test_create_rate_status_export_close(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "k.sqlite3")
    with Store(db) as store:
        tagged, _ = stored_session(store, 2, scenario=SCENARIO)
        stored_session(store, 3)
    assert (
        main(["study", "create", "tag", "--scenario-tag", "seed", "--per-item", "2", "--db", db])
        == 0
    )
    assert "2 items" in capsys.readouterr().out
    assert main(["study", "create", "ids", "--sessions", "2", "--per-item", "1", "--db", db]) == 0
    assert "3 items from sessions 2" in capsys.readouterr().out
    assert main(["study", "create", "run", "--run", "1", "--db", db]) == 2
    assert "not wired" in capsys.readouterr().err

    with Store(db) as store:
        study = store.studies.get("tag")
        assert {i.session_id for i in store.studies.items(study.id)} == {tagged}
        claim = store.studies.claim_next(study, "hana")
        assert claim is not None
        store.studies.add_score(
            claim.item_id, "hana", claim.positions[1], score=4, tags=["too-long"]
        )
        store.studies.add_pick(claim.item_id, "hana", position=claim.positions[1], outcome="pane")
        store.studies.finish(claim.item_id, "hana")

    assert main(["study", "status", "tag", "--db", db]) == 0
    status = capsys.readouterr().out
    assert "ratings done 1 / 4" in status and "hana" in status
    assert "the left pane was picked 0 of 1 times" in status
    assert main(["study", "status", "tag", "--format", "json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["raters"][0]["done"] == 1

    assert main(["study", "export", "tag", "--db", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["rater"], r["kind"], r["shown_position"]) for r in rows] == [
        ("hana", "score", "1"),
        ("hana", "pick", "1"),
    ]
    assert rows[0]["shown_order"] == " ".join(map(str, claim.positions))
    assert rows[0]["tags"] == "too-long"
    assert main(["study", "export", "tag", "--format", "battles", "--db", db]) == 0
    battles = json.loads(capsys.readouterr().out)
    assert [b["rater"] for b in battles] == ["hana"]

    assert main(["leaderboard", "--study", "tag", "--db", db]) == 0
    assert "study tag" in capsys.readouterr().out
    assert main(["study", "close", "tag", "--db", db]) == 0
    assert main(["study", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert "tag\tclosed" in listing and "ids\topen" in listing
