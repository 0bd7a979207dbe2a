"""One pane of a comparison session: a model profile, its backend and its own conversation.

:class:`~kurabe.session.comparison.ComparisonSession` owns the panes; the TUI reads their status,
header and last error. Importable from :mod:`kurabe.session.comparison` as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from backends.base import Backend, ChatMessage
from backends.profiles import ModelProfile
from foundation.errors import KurabeError

PaneStatus = Literal["loading", "ready", "busy", "failed", "unusable"]


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
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _cancel_requested: bool = field(default=False, repr=False)
    _entered: bool = field(default=False, repr=False)

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def unusable(self) -> bool:
        """Its backend cannot run (missing key, missing file …): :attr:`last_error` says why."""
        return self.status == "unusable"


def pane_at(panes: Sequence[Pane], index: int) -> Pane:
    """The pane at ``index``; a clear error when the session has no such pane."""
    if not 0 <= index < len(panes):
        raise KurabeError(f"no pane {index} (this session has {len(panes)})")
    return panes[index]
