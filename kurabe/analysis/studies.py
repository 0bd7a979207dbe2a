"""A rating study's figures: progress, agreement, disagreements, position bias, battles.

Over one study (:mod:`kurabe.store.studies`), each rater's newest score of each reply and newest
pick of each item:

- **progress** per rater (items done, held, skipped, still open to them) and per item (raters
  done of the ``per_item`` it needs);
- **agreement on scores**: Krippendorff's alpha, ordinal (:func:`kurabe.analysis.agreement.
  ordinal_alpha`), raters × replies, missing where a rater did not score a reply;
- **agreement on the best pane**: Krippendorff's alpha, nominal, raters × items (the pane
  picked, or "tie", or "all bad"), and the share of rater pairs who picked alike;
- both with 95% bootstrap intervals over the units (:func:`kurabe.analysis.agreement.
  bootstrap_interval`: none below its minimum of units);
- the **items where raters disagree most**: the widest spread of scores of a reply, plus the
  share of rater pairs who picked differently;
- **position bias**: how often the pane shown on the left was picked, against the share chance
  gives (one pane in N: 1/N), with a two-sided binomial test (scipy's ``binomtest``);
- the **battles** of the study's picks (each with its rater) and the model of every reply, for the
  leaderboard by study (:func:`study_leaderboard`) and the exports.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Any

from kurabe.analysis.agreement import bootstrap_interval, ordinal_alpha
from kurabe.analysis.leaderboard import (
    Leaderboard,
    Match,
    ModelStats,
    bootstrap_intervals,
    fit_ratings,
    interval_note,
)
from kurabe.core.blind import study_names_hidden
from kurabe.store.records import newest_by
from kurabe.store.store import Store
from kurabe.store.studies import StudyItem, StudyPick, StudyRow, StudyScore

TIE = "tie"
ALL_BAD = "all bad"
DISAGREEMENTS_SHOWN = 5
ITEMS_PER_ROW = 20
"""Items per row of the per-item progress (a long study wraps into several rows)."""


@dataclass
class RaterProgress:
    rater: str
    done: int = 0
    holding: int = 0
    skipped: int = 0
    open_to_them: int = 0


@dataclass
class ItemProgress:
    idx: int
    session_id: int
    turn: int
    done: int = 0
    holding: int = 0
    skipped: int = 0


@dataclass
class Disagreement:
    idx: int
    session_id: int
    turn: int
    score_spread: int
    """The widest gap between two raters' scores of one reply of the item."""
    pick_split: float
    """The share of rater pairs who picked a different best pane."""


@dataclass
class PositionBias:
    picks: int = 0
    """Picks of one pane (ties and "all bad" say nothing about position)."""
    left: int = 0
    chance: float | None = None
    """The share of left picks chance gives (the mean of 1/N over the picks)."""
    p_value: float | None = None


@dataclass
class StudyStatus:
    study: str
    status: str
    per_item: int
    items: int
    blind: bool
    reveal: str
    source: str
    raters: list[RaterProgress] = field(default_factory=list)
    item_progress: list[ItemProgress] = field(default_factory=list)
    score_units: int = 0
    score_alpha: float | None = None
    score_alpha_ci: tuple[float, float] | None = None
    pick_units: int = 0
    pick_alpha: float | None = None
    pick_alpha_ci: tuple[float, float] | None = None
    pick_pair_agreement: float | None = None
    disagreements: list[Disagreement] = field(default_factory=list)
    position: PositionBias = field(default_factory=PositionBias)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StudyData:
    """One study read back: its items, claims, and the newest marks of each rater."""

    study: StudyRow
    items: list[StudyItem]
    scores: dict[tuple[int, str, int], StudyScore]
    """(item, rater, reply) → the newest score row."""
    picks: dict[tuple[int, str], StudyPick]
    """(item, rater) → the newest pick."""
    pane_counts: dict[int, int]
    """item → how many panes it shows."""
    models: dict[int, str]
    """reply → the model (profile name) that wrote it."""
    pane_positions: dict[int, int]
    """reply → the position of its pane in its session."""


def load_study(store: Store, name: str) -> StudyData:
    study = store.studies.get(name)
    with store.database.snapshot():
        items = store.studies.items(study.id)
        scores = store.studies.scores(study.id)
        picks = store.studies.picks(study.id)
        panes = store.database.query(
            "SELECT i.id AS item_id, COUNT(p.id) AS n FROM study_items i"
            " JOIN turns t ON t.id = i.turn_id JOIN panes p ON p.session_id = t.session_id"
            " WHERE i.study_id = ? GROUP BY i.id",
            (study.id,),
        )
        models = store.database.query(
            "SELECT r.id, p.profile_name, p.position FROM replies r"
            " JOIN panes p ON p.id = r.pane_id JOIN study_items i ON i.turn_id = r.turn_id"
            " WHERE i.study_id = ?",
            (study.id,),
        )
    return StudyData(
        study=study,
        items=items,
        scores=newest_by(
            (s for s in scores if s.score is not None), lambda s: (s.item_id, s.rater, s.reply_id)
        ),
        picks=newest_by(picks, lambda p: (p.item_id, p.rater)),
        pane_counts={int(r["item_id"]): int(r["n"]) for r in panes},
        models={int(r["id"]): str(r["profile_name"]) for r in models},
        pane_positions={int(r["id"]): int(r["position"]) for r in models},
    )


def _pick_value(pick: StudyPick, pane_positions: dict[int, int]) -> str:
    """The category a pick counts as: the session's pane (the same pane is the same model
    throughout a session), a tie, or all bad."""
    if pick.outcome == "pane" and pick.winner_reply_id is not None:
        return f"pane {pane_positions.get(pick.winner_reply_id)}"
    return TIE if pick.outcome == "tie" else ALL_BAD


def nominal_alpha(reliability: Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha, nominal, of a raters × units matrix (NaN where missing)."""
    import krippendorff
    import numpy as np

    data = np.array(reliability, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    if (np.sum(~np.isnan(data), axis=0) >= 2).sum() < 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        except (ValueError, ZeroDivisionError):
            return None
    number = float(value)
    return None if math.isnan(number) else number


def _matrix(
    table: dict[Any, dict[str, float]], raters: Sequence[str]
) -> tuple[list[Any], list[list[float]]]:
    """Units with two or more values, and the raters × units matrix of them."""
    units = [unit for unit, values in table.items() if len(values) >= 2]
    matrix = [[table[unit].get(rater, math.nan) for unit in units] for rater in raters]
    return units, matrix


def _columns(matrix: list[list[float]], indices: Sequence[int]) -> list[list[float]]:
    return [[row[i] for i in indices] for row in matrix]


def _pair_agreement(table: dict[int, dict[str, float]], units: Sequence[int]) -> float | None:
    same = pairs = 0
    for unit in units:
        values = list(table[unit].values())
        for i, first in enumerate(values):
            for second in values[i + 1 :]:
                pairs += 1
                same += first == second
    return same / pairs if pairs else None


def binomial_p(successes: int, trials: int, chance: float) -> float | None:
    """Two-sided exact binomial test of ``successes`` in ``trials`` against ``chance``."""
    if trials == 0:
        return None
    from scipy.stats import binomtest

    return float(binomtest(successes, trials, chance).pvalue)


def study_status(store: Store, name: str, *, rounds: int = 1000, seed: int = 0) -> StudyStatus:
    """Everything ``kurabe study status`` shows."""
    data = load_study(store, name)
    study = data.study
    claims = store.studies.claims(study.id)
    skips = store.studies.skips(study.id)
    raters = store.studies.raters(study.id)
    status = StudyStatus(
        study=study.name,
        status=study.status,
        per_item=study.per_item,
        items=len(data.items),
        blind=study.blind,
        reveal=study.reveal,
        source=study.source,
    )
    item_of = {item.id: item for item in data.items}
    progress = {item.id: ItemProgress(item.idx, item.session_id, item.turn) for item in data.items}
    by_rater = {rater: RaterProgress(rater) for rater in raters}
    for claim in claims:
        rater_row = by_rater.setdefault(claim.rater, RaterProgress(claim.rater))
        if claim.done:
            rater_row.done += 1
            progress[claim.item_id].done += 1
        else:
            rater_row.holding += 1
            progress[claim.item_id].holding += 1
    for skip in newest_by(skips, lambda s: (s.item_id, s.rater)).values():
        by_rater.setdefault(skip.rater, RaterProgress(skip.rater)).skipped += 1
        progress[skip.item_id].skipped += 1
    for rater_row in by_rater.values():
        rater_row.open_to_them = store.studies.remaining_for(study, rater_row.rater)
    status.raters = list(by_rater.values())
    status.item_progress = [progress[item.id] for item in data.items]
    rater_names = sorted(by_rater)

    score_table: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    for (item_id, rater, reply_id), score in data.scores.items():
        assert score.score is not None
        score_table[(item_id, reply_id)][rater] = float(score.score)
    score_units, score_matrix = _matrix(score_table, rater_names)
    status.score_units = len(score_units)
    if score_units:
        status.score_alpha = ordinal_alpha(score_matrix)
        status.score_alpha_ci = bootstrap_interval(
            len(score_units),
            lambda idx: ordinal_alpha(_columns(score_matrix, idx)),
            rounds=rounds,
            seed=seed,
        )

    codes: dict[str, float] = {}
    pick_table: dict[int, dict[str, float]] = defaultdict(dict)
    for (item_id, rater), pick in data.picks.items():
        value = _pick_value(pick, data.pane_positions)
        pick_table[item_id][rater] = codes.setdefault(value, float(len(codes)))
    pick_units, pick_matrix = _matrix(pick_table, rater_names)
    status.pick_units = len(pick_units)
    if pick_units:
        status.pick_alpha = nominal_alpha(pick_matrix)
        status.pick_alpha_ci = bootstrap_interval(
            len(pick_units),
            lambda idx: nominal_alpha(_columns(pick_matrix, idx)),
            rounds=rounds,
            seed=seed,
        )
        status.pick_pair_agreement = _pair_agreement(pick_table, pick_units)

    spreads: dict[int, int] = defaultdict(int)
    for (item_id, _), values in score_table.items():
        if len(values) >= 2:
            gap = int(max(values.values()) - min(values.values()))
            spreads[item_id] = max(spreads[item_id], gap)
    splits = {
        unit: 1.0 - (_pair_agreement(pick_table, [unit]) or 0.0)
        for unit in pick_table
        if len(pick_table[unit]) >= 2
    }
    ranked = sorted(
        set(spreads) | set(splits),
        key=lambda i: (-(spreads.get(i, 0) / 4 + splits.get(i, 0.0)), item_of[i].idx),
    )
    status.disagreements = [
        Disagreement(
            item_of[i].idx,
            item_of[i].session_id,
            item_of[i].turn,
            spreads.get(i, 0),
            splits.get(i, 0.0),
        )
        for i in ranked
        if spreads.get(i, 0) > 0 or splits.get(i, 0.0) > 0
    ][:DISAGREEMENTS_SHOWN]

    pane_picks = [p for p in data.picks.values() if p.outcome == "pane"]
    bias = PositionBias(picks=len(pane_picks))
    bias.left = sum(1 for p in pane_picks if p.winner_shown_position == 0)
    if pane_picks:
        bias.chance = fmean(1 / max(1, data.pane_counts.get(p.item_id, 2)) for p in pane_picks)
        bias.p_value = binomial_p(bias.left, bias.picks, bias.chance)
    status.position = bias
    return status


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ci(interval: tuple[float, float] | None, units: int) -> str:
    if interval is None:
        return f" (no interval: {units} units, too few to resample)" if units else ""
    return f" [95% CI {interval[0]:.2f}–{interval[1]:.2f}]"


def status_lines(status: StudyStatus) -> list[str]:
    """The status as plain lines (the terminal)."""
    done = sum(item.done for item in status.item_progress)
    needed = status.items * status.per_item
    lines = [
        f"study {status.study} — {status.status}, {status.items} items × {status.per_item} raters"
        f" ({'blind' if status.blind else 'not blind'}, names shown once "
        f"{'the study is closed' if status.reveal == 'closed' else 'a rater has finished'})",
        *([f"items from {status.source}"] if status.source else []),
        f"ratings done {done} / {needed}",
        "",
        "raters            done  held  skipped  still open to them",
    ]
    for rater in status.raters:
        lines.append(
            f"  {rater.rater:<15} {rater.done:>4}  {rater.holding:>4}  {rater.skipped:>7}"
            f"  {rater.open_to_them:>6}"
        )
    held = any(i.holding for i in status.item_progress)
    skipped = any(i.skipped for i in status.item_progress)
    for start in range(0, len(status.item_progress), ITEMS_PER_ROW):
        row = status.item_progress[start : start + ITEMS_PER_ROW]
        lines += ["", "item     " + " ".join(f"{i.idx:>3}" for i in row)]
        lines.append("done     " + " ".join(f"{i.done:>3}" for i in row))
        if held:
            lines.append("held     " + " ".join(f"{i.holding:>3}" for i in row))
        if skipped:
            lines.append("skipped  " + " ".join(f"{i.skipped:>3}" for i in row))
    lines += [
        "",
        f"agreement on scores ({status.score_units} replies scored by two or more): "
        f"Krippendorff's alpha (ordinal) {_fmt(status.score_alpha)}"
        + _ci(status.score_alpha_ci, status.score_units),
        f"agreement on the best pane ({status.pick_units} items picked by two or more): "
        f"Krippendorff's alpha (nominal) {_fmt(status.pick_alpha)}"
        + _ci(status.pick_alpha_ci, status.pick_units)
        + (
            ""
            if status.pick_pair_agreement is None
            else f", same pick {status.pick_pair_agreement * 100:.0f}% of rater pairs"
        ),
    ]
    bias = status.position
    if bias.picks and bias.chance is not None:
        lines.append(
            f"position bias: the left pane was picked {bias.left} of {bias.picks} times "
            f"({bias.left / bias.picks * 100:.0f}%; chance {bias.chance * 100:.0f}%), "
            f"binomial p = {bias.p_value:.3g}"
            + (" — the left pane is favoured" if _favoured(bias) else "")
        )
    else:
        lines.append("position bias: n/a (no pane picked yet)")
    if status.disagreements:
        lines += ["", "raters disagree most on (for a second look):"]
        for item in status.disagreements:
            lines.append(
                f"  item {item.idx} (session {item.session_id}, turn {item.turn + 1}): scores "
                f"apart by up to {item.score_spread}, picks split "
                f"{item.pick_split * 100:.0f}% of pairs"
            )
    return lines


def _favoured(bias: PositionBias) -> bool:
    return (
        bias.p_value is not None
        and bias.chance is not None
        and bias.p_value < 0.05
        and bias.left / bias.picks > bias.chance
    )


# -- battles and the leaderboard by study --------------------------------------------------------


@dataclass(frozen=True)
class StudyBattle:
    item: int
    rater: str
    model_a: str
    model_b: str
    winner: str
    """``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``."""
    shown_a: int | None
    """Where the rater was shown model a's reply (0 = left), when known."""


def study_battles(store: Store, name: str) -> list[StudyBattle]:
    """Pairwise battles from each rater's newest pick of each item, with the rater."""
    data = load_study(store, name)
    replies: dict[int, list[int]] = defaultdict(list)
    for row in store.database.query(
        "SELECT i.id AS item_id, r.id AS reply_id FROM study_items i"
        " JOIN replies r ON r.turn_id = i.turn_id WHERE i.study_id = ?"
        " AND r.version = (SELECT MAX(version) FROM replies x WHERE x.turn_id = r.turn_id"
        " AND x.pane_id = r.pane_id) ORDER BY r.pane_id",
        (data.study.id,),
    ):
        replies[int(row["item_id"])].append(int(row["reply_id"]))
    idx = {item.id: item.idx for item in data.items}
    battles = []
    for (item_id, rater), pick in sorted(data.picks.items(), key=lambda kv: kv[1].id):
        shown = store.studies.claim_of(item_id, rater)
        order = list(shown.positions) if shown else []
        ids = replies[item_id]
        for i, first in enumerate(ids):
            for second in ids[i + 1 :]:
                a, b = data.models[first], data.models[second]
                if pick.outcome == "pane":
                    if pick.winner_reply_id not in (first, second):
                        continue
                    winner = "model_a" if pick.winner_reply_id == first else "model_b"
                else:
                    winner = "tie" if pick.outcome == "tie" else "tie (bothbad)"
                battles.append(
                    StudyBattle(
                        idx[item_id], rater, a, b, winner, order.index(i) if order else None
                    )
                )
    return battles


def study_leaderboard(store: Store, name: str, *, rounds: int = 200, seed: int = 0) -> Leaderboard:
    """Bradley–Terry ratings with intervals (where there are battles enough) and mean scores of
    one study's models."""
    data = load_study(store, name)
    battles = study_battles(store, name)
    matches: list[Match] = [
        (
            b.model_a,
            b.model_b,
            1.0 if b.winner == "model_a" else 0.0 if b.winner == "model_b" else 0.5,
        )
        for b in battles
        if b.model_a != b.model_b
    ]
    ratings = fit_ratings(matches) if matches else {}
    intervals = bootstrap_intervals(matches, rounds=rounds, seed=seed) if matches else {}
    stats: dict[str, ModelStats] = {
        m: ModelStats(model=m) for m in sorted(set(data.models.values()))
    }
    scores: dict[str, list[int]] = defaultdict(list)
    rated: dict[str, set[int]] = defaultdict(set)
    for (_, _, reply_id), score in data.scores.items():
        assert score.score is not None
        scores[data.models[reply_id]].append(score.score)
        rated[data.models[reply_id]].add(reply_id)
    points: dict[str, float] = defaultdict(float)
    played: dict[str, int] = defaultdict(int)
    pair_points: dict[tuple[str, str], float] = defaultdict(float)
    pair_games: dict[tuple[str, str], int] = defaultdict(int)
    for a, b, result in matches:
        points[a] += result
        points[b] += 1 - result
        played[a] += 1
        played[b] += 1
        pair_points[(a, b)] += result
        pair_points[(b, a)] += 1 - result
        pair_games[(a, b)] += 1
        pair_games[(b, a)] += 1
    for model, item in stats.items():
        item.scores = len(scores[model])
        item.rated_replies = len(rated[model])
        item.mean_score = fmean(scores[model]) if scores[model] else None
        item.battles = played[model]
        item.win_share = points[model] / played[model] if played[model] else None
        item.rating = ratings.get(model)
        if model in intervals and interval_note(played[model]) is None:
            item.ci_low, item.ci_high = intervals[model]
    ordered = sorted(stats.values(), key=lambda m: (m.rating is None, -(m.rating or 0.0), m.model))
    return Leaderboard(
        models=ordered,
        win_rate={
            a.model: {
                b.model: pair_points[(a.model, b.model)] / pair_games[(a.model, b.model)]
                if pair_games[(a.model, b.model)]
                else None
                for b in ordered
                if b is not a
            }
            for a in ordered
        },
        battles=len(matches),
        sessions=len({item.session_id for item in data.items}),
        kind="human",
    )


def rater_sees_names(store: Store, study: StudyRow, rater: str) -> bool:
    """Whether this rater may see the model names of this study now (the blind rule)."""
    finished = (
        store.studies.open_claim(study.id, rater) is None
        and store.studies.remaining_for(study, rater) == 0
    )
    return not study_names_hidden(
        blind=study.blind,
        closed=study.closed,
        reveal_when_finished=study.reveal == "finished",
        rater_finished=finished,
    )
