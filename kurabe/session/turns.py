"""A session's turns in memory: what the user said and each pane's newest reply to each turn.

The store keeps every version of every reply; :class:`SessionTurns` keeps only the newest one per
(pane, turn), which is what a pane's history is built from. It also answers where a scenario
stands: which scripted line a turn played and which one comes next.

The rule after a failure
    A pane's conversation stops at a turn whose newest reply failed (an error, a dropped
    connection, a stall, a process that died while it streamed): the later turns are not sent
    to that pane (each is recorded ``blocked``, see :meth:`SessionTurns.stopped_at`), and
    retrying or resuming starts again from the failed turn. So a pane is never sent a history
    with a hole in it or a partial text as its own answer. A reply the user cancelled is kept as
    they saw it, cut off, and the conversation goes on from it (their choice, in the app).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backends.base import ChatMessage
from kurabe.store.records import SessionRecord
from scenarios import Scenario


@dataclass
class ReplyState:
    """The newest version of one pane's reply to one turn."""

    reply_id: int
    version: int
    text: str
    status: str


class SessionTurns:
    """The user's turns in order, with their store ids and scenario lines, and the newest reply
    of each pane to each of them."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.ids: list[int] = []
        self.scenario_turns: list[int | None] = []
        self._replies: dict[tuple[int, int], ReplyState] = {}

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str, turn_id: int, scenario_turn: int | None) -> None:
        self.texts.append(text)
        self.ids.append(turn_id)
        self.scenario_turns.append(scenario_turn)

    def restore(self, record: SessionRecord) -> None:
        """Take the turns and the newest version of every reply from a stored session."""
        for turn_row in record.turns:
            self.add(turn_row.text, turn_row.id, turn_row.scenario_turn)
        for key, reply in record.latest_replies().items():
            self._replies[key] = ReplyState(reply.id, reply.version, reply.text, reply.status)

    # -- replies ----------------------------------------------------------------------------

    def reply(self, pane: int, turn: int) -> ReplyState | None:
        return self._replies.get((pane, turn))

    def set_reply(self, pane: int, turn: int, state: ReplyState) -> None:
        self._replies[(pane, turn)] = state

    def reply_status(self, pane: int, turn: int) -> str | None:
        state = self._replies.get((pane, turn))
        return None if state is None else state.status

    def last_reply_of(self, pane: int) -> ReplyState | None:
        """The newest reply of a pane to its latest turn that has one."""
        mine = [(t, state) for (p, t), state in self._replies.items() if p == pane]
        return max(mine, key=lambda item: item[0])[1] if mine else None

    def history_before(self, pane: int, turn: int) -> list[ChatMessage]:
        """A pane's conversation before ``turn``: each earlier turn it answered, up to the
        first one it did not (see the module docstring: a failed reply's partial text is never
        sent as the pane's answer)."""
        messages: list[ChatMessage] = []
        for index in range(turn):
            state = self._replies.get((pane, index))
            if state is None or not _continues(state):
                break
            if state.text:
                messages.append(ChatMessage("user", self.texts[index]))
                messages.append(ChatMessage("assistant", state.text))
        return messages

    def stopped_at(self, pane: int, turn: int) -> int | None:
        """The earlier turn where a pane's conversation stopped (its newest reply there failed,
        was blocked or never came), so ``turn`` must not be sent to it; None to go on."""
        for index in range(turn):
            state = self._replies.get((pane, index))
            if state is None or not _continues(state):
                return index
        return None

    def first_unanswered_turn(self, pane: int) -> int | None:
        """The first turn whose newest reply from ``pane`` is not complete (None: all are)."""
        for index in range(len(self.texts)):
            if self.reply_status(pane, index) != "complete":
                return index
        return None

    def first_incomplete_turn(self, usable_panes: Iterable[int]) -> int | None:
        """The first turn where one of ``usable_panes`` has no completed reply."""
        panes = list(usable_panes)
        for turn in range(len(self.texts)):
            for pane in panes:
                if self.reply_status(pane, turn) != "complete":
                    return turn
        return None

    # -- the scenario cursor ----------------------------------------------------------------

    def scenario_turn_of(self, turn: int) -> int | None:
        """The scenario turn that user turn ``turn`` played, or None for a free-typed line."""
        if 0 <= turn < len(self.scenario_turns):
            return self.scenario_turns[turn]
        return None

    def next_scenario_turn(self, scenario: Scenario | None) -> int | None:
        """Index of the next scripted turn not yet sent (None when done or no scenario)."""
        if scenario is None:
            return None
        sent = [t for t in self.scenario_turns if t is not None]
        upcoming = max(sent) + 1 if sent else 0
        return upcoming if upcoming < len(scenario.turns) else None


CONTINUES_AFTER = ("complete", "cancelled")
"""The newest reply statuses a pane's conversation goes on after: an answer, or what the user
cancelled and saw. Any other (failed, interrupted, blocked, still streaming) stops it."""


def _continues(state: ReplyState) -> bool:
    return state.status in CONTINUES_AFTER
