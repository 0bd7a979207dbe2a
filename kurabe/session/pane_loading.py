"""Loading one pane's backend before its first reply, or finding that it cannot run.

A backend that says why it cannot run (missing key, missing GGUF) or fails to load makes its
pane unusable: recorded as a session event and reported as
:class:`~kurabe.session.events.PaneFailed` with ``reply_id=None``. A loaded pane stores its header
and the settings its backend now reports (quantization, GPU layers …) and is reported ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from backends.base import one_line
from foundation.errors import KurabeError
from kurabe.session.events import EventListeners, PaneFailed, PaneLoading, PaneReady
from kurabe.session.pane import Pane
from kurabe.session.setup import pane_settings
from kurabe.store.store import Store


async def load_pane(
    pane: Pane,
    *,
    store: Store,
    session_id: int,
    secrets: Sequence[str],
    events: EventListeners,
) -> None:
    """Load ``pane``'s backend (a local model loads off the loop, reporting its progress)."""
    try:
        reason = pane.backend.unusable_reason()
    except Exception as exc:
        reason = one_line(f"{type(exc).__name__}: {exc}")
    if reason:
        _mark_unusable(pane, reason, store=store, session_id=session_id, events=events)
        return
    events.emit(PaneLoading(pane.index, f"loading {pane.profile.name}…"))

    def progress(message: str) -> None:
        events.emit_threadsafe(PaneLoading(pane.index, one_line(message)))

    try:
        await pane.backend.load(progress)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        reason = getattr(exc, "reason", None)
        if isinstance(reason, str) and reason:
            message = reason
        elif isinstance(exc, KurabeError):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}"
        _mark_unusable(
            pane,
            one_line(f"load failed: {message}"),
            store=store,
            session_id=session_id,
            events=events,
        )
        return
    try:
        pane.header = pane.backend.header() or pane.profile.name
    except Exception:
        pane.header = pane.profile.name
    store.sessions.update_pane(
        pane.db_id,
        settings=pane_settings(pane.profile, pane.backend),
        header=pane.header,
        secrets=secrets,
    )
    pane.status = "ready"
    events.emit(PaneReady(pane.index, pane.header))


def _mark_unusable(
    pane: Pane, reason: str, *, store: Store, session_id: int, events: EventListeners
) -> None:
    pane.status = "unusable"
    pane.last_error = reason
    store.sessions.add_event(session_id, "pane_unusable", {"pane": pane.index, "reason": reason})
    events.emit(PaneFailed(pane.index, None, reason, retryable=False))
