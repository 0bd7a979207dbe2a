"""Never an API key or a credential in the database or an export: :func:`scrub_secrets` drops
keys that look like credentials and every occurrence of the current key values
(:func:`env_secrets`), and the user info and secret query values of URLs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from backends.api_errors import scrub_urls

_SECRET_KEY_WORDS = ("api_key", "apikey", "secret", "password", "token_value", "authorization")


def scrub_secrets(value: Any, secrets: Iterable[str] = (), *, urls: bool = True) -> Any:
    """Return ``value`` (JSON-like) with keys that look like credentials dropped and every
    occurrence of one of ``secrets`` replaced by ``***``. Applied to every settings snapshot.

    ``urls``: also drop URL credentials from every string (:func:`scrub_urls`); off only for
    text that must stay exact (a model's reply may quote a URL)."""
    secret_list = [s for s in secrets if s and len(s) >= 4]

    def clean(item: Any) -> Any:
        if isinstance(item, Mapping):
            out: dict[str, Any] = {}
            for key, sub in item.items():
                lowered = str(key).lower()
                if any(word in lowered for word in _SECRET_KEY_WORDS) and not lowered.endswith(
                    "_env"
                ):
                    continue
                out[str(key)] = clean(sub)
            return out
        if isinstance(item, (list, tuple)):
            return [clean(sub) for sub in item]
        if isinstance(item, str):
            for secret in secret_list:
                if secret in item:
                    item = item.replace(secret, "***")
            return scrub_urls(item) if urls else item
        if item is None or isinstance(item, (bool, int, float)):
            return item
        if isinstance(item, Path):
            return clean(str(item))
        return clean(str(item))

    return clean(value)


def env_secrets(names: Iterable[str | None]) -> list[str]:
    """The current values of the environment variables ``names`` (the keys never to store)."""
    values = []
    for name in names:
        if name:
            value = os.environ.get(name, "").strip()
            if value:
                values.append(value)
    return values
