"""The leaderboard: per model, human scores, verdicts, Bradley–Terry strength and the checks.

Across every stored session (or those of one scenario, or the ratings of one rater):

- **rated replies** and **mean score**: each rater's newest score of each reply (every version
  of a reply is a real output of that model, so regenerated ones count too);
- **verdicts**: each rater's newest verdict per pane, counted per kind;
- **Bradley–Terry strength** from the pairwise battles derived from the per-turn picks
  (:func:`kurabe.analysis.battles.derive_battles`): maximum likelihood by the MM algorithm (Hunter
  2004), a tie counting half a win to each side, strengths normalised to a geometric mean of 1 and
  shown on the familiar Elo-like scale ``1000 + 400·log10(strength)``; 95% intervals from a
  bootstrap over battles (200 resamples, fixed seed) taking the 2.5th and 97.5th percentiles;
- a **win-rate matrix**: the share of battles the row model won against the column model (ties
  count half);
- the **automatic checks** averaged per model (Japanese share, polite share, characters per
  token, share of replies with any flag) and the speeds (tokens/s, characters/s).

Whose ratings: people's (kind ``human``) by default; ``kind="judge"`` takes the LLM judges'
instead — their 1–5 scores, and battles from their pairwise judgements (each pair judged in both
orders, a disagreement a tie; :mod:`kurabe.judge.runner`) — and ``kind="all"`` both. Naming a
``rater`` (``judge:<profile>`` for a judge) takes that rater's, whatever the kind. Verdicts and
picks are given by people only. The board carries the agreement figures of its sessions
(:mod:`kurabe.analysis.agreement`) when asked for them.

The maximum-likelihood strengths exist only when no group of models won (or tied) none of its
games against the rest; a model that won every game would otherwise go to infinity. When that
happens (often with few battles, and in bootstrap resamples) every pair that played gets a
virtual tie of weight :data:`FALLBACK_PRIOR`, which keeps the estimates finite and barely moves
them once there is real data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Any

from foundation.errors import KurabeError
from kurabe.analysis.battles import Battle, derive_battles
from kurabe.core.csvsafe import spreadsheet_safe
from kurabe.core.verdicts import VERDICTS
from kurabe.store.records import SessionRecord, newest_by
from kurabe.store.store import Store

BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 0
FALLBACK_PRIOR = 0.5
"""Weight of the virtual tie given to every pair that played when the MLE does not exist."""
SCALE = 400.0
BASE = 1000.0

Match = tuple[str, str, float]
"""(model a, model b, a's score): 1 a won, 0 b won, 0.5 a tie."""


def battle_score(winner: str) -> float:
    """model_a → 1, model_b → 0, either tie → 0.5."""
    if winner == "model_a":
        return 1.0
    if winner == "model_b":
        return 0.0
    return 0.5


def _tallies(
    matches: Iterable[Match],
) -> tuple[list[str], dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    wins: dict[tuple[str, str], float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    models: set[str] = set()
    for a, b, score in matches:
        if a == b:
            continue
        models.update((a, b))
        wins[(a, b)] += score
        wins[(b, a)] += 1.0 - score
        games[(a, b)] += 1.0
        games[(b, a)] += 1.0
    return sorted(models), wins, games


def mle_exists(matches: Iterable[Match]) -> bool:
    """True when every model can reach every other it is connected to through "won or tied
    against" links (the directed graph is strongly connected within each component)."""
    models, wins, games = _tallies(matches)
    beat: dict[str, set[str]] = defaultdict(set)
    for (a, b), score in wins.items():
        if score > 0:
            beat[a].add(b)

    def reach(start: str, edges: Mapping[str, set[str]]) -> set[str]:
        seen = {start}
        stack = [start]
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    connected: dict[str, set[str]] = defaultdict(set)
    for a, b in games:
        connected[a].add(b)
    return all(reach(model, beat) == reach(model, connected) for model in models)


def bradley_terry(
    matches: Sequence[Match],
    *,
    prior: float = 0.0,
    max_iterations: int = 10_000,
    tolerance: float = 1e-10,
) -> dict[str, float]:
    """Bradley–Terry strengths by the MM algorithm, normalised to a geometric mean of 1.

    P(a beats b) = s_a / (s_a + s_b). A tie counts half a win to each side. ``prior`` adds a
    virtual tie of that weight to every pair that played (see the module docstring).
    """
    models, wins, games = _tallies(matches)
    if not models:
        return {}
    if prior > 0:
        for pair in list(games):
            wins[pair] += prior / 2
            games[pair] += prior
    opponents: dict[str, list[tuple[str, float]]] = {m: [] for m in models}
    total_wins = dict.fromkeys(models, 0.0)
    for (a, b), count in games.items():
        opponents[a].append((b, count))
        total_wins[a] += wins[(a, b)]
    strength = dict.fromkeys(models, 1.0)
    for _ in range(max_iterations):
        updated = {}
        for model in models:
            denominator = sum(
                count / (strength[model] + strength[other]) for other, count in opponents[model]
            )
            value = total_wins[model] / denominator if denominator > 0 else strength[model]
            updated[model] = max(value, 1e-300)
        log_mean = fmean(math.log(v) for v in updated.values())
        scale = math.exp(log_mean)
        updated = {m: v / scale for m, v in updated.items()}
        change = max(abs(math.log(updated[m] / strength[m])) for m in models)
        strength = updated
        if change < tolerance:
            break
    return strength


def to_rating(strength: float) -> float:
    """Strength on the Elo-like scale: 1000 + 400·log10(strength)."""
    return BASE + SCALE * math.log10(strength)


def fit_ratings(matches: Sequence[Match]) -> dict[str, float]:
    """Ratings on the Elo-like scale, with the fallback prior where the MLE does not exist."""
    prior = 0.0 if mle_exists(matches) else FALLBACK_PRIOR
    return {m: to_rating(s) for m, s in bradley_terry(matches, prior=prior).items()}


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_intervals(
    matches: Sequence[Match], *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED
) -> dict[str, tuple[float, float]]:
    """95% intervals of each model's rating from ``rounds`` resamples of the battles."""
    if not matches or rounds <= 0:
        return {}
    rng = random.Random(seed)
    samples: dict[str, list[float]] = defaultdict(list)
    count = len(matches)
    for _ in range(rounds):
        resample = [matches[rng.randrange(count)] for _ in range(count)]
        for model, rating in fit_ratings(resample).items():
            samples[model].append(rating)
    return {
        model: (_percentile(values, 0.025), _percentile(values, 0.975))
        for model, values in samples.items()
    }


@dataclass
class ModelStats:
    model: str
    replies: int = 0
    """Completed replies."""
    rated_replies: int = 0
    mean_score: float | None = None
    scores: int = 0
    """Score ratings counted (one per reply and rater)."""
    verdicts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    battles: int = 0
    win_share: float | None = None
    """Share of its battles won, ties counting half."""
    rating: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    tokens_per_s: float | None = None
    chars_per_s: float | None = None
    japanese_share: float | None = None
    polite_share: float | None = None
    chars_per_token: float | None = None
    flagged_share: float | None = None
    """Share of completed replies with at least one automatic-check flag."""
    flag_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Leaderboard:
    models: list[ModelStats]
    win_rate: dict[str, dict[str, float | None]]
    """win_rate[a][b]: share of a-vs-b battles that a won (ties half); None if they never met."""
    battles: int
    sessions: int
    scenario: str | None = None
    rater: str | None = None
    kind: str = "human"
    """Whose ratings: ``human``, ``judge``, ``all``, or ``rater`` (the one named)."""
    run: int | None = None
    """The run whose sessions it ranks (``--run``), if one."""
    agreement: dict[str, Any] | None = None
    """:meth:`kurabe.analysis.agreement.AgreementReport.to_dict` over the same sessions, when
    asked."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "rater": self.rater,
            "kind": self.kind,
            "sessions": self.sessions,
            "battles": self.battles,
            "models": [asdict(m) for m in self.models],
            "win_rate": self.win_rate,
            "agreement": self.agreement,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def to_csv(self) -> str:
        """One row per model; the win-rate matrix as ``vs <model>`` columns."""
        names = [m.model for m in self.models]
        columns = [
            "model",
            "rating",
            "ci_low",
            "ci_high",
            "battles",
            "win_share",
            "rated_replies",
            "mean_score",
            *(f"verdict_{k}" for k in VERDICTS),
            "replies",
            "tokens_per_s",
            "chars_per_s",
            "japanese_share",
            "polite_share",
            "chars_per_token",
            "flagged_share",
            *(f"vs {n}" for n in names),
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([spreadsheet_safe(c) for c in columns])
        for m in self.models:
            row: list[Any] = [
                m.model,
                _r(m.rating, 1),
                _r(m.ci_low, 1),
                _r(m.ci_high, 1),
                m.battles,
                _r(m.win_share),
                m.rated_replies,
                _r(m.mean_score),
                *(m.verdicts.get(k, 0) for k in VERDICTS),
                m.replies,
                _r(m.tokens_per_s, 2),
                _r(m.chars_per_s, 2),
                _r(m.japanese_share),
                _r(m.polite_share),
                _r(m.chars_per_token),
                _r(m.flagged_share),
                *(_r(self.win_rate[m.model].get(n)) for n in names),
            ]
            writer.writerow([spreadsheet_safe(cell) for cell in row])
        return "\ufeff" + buffer.getvalue()


def _r(value: float | None, digits: int = 3) -> Any:
    return "" if value is None else round(value, digits)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


RATING_SCOPES = ("human", "judge", "all")


def judge_matches(record: SessionRecord, rater: str | None = None) -> list[Match]:
    """Battles from the judges' pairwise judgements (newest per turn, pair and judge)."""
    panes = {p.position: p.profile_name for p in record.panes}
    pane_of = {reply.id: reply.pane for reply in record.replies}
    pairwise = [
        j
        for j in record.judgements
        if j.mode == "pairwise"
        and j.ok
        and j.other_reply_id is not None
        and rater in (None, j.judge)
    ]
    matches: list[Match] = []
    newest = newest_by(pairwise, lambda j: (j.turn, j.reply_id, j.other_reply_id, j.judge))
    for judgement in newest.values():
        assert judgement.other_reply_id is not None
        model_a = panes[pane_of[judgement.reply_id]]
        model_b = panes[pane_of[judgement.other_reply_id]]
        if judgement.winner_reply_id is None:
            score = 0.5
        else:
            score = 1.0 if judgement.winner_reply_id == judgement.reply_id else 0.0
        matches.append((model_a, model_b, score))
    return matches


def build_leaderboard(
    store: Store,
    *,
    scenario: str | None = None,
    rater: str | None = None,
    kind: str | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
    run: int | None = None,
) -> Leaderboard:
    """Gather every session (of ``scenario``; of ``run``) and rating (of ``rater``; of
    ``kind``: ``human`` unless a rater is named) into a leaderboard."""
    if kind is not None and kind not in RATING_SCOPES:
        raise KurabeError(f"--kind is one of {', '.join(RATING_SCOPES)}, not {kind!r}")
    scope = kind or ("human" if rater is None else "all")
    kinds = {"human", "judge"} if scope == "all" else {scope}
    stats: dict[str, ModelStats] = {}
    scores: dict[str, list[int]] = defaultdict(list)
    rated: dict[str, set[int]] = defaultdict(set)
    completed: dict[str, list[Any]] = defaultdict(list)
    battles: list[Battle] = []
    judged: list[Match] = []
    session_ids = store.sessions.ids(scenario=scenario, run=run)

    def entry(model: str) -> ModelStats:
        if model not in stats:
            stats[model] = ModelStats(model=model)
        return stats[model]

    for session_id in session_ids:
        record = store.load_record(session_id)
        panes = {p.position: p for p in record.panes}
        for pane in record.panes:
            entry(pane.profile_name)
        latest_ratings = newest_by(
            (r for r in record.ratings if rater in (None, r.rater) and r.kind in kinds),
            lambda r: (r.reply_id, r.rater),
        )
        replies = {r.id: r for r in record.replies}
        for (reply_id, _), rating in latest_ratings.items():
            if rating.score is None:
                continue
            model = panes[replies[reply_id].pane].profile_name
            scores[model].append(rating.score)
            rated[model].add(reply_id)
        for reply in record.replies:
            if reply.completed:
                completed[panes[reply.pane].profile_name].append(reply)
        if "human" in kinds:
            latest_verdicts = newest_by(
                (v for v in record.verdicts if rater in (None, v.rater)),
                lambda v: (v.pane, v.rater),
            )
            for verdict in latest_verdicts.values():
                counts = entry(panes[verdict.pane].profile_name).verdicts
                counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
            battles.extend(b for b in derive_battles(record) if rater is None or b.judge == rater)
        if "judge" in kinds:
            judged.extend(judge_matches(record, rater))

    for model, item in stats.items():
        item.scores = len(scores[model])
        item.rated_replies = len(rated[model])
        item.mean_score = _mean(float(s) for s in scores[model])
        done = completed[model]
        item.replies = len(done)
        item.tokens_per_s = _mean(r.tokens_per_s for r in done)
        item.chars_per_s = _mean(r.chars_per_s for r in done)
        reports = [report for r in done if (report := r.check_report) is not None]
        item.japanese_share = _mean(report.japanese_share for report in reports)
        item.polite_share = _mean(report.polite_share for report in reports)
        item.chars_per_token = _mean(report.chars_per_token for report in reports)
        if reports:
            item.flagged_share = sum(1 for report in reports if report.flags) / len(reports)
            flag_counts: dict[str, int] = defaultdict(int)
            for report in reports:
                for code in report.flag_codes:
                    flag_counts[code] += 1
            item.flag_counts = dict(sorted(flag_counts.items()))

    matches: list[Match] = [(b.model_a, b.model_b, battle_score(b.winner)) for b in battles]
    matches += [m for m in judged if m[0] != m[1]]
    ratings = fit_ratings(matches) if matches else {}
    intervals = bootstrap_intervals(matches, rounds=rounds, seed=seed) if matches else {}
    points: dict[str, float] = defaultdict(float)
    played: dict[str, int] = defaultdict(int)
    pair_points: dict[tuple[str, str], float] = defaultdict(float)
    pair_games: dict[tuple[str, str], int] = defaultdict(int)
    for a, b, score in matches:
        points[a] += score
        points[b] += 1.0 - score
        played[a] += 1
        played[b] += 1
        pair_points[(a, b)] += score
        pair_points[(b, a)] += 1.0 - score
        pair_games[(a, b)] += 1
        pair_games[(b, a)] += 1
    for model, item in stats.items():
        item.battles = played[model]
        item.win_share = points[model] / played[model] if played[model] else None
        item.rating = ratings.get(model)
        if model in intervals:
            item.ci_low, item.ci_high = intervals[model]

    ordered = sorted(
        stats.values(),
        key=lambda m: (
            m.rating is None,
            -(m.rating or 0.0),
            m.mean_score is None,
            -(m.mean_score or 0.0),
            m.model,
        ),
    )
    names = [m.model for m in ordered]
    win_rate = {
        a: {
            b: (pair_points[(a, b)] / pair_games[(a, b)] if pair_games[(a, b)] else None)
            for b in names
            if b != a
        }
        for a in names
    }
    return Leaderboard(
        models=ordered,
        win_rate=win_rate,
        battles=len(matches),
        sessions=len(session_ids),
        scenario=scenario,
        rater=rater,
        kind=scope if kind is not None or rater is None else "rater",
        run=run,
    )
