"""Agreement figures: how far an LLM judge can be trusted, and how far people agree.

Over the stored sessions (all, one scenario's, or one session):

**Human vs judge, scores.** For each judge rater (``judge:<profile>``) the pairs (a person's
newest score of a reply, the judge's newest score of the same reply), one pair per person who
scored it:

- **weighted Cohen's kappa**, quadratic weights over the labels 1–5 (scikit-learn's
  ``cohen_kappa_score``): agreement beyond chance where a near miss costs less than a far one;
- **Spearman's rho** (scipy's ``spearmanr``): do the two rank the replies alike;
- the share of exact matches, for reading along.

**Human vs judge, picks.** A person's pick of the best pane of a turn gives, for each pair of
panes, "first wins", "second wins" or "tie" (a tie and "all bad" both count as a tie), as
:func:`kurabe.analysis.battles.derive_battles` derives battles; the judge's pairwise judgement of
the same turn and pair gives the same three outcomes (its two orders already reconciled). The
**agreement rate** is the share of equal outcomes; MT-Bench also reports it **without ties**
(pairs where neither side said tie), given here too.

**Human vs human.** **Krippendorff's alpha**, ordinal (the ``krippendorff`` package), over the
people who scored the same replies: raters × replies, missing where someone did not score; replies
scored by one person only do not count.

**Intervals.** 95% bootstrap percentile intervals (:data:`BOOTSTRAP_ROUNDS` resamples, fixed
seed): of the pairs for kappa, rho and the agreement rate, of the replies (the units) for alpha.
None when there are fewer than :data:`MIN_FOR_INTERVAL` pairs or units, or when fewer than half
the resamples give a defined figure (a resample where everyone gave the same score has no
kappa). A figure that is not defined (no variation at all, too few pairs) is None and reads
"n/a" — never 0 or 1 by convention.

The statistics libraries are imported on first use, so ``kurabe --help`` stays fast.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kurabe.analysis.battles import derive_battles
from kurabe.core.scores import SCORES
from kurabe.store.records import SessionRecord, newest_by
from kurabe.store.store import Store

BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0
MIN_FOR_INTERVAL = 5
PickOutcome = str
"""``first`` (the pane with the lower position won), ``second`` or ``tie``."""


# -- the statistics (library calls, None where undefined) ---------------------------------------


def _defined(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def weighted_kappa(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Cohen's kappa with quadratic weights over the scores 1–5; None when undefined."""
    if len(first) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(
            list(first), list(second), labels=list(SCORES), weights="quadratic"
        )
    return _defined(value)


def spearman(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Spearman's rank correlation; None when undefined (fewer than 2 pairs, a constant side)."""
    if len(first) < 2:
        return None
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(list(first), list(second))
    return _defined(result.statistic)


def ordinal_alpha(reliability: Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha, ordinal, of a raters × units matrix (NaN where missing)."""
    import krippendorff
    import numpy as np

    data = np.array(reliability, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    pairable = (np.sum(~np.isnan(data), axis=0) >= 2).sum()
    if pairable < 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = krippendorff.alpha(
                reliability_data=data,
                level_of_measurement="ordinal",
                value_domain=list(SCORES),
            )
        except (ValueError, ZeroDivisionError):
            return None
    return _defined(value)


def agreement_rate(first: Sequence[str], second: Sequence[str]) -> float | None:
    if not first:
        return None
    return sum(1 for a, b in zip(first, second, strict=True) if a == b) / len(first)


def bootstrap_interval(
    count: int,
    statistic: Callable[[Sequence[int]], float | None],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of ``statistic(indices)`` over ``rounds`` resamples of
    ``count`` items with replacement; see the module docstring for when it is None."""
    if count < MIN_FOR_INTERVAL or rounds <= 0:
        return None
    import numpy as np

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        indices = rng.integers(0, count, size=count).tolist()
        value = statistic(indices)
        if value is not None:
            values.append(value)
    if len(values) < rounds / 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


# -- the report ---------------------------------------------------------------------------------


@dataclass
class ScoreAgreement:
    """Human vs one judge on 1–5 scores."""

    judge: str
    pairs: int
    replies: int
    kappa: float | None = None
    kappa_ci: tuple[float, float] | None = None
    spearman: float | None = None
    spearman_ci: tuple[float, float] | None = None
    exact: float | None = None


@dataclass
class PickAgreement:
    """Human picks vs one judge's pairwise judgements."""

    judge: str
    pairs: int
    agreement: float | None = None
    agreement_ci: tuple[float, float] | None = None
    pairs_without_ties: int = 0
    agreement_without_ties: float | None = None


@dataclass
class HumanAgreement:
    """People among themselves: Krippendorff's alpha (ordinal) on the replies they all scored."""

    raters: list[str] = field(default_factory=list)
    units: int = 0
    """Replies scored by at least two people."""
    alpha: float | None = None
    alpha_ci: tuple[float, float] | None = None


@dataclass
class AgreementReport:
    sessions: int
    scenario: str | None = None
    session: int | None = None
    scores: list[ScoreAgreement] = field(default_factory=list)
    picks: list[PickAgreement] = field(default_factory=list)
    humans: HumanAgreement = field(default_factory=HumanAgreement)

    @property
    def empty(self) -> bool:
        return not self.scores and not self.picks and self.humans.units == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(interval: tuple[float, float] | None, digits: int = 2) -> str:
    if interval is None:
        return ""
    return f" [95% CI {interval[0]:.{digits}f}–{interval[1]:.{digits}f}]"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def report_lines(report: AgreementReport) -> list[str]:
    """The report as plain lines (the command line, the leaderboard, Markdown exports)."""
    lines: list[str] = []
    for item in report.scores:
        lines.append(
            f"human vs {item.judge}, scores ({item.pairs} pairs on {item.replies} replies): "
            f"weighted kappa {_fmt(item.kappa)}{_ci(item.kappa_ci)}, "
            f"Spearman {_fmt(item.spearman)}{_ci(item.spearman_ci)}, exact {_pct(item.exact)}"
        )
    for pick in report.picks:
        lines.append(
            f"human vs {pick.judge}, picks ({pick.pairs} pairs): agreement "
            f"{_pct(pick.agreement)}"
            + (
                ""
                if pick.agreement_ci is None
                else f" [95% CI {_pct(pick.agreement_ci[0])}–{_pct(pick.agreement_ci[1])}]"
            )
            + f", without ties {_pct(pick.agreement_without_ties)} "
            f"({pick.pairs_without_ties} pairs)"
        )
    humans = report.humans
    if len(humans.raters) >= 2:
        lines.append(
            f"human vs human ({len(humans.raters)} raters, {humans.units} replies scored by two "
            f"or more): Krippendorff's alpha (ordinal) {_fmt(humans.alpha)}{_ci(humans.alpha_ci)}"
        )
    else:
        lines.append(
            "human vs human: n/a (one rater"
            + (f": {humans.raters[0]})" if humans.raters else "s: none)")
        )
    if not report.scores and not report.picks:
        lines.insert(0, "human vs judge: n/a (no reply scored by both a person and a judge)")
    return lines


# -- gathering ----------------------------------------------------------------------------------


def _score_tables(
    records: Iterable[SessionRecord],
) -> tuple[dict[tuple[int, int], dict[str, int]], dict[tuple[int, int], dict[str, int]]]:
    """(session, reply) → {rater: newest score}, for people and for judges."""
    humans: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    judges: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    for record in records:
        latest = newest_by(record.ratings, lambda r: (r.reply_id, r.rater, r.kind))
        for (reply_id, rater, kind), rating in latest.items():
            if rating.score is None:
                continue
            table = judges if kind == "judge" else humans
            table[(record.session.id, reply_id)][rater] = rating.score
    return humans, judges


def _battle_outcome(winner: str) -> PickOutcome:
    if winner == "model_a":
        return "first"
    if winner == "model_b":
        return "second"
    return "tie"


def _pick_tables(
    records: Iterable[SessionRecord],
) -> tuple[
    dict[tuple[int, int, int, int], list[str]], dict[tuple[int, int, int, int], dict[str, str]]
]:
    """(session, turn, first pane, second pane) → people's outcomes, and → {judge: outcome}."""
    humans: dict[tuple[int, int, int, int], list[str]] = defaultdict(list)
    judges: dict[tuple[int, int, int, int], dict[str, str]] = defaultdict(dict)
    for record in records:
        sid = record.session.id
        # Labels are unique per session, so no pair is dropped for two panes of one model.
        for battle in derive_battles(record, hide_names=True):
            key = (sid, battle.turn, battle.pane_a, battle.pane_b)
            humans[key].append(_battle_outcome(battle.winner))
        panes_of = {reply.id: reply.pane for reply in record.replies}
        pairwise = [j for j in record.judgements if j.mode == "pairwise" and j.ok]
        newest = newest_by(pairwise, lambda j: (j.turn, j.reply_id, j.other_reply_id, j.judge))
        for judgement in newest.values():
            if judgement.other_reply_id is None:
                continue
            first, second = panes_of[judgement.reply_id], panes_of[judgement.other_reply_id]
            if judgement.winner_reply_id is None:
                outcome = "tie"
            else:
                outcome = "first" if judgement.winner_reply_id == judgement.reply_id else "second"
            if first > second:
                first, second = second, first
                outcome = {"first": "second", "second": "first"}.get(outcome, outcome)
            judges[(sid, judgement.turn, first, second)][judgement.judge] = outcome
    return humans, judges


def agreement_from_records(
    records: Sequence[SessionRecord],
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
    scenario: str | None = None,
    session: int | None = None,
) -> AgreementReport:
    report = AgreementReport(sessions=len(records), scenario=scenario, session=session)
    human_scores, judge_scores = _score_tables(records)

    judge_names = sorted({name for table in judge_scores.values() for name in table})
    for judge in judge_names:
        people: list[int] = []
        judged: list[int] = []
        replies = 0
        for key, scores in judge_scores.items():
            if judge not in scores or not human_scores.get(key):
                continue
            replies += 1
            for score in human_scores[key].values():
                people.append(score)
                judged.append(scores[judge])
        if not people:
            continue

        def kappa_of(idx: Sequence[int], a: list[int] = people, b: list[int] = judged) -> Any:
            return weighted_kappa([a[i] for i in idx], [b[i] for i in idx])

        def rho_of(idx: Sequence[int], a: list[int] = people, b: list[int] = judged) -> Any:
            return spearman([a[i] for i in idx], [b[i] for i in idx])

        report.scores.append(
            ScoreAgreement(
                judge=judge,
                pairs=len(people),
                replies=replies,
                kappa=weighted_kappa(people, judged),
                kappa_ci=bootstrap_interval(len(people), kappa_of, rounds=rounds, seed=seed),
                spearman=spearman(people, judged),
                spearman_ci=bootstrap_interval(len(people), rho_of, rounds=rounds, seed=seed),
                exact=agreement_rate([str(p) for p in people], [str(j) for j in judged]),
            )
        )

    human_picks, judge_picks = _pick_tables(records)
    pick_judges = sorted({name for table in judge_picks.values() for name in table})
    for judge in pick_judges:
        people_said: list[str] = []
        judge_said: list[str] = []
        for pair_key, outcomes in judge_picks.items():
            if judge not in outcomes:
                continue
            for outcome in human_picks.get(pair_key, ()):
                people_said.append(outcome)
                judge_said.append(outcomes[judge])
        if not people_said:
            continue
        decided = [
            (a, b)
            for a, b in zip(people_said, judge_said, strict=True)
            if a != "tie" and b != "tie"
        ]

        def rate_of(
            idx: Sequence[int], a: list[str] = people_said, b: list[str] = judge_said
        ) -> Any:
            return agreement_rate([a[i] for i in idx], [b[i] for i in idx])

        report.picks.append(
            PickAgreement(
                judge=judge,
                pairs=len(people_said),
                agreement=agreement_rate(people_said, judge_said),
                agreement_ci=bootstrap_interval(
                    len(people_said), rate_of, rounds=rounds, seed=seed
                ),
                pairs_without_ties=len(decided),
                agreement_without_ties=agreement_rate(
                    [a for a, _ in decided], [b for _, b in decided]
                ),
            )
        )

    raters = sorted({name for table in human_scores.values() for name in table})
    humans = HumanAgreement(raters=raters)
    if len(raters) >= 2:
        units = [scores for scores in human_scores.values() if len(scores) >= 2]
        humans.units = len(units)
        if units:
            matrix = [[float(u.get(r, math.nan)) for u in units] for r in raters]
            humans.alpha = ordinal_alpha(matrix)

            def alpha_of(idx: Sequence[int], rows: list[list[float]] = matrix) -> Any:
                return ordinal_alpha([[row[i] for i in idx] for row in rows])

            humans.alpha_ci = bootstrap_interval(len(units), alpha_of, rounds=rounds, seed=seed)
    report.humans = humans
    return report


def build_agreement(
    store: Store,
    *,
    scenario: str | None = None,
    session: int | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
    run: int | None = None,
) -> AgreementReport:
    """The report over the stored sessions (of ``scenario``; of ``run``; or the one
    ``session``)."""
    if session is not None:
        ids = (
            [session]
            if scenario is None or store.sessions.get(session).scenario_id == scenario
            else []
        )
    else:
        ids = store.sessions.ids(scenario=scenario, run=run)
    records = [store.load_record(sid) for sid in ids]
    return agreement_from_records(
        records, rounds=rounds, seed=seed, scenario=scenario, session=session
    )
