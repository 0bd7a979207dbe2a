"""Full garbage collections are paced by the app: none in the middle of a stream."""

from __future__ import annotations

import gc

from tui.textual_internals import NEVER, GcPacer


def test_pacer_turns_automatic_full_collections_off_and_back_on() -> None:
    before = gc.get_threshold()
    pacer = GcPacer()
    pacer.start()
    try:
        assert gc.get_threshold()[2] == NEVER
        assert gc.get_threshold()[:2] == before[:2]
        pacer.last_collect -= 1000  # overdue: collects even while streaming
        assert pacer.tick(busy=True)
        assert not pacer.tick(busy=True)
    finally:
        pacer.stop()
    assert gc.get_threshold() == before
    assert not pacer.tick(busy=False)  # stopped: does nothing
