"""One pane of a comparison session: a model profile, its backend and its own conversation.

:class:`~kurabe.session.comparison.ComparisonSession` owns the panes; the TUI reads their status,
header and last error. A pane holds its current reply stream (a
:class:`~kurabe.session.reply_stream.ReplyStream`, which owns its task and its state); the pane is
busy while that stream is not done. Importable from :mod:`kurabe.session.comparison` as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from backends.base import Backend, ChatMessage
from backends.profiles import ModelProfile
from foundation.errors import KurabeError

PaneStatus = Literal["loading", "ready", "busy", "failed", "unusable"]


class RunningReply(Protocol):
    """What a pane knows of its current reply stream: whether it is done, how to cancel it, and
    how to wait for it (:class:`~kurabe.session.reply_stream.ReplyStream` is the one kind)."""

    @property
    def done(self) -> bool:
        """True once the stream's task has ended (the reply is stored)."""
        ...

    def cancel(self) -> bool:
        """Stop the reply, keeping its partial text; False when it had already ended."""
        ...

    async def wait(self) -> None:
        """Return when the stream's task has ended."""
        ...


@dataclass
class Pane:
    """One column of the comparison: a model profile, its backend and its own conversation."""

    index: int
    label: str
    profile: ModelProfile
    backend: Backend
    db_id: int
    history: list[ChatMessage] = field(default_factory=list)
    status: PaneStatus = "loading"
    header: str = ""
    last_reply_id: int | None = None
    last_error: str | None = None
    stream: RunningReply | None = field(default=None, repr=False)
    """The pane's current (or latest) reply stream; the session sets it when it starts one."""

    @property
    def busy(self) -> bool:
        """A reply stream of this pane has started and not yet ended."""
        return self.stream is not None and not self.stream.done

    @property
    def unusable(self) -> bool:
        """Its backend cannot run (missing key, missing file …): :attr:`last_error` says why."""
        return self.status == "unusable"


def pane_at(panes: Sequence[Pane], index: int) -> Pane:
    """The pane at ``index``; a clear error when the session has no such pane."""
    if not 0 <= index < len(panes):
        raise KurabeError(f"no pane {index} (this session has {len(panes)})")
    return panes[index]
