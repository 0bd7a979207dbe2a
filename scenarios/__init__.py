"""Scenarios: the user's scripted lines, turn by turn. Bundled TOML files live beside this module.

:class:`Scenario` is the validated form; the loader (``scenarios.loader``) reads bundled files, the
user's own directory and explicit paths, with errors that name file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Turn:
    text: str
    expect: str | None = None
    """What a good reply knows or does, shown to the rater on request."""


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    title: str
    persona: str
    """A persona id."""
    turns: tuple[Turn, ...]
    tags: tuple[str, ...] = ()
    notes: str = ""
    source: str = "built-in"
