"""Endpoints and their concurrency limits.

An endpoint is where a profile's requests go: a ``base_url`` (or the provider's own API) together
with the key sent there, named by a hash of the key and never the key itself; or, for a local
llama.cpp profile, the model file (every profile on one file shares its engine, whose batch
decodes that many sequences together).

:class:`AdaptiveLimit` is one endpoint's limit: at most :attr:`AdaptiveLimit.limit` requests at
once. A 429 lowers it (multiplicative decrease, to what the endpoint was serving when it said
no, never below 1); every ``limit`` successes in a row raise it by one, up to the ceiling
(additive increase), as promptfoo's scheduler does.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from backends.api_errors import key_fingerprint, public_url
from backends.profiles import ModelProfile

DEFAULT_API_LIMIT = 4
"""Requests at once to a hosted API when the profile does not say."""
DEFAULT_SERVER_LIMIT = 4
"""Requests at once to a ``base_url`` server (vLLM, llama-server …) when the profile does not
say."""
DEFAULT_LOCAL_LIMIT = 8
"""A local file's limit until its engine is loaded and says how many sequences it decodes."""

_PROVIDER_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


@dataclass(frozen=True)
class Endpoint:
    key: str
    """What identifies it (URL and key hash; or the local file)."""
    label: str
    """How the progress display names it."""
    limit: int
    """Its ceiling: the profile's ``concurrency``, or the default."""
    local: bool = False
    explicit: bool = False
    """True when a profile set the limit (a local engine's capacity does not replace it)."""


def endpoint_of(profile: ModelProfile) -> Endpoint:
    """The endpoint ``profile``'s requests go to, with its ceiling."""
    if profile.is_local:
        path = profile.model_path
        where = str(path.resolve()) if path is not None else profile.model
        label = os.path.basename(where) or where
        limit = profile.concurrency or DEFAULT_LOCAL_LIMIT
        return Endpoint(
            f"local:{where}", label, limit, local=True, explicit=profile.concurrency is not None
        )
    url = public_url(profile.base_url or _PROVIDER_URLS.get(profile.backend, profile.backend))
    key = profile.api_key() or ""
    default = DEFAULT_SERVER_LIMIT if profile.base_url else DEFAULT_API_LIMIT
    return Endpoint(
        f"{url}#{key_fingerprint(key)[:8]}",
        url.split("://", 1)[-1],
        profile.concurrency or default,
        explicit=profile.concurrency is not None,
    )


class AdaptiveLimit:
    """One endpoint's concurrency: :meth:`slot` waits for room, then holds one place."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.ceiling = endpoint.limit
        self.limit = endpoint.limit
        self.in_flight = 0
        self.peak = 0
        self.rate_limited = 0
        """429s seen."""
        self._successes = 0
        self._room: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._room is None:
            self._room = asyncio.Condition()
        return self._room

    def set_ceiling(self, ceiling: int) -> None:
        """A local engine's capacity, known once it is loaded (a profile's setting wins)."""
        if self.endpoint.explicit or ceiling < 1:
            return
        self.ceiling = ceiling
        self.limit = ceiling

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        room = self._condition()
        async with room:
            await room.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            async with room:
                self.in_flight -= 1
                room.notify_all()

    def succeeded(self) -> None:
        """Additive increase: one more place after ``limit`` successes in a row."""
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.ceiling:
            self.limit += 1
            self._successes = 0
            if self._room is not None:
                asyncio.get_running_loop().create_task(self._wake())

    def throttled(self, in_flight_others: int) -> None:
        """Multiplicative decrease after a 429: to what the endpoint was serving besides the
        refused request, at most half way down from the limit, and at least one below it."""
        self.rate_limited += 1
        self._successes = 0
        lowered = max(in_flight_others, self.limit // 2)
        self.limit = max(1, min(self.limit - 1, lowered))

    async def _wake(self) -> None:
        room = self._condition()
        async with room:
            room.notify_all()


class Endpoints:
    """Every endpoint of a run, by key, each with its :class:`AdaptiveLimit`."""

    def __init__(self) -> None:
        self.limits: dict[str, AdaptiveLimit] = {}

    def limit_for(self, profile: ModelProfile) -> AdaptiveLimit:
        endpoint = endpoint_of(profile)
        limit = self.limits.get(endpoint.key)
        if limit is None:
            limit = self.limits[endpoint.key] = AdaptiveLimit(endpoint)
        elif endpoint.explicit and not limit.endpoint.explicit:
            limit.endpoint = endpoint
            limit.ceiling = limit.limit = endpoint.limit
        return limit
