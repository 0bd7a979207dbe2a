"""The LLM judge: any model profile scores replies, or compares pairs, next to the human rater.

Modes
    **single**: each reply gets a 1–5 score and a short reason. **pairwise**: for each turn and
    each pair of panes, the judge is asked twice, the replies swapped the second time, which
    cancels its position bias (MT-Bench's method, Zheng et al. 2023): a pane wins only when it
    wins in both orders; any disagreement between the orders, or a tie in either, is a tie.

What the judge sees
    The rubric (:mod:`kurabe.judge.rubric`, Japanese, bundled or ``--rubric FILE``) filled with the
    persona's system prompt and expectations (register, reply length), up to
    :data:`HISTORY_TURNS` earlier turns of the pane's own conversation, the user's line, the reply
    (or replies), the scenario turn's ``expect`` note (where an import from ELYZA-tasks-100 puts
    the model answer and ``eval_aspect``; for an MT-Bench math, reasoning or coding question, its
    reference answer, framed as MT-Bench's reference prompts do: :data:`REFERENCE_NOTE`) and the
    automatic checks' findings. It never sees a
    model name, a profile name or a pane label: single mode shows "the reply", pairwise "A" and
    "B" in the order asked (blind by construction, whatever the session's blind setting).

The answer
    A strict format, parsed and validated (:mod:`kurabe.judge.answers`: its parsers and its JSON
    schema): one JSON object, alone (a surrounding Markdown code fence is
    allowed, nothing else), with exactly the keys ``score`` (an integer 1–5) or ``winner`` (``"A"``,
    ``"B"`` or ``"tie"``) and ``reason`` (a non-empty string). An answer that fails is answered
    with the rubric's retry prompt naming what was wrong, up to :data:`DEFAULT_MAX_ATTEMPTS` answers
    in all; a backend error that can be retried counts as an attempt too. When no attempt parses,
    the judgement is stored as ``unparseable`` with every raw answer, and **no score is
    stored**: a score is never guessed from prose.

Structured output
    The judge asks its backend for an answer that is valid JSON of the mode's shape by
    construction (:func:`answer_schema`, set on the judge's own copy of the profile by
    :func:`judge_profile`; chat panes never get it): a local llama.cpp judge samples under a
    grammar built from the schema, an OpenAI or OpenAI-compatible judge sends it as a strict
    ``response_format``; Anthropic's API path has no such option and gets the prompt alone. The
    schema's ``maxLength`` keeps the reason short (:data:`SCHEMA_REASON_CHARS`), so a small model
    closes the object within its reply budget. Parsing, the retry and storage are the same either
    way: a schema makes a parseable answer likely, the parser still decides.

Storage (:mod:`kurabe.store.store`)
    A run records the judge's profile and what its backend sent (:mod:`backends.sent`'s record,
    with the judge's temperature — 0 by default, as MT-Bench judges; ``--temperature`` changes it
    — and the schema where one was sent) and the rubric's text and sha256. A single-mode score is
    a rating of kind ``judge`` by rater ``judge:<profile>`` with the reason as its note; a
    pairwise result is a judgement with its winner. A run is resumable: it skips every reply (or
    pair) that this judge already judged with the same rubric hash and mode, successfully or as
    unparseable (``retry_failed`` asks again for the unparseable ones); backend errors are always
    asked again.

This module never imports Textual; the TUI runs :func:`judge_session` in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from backends import create_backend
from backends.base import (
    Backend,
    ChatMessage,
    Conversation,
    StreamDone,
    StreamError,
    TextDelta,
    one_line,
)
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.core.mt_bench import uses_reference
from kurabe.core.secret_scrub import env_secrets
from kurabe.judge.answers import (
    AnswerError,
    JudgeMode,
    PairAnswer,
    SingleAnswer,
    answer_schema,
    parse_pairwise_answer,
    parse_single_answer,
)
from kurabe.judge.rubric import Rubric, render
from kurabe.store.records import ReplyRow, SessionRecord, TurnRow
from kurabe.store.store import Store
from personas import Persona

JUDGE_PREFIX = "judge:"
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TEMPERATURE = 0.0
"""MT-Bench's judges answer at temperature 0: the same question gets the same judgement."""
DEFAULT_CALL_TIMEOUT_S = 300.0
"""One answer from the judge takes at most this long (then it counts as a failed attempt)."""
HISTORY_TURNS = 3
"""Earlier turns of the pane's conversation shown to the judge (the prompt stays small enough
for a local judge's context)."""
Status = Literal["ok", "unparseable", "error"]

REGISTER_WORDS = {
    "casual": "くだけた話し方（友達口調）。です・ます調は使わない",
    "polite": "丁寧語（です・ます調）",
}
NO_NOTE = "（この発言には注記がありません）"
REFERENCE_NOTE = (
    "この問題には参考回答があります。評価では正確さと有用性を見てください。まず返信を参考回答と"
    "比べ、誤りがあれば指摘して正してから採点してください。\n"
    "[参考回答の開始]\n{reference}\n[参考回答の終了]"
)
"""The ``expect`` note of an MT-Bench math, reasoning or coding question: its reference answer,
framed as FastChat's ``single-math-v1`` / ``pair-math-v1`` prompts frame it."""
NO_HISTORY = "（なし：最初の発言です）"
NO_FINDINGS = "（指摘なし）"


def judge_rater(profile_name: str) -> str:
    """The rater name of a judge's ratings: ``judge:<profile>``."""
    return f"{JUDGE_PREFIX}{profile_name}"


# -- what the judge is shown ------------------------------------------------------------------


def expectations_text(persona: Persona) -> str:
    lines = []
    if persona.register in REGISTER_WORDS:
        lines.append(f"- 話し方: {REGISTER_WORDS[persona.register]}")
    if persona.max_reply_chars:
        lines.append(f"- 返信の長さ: {persona.max_reply_chars}字以内")
    if persona.first_person:
        lines.append(f"- 一人称: {'・'.join(persona.first_person)}")
    if persona.language == "ja":
        lines.append("- 日本語で話す")
    return "\n".join(lines) or "（特になし）"


def checks_text(reply: ReplyRow) -> str:
    report = reply.check_report
    lines = []
    for flag in report.flags if report is not None else ():
        label = flag.label.strip()
        detail = flag.detail.strip()
        lines.append(f"- {label}: {detail}" if detail else f"- {label}")
    return "\n".join(lines) or NO_FINDINGS


def expect_text(record: SessionRecord, turn: TurnRow) -> str:
    """The scenario turn's ``expect`` note (for an imported ELYZA task: its model answer and
    ``eval_aspect``), or a line saying there is none."""
    scenario = record.session.scenario_obj()
    index = turn.scenario_turn
    if scenario is None or index is None or not 0 <= index < len(scenario.turns):
        return NO_NOTE
    note = scenario.turns[index].expect
    if not note:
        return NO_NOTE
    if uses_reference(scenario.tags):
        return REFERENCE_NOTE.format(reference=note)
    return note


def history_text(record: SessionRecord, pane: int, turn: int, persona: Persona) -> str:
    """Up to :data:`HISTORY_TURNS` earlier turns of ``pane``'s conversation (newest versions;
    a turn the pane has no text for is left out, as the pane's own history leaves it out)."""
    latest = record.latest_replies()
    lines: list[str] = []
    shown = 0
    for row in reversed([t for t in record.turns if t.idx < turn]):
        reply = latest.get((pane, row.idx))
        if reply is None or not reply.text:
            continue
        lines[:0] = [f"{persona.user_name}: {row.text}", f"{persona.char_name}: {reply.text}"]
        shown += 1
        if shown >= HISTORY_TURNS:
            break
    return "\n".join(lines) or NO_HISTORY


def _common_values(record: SessionRecord, turn: TurnRow) -> dict[str, str]:
    persona = record.session.persona_obj()
    return {
        "persona": persona.system,
        "char_name": persona.char_name,
        "user_name": persona.user_name,
        "expectations": expectations_text(persona),
        "user": turn.text,
        "expect": expect_text(record, turn),
    }


def single_prompt(rubric: Rubric, record: SessionRecord, turn: TurnRow, reply: ReplyRow) -> str:
    persona = record.session.persona_obj()
    values = _common_values(record, turn)
    values.update(
        history=history_text(record, reply.pane, turn.idx, persona),
        reply=reply.text,
        checks=checks_text(reply),
    )
    return render(rubric.single.prompt, values)


def pairwise_prompt(
    rubric: Rubric, record: SessionRecord, turn: TurnRow, reply_a: ReplyRow, reply_b: ReplyRow
) -> str:
    """The prompt with ``reply_a`` shown as A and ``reply_b`` as B."""
    persona = record.session.persona_obj()
    values = _common_values(record, turn)
    values.update(
        history_a=history_text(record, reply_a.pane, turn.idx, persona),
        reply_a=reply_a.text,
        checks_a=checks_text(reply_a),
        history_b=history_text(record, reply_b.pane, turn.idx, persona),
        reply_b=reply_b.text,
        checks_b=checks_text(reply_b),
    )
    return render(rubric.pairwise.prompt, values)


# -- asking ---------------------------------------------------------------------------------


def judge_profile(
    profile: ModelProfile, temperature: float | None, mode: JudgeMode | None = None
) -> ModelProfile:
    """The profile the judge runs with: its sampling temperature replaced (None: as it is), and
    with ``mode``'s :func:`answer_schema` for structured output (None: no schema)."""
    sampling = profile.sampling
    if temperature is not None:
        sampling = dataclasses.replace(sampling, temperature=temperature)
    if mode is not None:
        sampling = dataclasses.replace(sampling, json_schema=answer_schema(mode))
    return (
        profile if sampling == profile.sampling else dataclasses.replace(profile, sampling=sampling)
    )


AnswerT = TypeVar("AnswerT")


@dataclass(frozen=True, slots=True)
class Asked:
    """What asking the judge one question gave."""

    status: Status
    answer: Any
    """The parsed answer when ``ok``."""
    attempts: list[dict[str, Any]]
    """Per attempt: ``raw`` (the judge's text) and ``error`` (why it was refused), or
    ``backend_error`` and ``kind``."""


class Judge:
    """One judge: a model profile with its own backend, a rubric and a mode.

    ``temperature`` replaces the profile's (None keeps it). ``structured_output`` asks the
    backend for answers held to the mode's :func:`answer_schema` (False: the prompt alone asks
    for the format). The backend is built at once and loaded on first use; :meth:`aclose`
    releases it.
    """

    def __init__(
        self,
        profile: ModelProfile,
        *,
        rubric: Rubric,
        mode: JudgeMode = "single",
        backend_factory: Callable[[ModelProfile], Backend] = create_backend,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        temperature: float | None = DEFAULT_TEMPERATURE,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        retry_delay_s: float = 1.0,
        structured_output: bool = True,
    ) -> None:
        if mode not in ("single", "pairwise"):
            raise KurabeError(f"--mode is single or pairwise, not {mode!r}")
        if max_attempts < 1:
            raise KurabeError("a judge needs at least one attempt")
        self.profile = judge_profile(profile, temperature, mode if structured_output else None)
        problem = self.profile.sampling.validate()
        if problem:
            raise KurabeError(f"judge {profile.name}: {problem}")
        self.rubric = rubric
        self.mode: JudgeMode = mode
        self.max_attempts = max_attempts
        self.temperature = temperature
        self.structured_output = structured_output
        self.call_timeout_s = call_timeout_s
        self.retry_delay_s = retry_delay_s
        self.backend = backend_factory(self.profile)
        self.secrets = env_secrets([self.profile.api_key_env])
        self._loaded = False
        self._load_lock = asyncio.Lock()

    @property
    def rater(self) -> str:
        return judge_rater(self.profile.name)

    async def load(self) -> None:
        """Load the judge's backend once; a judge that cannot run raises :class:`KurabeError`."""
        async with self._load_lock:
            if self._loaded:
                return
            reason = self.backend.unusable_reason()
            if reason:
                raise KurabeError(f"judge {self.profile.name} cannot run: {reason}")
            try:
                await self.backend.load(None)
            except KurabeError:
                raise
            except Exception as exc:
                message = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
                raise KurabeError(one_line(f"judge {self.profile.name}: {message}")) from None
            self._loaded = True

    def settings(self) -> dict[str, Any]:
        """What a judge run stores: the profile, the backend's record of what it sends, and how
        the judge was asked (its temperature override, attempts allowed)."""
        from kurabe.core.profile_snapshot import profile_snapshot

        try:
            backend = dict(self.backend.settings_snapshot())
        except Exception as exc:
            backend = {"error": one_line(f"settings unavailable: {exc}")}
        return {
            "profile": profile_snapshot(self.profile),
            "backend": backend,
            "judge": {
                "temperature_override": self.temperature,
                "max_attempts": self.max_attempts,
                "history_turns": HISTORY_TURNS,
                "structured_output": self.structured_output,
            },
        }

    async def _answer(self, conversation: Conversation) -> tuple[str, StreamError | None, str]:
        """The judge's whole answer: (text, error or None, finish reason)."""
        parts: list[str] = []
        stream = self.backend.stream(conversation)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, StreamDone):
                    return "".join(parts), None, event.finish_reason
                elif isinstance(event, StreamError):
                    return "".join(parts), event, ""
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return "".join(parts), StreamError("the stream ended without a final event", True), ""

    async def ask(self, system: str, prompt: str, parse: Callable[[str], AnswerT]) -> Asked:
        """Ask until an answer parses, at most :attr:`max_attempts` answers."""
        await self.load()
        turns: list[ChatMessage] = [ChatMessage("user", prompt)]
        attempts: list[dict[str, Any]] = []
        for attempt in range(self.max_attempts):
            conversation = Conversation(
                system=system,
                turns=tuple(turns),
                char_name="審査員",
                user_name="依頼者",
                conversation_id="kurabe-judge",
            )
            try:
                text, error, finish = await asyncio.wait_for(
                    self._answer(conversation), self.call_timeout_s
                )
            except asyncio.TimeoutError:
                text, finish = "", ""
                error = StreamError(
                    f"no answer within {self.call_timeout_s:g} s", True, kind="timeout"
                )
            if error is not None:
                attempts.append(
                    {"backend_error": one_line(error.reason), "kind": error.kind, "raw": text}
                )
                if not error.retryable:
                    break
                if attempt + 1 < self.max_attempts and self.retry_delay_s > 0:
                    delay = error.retry_after_s or self.retry_delay_s * (attempt + 1)
                    await asyncio.sleep(min(delay, 10.0))
                continue
            try:
                answer = parse(text)
            except AnswerError as exc:
                reason = str(exc)
                if finish == "length":
                    reason += " (the answer was cut at max_tokens)"
                attempts.append({"raw": text, "error": reason})
                turns += [
                    ChatMessage("assistant", text or "(empty)"),
                    ChatMessage("user", render(self.rubric.retry_prompt, {"error": reason})),
                ]
                continue
            attempts.append({"raw": text, "error": None})
            return Asked("ok", answer, attempts)
        # Unparseable when the judge's last word was an answer; an error when its backend failed.
        ended_by_backend = not attempts or "backend_error" in attempts[-1]
        return Asked("error" if ended_by_backend else "unparseable", None, attempts)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):  # closing must not hide what the run did
            await self.backend.aclose()


# -- a run over a session -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JudgeItem:
    """One question: a reply (single) or a pair of replies of one turn (pairwise)."""

    turn: TurnRow
    replies: tuple[ReplyRow, ...]

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(r.id for r in self.replies)


@dataclass(frozen=True, slots=True)
class ItemResult:
    item: JudgeItem
    status: Status
    score: int | None = None
    winner_reply_id: int | None = None
    reason: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def winner_pane(self) -> int | None:
        for reply in self.item.replies:
            if reply.id == self.winner_reply_id:
                return reply.pane
        return None

    @property
    def failure(self) -> str:
        """One line: why this judgement failed (empty when it did not)."""
        if self.status == "ok":
            return ""
        last = self.attempts[-1] if self.attempts else {}
        why = last.get("error") or last.get("backend_error") or "no answer"
        return one_line(f"{self.status} after {len(self.attempts)} attempts: {why}")


@dataclass
class JudgeSummary:
    session_id: int
    judge: str
    mode: str
    rubric_hash: str
    planned: int = 0
    skipped: int = 0
    ok: int = 0
    unparseable: int = 0
    errors: int = 0
    run_id: int | None = None
    results: list[ItemResult] = field(default_factory=list)


class JudgeProgress(Protocol):
    """Receives what a judge run does; implementations only display."""

    def begin(self, record: SessionRecord, judge: Judge, todo: int, skipped: int) -> None: ...

    def result(self, record: SessionRecord, result: ItemResult, done: int, todo: int) -> None: ...

    def end(self, summary: JudgeSummary) -> None: ...


class NullJudgeProgress:
    def begin(self, record: SessionRecord, judge: Judge, todo: int, skipped: int) -> None:
        pass

    def result(self, record: SessionRecord, result: ItemResult, done: int, todo: int) -> None:
        pass

    def end(self, summary: JudgeSummary) -> None:
        pass


def plan_items(
    record: SessionRecord, mode: str, *, turns: Iterable[int] | None = None
) -> list[JudgeItem]:
    """Every question a run asks: the newest version of each completed reply (single), or each
    pair of panes whose newest replies to a turn both completed (pairwise), turn by turn."""
    wanted = None if turns is None else set(turns)
    latest = record.latest_replies()
    positions = [p.position for p in record.panes]
    items: list[JudgeItem] = []
    for turn in record.turns:
        if wanted is not None and turn.idx not in wanted:
            continue
        done = [
            latest[(pos, turn.idx)]
            for pos in positions
            if (pos, turn.idx) in latest and latest[(pos, turn.idx)].completed
        ]
        if mode == "single":
            items.extend(JudgeItem(turn, (reply,)) for reply in done)
        else:
            for i, first in enumerate(done):
                items.extend(JudgeItem(turn, (first, second)) for second in done[i + 1 :])
    return items


def judged_keys(
    record: SessionRecord, judge: str, mode: str, rubric_hash: str, *, retry_failed: bool = False
) -> set[tuple[int, ...]]:
    """Questions this judge already answered with this rubric and mode (unparseable ones too,
    unless ``retry_failed``); backend errors are never counted as answered."""
    keep = {"ok"} if retry_failed else {"ok", "unparseable"}
    keys: set[tuple[int, ...]] = set()
    for row in record.judgements:
        same_question = row.judge == judge and row.mode == mode and row.rubric_hash == rubric_hash
        if same_question and row.status in keep:
            keys.add(
                (row.reply_id,)
                if row.other_reply_id is None
                else (row.reply_id, row.other_reply_id)
            )
    return keys


async def _judge_single(judge: Judge, record: SessionRecord, item: JudgeItem) -> ItemResult:
    (reply,) = item.replies
    prompt = single_prompt(judge.rubric, record, item.turn, reply)
    asked = await judge.ask(judge.rubric.single.system, prompt, parse_single_answer)
    if asked.status != "ok":
        return ItemResult(item, asked.status, attempts=asked.attempts)
    answer: SingleAnswer = asked.answer
    return ItemResult(item, "ok", score=answer.score, reason=answer.reason, attempts=asked.attempts)


def _winner_of(answer: PairAnswer, shown_a: ReplyRow, shown_b: ReplyRow) -> int | None:
    if answer.winner == "A":
        return shown_a.id
    if answer.winner == "B":
        return shown_b.id
    return None


async def _judge_pair(judge: Judge, record: SessionRecord, item: JudgeItem) -> ItemResult:
    first, second = item.replies
    attempts: list[dict[str, Any]] = []
    winners: list[int | None] = []
    reasons: list[str] = []
    for order, (shown_a, shown_b) in (("AB", (first, second)), ("BA", (second, first))):
        prompt = pairwise_prompt(judge.rubric, record, item.turn, shown_a, shown_b)
        asked = await judge.ask(judge.rubric.pairwise.system, prompt, parse_pairwise_answer)
        attempts.extend({"order": order, **attempt} for attempt in asked.attempts)
        if asked.status != "ok":
            return ItemResult(item, asked.status, attempts=attempts)
        answer: PairAnswer = asked.answer
        winners.append(_winner_of(answer, shown_a, shown_b))
        reasons.append(f"({order}: {answer.winner}) {answer.reason}")
    winner = winners[0] if winners[0] is not None and winners[0] == winners[1] else None
    return ItemResult(
        item, "ok", winner_reply_id=winner, reason=" ".join(reasons), attempts=attempts
    )


async def judge_session(
    store: Store,
    session_id: int,
    judge: Judge,
    *,
    turns: Iterable[int] | None = None,
    retry_failed: bool = False,
    progress: JudgeProgress | None = None,
) -> JudgeSummary:
    """Judge what is not judged yet in one session; see the module docstring. Each judgement is
    committed as soon as it is made, so an interrupted run resumes where it stopped."""
    progress = progress or NullJudgeProgress()
    record = store.load_record(session_id)
    rubric = judge.rubric
    summary = JudgeSummary(session_id, judge.rater, judge.mode, rubric.hash)
    items = plan_items(record, judge.mode, turns=turns)
    done_keys = judged_keys(record, judge.rater, judge.mode, rubric.hash, retry_failed=retry_failed)
    todo = [item for item in items if item.key not in done_keys]
    summary.planned = len(items)
    summary.skipped = len(items) - len(todo)
    progress.begin(record, judge, len(todo), summary.skipped)
    try:
        if not todo:
            return summary
        await judge.load()
        run_id = store.judging.add_run(
            session_id,
            judge=judge.rater,
            profile_name=judge.profile.name,
            mode=judge.mode,
            rubric_name=rubric.name,
            rubric_hash=rubric.hash,
            rubric_text=rubric.text,
            settings=judge.settings(),
            secrets=judge.secrets,
        )
        summary.run_id = run_id
        ask = _judge_single if judge.mode == "single" else _judge_pair
        for count, item in enumerate(todo, start=1):
            result = await ask(judge, record, item)
            first = item.replies[0]
            store.judging.add_judgement(
                run_id,
                turn_id=item.turn.id,
                reply_id=first.id,
                other_reply_id=item.replies[1].id if len(item.replies) > 1 else None,
                status=result.status,
                score=result.score,
                winner_reply_id=result.winner_reply_id,
                reason=result.reason,
                attempts=result.attempts,
                secrets=judge.secrets,
            )
            if result.status == "ok":
                summary.ok += 1
            elif result.status == "unparseable":
                summary.unparseable += 1
            else:
                summary.errors += 1
            summary.results.append(result)
            progress.result(record, result, count, len(todo))
        # The backend's record can be fuller once it has run (a local model's file, offload).
        store.judging.update_run_settings(run_id, judge.settings(), judge.secrets)
        return summary
    finally:
        progress.end(summary)


async def judge_sessions(
    store: Store,
    session_ids: Sequence[int],
    judge: Judge,
    *,
    retry_failed: bool = False,
    progress: JudgeProgress | None = None,
) -> list[JudgeSummary]:
    """:func:`judge_session` over several sessions with one judge; closes the judge after."""
    try:
        return [
            await judge_session(
                store, session_id, judge, retry_failed=retry_failed, progress=progress
            )
            for session_id in session_ids
        ]
    finally:
        await judge.aclose()
