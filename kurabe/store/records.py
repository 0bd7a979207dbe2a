"""What the store reads back: one frozen dataclass per table row (:class:`SessionRow`,
:class:`PaneRecord`, :class:`ReplyRow`, :class:`RatingRow` …) and :class:`SessionRecord`, a whole
session read in one go, with the "newest counts" rule (:func:`newest`, :func:`newest_by`) that
ratings, verdicts and picks follow: their history is kept and the row written last counts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypeVar, get_args

from kurabe.checks.report import CheckReport, load_check_report
from kurabe.core.blind import names_hidden
from personas import ExampleExchange, Persona
from scenarios import Scenario, Turn

SessionEnd = Literal["finished", "interrupted", "failed"]
"""How a session ended: ``finished`` (its scenario was played to the end), ``interrupted`` (a
replay was stopped, e.g. Ctrl-C; it can be resumed), ``failed`` (no pane could run)."""
SessionStatus = Literal["open", SessionEnd]
"""A session's status in the store: ``open`` while it is (or can be) played, else how it ended."""
SESSION_STATUSES: tuple[SessionStatus, ...] = get_args(SessionStatus)
REPLY_STATUSES = ("streaming", "complete", "failed", "cancelled", "interrupted")
PICK_OUTCOMES = ("pane", "tie", "bothbad")
RATING_KINDS = ("human", "judge")
"""Who gave a rating: a person, or an LLM judge (rater ``judge:<profile>``)."""
JUDGE_MODES = ("single", "pairwise")
JUDGEMENT_STATUSES = ("ok", "unparseable", "error")
"""``ok``: parsed and stored (single: with its rating row); ``unparseable``: the judge answered,
never in the required format, within the allowed attempts (its raw answers are kept, no score is
stored); ``error``: the judge's backend failed (connection, timeout …)."""


@dataclass(frozen=True, slots=True)
class ReplyFigures:
    """The figures of one reply: tokens, timings, speeds, and what the local engine did."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    chars: int = 0
    tokens_per_s: float | None = None
    chars_per_s: float | None = None
    context_size: int | None = None
    cached_prompt_tokens: int | None = None
    """Prompt tokens not evaluated again (the KV prefix a local model reused)."""
    decoded_alongside: int | None = None
    """Local: the most other panes decoded in the same batches (tokens/s is then shared)."""
    history_trimmed_turns: int = 0
    """Oldest turn pairs left out so the conversation fit the context."""
    max_tokens_clamped: int | None = None
    """The reply budget the context left, when it was below the profile's max_tokens."""

    def engine_notes(self) -> list[str]:
        """What the local engine did that a reader of the figures must know, in words."""
        notes = []
        if self.decoded_alongside:
            others = self.decoded_alongside
            notes.append(f"decoded with {others} other pane{'s' if others > 1 else ''}")
        if self.history_trimmed_turns:
            turns = self.history_trimmed_turns
            notes.append(f"history trimmed: {turns} turn{'s' if turns > 1 else ''}")
        if self.max_tokens_clamped is not None:
            notes.append(f"max_tokens clamped to {self.max_tokens_clamped}")
        return notes


def persona_to_dict(persona: Persona) -> dict[str, Any]:
    return asdict(persona)


def persona_from_dict(data: Mapping[str, Any]) -> Persona:
    known = set(Persona.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in known}
    values["first_person"] = tuple(values.get("first_person") or ())
    values["examples"] = tuple(
        ExampleExchange(user=str(e.get("user", "")), char=str(e.get("char", "")))
        for e in values.get("examples") or ()
        if isinstance(e, Mapping)
    )
    return Persona(**values)


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    return asdict(scenario)


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    known = set(Scenario.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in known}
    turn_fields = set(Turn.__dataclass_fields__)
    values["turns"] = tuple(
        Turn(**{k: v for k, v in t.items() if k in turn_fields}) for t in values.get("turns", ())
    )
    values["tags"] = tuple(values.get("tags") or ())
    return Scenario(**values)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    created_at: str
    updated_at: str
    kind: str
    persona_id: str
    persona: dict[str, Any]
    scenario_id: str | None
    scenario: dict[str, Any] | None
    blind: bool
    revealed: bool
    rater: str
    status: str
    seed: int | None
    kurabe_version: str
    run_id: int | None = None
    """The run this session is part of (``kurabe run``), if any."""
    run_repeat: int | None = None

    @property
    def hidden(self) -> bool:
        """Blind and not yet revealed: model names must not be shown."""
        return names_hidden(blind=self.blind, revealed=self.revealed)

    def persona_obj(self) -> Persona:
        return persona_from_dict(self.persona)

    def scenario_obj(self) -> Scenario | None:
        return None if self.scenario is None else scenario_from_dict(self.scenario)


@dataclass(frozen=True, slots=True)
class PaneRecord:
    """One stored pane (a row of ``panes``); named apart from the TUI's ``PaneRow`` widget."""

    id: int
    session_id: int
    position: int
    label: str
    profile_name: str
    backend: str
    model: str
    settings: dict[str, Any]
    header: str


@dataclass(frozen=True, slots=True)
class TurnRow:
    id: int
    session_id: int
    idx: int
    text: str
    scenario_turn: int | None
    created_at: str


@dataclass(frozen=True, slots=True)
class ReplyRow:
    id: int
    turn_id: int
    pane_id: int
    turn: int
    """The turn's 0-based index in its session."""
    pane: int
    """The pane's position in its session."""
    version: int
    status: str
    incomplete: bool
    text: str
    finish_reason: str | None
    error: str | None
    error_kind: str | None
    retryable: bool | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_s: float | None
    total_s: float | None
    chars: int
    chars_per_s: float | None
    tokens_per_s: float | None
    context_size: int | None
    checks: dict[str, Any]
    started_at: str
    finished_at: str | None
    cached_prompt_tokens: int | None = None
    decoded_alongside: int | None = None
    history_trimmed_turns: int = 0
    max_tokens_clamped: int | None = None

    @property
    def figures(self) -> ReplyFigures:
        return ReplyFigures(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            ttft_s=self.ttft_s,
            total_s=self.total_s,
            chars=self.chars,
            tokens_per_s=self.tokens_per_s,
            chars_per_s=self.chars_per_s,
            context_size=self.context_size,
            cached_prompt_tokens=self.cached_prompt_tokens,
            decoded_alongside=self.decoded_alongside,
            history_trimmed_turns=self.history_trimmed_turns,
            max_tokens_clamped=self.max_tokens_clamped,
        )

    @property
    def completed(self) -> bool:
        return self.status == "complete"

    @property
    def check_report(self) -> CheckReport | None:
        """:attr:`checks` (the stored JSON), typed; None when the checks did not run."""
        return load_check_report(self.checks)


class _Recorded(Protocol):
    @property
    def id(self) -> int: ...


RecordedT = TypeVar("RecordedT", bound=_Recorded)
KeyT = TypeVar("KeyT")


def newest(rows: Iterable[RecordedT]) -> RecordedT | None:
    """The row written last: ratings, verdicts and picks keep their history; the newest counts."""
    return max(rows, key=lambda row: row.id, default=None)


def newest_by(rows: Iterable[RecordedT], key: Callable[[RecordedT], KeyT]) -> dict[KeyT, RecordedT]:
    """The newest row for each ``key(row)``."""
    found: dict[KeyT, RecordedT] = {}
    for row in rows:
        slot = key(row)
        if slot not in found or row.id > found[slot].id:
            found[slot] = row
    return found


@dataclass(frozen=True, slots=True)
class RatingRow:
    id: int
    reply_id: int
    score: int | None
    tags: tuple[str, ...]
    note: str
    rater: str
    blind: bool
    created_at: str
    kind: str = "human"
    """``human`` or ``judge`` (:data:`RATING_KINDS`)."""


@dataclass(frozen=True, slots=True)
class JudgeRunRow:
    """One ``kurabe judge`` run (or one TUI judge request) over a session."""

    id: int
    session_id: int
    judge: str
    """The rater name of its ratings: ``judge:<profile>``."""
    profile_name: str
    mode: str
    rubric_name: str
    rubric_hash: str
    rubric_text: str
    settings: dict[str, Any]
    """The judge's profile snapshot and what its backend recorded as sent (``backends.sent``)."""
    created_at: str


@dataclass(frozen=True, slots=True)
class JudgementRow:
    """One question put to a judge: a reply (single) or a pair of replies (pairwise)."""

    id: int
    run_id: int
    judge: str
    mode: str
    rubric_hash: str
    turn_id: int
    turn: int
    """The turn's 0-based index in its session."""
    reply_id: int
    other_reply_id: int | None
    """Pairwise: the second reply (of the pane with the higher position)."""
    status: str
    score: int | None
    winner_reply_id: int | None
    """Pairwise and ``ok``: the reply that won in both orders; None for a tie."""
    reason: str
    attempts: list[dict[str, Any]]
    """Every answer asked for, in order: the raw text and why it was refused, or the error."""
    rating_id: int | None
    created_at: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class VerdictRow:
    id: int
    pane_id: int
    pane: int
    verdict: str
    note: str
    rater: str
    blind: bool
    created_at: str


@dataclass(frozen=True, slots=True)
class PickRow:
    id: int
    turn_id: int
    turn: int
    winner_pane_id: int | None
    winner: int | None
    """The winning pane's position, or None for a tie / all bad."""
    outcome: str
    rater: str
    blind: bool
    created_at: str


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    created_at: str
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One line of ``kurabe sessions``."""

    id: int
    created_at: str
    kind: str
    status: str
    persona_id: str
    scenario_id: str | None
    models: tuple[str, ...]
    """Profile names in pane order, or the labels for a blind session not yet revealed."""
    blind: bool
    revealed: bool
    turns: int
    replies: int
    """Completed replies (latest or not)."""
    ratings: int
    """Rating rows given by people: reply ratings, verdicts and picks (a judge's are not)."""
    run_id: int | None = None
    """The run this session is part of (``kurabe run``), if any."""


@dataclass
class SessionRecord:
    """Everything stored about one session, read in one go (for export, resume and redraw)."""

    session: SessionRow
    panes: list[PaneRecord]
    turns: list[TurnRow]
    replies: list[ReplyRow]
    ratings: list[RatingRow]
    verdicts: list[VerdictRow]
    picks: list[PickRow]
    events: list[EventRow] = field(default_factory=list)
    judgements: list[JudgementRow] = field(default_factory=list)
    judge_runs: list[JudgeRunRow] = field(default_factory=list)

    def pane_by_id(self, pane_id: int) -> PaneRecord:
        for pane in self.panes:
            if pane.id == pane_id:
                return pane
        raise KeyError(pane_id)

    def latest_replies(self) -> dict[tuple[int, int], ReplyRow]:
        """(pane position, turn index) → the newest version of that reply."""
        latest: dict[tuple[int, int], ReplyRow] = {}
        for reply in self.replies:
            key = (reply.pane, reply.turn)
            current = latest.get(key)
            if current is None or reply.version > current.version:
                latest[key] = reply
        return latest

    def versions(self, pane: int, turn: int) -> list[ReplyRow]:
        return sorted(
            (r for r in self.replies if r.pane == pane and r.turn == turn), key=lambda r: r.version
        )

    def ratings_of(self, reply_id: int) -> list[RatingRow]:
        return [r for r in self.ratings if r.reply_id == reply_id]

    def latest_rating(
        self, reply_id: int, rater: str | None = None, *, kind: str | None = "human"
    ) -> RatingRow | None:
        """The newest rating of a reply (by ``rater`` when given) of ``kind`` (people's, unless
        asked otherwise: a judge's score never stands in for the human's; None: any kind)."""
        return newest(
            r
            for r in self.ratings
            if r.reply_id == reply_id and rater in (None, r.rater) and kind in (None, r.kind)
        )

    def human_ratings(self) -> list[RatingRow]:
        return [r for r in self.ratings if r.kind == "human"]

    def judgements_of(self, reply_id: int) -> list[JudgementRow]:
        """Every judgement that looked at this reply (alone or in a pair), oldest first."""
        return [j for j in self.judgements if reply_id in (j.reply_id, j.other_reply_id)]

    def latest_verdict(self, pane: int, rater: str | None = None) -> VerdictRow | None:
        return newest(v for v in self.verdicts if v.pane == pane and rater in (None, v.rater))

    def latest_pick(self, turn: int, rater: str | None = None) -> PickRow | None:
        return newest(p for p in self.picks if p.turn == turn and rater in (None, p.rater))

    def latest_picks_by_rater(self) -> list[PickRow]:
        """The newest pick per (turn, rater), in turn order."""
        latest = newest_by(self.picks, lambda p: (p.turn, p.rater))
        return sorted(latest.values(), key=lambda p: (p.turn, p.rater))

    def raters(self) -> list[str]:
        names = {r.rater for r in self.ratings}
        names |= {v.rater for v in self.verdicts}
        names |= {p.rater for p in self.picks}
        return sorted(names)
