"""Which stored session a command means: a number (``12``, ``#12``) or ``last`` (``latest``).

One parser for ``kurabe --resume``, ``kurabe export``, ``kurabe judge``, ``kurabe agreement``
and ``kurabe replay --resume``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundation.errors import KurabeError

if TYPE_CHECKING:
    from kurabe.store.store import Store


def resolve_session_id(value: str, store: Store, option: str = "SESSION") -> int:
    """The stored session ``value`` names; ``option`` is what the user typed it into."""
    word = value.strip()
    if word.lower() in ("last", "latest"):
        latest = store.sessions.latest_id()
        if latest is None:
            raise KurabeError(f"there is no saved session in {store.name}")
        return latest
    try:
        session_id = int(word.lstrip("#"))
    except ValueError:
        raise KurabeError(f"{option} takes a session number or 'last', got {value!r}") from None
    if not store.sessions.exists(session_id):
        raise KurabeError(f"no session {session_id} in {store.name}")
    return session_id
