"""Judging's tables: judge runs and their judgements, as :class:`JudgingRepository`,
``store.judging``.

An LLM judge (:mod:`kurabe.judge.runner`) scores the replies of a session. Each judge run records
the judge's exact request settings (scrubbed of every key) and its rubric (text and sha256); each
judgement, failed ones included, keeps every raw answer the judge gave. A single-mode judgement
that succeeded also writes the judge's score as a rating of kind ``judge`` and rater
``judge:<profile>``, in the same transaction and through the ratings' one way in
(:meth:`~kurabe.store.ratings.RatingRepository.add_rating`, which reads it back with the
people's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from foundation.errors import KurabeError
from kurabe.core.secret_scrub import scrub_secrets
from kurabe.store.database import Database, from_json, now_iso, to_json
from kurabe.store.ratings import RatingRepository
from kurabe.store.records import JUDGE_MODES, JUDGEMENT_STATUSES, JudgementRow, JudgeRunRow


class JudgingRepository:
    """Judge runs and judgements, on one :class:`~kurabe.store.database.Database`; a judge's
    score is written as a rating through ``ratings`` (by default a
    :class:`~kurabe.store.ratings.RatingRepository` on the same database)."""

    def __init__(self, database: Database, ratings: RatingRepository | None = None) -> None:
        self.database = database
        self.ratings = ratings if ratings is not None else RatingRepository(database)

    def add_run(
        self,
        session_id: int,
        *,
        judge: str,
        profile_name: str,
        mode: str,
        rubric_name: str,
        rubric_hash: str,
        rubric_text: str,
        settings: Mapping[str, Any],
        secrets: Iterable[str] = (),
    ) -> int:
        """Record a judge run: who judges, how (``settings``: scrubbed of every key), and the
        rubric it used."""
        if mode not in JUDGE_MODES:
            raise KurabeError(f"judge mode is one of {', '.join(JUDGE_MODES)}, not {mode!r}")
        return self.database.insert(
            "INSERT INTO judge_runs (session_id, judge, profile_name, mode, rubric_name,"
            " rubric_hash, rubric_text, settings_json, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                judge,
                profile_name,
                mode,
                rubric_name,
                rubric_hash,
                rubric_text,
                to_json(scrub_secrets(dict(settings), secrets)),
                now_iso(),
            ),
        )

    def update_run_settings(
        self, run_id: int, settings: Mapping[str, Any], secrets: Iterable[str] = ()
    ) -> None:
        """The settings once the judge's backend is loaded (it then says what it sends)."""
        self.database.execute(
            "UPDATE judge_runs SET settings_json = ? WHERE id = ?",
            (to_json(scrub_secrets(dict(settings), secrets)), run_id),
        )

    def add_judgement(
        self,
        run_id: int,
        *,
        turn_id: int,
        reply_id: int,
        other_reply_id: int | None = None,
        status: str,
        score: int | None = None,
        winner_reply_id: int | None = None,
        reason: str = "",
        attempts: Sequence[Mapping[str, Any]] = (),
        blind: bool = True,
        secrets: Iterable[str] = (),
    ) -> int:
        """Record one judgement. A single-mode ``ok`` judgement also writes the judge's rating
        (kind ``judge``, rater = the run's judge, the reason as its note) in the same
        transaction; nothing else ever writes a score for a judge."""
        if status not in JUDGEMENT_STATUSES:
            raise KurabeError(f"judgement status is one of {', '.join(JUDGEMENT_STATUSES)}")
        if status != "ok" and (score is not None or winner_reply_id is not None):
            raise KurabeError("a judgement that failed carries no score and no winner")
        secret_list = list(secrets)
        clean_attempts = scrub_secrets([dict(a) for a in attempts], secret_list, urls=False)
        with self.database.transaction():
            run = self.database.query_one("SELECT judge FROM judge_runs WHERE id = ?", (run_id,))
            if run is None:
                raise KurabeError(f"no judge run {run_id}")
            rating_id = None
            if status == "ok" and score is not None:
                rating_id = self.ratings.add_rating(
                    reply_id,
                    score=score,
                    tags=(),
                    note=reason,
                    rater=run["judge"],
                    blind=blind,
                    kind="judge",
                )
            return self.database.insert(
                "INSERT INTO judgements (run_id, turn_id, reply_id, other_reply_id, status,"
                " score, winner_reply_id, reason, attempts_json, rating_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    turn_id,
                    reply_id,
                    other_reply_id,
                    status,
                    score,
                    winner_reply_id,
                    reason,
                    to_json(clean_attempts),
                    rating_id,
                    now_iso(),
                ),
            )

    def runs(self, session_id: int) -> list[JudgeRunRow]:
        rows = self.database.query(
            "SELECT * FROM judge_runs WHERE session_id = ? ORDER BY id", (session_id,)
        )
        return [
            JudgeRunRow(
                id=r["id"],
                session_id=r["session_id"],
                judge=r["judge"],
                profile_name=r["profile_name"],
                mode=r["mode"],
                rubric_name=r["rubric_name"],
                rubric_hash=r["rubric_hash"],
                rubric_text=r["rubric_text"],
                settings=from_json(r["settings_json"], {}),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def judgements(self, session_id: int) -> list[JudgementRow]:
        rows = self.database.query(
            "SELECT j.*, u.judge AS run_judge, u.mode AS run_mode, u.rubric_hash AS run_hash,"
            " t.idx AS turn_idx FROM judgements j JOIN judge_runs u ON u.id = j.run_id"
            " JOIN turns t ON t.id = j.turn_id WHERE u.session_id = ? ORDER BY j.id",
            (session_id,),
        )
        return [
            JudgementRow(
                id=r["id"],
                run_id=r["run_id"],
                judge=r["run_judge"],
                mode=r["run_mode"],
                rubric_hash=r["run_hash"],
                turn_id=r["turn_id"],
                turn=r["turn_idx"],
                reply_id=r["reply_id"],
                other_reply_id=r["other_reply_id"],
                status=r["status"],
                score=r["score"],
                winner_reply_id=r["winner_reply_id"],
                reason=r["reason"],
                attempts=from_json(r["attempts_json"], []),
                rating_id=r["rating_id"],
                created_at=r["created_at"],
            )
            for r in rows
        ]
