"""Full garbage collections at moments of our choosing, not in the middle of a stream.

Textual renders by making many short-lived objects (strips, caches) some of which form reference
cycles, so CPython's automatic full (generation 2) collections come every second or so while six
panes stream, and each one walks every tracked object of the app: a pause of tens of
milliseconds, long enough to miss the 50 ms key-response target. While the app runs, automatic
full collections are turned off (the young generations still collect as usual, which frees most
garbage) and the app asks for a full collection when no stream is running — right after a turn,
or when idle — and at least every :data:`MAX_INTERVAL_S` seconds in any case, so memory stays
bounded even through a long replay.
"""

from __future__ import annotations

import gc
import time

MAX_INTERVAL_S = 60.0
"""Even while streaming, collect at least this often (one short pause a minute)."""
NEVER = 1_000_000_000


class GcPacer:
    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self.last_collect = time.monotonic()

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, NEVER)
            self.last_collect = time.monotonic()

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def collect(self) -> None:
        gc.collect()
        self.last_collect = time.monotonic()

    def tick(self, busy: bool) -> bool:
        """Call now and then: collects when idle and garbage has piled up (as many young
        collections as would have triggered a full one), or when the last one is too old."""
        if not self.active or self._saved is None:
            return False
        if time.monotonic() - self.last_collect > MAX_INTERVAL_S:
            self.collect()
            return True
        if not busy and gc.get_count()[2] >= self._saved[2]:
            self.collect()
            return True
        return False
