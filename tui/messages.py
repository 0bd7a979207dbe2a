"""Messages the comparison screen's parts send up to it (messages up, attributes down): they live
here, apart from both sender and receiver, so neither has to import the other."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class PickMade(Message):
    """The rater picked the best reply of ``turn`` (a replay waiting for it goes on)."""

    turn: int


@dataclass
class Revealed(Message):
    """The model names of a blind session are now shown."""
