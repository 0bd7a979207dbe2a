"""Building a comparison session's panes, for a new session or a stored one.

:meth:`~kurabe.session.comparison.ComparisonSession.create` and
:meth:`~kurabe.session.comparison.ComparisonSession.resume` call these: the panes' order (shuffled
for a blind session), one backend per profile (a backend that cannot even be built gives an unusable
pane that says why), the settings snapshot stored with each pane, and, on resume, each pane's
profile, latest reply and history rebuilt from the record.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from backends.base import Backend, Conversation, one_line
from backends.profiles import ModelProfile
from foundation.errors import KurabeError
from kurabe.core.pane_labels import PANE_LABELS
from kurabe.core.profile_snapshot import profile_from_snapshot, profile_snapshot
from kurabe.session.pane import Pane
from kurabe.session.turns import SessionTurns
from kurabe.store.records import SessionRecord
from kurabe.store.store import Store

BackendFactory = Callable[[ModelProfile], Backend]


class UnusableBackend(Backend):
    """Stands in for a backend that could not even be built (its pane shows why)."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def stream(self, conversation: Conversation) -> Any:  # pragma: no cover - never called
        raise KurabeError(self._reason)

    def unusable_reason(self) -> str | None:
        return self._reason


def build_backend(factory: BackendFactory, profile: ModelProfile) -> Backend:
    try:
        return factory(profile)
    except Exception as exc:
        message = str(exc) if isinstance(exc, KurabeError) else f"{type(exc).__name__}: {exc}"
        return UnusableBackend(one_line(f"cannot create backend: {message}"))


def pane_settings(profile: ModelProfile, backend: Backend) -> dict[str, Any]:
    """What is stored as a pane's settings: its profile and what its backend reports."""
    try:
        backend_settings = dict(backend.settings_snapshot())
    except Exception as exc:
        backend_settings = {"error": one_line(f"settings unavailable: {exc}")}
    return {"profile": profile_snapshot(profile), "backend": backend_settings}


def pane_order(count: int, *, blind: bool, shuffle_seed: int | None) -> list[int]:
    """The profiles' order on screen: as given, or shuffled for a blind session
    (``shuffle_seed`` makes it repeatable)."""
    order = list(range(count))
    if blind:
        rng: random.Random = (
            random.Random(shuffle_seed) if shuffle_seed is not None else random.SystemRandom()
        )
        rng.shuffle(order)
    return order


def add_panes(
    store: Store,
    session_id: int,
    profiles: Sequence[ModelProfile],
    order: Sequence[int],
    *,
    backend_factory: BackendFactory,
    secrets: Sequence[str],
) -> list[Pane]:
    """Build one backend per profile, in ``order``, and record each pane; labels A–F follow the
    display order."""
    panes: list[Pane] = []
    for position, source in enumerate(order):
        profile = profiles[source]
        backend = build_backend(backend_factory, profile)
        pane_id = store.sessions.add_pane(
            session_id,
            position,
            PANE_LABELS[position],
            profile_name=profile.name,
            backend=profile.backend,
            model=profile.model,
            settings=pane_settings(profile, backend),
            secrets=secrets,
        )
        panes.append(
            Pane(
                index=position,
                label=PANE_LABELS[position],
                profile=profile,
                backend=backend,
                db_id=pane_id,
            )
        )
    return panes


def stored_panes(
    record: SessionRecord,
    profiles: Mapping[str, ModelProfile],
    *,
    backend_factory: BackendFactory,
) -> list[Pane]:
    """A stored session's panes, each profile taken from ``profiles`` by name, else rebuilt
    from the stored snapshot."""
    panes: list[Pane] = []
    for row in record.panes:
        profile = profiles.get(row.profile_name)
        if profile is None:
            snapshot = row.settings.get("profile")
            if not isinstance(snapshot, Mapping):
                raise KurabeError(
                    f"session {record.session.id}: no model profile named {row.profile_name!r}"
                )
            profile = profile_from_snapshot(snapshot)
        panes.append(
            Pane(
                index=row.position,
                label=row.label,
                profile=profile,
                backend=build_backend(backend_factory, profile),
                db_id=row.id,
                header=row.header,
            )
        )
    return panes


def restore_turns(record: SessionRecord, panes: Sequence[Pane]) -> SessionTurns:
    """The turns and newest replies of a stored session, and each pane's latest reply, its
    error when that reply is not complete, and its history."""
    turns = SessionTurns()
    turns.restore(record)
    for pane in panes:
        last = turns.last_reply_of(pane.index)
        if last is not None:
            pane.last_reply_id = last.reply_id
            if last.status != "complete":
                rows = [r for r in record.replies if r.id == last.reply_id]
                pane.last_error = rows[0].error if rows else None
        pane.history = turns.history_before(pane.index, len(turns))
    return turns
