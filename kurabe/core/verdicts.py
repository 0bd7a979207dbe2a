"""The verdict on one pane's whole conversation: Great / OK / subpar / Can't stay in character,
the wording people used in hand-written comparisons (README, glossary). The stored words, their
labels and the parsing of either live here, once."""

from __future__ import annotations

from foundation.errors import KurabeError

VERDICTS = ("great", "ok", "subpar", "out-of-character")
"""The stored words, best first."""
VERDICT_LABELS = {
    "great": "Great",
    "ok": "OK",
    "subpar": "subpar",
    "out-of-character": "Can't stay in character",
}
"""What people read, in the hand-written comparisons' wording."""


def verdict_label(verdict: str) -> str:
    """The label people read for a stored verdict (an unknown word as it is)."""
    return VERDICT_LABELS.get(verdict, verdict)


def normalize_verdict(verdict: str) -> str:
    """Accept the stored words and their labels ("Great", "Can't stay in character")."""
    word = verdict.strip().lower().replace("’", "'")
    for key, label in VERDICT_LABELS.items():
        if word in (key, label.lower()):
            return key
    if word in ("cant-stay-in-character", "can't stay in character", "ooc"):
        return "out-of-character"
    raise KurabeError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
