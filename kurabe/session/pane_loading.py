"""Loading one pane's backend before its first reply, or finding that it cannot run.

A backend that says why it cannot run (missing key, missing GGUF) or fails to load makes its
pane unusable: recorded as a session event and reported as
:class:`~kurabe.session.events.PaneFailed` with ``reply_id=None``. A loaded pane stores its header
and the settings its backend now reports (quantization, GPU layers …) and is reported ready.
A header says how many panes share the pane's model (``shared by 2``); once every pane has
loaded, :func:`refresh_headers` shows again a header that has changed since.
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
    pane.header = _header_of(pane)
    store.sessions.update_pane(
        pane.db_id,
        settings=pane_settings(pane.profile, pane.backend),
        header=pane.header,
        secrets=secrets,
    )
    pane.status = "ready"
    events.emit(PaneReady(pane.index, pane.header))


def refresh_headers(
    panes: Sequence[Pane], *, store: Store, secrets: Sequence[str], events: EventListeners
) -> None:
    """Store and show again (:class:`~kurabe.session.events.PaneReady`) the header of every ready
    pane whose backend now describes it otherwise than when it loaded."""
    for pane in panes:
        if pane.status != "ready":
            continue
        header = _header_of(pane)
        if header != pane.header:
            pane.header = header
            store.sessions.update_pane(pane.db_id, header=header, secrets=secrets)
            events.emit(PaneReady(pane.index, header))


def _header_of(pane: Pane) -> str:
    """The backend's description, and how many backends share its model when more than one."""
    try:
        header = pane.backend.header() or pane.profile.name
        holders = pane.backend.shared_by
    except Exception:
        return pane.profile.name
    return f"{header} · shared by {holders}" if holders > 1 else header


def _mark_unusable(
    pane: Pane, reason: str, *, store: Store, session_id: int, events: EventListeners
) -> None:
    pane.status = "unusable"
    pane.last_error = reason
    store.sessions.add_event(session_id, "pane_unusable", {"pane": pane.index, "reason": reason})
    events.emit(PaneFailed(pane.index, None, reason, retryable=False))
