"""Who shares the CPU: whether a backend's model runs on a GPU (:func:`runs_on_gpu`), which panes
of a turn wait for the CPU and in which order (:func:`cpu_order`), and the turnstile that lets
local panes on the same model file decode together while the others wait
(:class:`ComputeTurnstile`). See the Scheduling section of :mod:`kurabe.session.comparison`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from backends.base import Backend
from kurabe.session.pane import Pane


def runs_on_gpu(backend: Backend) -> bool:
    """True when the backend's model runs on a GPU and leaves the CPU to others: it does not
    :attr:`~backends.base.Backend.shares_compute`."""
    return not backend.shares_compute


def model_key(pane: Pane) -> str:
    """The model file a pane decodes, which the turnstile groups local panes by: what its
    backend declares (:attr:`~backends.base.Backend.model_key`), else the profile's model."""
    return pane.backend.model_key or pane.profile.model


def cpu_order(
    panes: Sequence[Pane], turn: int, *, rotate: bool, parallel_local: bool
) -> tuple[list[Pane], list[Pane]]:
    """(the panes that run beside everything, the local panes that take turns on the CPU).

    The second list is grouped by model file; with ``rotate`` the files' order is turned by one
    every turn, so no model always goes first."""
    serial = [
        p for p in panes if p.profile.is_local and not parallel_local and not runs_on_gpu(p.backend)
    ]
    if rotate and serial:
        files = list(dict.fromkeys(model_key(p) for p in serial))
        shift = turn % len(files)
        files = files[shift:] + files[:shift]
        serial = [p for key in files for p in serial if model_key(p) == key]
    concurrent = [p for p in panes if p not in serial]
    return concurrent, serial


class ComputeTurnstile:
    """Local panes on the CPU: those on the file being decoded go in together, others wait.

    Holders of the current key enter at once (the engine batches them); a pane on another file
    waits until every holder has left. Waiters enter in the order they asked.
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._holders = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._holders == 0 or self._key == key)
            self._key = key
            self._holders += 1
        try:
            yield
        finally:
            async with self._changed:
                self._holders -= 1
                if self._holders == 0:
                    self._key = None
                self._changed.notify_all()
