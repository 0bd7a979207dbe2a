"""Ratings that could not be saved yet: :class:`PendingWrites` keeps each rater's write (a
rating, a verdict, a pick) that met an unreachable database
(:class:`~kurabe.store.database.StoreUnavailable`) and runs it again later, in the order they
were given, so that no rating is ever silently dropped.

A write the database refuses for another reason (a :class:`~foundation.errors.KurabeError`) is
not kept: it is given back to the caller, who shows it. The app's rating keys go through one
:class:`PendingWrites` (``tui/rating_controller.py``), which tries the queue again every few
seconds and says in one line what is pending, saved or refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import KurabeError
from kurabe.store.database import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass
class PendingWrite:
    """One write still to save: what it is (``rating``, ``verdict``, ``pick``), the call that
    saves it, and what to do with its result once saved."""

    what: str
    call: Callable[[], Any]
    on_saved: Callable[[Any], None] | None = None


@dataclass
class Flushed:
    """What one :meth:`PendingWrites.flush` did."""

    saved: int = 0
    refused: list[str] = field(default_factory=list)
    """One line per write refused for good (not kept)."""
    left: int = 0
    reason: str = ""
    """Why writes are still pending (the database's one line), if any are."""


class PendingWrites:
    """The writes that wait for the database, oldest first."""

    def __init__(self) -> None:
        self._queue: list[PendingWrite] = []

    def __len__(self) -> int:
        return len(self._queue)

    def submit(
        self, what: str, call: Callable[[], Any], on_saved: Callable[[Any], None] | None = None
    ) -> Flushed:
        """Save now if the database answers (after any write still pending, so a later press
        never overtakes an earlier one), else keep it pending. A refusal is in the result."""
        self._queue.append(PendingWrite(what, call, on_saved))
        return self.flush()

    def flush(self) -> Flushed:
        """Try the pending writes in order; stop at the first the database cannot take."""
        result = Flushed()
        while self._queue:
            write = self._queue[0]
            try:
                value = write.call()
            except StoreUnavailable as exc:
                result.reason = str(exc)
                break
            except KurabeError as exc:
                self._queue.pop(0)
                result.refused.append(f"{write.what} not saved: {exc}")
                continue
            except Exception as exc:  # a bug, not the database: said, logged, never a crash
                log.exception("%s failed", write.what)
                self._queue.pop(0)
                result.refused.append(f"{write.what} not saved: {type(exc).__name__}: {exc}")
                continue
            self._queue.pop(0)
            result.saved += 1
            if write.on_saved is not None:
                write.on_saved(value)
        result.left = len(self._queue)
        return result
