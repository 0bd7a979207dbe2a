"""The leaderboard: per model, human scores, verdicts, Bradley–Terry strength and the checks.

Across every stored session (or those of one scenario, or the ratings of one rater):

- **rated replies** and **mean score**: each rater's newest score of each reply (every version
  of a reply is a real output of that model, so regenerated ones count too);
- **verdicts**: each rater's newest verdict per pane, counted per kind;
- **Bradley–Terry strength** from the pairwise battles derived from the per-turn picks
  (:func:`kurabe.analysis.battles.pick_pairs`, the rule of
  :func:`~kurabe.analysis.battles.derive_battles`): maximum likelihood by the MM algorithm (Hunter
  2004) on the battles' tallies per pair, a tie counting half a win to each side, strengths
  normalised to a geometric mean of 1 and shown on the familiar Elo-like scale
  ``1000 + 400·log10(strength)``; 95% intervals from a bootstrap over battles (200 resamples,
  fixed seed) taking the 2.5th and 97.5th percentiles (:func:`bootstrap_intervals`);
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

The sessions are read a few hundred at a time, a few set-based queries each, over only the
columns the board needs (never a reply's text), so 100,000 battles take seconds and little
memory; a fit costs the number of pairs that played, whatever the number of battles.

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
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import fmean
from typing import Any, NamedTuple

from foundation.errors import KurabeError
from kurabe.analysis.battles import pick_pairs
from kurabe.checks.report import CheckReport, load_check_report
from kurabe.core.csvsafe import spreadsheet_safe
from kurabe.core.verdicts import VERDICTS
from kurabe.store.database import from_json
from kurabe.store.records import SessionRecord, newest_by
from kurabe.store.store import Store

BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 0
FALLBACK_PRIOR = 0.5
"""Weight of the virtual tie given to every pair that played when the MLE does not exist."""
SCALE = 400.0
BASE = 1000.0

MIN_BATTLES_FOR_INTERVAL = 10
"""Below this many battles a model's interval is not the bootstrap's: resampling a handful of
battles draws the same few results again and again (one battle gives a "95% interval" of zero
width), which measures nothing. It is the honest, wide one of :func:`shown_interval` instead."""

Match = tuple[str, str, float]
"""(model a, model b, a's score): 1 a won, 0 b won, 0.5 a tie."""


def battle_score(winner: str) -> float:
    """model_a → 1, model_b → 0, either tie → 0.5."""
    if winner == "model_a":
        return 1.0
    if winner == "model_b":
        return 0.0
    return 0.5


WeightedMatch = tuple[str, str, float, float]
"""A :data:`Match` and how many times it happened (a weight; a bootstrap resample's count)."""

Tallies = tuple[list[str], dict[tuple[str, str], float], dict[tuple[str, str], float]]
"""(models, wins[(a, b)], games[(a, b)]): all a fit reads of the battles."""


def _tallies(matches: Iterable[Match]) -> Tallies:
    return _weighted_tallies((a, b, score, 1.0) for a, b, score in matches)


def _weighted_tallies(matches: Iterable[WeightedMatch]) -> Tallies:
    wins: dict[tuple[str, str], float] = defaultdict(float)
    games: dict[tuple[str, str], float] = defaultdict(float)
    models: set[str] = set()
    for a, b, score, weight in matches:
        if a == b:
            continue
        models.update((a, b))
        wins[(a, b)] += score * weight
        wins[(b, a)] += (1.0 - score) * weight
        games[(a, b)] += weight
        games[(b, a)] += weight
    return sorted(models), wins, games


def mle_exists(matches: Iterable[Match]) -> bool:
    """True when every model can reach every other it is connected to through "won or tied
    against" links (the directed graph is strongly connected within each component)."""
    return _mle_exists(_tallies(matches))


def _mle_exists(tallies: Tallies) -> bool:
    models, wins, games = tallies
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
    return _bradley_terry(
        _tallies(matches), prior=prior, max_iterations=max_iterations, tolerance=tolerance
    )


def _bradley_terry(
    tallies: Tallies, *, prior: float, max_iterations: int = 10_000, tolerance: float = 1e-10
) -> dict[str, float]:
    """:func:`bradley_terry` on the battles' tallies: each iteration costs the number of pairs
    that played, whatever the number of battles."""
    models, tallied_wins, tallied_games = tallies
    if not models:
        return {}
    wins = dict(tallied_wins)
    games = dict(tallied_games)
    if prior > 0:
        for pair in list(games):
            wins[pair] = wins.get(pair, 0.0) + prior / 2
            games[pair] += prior
    opponents: dict[str, list[tuple[str, float]]] = {m: [] for m in models}
    total_wins = dict.fromkeys(models, 0.0)
    for (a, b), count in games.items():
        opponents[a].append((b, count))
        total_wins[a] += wins.get((a, b), 0.0)
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
    return _fit_tallies(_tallies(matches))


def _fit_tallies(tallies: Tallies) -> dict[str, float]:
    prior = 0.0 if _mle_exists(tallies) else FALLBACK_PRIOR
    return {m: to_rating(s) for m, s in _bradley_terry(tallies, prior=prior).items()}


def interval_note(battles: int) -> str | None:
    """Why a model of ``battles`` battles shows a wide interval rather than the bootstrap's; None
    when it shows the bootstrap's. Every place that shows a Bradley–Terry interval (the
    leaderboard, the summary screen, the HTML) asks."""
    if battles >= MIN_BATTLES_FOR_INTERVAL or battles <= 0:
        return None
    return (
        f"under {MIN_BATTLES_FOR_INTERVAL} battles a bootstrap only repeats them: the interval "
        "shown is the win share's (Wilson, 95%), wide as it should be"
    )


def _wilson(share: float, battles: int, z: float = 1.96) -> tuple[float, float]:
    centre = (share + z * z / (2 * battles)) / (1 + z * z / battles)
    half = (z * math.sqrt(share * (1 - share) / battles + z * z / (4 * battles * battles))) / (
        1 + z * z / battles
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def shown_interval(
    rating: float, bootstrap: tuple[float, float] | None, *, share: float | None, battles: int
) -> tuple[float, float] | None:
    """The 95% interval to show for a model: the bootstrap's from
    :data:`MIN_BATTLES_FOR_INTERVAL` battles on; below that, the Wilson interval of its win
    share (ties half) put on the rating scale as against an average opponent (the win shares
    0.01 and 0.99 at most, ±400·log10(99)/2 ≈ ±400), never narrower than the rating itself."""
    if interval_note(battles) is None:
        return bootstrap
    if share is None:
        return None
    low_share, high_share = _wilson(share, battles)

    def on_scale(value: float) -> float:
        value = min(0.99, max(0.01, value))
        return BASE + SCALE / 2 * math.log10(value / (1 - value))

    return min(rating, on_scale(low_share)), max(rating, on_scale(high_share))


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
    """95% intervals of each model's rating from ``rounds`` resamples of the battles.

    A resample draws as many battles as there are, with replacement, and is fitted on how many
    of each distinct battle (same models, same result) it holds: a fit costs the number of pairs
    that played, whatever the number of battles. Up to :data:`DRAWN_ONE_BY_ONE` battles the
    resample is drawn battle by battle (``random.Random(seed)``, the draws kurabe has always
    made, so small boards keep their intervals exactly); above it, as one multinomial draw of
    the counts of the distinct battles (numpy's generator seeded with ``seed``), which costs the
    number of distinct battles instead of the number of battles: the same distribution of
    resamples, other draws.
    """
    if not matches or rounds <= 0:
        return {}
    distinct = Counter(matches)
    kinds = list(distinct)
    samples: dict[str, list[float]] = defaultdict(list)
    for counts in _resample_counts(matches, kinds, distinct, rounds, seed):
        resample = [(a, b, score, float(n)) for (a, b, score), n in counts if n]
        for model, rating in _fit_tallies(_weighted_tallies(resample)).items():
            samples[model].append(rating)
    return {
        model: (_percentile(values, 0.025), _percentile(values, 0.975))
        for model, values in samples.items()
    }


DRAWN_ONE_BY_ONE = 2_000
"""Up to this many battles, :func:`bootstrap_intervals` draws each resample battle by battle."""


def _resample_counts(
    matches: Sequence[Match],
    kinds: Sequence[Match],
    distinct: Mapping[Match, int],
    rounds: int,
    seed: int,
) -> Iterator[list[tuple[Match, int]]]:
    """Each resample as (distinct battle, how many times it was drawn)."""
    count = len(matches)
    if count <= DRAWN_ONE_BY_ONE:
        rng = random.Random(seed)
        for _ in range(rounds):
            drawn = Counter(matches[rng.randrange(count)] for _ in range(count))
            yield list(drawn.items())
        return
    import numpy as np

    shares = np.array([distinct[kind] for kind in kinds], dtype=float) / count
    for counts in np.random.default_rng(seed).multinomial(count, shares, size=rounds).tolist():
        yield list(zip(kinds, counts, strict=True))


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


SESSIONS_PER_READ = 500
"""How many sessions' rows :func:`build_leaderboard` reads at a time (a few queries each)."""


class _Row(NamedTuple):
    """A rating, verdict or pick as the leaderboard reads it: its id (newest wins), the slot it
    is the newest of, and what it says."""

    id: int
    slot: tuple[Any, ...]
    value: tuple[Any, ...]


class _CheckFigures(NamedTuple):
    """The figures of a reply's checks the leaderboard averages (not the whole report)."""

    japanese_share: float | None
    polite_share: float | None
    chars_per_token: float | None
    flag_codes: tuple[str, ...]

    @classmethod
    def of(cls, report: CheckReport | None) -> _CheckFigures | None:
        if report is None:
            return None
        return cls(
            report.japanese_share, report.polite_share, report.chars_per_token, report.flag_codes
        )


class _Completed(NamedTuple):
    """A completed reply as the leaderboard keeps it: its speeds and its checks' figures."""

    tokens_per_s: float | None
    chars_per_s: float | None
    checks: _CheckFigures | None


@dataclass
class _Gathered:
    """What the leaderboard reads of its sessions, by model: nothing else (no reply's text)."""

    models: set[str] = field(default_factory=set)
    scores: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    rated: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    completed: dict[str, list[_Completed]] = field(default_factory=lambda: defaultdict(list))
    verdicts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    battles: list[Match] = field(default_factory=list)
    judged: list[Match] = field(default_factory=list)


def _gather(
    store: Store, session_ids: Sequence[int], rater: str | None, kinds: set[str], into: _Gathered
) -> None:
    """Read the rows of ``session_ids`` the leaderboard needs, a few set-based queries over
    only the columns it uses, and add them to ``into`` (sessions in id order, as
    :func:`~kurabe.analysis.battles.derive_battles` would see them one by one).

    Each query starts from the batch's session ids and reaches the rows through the parents'
    indexes. None has an ``ORDER BY``: the newest rating, verdict or pick is the one of highest
    id in whatever order they come, and every figure here is a count or an exact mean; ordering
    by a child's id invited SQLite to scan that whole table in id order for every batch."""
    if not session_ids:
        return
    database = store.database
    among = "(" + ", ".join("?" * len(session_ids)) + ")"
    ids = tuple(session_ids)
    by_rater = "" if rater is None else " AND {column} = ?"
    rater_param: tuple[Any, ...] = () if rater is None else (rater,)
    kind_list = sorted(kinds)
    with database.snapshot():
        pane_rows = database.query(
            f"SELECT id, session_id, position, profile_name FROM panes WHERE session_id IN {among}",
            ids,
        )
        reply_rows = database.query(
            "SELECT r.pane_id, t.session_id, t.idx, r.status, r.tokens_per_s, r.chars_per_s,"
            " CASE WHEN r.status = 'complete' THEN r.checks_json END AS checks_json"
            " FROM replies r JOIN turns t ON t.id = r.turn_id"
            f" WHERE t.session_id IN {among}",
            ids,
        )
        rating_rows = database.query(
            "SELECT g.id, g.reply_id, g.rater, g.score, r.pane_id FROM ratings g"
            " JOIN replies r ON r.id = g.reply_id JOIN turns t ON t.id = r.turn_id"
            f" WHERE t.session_id IN {among}"
            f" AND g.kind IN ({', '.join('?' * len(kind_list))})"
            + by_rater.format(column="g.rater"),
            (*ids, *kind_list, *rater_param),
        )
        verdict_rows = pick_rows = []
        if "human" in kinds:
            verdict_rows = database.query(
                "SELECT v.id, v.pane_id, v.rater, v.verdict FROM verdicts v"
                f" JOIN panes p ON p.id = v.pane_id WHERE p.session_id IN {among}"
                + by_rater.format(column="v.rater"),
                (*ids, *rater_param),
            )
            pick_rows = database.query(
                "SELECT k.id, t.session_id, t.idx, k.winner_pane_id, k.outcome, k.rater"
                f" FROM picks k JOIN turns t ON t.id = k.turn_id WHERE t.session_id IN {among}"
                + by_rater.format(column="k.rater"),
                (*ids, *rater_param),
            )
        judged_ids = []
        if "judge" in kinds:
            judged_ids = [
                int(row[0])
                for row in database.query(
                    f"SELECT DISTINCT session_id FROM judge_runs WHERE session_id IN {among}"
                    " ORDER BY session_id",
                    ids,
                )
            ]

    model_of: dict[int, str] = {}
    position_of: dict[int, int] = {}
    panes_of: dict[int, dict[int, str]] = defaultdict(dict)
    """session → pane position → model."""
    for row in pane_rows:
        model_of[row["id"]] = row["profile_name"]
        position_of[row["id"]] = row["position"]
        panes_of[row["session_id"]][row["position"]] = row["profile_name"]
        into.models.add(row["profile_name"])
    present: dict[tuple[int, int], set[int]] = defaultdict(set)
    """(session, turn index) → positions of the panes with a reply at that turn."""
    for row in reply_rows:
        present[(row["session_id"], row["idx"])].add(position_of[row["pane_id"]])
        if row["status"] == "complete":
            report = load_check_report(from_json(row["checks_json"], {}))
            into.completed[model_of[row["pane_id"]]].append(
                _Completed(row["tokens_per_s"], row["chars_per_s"], _CheckFigures.of(report))
            )
    ratings = newest_by(
        (
            _Row(r["id"], (r["reply_id"], r["rater"]), (r["score"], r["pane_id"]))
            for r in rating_rows
        ),
        lambda row: row.slot,
    )
    for (reply_id, _), rating in ratings.items():
        score, pane_id = rating.value
        if score is None:
            continue
        into.scores[model_of[pane_id]].append(score)
        into.rated[model_of[pane_id]].add(reply_id)
    verdicts = newest_by(
        (_Row(v["id"], (v["pane_id"], v["rater"]), (v["verdict"],)) for v in verdict_rows),
        lambda row: row.slot,
    )
    for (pane_id, _), verdict in verdicts.items():
        into.verdicts[(model_of[pane_id], verdict.value[0])] += 1
    picks = newest_by(
        (
            _Row(
                k["id"],
                (k["session_id"], k["idx"], k["rater"]),
                (k["winner_pane_id"], k["outcome"]),
            )
            for k in pick_rows
        ),
        lambda row: row.slot,
    )
    for (session_id, turn, _), pick in sorted(picks.items(), key=lambda item: item[0]):
        winner_pane_id, outcome = pick.value
        winner = None if winner_pane_id is None else position_of.get(winner_pane_id)
        at_turn = sorted(present.get((session_id, turn), ()))
        if len(at_turn) < 2:
            continue
        names = panes_of[session_id]
        for a, b, result in pick_pairs(outcome, winner, at_turn):
            if names[a] != names[b]:
                into.battles.append((names[a], names[b], battle_score(result)))
    for session_id in judged_ids:
        into.judged.extend(judge_matches(store.load_record(session_id), rater))


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
    session_ids = store.sessions.ids(scenario=scenario, run=run)
    gathered = _Gathered()
    for start in range(0, len(session_ids), SESSIONS_PER_READ):
        _gather(store, session_ids[start : start + SESSIONS_PER_READ], rater, kinds, gathered)

    def entry(model: str) -> ModelStats:
        if model not in stats:
            stats[model] = ModelStats(model=model)
        return stats[model]

    for model in gathered.models:
        entry(model)
    for (model, verdict), count in gathered.verdicts.items():
        counts = entry(model).verdicts
        counts[verdict] = counts.get(verdict, 0) + count
    for model, item in stats.items():
        scores = gathered.scores[model]
        item.scores = len(scores)
        item.rated_replies = len(gathered.rated[model])
        item.mean_score = _mean(float(s) for s in scores)
        done = gathered.completed[model]
        item.replies = len(done)
        item.tokens_per_s = _mean(reply.tokens_per_s for reply in done)
        item.chars_per_s = _mean(reply.chars_per_s for reply in done)
        reports = [reply.checks for reply in done if reply.checks is not None]
        item.japanese_share = _mean(report.japanese_share for report in reports)
        item.polite_share = _mean(report.polite_share for report in reports)
        item.chars_per_token = _mean(report.chars_per_token for report in reports)
        if reports:
            item.flagged_share = sum(1 for report in reports if report.flag_codes) / len(reports)
            flag_counts: dict[str, int] = defaultdict(int)
            for report in reports:
                for code in report.flag_codes:
                    flag_counts[code] += 1
            item.flag_counts = dict(sorted(flag_counts.items()))

    matches = gathered.battles + [m for m in gathered.judged if m[0] != m[1]]
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
        if item.rating is not None:
            shown = shown_interval(
                item.rating, intervals.get(model), share=item.win_share, battles=played[model]
            )
            if shown is not None:
                item.ci_low, item.ci_high = shown

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
