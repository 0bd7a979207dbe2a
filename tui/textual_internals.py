"""Every place the TUI reaches past Textual's public API, and why, in one module.

Each workaround below buys key-response or per-token time in the TUI bench
(``bench/bench_tui.py``: six panes streaming 300 tokens/s each). Every one has a fallback, so a
Textual release that moves what it touches makes the app slower, never broken, and
``tests/test_textual_internals.py`` fails naming the workaround (:func:`missing_internals`).
Checked on Textual 8.2.8.

1. **Focus without a full repaint** (:func:`focused_without_repaint`, ``Screen.focused``
   redefined). Textual's ``Screen.focused`` repaints the whole screen; a focus change only needs
   the two widgets that lose and gain it redrawn (their styles change). Without it a focus move
   while six panes stream costs one full-screen update (tens of ms) instead of two header lines.
2. **Paint a key's effect at once** (:func:`paint_pending_changes`: ``App._batch_count``,
   ``Screen._dirty_widgets``, ``_layout_required``, ``_scroll_required``, ``_repaint_required``,
   ``Screen._on_timer_update``). Textual's update timer ticks on a fixed grid and skips ahead
   when a tick was late, so after a long update the next can be two frames (33 ms) away; for a
   key, the same update the timer would run is run on the next idle. Fallback: Textual's own
   timer (a frame or two later).
3. **A footer that skips an unchanged recompose** (:func:`mark_bindings_ready`:
   ``Footer._bindings_ready``). Textual's Footer recomposes (a whole-screen layout) on every
   focus move; ours skips it when the keys shown are the same, and must then tell the footer its
   bindings are ready, as the recompose would have. Fallback: the footer recomposes.
4. **Scroll limits without a layout** (:func:`set_scroll_limits`: ``set_reactive`` on
   ``ScrollView.virtual_size`` and ``ScrollBar.window_virtual_size``/``window_size``). Setting
   these reactives lays out the whole screen for every new line of a streaming reply; nothing
   outside the pane moves (the scrollbar is always shown), so only the limits are updated. This
   is what keeps the per-token cost flat (the 4000/100 ratio near 1). Fallback: the reactives are
   set the public way.
5. **Full garbage collections at moments of our choosing** (:class:`GcPacer`). Not Textual's
   internals but a process-wide switch made for Textual's sake: rendering makes many short-lived
   objects, some in cycles, so CPython's automatic full (generation 2) collections come every
   second or so while six panes stream, each a pause of tens of ms. While the app runs, automatic
   full collections are off (young generations still collect, which frees most garbage) and the
   app collects fully when no stream runs, and at least every :data:`MAX_INTERVAL_S` seconds.

What each gains, measured with ``bench/bench_tui.py --without NAME`` (the workaround turned off,
its fallback or Textual's own way in its place) against the same commit with all of them, run
one after another on the same 2 shared CPU cores (so noisy: two rounds each, Textual 8.2.8):

=================  ======================  ====================  ================================
run                key → painted p95 (ms)  key → painted p50     other figure that moved
=================  ======================  ====================  ================================
all five           21.0, 18.4, 12.0, 14.9  6.4, 7.3, 5.9, 5.2    key → action p50 1.2 ms
without 1 focus    42.7, 29.5              26.7, 18.3            every focus move repaints all
without 2 paint    34.2, 33.5              9.3, 7.8
without 3 footer   30.0, 31.7              10.8, 16.0            key → action p50 6.6, 12.2 ms;
                                                                 loop lag p50 13.6 ms (0.7)
without 4 scroll   29.2, 28.4              10.1, 8.9             per-token UI cost 4000/1000
                                                                 ratio 1.19, 2.15 (1.26, 1.19);
                                                                 key → action p50 6.0, 1.5 ms
without 5 gc       15.3, 27.1, 11.5, 18.3  7.7, 6.1, 5.3, 5.3    19 full collections while six
                                                                 panes stream, up to 62–66 ms
                                                                 each (with it: none while
                                                                 streaming, one of ~130 ms after
                                                                 the turn)
=================  ======================  ====================  ================================

Every one still shows a gain, so none was dropped. The pacing of garbage collection (5) does not
show in the p95 of a 26-second run (a key meets one of the 19 pauses about 4% of the time) but
in the pauses themselves, each longer than the 50 ms target.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from textual.app import App
from textual.geometry import Size
from textual.reactive import Reactive
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.widget import Widget
from textual.widgets import Footer

# -- 1. focus without a full repaint -----------------------------------------------------------


def focused_without_repaint() -> Reactive[Widget | None]:
    """A ``focused`` reactive for a Screen subclass: Textual's, without ``repaint=True``."""
    return Reactive(None, repaint=False)


# -- 2. paint a key's effect at once -----------------------------------------------------------


def paint_pending_changes(screen: Screen[Any]) -> None:
    """Run Textual's screen update now if anything is waiting for it.

    Raises AttributeError when Textual moved what this touches; the caller then falls back to
    Textual's frame timer."""
    if (
        screen.is_current
        and not screen.app._batch_count
        and (
            screen._dirty_widgets
            or screen._layout_required
            or screen._scroll_required
            or screen._repaint_required
        )
    ):
        screen._on_timer_update()


# -- 3. a footer that skips an unchanged recompose ----------------------------------------------


def mark_bindings_ready(footer: Footer) -> bool:
    """What Footer's recompose would have set, for a recompose that was skipped.

    False when Footer no longer has the flag: the caller then lets the footer recompose."""
    if not hasattr(footer, "_bindings_ready"):
        return False
    footer._bindings_ready = True
    return True


# -- 4. scroll limits without a layout --------------------------------------------------------


def set_scroll_limits(view: ScrollView, size: Size, bar: ScrollBar, height: int) -> None:
    """Set ``view``'s virtual size and its vertical ``bar``'s window without a layout.

    Fallback when Textual moved these: set the reactives the public way (a layout per line)."""
    try:
        view.set_reactive(ScrollView.virtual_size, size)
        bar.set_reactive(ScrollBar.window_virtual_size, size.height)
        bar.set_reactive(ScrollBar.window_size, height)
    except (AttributeError, TypeError):
        view.virtual_size = size


# -- 5. full garbage collections at moments of our choosing -------------------------------------

MAX_INTERVAL_S = 60.0
"""Even while streaming, collect at least this often (one short pause a minute)."""
NEVER = 1_000_000_000


class GcPacer:
    """Turns automatic full collections off while started; collects when asked or due."""

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


# -- what the installed Textual must still have --------------------------------------------------

_SCREEN_ATTRIBUTES = (
    "_dirty_widgets",
    "_layout_required",
    "_scroll_required",
    "_repaint_required",
    "_on_timer_update",
)


def missing_internals(app: App[Any], footer: Footer) -> list[str]:
    """For each workaround whose Textual internals are gone: 'workaround: what is missing'.

    ``app`` must be running (the attributes are made in ``__init__`` and on mount)."""
    missing: list[str] = []
    if not isinstance(Screen.__dict__.get("focused"), Reactive):
        missing.append("focus without a full repaint: Screen.focused is no longer a Reactive")
    if not hasattr(app, "_batch_count"):
        missing.append("paint a key's effect at once: App._batch_count")
    for name in _SCREEN_ATTRIBUTES:
        if not hasattr(app.screen, name):
            missing.append(f"paint a key's effect at once: Screen.{name}")
    if not hasattr(footer, "_bindings_ready"):
        missing.append("a footer that skips an unchanged recompose: Footer._bindings_ready")
    for owner, name in (
        (ScrollView, "virtual_size"),
        (ScrollBar, "window_virtual_size"),
        (ScrollBar, "window_size"),
    ):
        if not isinstance(getattr(owner, name, None), Reactive):
            missing.append(f"scroll limits without a layout: {owner.__name__}.{name} reactive")
    if not hasattr(Widget, "set_reactive"):
        missing.append("scroll limits without a layout: DOMNode.set_reactive")
    return missing
