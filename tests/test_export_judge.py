"""The judge in the exports: people's scores stay people's, the jsonl carries every judgement
(failed ones with their raw text), md and html end with the judge runs and agreement figures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from kurabe.export.exporter import export_session
from kurabe.store.store import Store
from tests.judge_support import make_rated_store

# Every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("store_engine")


async def judged_store(tmp_path: Path) -> tuple[Store, int]:
    store, session_id = await make_rated_store(tmp_path)
    record = store.load_record(session_id)
    run = record.judge_runs[0].id
    reply = record.latest_replies()[(1, 1)]
    store.judging.add_judgement(
        run,
        turn_id=reply.turn_id,
        reply_id=reply.id,
        status="unparseable",
        attempts=[{"raw": "<b>とても良い</b>です", "error": "the answer is empty"}],
    )
    return store, session_id


async def test_jsonl_lists_judge_ratings_and_judgements_beside_the_peoples(
    tmp_path: Path,
) -> None:
    store, session_id = await judged_store(tmp_path)
    records = [json.loads(line) for line in export_session(store, session_id, "jsonl").splitlines()]
    by_key = {(r["pane"], r["turn"]): r for r in records}
    beta_second = by_key[(1, 1)]
    kinds = sorted((r["rater"], r["kind"], r["score"]) for r in beta_second["ratings"])
    assert kinds == [("hana", "human", 4), ("judge:j", "judge", 5)]
    assert beta_second["latest_rating"]["rater"] == "hana"  # the newest *person's* rating
    statuses = [(j["mode"], j["status"], j["outcome"]) for j in beta_second["judgements"]]
    assert ("single", "ok", None) in statuses
    assert ("pairwise", "ok", "won") in statuses
    failed = [j for j in beta_second["judgements"] if j["status"] == "unparseable"]
    assert failed[0]["attempts"][0]["raw"] == "<b>とても良い</b>です"
    assert failed[0]["score"] is None


async def test_csv_scores_are_the_peoples(tmp_path: Path) -> None:
    store, session_id = await judged_store(tmp_path)
    text = export_session(store, session_id, "csv")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert {row["rater"] for row in rows} <= {"hana", "yuki"}
    assert sorted(row["score"] for row in rows) == ["1", "2", "4", "4"]


async def test_md_and_html_end_with_the_judge_and_agreement_section(tmp_path: Path) -> None:
    store, session_id = await judged_store(tmp_path)
    md = export_session(store, session_id, "md")
    section = md[md.index("## Judge and agreement") :]
    assert "- judge:j (single, rubric persona_ja" in section
    assert "4 judged, 1 failed" in section
    assert "human vs judge:j, scores (7 pairs on 4 replies)" in section
    assert "Krippendorff's alpha (ordinal) 0.95" in section
    # the summary table's mean scores are people's: pane B 2 and 4 from hana, 2 from yuki
    assert "| B | secret-model-beta | - | 2 | 3.00 |" in md
    page = export_session(store, session_id, "html")
    assert '<section class="agreement"><h2>Judge and agreement</h2>' in page
    assert "human vs judge:j, picks (3 pairs)" in page
    assert "<b>とても良い</b>" not in page  # a judge's raw text is never markup
