"""The judge's answer: its strict format, the parser of each mode and the JSON schema that asks
backends for that format by construction (structured output).

One JSON object, alone (a surrounding Markdown code fence is allowed, nothing else), with exactly
the keys ``score`` (an integer 1–5) or ``winner`` (``"A"``, ``"B"`` or ``"tie"``) and ``reason``
(a non-empty string). :class:`AnswerError` says in one line what is wrong; the judge is shown it
when asked again (:mod:`kurabe.judge.runner`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from backends.profiles import JsonSchema
from kurabe.core.scores import SCORES, is_score

MAX_REASON_CHARS = 1000
"""The longest reason an answer may give (what a judge without a schema wrote is held to it)."""
SCHEMA_REASON_CHARS = 100
"""The longest reason the answer schema allows: the rubric asks for one or two sentences, and a
small model that rambles must still close the object within its reply budget. Within
:data:`MAX_REASON_CHARS`, so every answer the schema allows parses."""
PAIR_WINNERS = ("A", "B", "tie")
JudgeMode = Literal["single", "pairwise"]


class AnswerError(ValueError):
    """Why an answer is not in the required format (one line, shown to the judge on retry)."""


@dataclass(frozen=True, slots=True)
class SingleAnswer:
    score: int
    reason: str


@dataclass(frozen=True, slots=True)
class PairAnswer:
    winner: str
    """``A``, ``B`` or ``tie``: positions in the order asked."""
    reason: str


_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\n(.*)\n[ \t]*```\Z", re.DOTALL)


def _json_object(text: str) -> dict[str, Any]:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        raise AnswerError("the answer is empty")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise AnswerError(
            f"the answer is not one JSON object alone ({exc.msg} at character {exc.pos})"
        ) from None
    if not isinstance(value, dict):
        raise AnswerError("the answer must be a JSON object {...}")
    return value


def _checked_keys(answer: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in answer]
    if missing:
        raise AnswerError(f'the key "{missing[0]}" is missing')
    extra = [k for k in answer if k not in keys]
    if extra:
        raise AnswerError(f'unexpected key "{extra[0]}"; only {", ".join(keys)}')


def _reason(answer: dict[str, Any]) -> str:
    reason = answer["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise AnswerError('"reason" must be a non-empty string')
    if len(reason) > MAX_REASON_CHARS:
        raise AnswerError(f'"reason" is longer than {MAX_REASON_CHARS} characters')
    return reason.strip()


def parse_single_answer(text: str) -> SingleAnswer:
    """``{"score": 1-5, "reason": "…"}`` alone; anything else raises :class:`AnswerError`."""
    answer = _json_object(text)
    _checked_keys(answer, ("score", "reason"))
    score = answer["score"]
    if isinstance(score, bool) or not isinstance(score, int):
        raise AnswerError(f'"score" must be an integer from 1 to 5, got {json.dumps(score)}')
    if not is_score(score):
        raise AnswerError(f'"score" must be from 1 to 5, got {score}')
    return SingleAnswer(score=score, reason=_reason(answer))


def parse_pairwise_answer(text: str) -> PairAnswer:
    """``{"winner": "A"|"B"|"tie", "reason": "…"}`` alone; else :class:`AnswerError`."""
    answer = _json_object(text)
    _checked_keys(answer, ("winner", "reason"))
    winner = answer["winner"]
    if winner not in PAIR_WINNERS:
        raise AnswerError(f'"winner" must be "A", "B" or "tie", got {json.dumps(winner)}')
    return PairAnswer(winner=str(winner), reason=_reason(answer))


def answer_schema(mode: JudgeMode) -> JsonSchema:
    """The JSON schema of a ``mode`` answer: exactly what :func:`parse_single_answer` or
    :func:`parse_pairwise_answer` accepts, in the strict subset OpenAI requires."""
    verdict, values = ("score", SCORES) if mode == "single" else ("winner", PAIR_WINNERS)
    return JsonSchema(
        name=f"kurabe_judge_{mode}",
        schema={
            "type": "object",
            "properties": {
                verdict: {
                    "type": "integer" if mode == "single" else "string",
                    "enum": list(values),
                },
                "reason": {"type": "string", "minLength": 1, "maxLength": SCHEMA_REASON_CHARS},
            },
            "required": [verdict, "reason"],
            "additionalProperties": False,
        },
    )
