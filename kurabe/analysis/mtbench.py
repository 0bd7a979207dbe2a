"""The MT-Bench table: per judge, the mean score per model, per turn and overall, and the
pairwise wins, losses and ties, computed as FastChat's ``show_result.py`` computes them.

- **Single**: failed judgments (FastChat's -1; here status ``failed``, no score) are dropped;
  then the mean per (model, turn) and, overall, the mean of every remaining judgment of the model
  (not the mean of the two turn means: FastChat groups the rows by model alone).
- **Pairwise**: rows where either order's winner is ``error`` are dropped; a row counts a tie
  for both models when ``g1_winner`` is ``tie`` or the two orders disagree, else a win for the
  winner and a loss for the other. Win rate = wins / games; adjusted win rate counts a tie as
  half a win.

Scores stay on the scale they were given: imported MT-Bench judgments on 1–10, kurabe's own
judge on 1–5 (its newest judgement per reply or pair; a backend error is not a judgment, an
unparseable answer is a failed one); each table names its scale, and no two scales share a
mean.

What is shown is chosen as a set of session ids (:func:`select_sessions`: by scenario tag, by
ids; a run's sessions are one more such set).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from foundation.errors import KurabeError
from kurabe.core.scores import KURABE_SCALE, MT_BENCH_SCALE, scale_label
from kurabe.store.records import SessionRecord, newest_by
from kurabe.store.store import Store


@dataclass(frozen=True)
class SingleScore:
    """One single-answer judgment: None as score for a failed one."""

    judge: str
    scale: str
    model: str
    turn: int
    score: int | None


@dataclass(frozen=True)
class PairGame:
    """One pairwise judgment in FastChat's terms."""

    judge: str
    model_1: str
    model_2: str
    g1_winner: str
    g2_winner: str
    turn: int


@dataclass(frozen=True)
class ModelMeans:
    model: str
    turn_means: dict[int, float]
    overall: float | None
    judged: int
    failed: int


@dataclass(frozen=True)
class ModelRecord:
    model: str
    win: int
    loss: int
    tie: int

    @property
    def games(self) -> int:
        return self.win + self.loss + self.tie

    @property
    def win_rate(self) -> float:
        return self.win / self.games if self.games else 0.0

    @property
    def loss_rate(self) -> float:
        return self.loss / self.games if self.games else 0.0

    @property
    def win_rate_adjusted(self) -> float:
        return (self.win + 0.5 * self.tie) / self.games if self.games else 0.0


@dataclass
class MtBenchTable:
    """Every judge's tables over one set of sessions."""

    singles: dict[tuple[str, str], list[ModelMeans]] = field(default_factory=dict)
    """(judge, scale) -> models, best overall first."""
    pairs: dict[str, list[ModelRecord]] = field(default_factory=dict)
    """judge -> models, best adjusted win rate first."""


def single_means(scores: Iterable[SingleScore]) -> list[ModelMeans]:
    """FastChat's single-answer table over one judge's scores (see the module docstring)."""
    by_model: dict[str, list[SingleScore]] = defaultdict(list)
    for row in scores:
        by_model[row.model].append(row)
    out = []
    for model, rows in by_model.items():
        valid = [r for r in rows if r.score is not None]
        per_turn: dict[int, list[int]] = defaultdict(list)
        for r in valid:
            assert r.score is not None
            per_turn[r.turn].append(r.score)
        out.append(
            ModelMeans(
                model=model,
                turn_means={t: sum(v) / len(v) for t, v in sorted(per_turn.items())},
                overall=sum(r.score or 0 for r in valid) / len(valid) if valid else None,
                judged=len(valid),
                failed=len(rows) - len(valid),
            )
        )
    return sorted(out, key=lambda m: (m.overall is None, -(m.overall or 0.0), m.model))


def pair_records(games: Iterable[PairGame]) -> list[ModelRecord]:
    """FastChat's pairwise wins, losses and ties (see the module docstring)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for game in games:
        if "error" in (game.g1_winner, game.g2_winner):
            continue
        if game.g1_winner == "tie" or game.g1_winner != game.g2_winner:
            counts[game.model_1][2] += 1
            counts[game.model_2][2] += 1
            continue
        winner, loser = (
            (game.model_1, game.model_2)
            if game.g1_winner == "model_1"
            else (game.model_2, game.model_1)
        )
        counts[winner][0] += 1
        counts[loser][1] += 1
    records = [ModelRecord(model, w, lo, t) for model, (w, lo, t) in counts.items()]
    return sorted(records, key=lambda r: (-r.win_rate_adjusted, r.model))


# -- from the store --------------------------------------------------------------------------


def select_sessions(
    store: Store, *, tag: str | None = None, session_ids: Sequence[int] | None = None
) -> list[int]:
    """The sessions a table or an export covers: ``session_ids`` (each checked to exist), or
    every session whose scenario carries ``tag``; both: those ids that carry it."""
    if session_ids is not None:
        for session_id in session_ids:
            if not store.sessions.exists(session_id):
                raise KurabeError(f"no session {session_id} in {store.path}")
        chosen = sorted(set(session_ids))
    else:
        chosen = store.sessions.ids()
    if tag is not None:
        chosen = [
            i for i in chosen if tag in ((store.sessions.get(i).scenario or {}).get("tags") or ())
        ]
    return chosen


def _turn_number(record: SessionRecord, turn_id: int) -> int:
    for turn in record.turns:
        if turn.id == turn_id:
            return (turn.scenario_turn if turn.scenario_turn is not None else turn.idx) + 1
    raise KeyError(turn_id)


def build_table(store: Store, session_ids: Sequence[int]) -> MtBenchTable:
    """The MT-Bench tables of these sessions: imported judgments (1–10) and kurabe's own
    judges' (1–5), each judge and scale apart."""
    singles: dict[tuple[str, str], list[SingleScore]] = defaultdict(list)
    games: dict[str, list[PairGame]] = defaultdict(list)
    records = {i: store.load_record(i) for i in session_ids}
    model_of: dict[int, str] = {}
    turn_of: dict[int, int] = {}
    for record in records.values():
        for reply in record.replies:
            model_of[reply.id] = record.pane_by_id(reply.pane_id).profile_name
        for turn_row in record.turns:
            turn_of[turn_row.id] = _turn_number(record, turn_row.id)
    for row in store.imported_judgements.judgements(list(session_ids)):
        turn = turn_of[row.turn_id]
        if row.mode == "single":
            singles[(row.judge, row.scale)].append(
                SingleScore(row.judge, row.scale, model_of[row.reply_id], turn, row.score)
            )
        elif row.other_reply_id is not None and row.other_reply_id in model_of:
            games[row.judge].append(
                PairGame(
                    row.judge,
                    model_of[row.reply_id],
                    model_of[row.other_reply_id],
                    row.g1_winner or "error",
                    row.g2_winner or "error",
                    turn,
                )
            )
    for record in records.values():
        # A reply judged again (another run of the same judge) counts once: the newest.
        own = newest_by(
            (j for j in record.judgements if j.status != "error"),
            lambda j: (j.judge, j.mode, j.reply_id, j.other_reply_id),
        )
        for judgement in sorted(own.values(), key=lambda j: j.id):
            turn = turn_of[judgement.turn_id]
            if judgement.mode == "single":
                singles[(judgement.judge, KURABE_SCALE)].append(
                    SingleScore(
                        judgement.judge,
                        KURABE_SCALE,
                        model_of[judgement.reply_id],
                        turn,
                        judgement.score if judgement.ok else None,
                    )
                )
            elif judgement.other_reply_id is not None:
                # kurabe's judge already combined both orders: a winner, or a tie.
                outcome = "error"
                if judgement.ok:
                    if judgement.winner_reply_id is None:
                        outcome = "tie"
                    elif judgement.winner_reply_id == judgement.reply_id:
                        outcome = "model_1"
                    else:
                        outcome = "model_2"
                games[judgement.judge].append(
                    PairGame(
                        judgement.judge,
                        model_of[judgement.reply_id],
                        model_of[judgement.other_reply_id],
                        outcome,
                        outcome,
                        turn,
                    )
                )
    table = MtBenchTable()
    for key in sorted(singles):
        table.singles[key] = single_means(singles[key])
    for judge in sorted(games):
        table.pairs[judge] = pair_records(games[judge])
    return table


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table_lines(table: MtBenchTable) -> list[str]:
    """The tables as text, each headed by its judge and its scale."""
    lines: list[str] = []
    for (judge, scale), means in table.singles.items():
        turns = sorted({t for m in means for t in m.turn_means})
        origin = "MT-Bench judgments" if scale == MT_BENCH_SCALE else "kurabe's judge"
        lines.append(f"MT-Bench single-answer scores: {judge} ({origin}, {scale_label(scale)})")
        header = ["model", *(f"turn {t}" for t in turns), "overall", "judged", "failed"]
        rows = [
            [
                m.model,
                *(_num(m.turn_means.get(t)) for t in turns),
                _num(m.overall),
                str(m.judged),
                str(m.failed),
            ]
            for m in means
        ]
        lines.extend(_aligned(header, rows))
        lines.append("")
    for judge, records in table.pairs.items():
        lines.append(f"MT-Bench pairwise: {judge} (both position orders, as FastChat counts them)")
        header = ["model", "win", "loss", "tie", "win rate", "loss rate", "adjusted"]
        rows = [
            [
                r.model,
                str(r.win),
                str(r.loss),
                str(r.tie),
                f"{r.win_rate:.3f}",
                f"{r.loss_rate:.3f}",
                f"{r.win_rate_adjusted:.3f}",
            ]
            for r in records
        ]
        lines.extend(_aligned(header, rows))
        lines.append("")
    return lines


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return [line(header), *(line(row) for row in rows)]
