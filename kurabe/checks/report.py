"""What the automatic Japanese checks (:mod:`kurabe.checks.japanese`) report on one reply: the
numbers and the flag badges (:class:`CheckReport`, :class:`CheckFlag`), the flag codes, and the
typed loader of a report as stored with a reply (:func:`load_check_report`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHECKS_VERSION = 1
"""Bumped when a check changes what it measures, so stored reports can be told apart."""

FLAG_EMPTY = "empty"
FLAG_CUT_OFF = "cut-off"
FLAG_TEMPLATE_LEAK = "template-leak"
FLAG_NOT_JAPANESE = "not-japanese"
FLAG_OUT_OF_CHARACTER = "out-of-character"
FLAG_WRONG_REGISTER = "wrong-register"
FLAG_TOO_LONG = "too-long"
FLAG_REPETITIVE = "repetitive"
FLAG_REPEATS_PREVIOUS = "repeats-previous"

FLAG_CODES: tuple[str, ...] = (
    FLAG_EMPTY,
    FLAG_CUT_OFF,
    FLAG_TEMPLATE_LEAK,
    FLAG_NOT_JAPANESE,
    FLAG_OUT_OF_CHARACTER,
    FLAG_WRONG_REGISTER,
    FLAG_TOO_LONG,
    FLAG_REPETITIVE,
    FLAG_REPEATS_PREVIOUS,
)
"""Every flag code, in the order flags appear in a report (most serious first)."""

FLAG_DESCRIPTIONS: Mapping[str, str] = {
    FLAG_EMPTY: "empty reply, or only punctuation",
    FLAG_CUT_OFF: "stopped by the token limit",
    FLAG_TEMPLATE_LEAK: "prompt-format markers or role labels in the reply",
    FLAG_NOT_JAPANESE: "drifts into English or Chinese",
    FLAG_OUT_OF_CHARACTER: "steps out of the persona: AIとして…, or a first person it lacks",
    FLAG_WRONG_REGISTER: "polite where the persona is casual, or casual where it is polite",
    FLAG_TOO_LONG: "longer than the persona's max_reply_chars",
    FLAG_REPETITIVE: "repeats itself within the reply",
    FLAG_REPEATS_PREVIOUS: "mostly copies the pane's previous reply",
}


@dataclass(frozen=True)
class CheckFlag:
    """One badge: something in the reply looks off."""

    code: str
    """One of :data:`FLAG_CODES`."""
    label: str
    """Short badge text, Japanese and English, e.g. ``丁寧語 polite 80%``."""
    detail: str
    """One line that says what was found."""

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "label": self.label, "detail": self.detail}


@dataclass(frozen=True)
class CheckReport:
    """Everything the checks measured on one reply, and the flags they raised."""

    japanese_share: float | None
    """Share of Japanese among the letters; None when the reply has no letters."""
    polite_share: float | None
    """Polite sentence endings among the classified ones; None when none could be classified."""
    register: str
    """``casual``, ``polite``, ``mixed`` or ``unknown``."""
    chars: int
    """Characters other than whitespace, leaked markers included."""
    sentences: int
    """Sentences with words in them; a quotation counts as part of its sentence."""
    chars_per_token: float | None
    """Characters of the reply as sent (whitespace included) per completion token."""
    leaks: tuple[str, ...]
    """Leaked markers in order of first appearance, e.g. ``("### 指示",)``."""
    repeated_ngram_share: float
    """Share of the letters and digits covered by n-grams seen earlier in the reply."""
    repeats_previous: bool
    persona_breaks: tuple[str, ...]
    """Out-of-character phrases as found, and ``一人称 俺`` for a first person the persona lacks."""
    flags: tuple[CheckFlag, ...]

    @property
    def flag_codes(self) -> tuple[str, ...]:
        return tuple(flag.code for flag in self.flags)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with stable keys."""
        return {
            "version": CHECKS_VERSION,
            "japanese_share": self.japanese_share,
            "polite_share": self.polite_share,
            "register": self.register,
            "chars": self.chars,
            "sentences": self.sentences,
            "chars_per_token": self.chars_per_token,
            "leaks": list(self.leaks),
            "repeated_ngram_share": self.repeated_ngram_share,
            "repeats_previous": self.repeats_previous,
            "persona_breaks": list(self.persona_breaks),
            "flags": [flag.to_dict() for flag in self.flags],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckReport:
        """The inverse of :meth:`to_dict`; unknown keys are ignored, missing ones take defaults."""

        def optional_float(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            japanese_share=optional_float("japanese_share"),
            polite_share=optional_float("polite_share"),
            register=str(data.get("register", "unknown")),
            chars=int(data.get("chars", 0)),
            sentences=int(data.get("sentences", 0)),
            chars_per_token=optional_float("chars_per_token"),
            leaks=tuple(str(leak) for leak in data.get("leaks", ())),
            repeated_ngram_share=float(data.get("repeated_ngram_share", 0.0)),
            repeats_previous=bool(data.get("repeats_previous", False)),
            persona_breaks=tuple(str(item) for item in data.get("persona_breaks", ())),
            flags=tuple(
                CheckFlag(
                    code=str(f.get("code", "")),
                    label=str(f.get("label") or f.get("code", "")),
                    detail=str(f.get("detail", "")),
                )
                for f in data.get("flags", ())
                if isinstance(f, Mapping)
            ),
        )


def load_check_report(stored: Mapping[str, Any] | None) -> CheckReport | None:
    """The report as stored with a reply (:meth:`CheckReport.to_dict`, JSON in the database and
    on :class:`~kurabe.session.events.PaneFinished`); None when no checks ran (an empty mapping)."""
    if not stored:
        return None
    return CheckReport.from_dict(stored)
