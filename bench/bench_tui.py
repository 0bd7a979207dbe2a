"""Benchmark: the app with 6 panes streaming fast, long Japanese replies.

Runs the real app headless (``App.run_test``) on a real
:class:`~kurabe.session.comparison.ComparisonSession` whose six panes are fed by a local source at
``--rate`` tokens/s each (Japanese tokens of 1–3 characters, paragraphs of ~150 characters), and
measures:

1. **Key → effect latency while streaming**: a key event (``right``: focus the next pane) is put
   in the app's input queue exactly as the terminal driver does; the time until its action has
   run, and until the next screen update after it has been composed. Target: p95 ≤ 50 ms.
2. **Event-loop lag**: how late a 10 ms timer fires while the panes stream.
3. **Rendering cost per token at reply lengths 100, 1,000 and 4,000 tokens**: the CPU time spent
   in the panes' flush (buffer → wrapped lines) and in Textual's screen updates (layout,
   compositor, ``render_line``), divided by the tokens that arrived, in a window just before each
   length (80 tokens before 100, 250 before 1000 … 4000); and the whole process's CPU time per
   token in the same windows. Target: flat — the
   4000/100 ratio near 1, i.e. the cost per token does not grow with the reply.

    .venv/bin/python bench/bench_tui.py              # 6 panes, 300 tok/s, 4000 tokens
    .venv/bin/python bench/bench_tui.py --quick      # 1000 tokens (CI smoke run)
    .venv/bin/python bench/bench_tui.py --without scroll   # one workaround of
                                                           # tui/textual_internals.py turned off
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events
from textual.screen import Screen

from backends.base import Backend, Conversation, StreamDone, StreamEvent, TextDelta
from backends.profiles import ModelProfile

JAPANESE_TOKENS = (
    "うん", "、", "大好き", "だよ", "！", "宮崎", "駿", "の", "作品", "は", "マジ", "で", "最高",
    "だ", "よね", "。", "ナウシカ", "と", "か", "トトロ", "とか", "何回", "見て", "も", "泣け",
    "る", "ん", "な", "あ", "鬼滅", "刃", "紅蓮", "華", "って", "曲", "を", "LiSA", "が", "歌",
    "って", "る", "チェン", "ソー", "マン", "米津", "玄師", "KICK", " BACK", "アニメ", "化",
)  # fmt: skip


class FastSource(Backend):
    """Streams ``tokens`` Japanese tokens at ``rate`` tokens/s, paced by the clock."""

    def __init__(self, tokens: int, rate: float, seed: int) -> None:
        self.tokens = tokens
        self.rate = rate
        self.random = random.Random(seed)
        self.sent = 0
        """Tokens of the current reply streamed so far."""

    def header(self) -> str:
        return f"bench · {self.rate:.0f} tok/s"

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        self.sent = 0
        since_break = 0
        while self.sent < self.tokens:
            due = min(self.tokens, int((time.perf_counter() - started) * self.rate) + 1)
            while self.sent < due:
                token = self.random.choice(JAPANESE_TOKENS)
                since_break += len(token)
                if since_break > 150:
                    token += "\n\n"
                    since_break = 0
                yield TextDelta(token)
                self.sent += 1
            await asyncio.sleep(0.005)
        total = time.perf_counter() - started
        yield StreamDone("stop", 50, self.tokens, 0.01, total, context_size=32768)


@dataclass
class Costs:
    """Seconds spent in the UI while a reply's length was in a window."""

    flush_s: float = 0.0
    screen_s: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    tokens: int = 0


@dataclass
class Probe:
    """Timings collected by the wrappers installed on the app."""

    costs: dict[int, Costs] = field(default_factory=dict)
    window: int | None = None
    key_sent: float | None = None
    key_handled: float | None = None
    handled_latencies: list[float] = field(default_factory=list)
    painted_latencies: list[float] = field(default_factory=list)
    loop_lags: list[float] = field(default_factory=list)
    full_collections: list[float] = field(default_factory=list)
    """How long each full (generation 2) garbage collection of the run took."""
    _collect_started: float = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._collect_started = time.perf_counter()
        else:
            self.full_collections.append(time.perf_counter() - self._collect_started)

    def current(self) -> Costs | None:
        return None if self.window is None else self.costs.setdefault(self.window, Costs())


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(probe: Probe, attribute: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the CPU time ``func`` takes (thread time: not inflated when another process has the
    CPU) to the current window's ``attribute``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            costs = probe.current()
            if costs is not None:
                setattr(costs, attribute, getattr(costs, attribute) + time.thread_time() - started)

    return wrapper


async def run(
    tokens: int,
    rate: float,
    panes: int,
    windows: list[int],
    size: tuple[int, int],
    latency_tokens: int,
) -> Probe:
    os.environ.setdefault("KURABE_HOME", tempfile.mkdtemp(prefix="kurabe-bench-"))
    from kurabe.session.comparison import ComparisonSession
    from kurabe.session.launch import AppContext
    from kurabe.store.store import Store
    from personas.loader import load_personas
    from scenarios.loader import load_scenarios
    from tui.app import KurabeApp
    from tui.main_screen import MainScreen
    from tui.pane_strip import PaneStrip

    names = [f"pane-{index}" for index in range(panes)]
    profiles = {name: ModelProfile(name=name, backend="openai", model=name) for name in names}
    sources = {name: FastSource(tokens, rate, seed) for seed, name in enumerate(names)}
    store = Store(Path(os.environ["KURABE_HOME"]) / "bench.sqlite3")
    personas = load_personas()
    context = AppContext(
        store=store,
        profiles=profiles,
        personas=personas,
        scenarios=load_scenarios(personas=personas),
        backend_factory=lambda profile: sources[profile.name],
        rater="bench",
    )
    session = ComparisonSession.create(
        store,
        personas.get("anime-fan"),
        list(profiles.values()),
        rater="bench",
        backend_factory=context.backend_factory,
    )
    app = KurabeApp(context, session)
    probe = Probe()

    # Instrument: the panes' flush, Textual's screen updates, the key's action, painting.
    # (Class attributes, restored at the end: Textual's update timer holds bound methods.)
    originals = (PaneStrip._flush_pane, Screen._on_timer_update, MainScreen.action_move_focus)
    PaneStrip._flush_pane = timed(probe, "flush_s", PaneStrip._flush_pane)  # type: ignore[method-assign]
    Screen._on_timer_update = timed(probe, "screen_s", Screen._on_timer_update)  # type: ignore[method-assign]
    original_move = MainScreen.action_move_focus

    def move_focus(self: MainScreen, step: int) -> None:
        original_move(self, step)
        if probe.key_sent is not None and probe.key_handled is None:
            probe.key_handled = time.perf_counter()
            probe.handled_latencies.append(probe.key_handled - probe.key_sent)

    MainScreen.action_move_focus = move_focus  # type: ignore[method-assign]
    original_display = app._display

    def display(screen: Screen[Any], renderable: Any) -> None:
        original_display(screen, renderable)
        if probe.key_handled is not None and probe.key_sent is not None:
            probe.painted_latencies.append(time.perf_counter() - probe.key_sent)
            probe.key_sent = probe.key_handled = None

    app._display = display  # type: ignore[method-assign]

    gc.callbacks.append(probe.on_gc)
    try:
        await drive(app, session, sources, probe, windows, size, latency_tokens)
    finally:
        gc.callbacks.remove(probe.on_gc)
        PaneStrip._flush_pane, Screen._on_timer_update, MainScreen.action_move_focus = originals  # type: ignore[method-assign]
        store.close()
    print_results(probe, tokens, rate, panes, size)
    return probe


async def drive(
    app: Any,
    session: Any,
    sources: dict[str, FastSource],
    probe: Probe,
    windows: list[int],
    size: tuple[int, int],
    latency_tokens: int,
) -> None:
    """Phase 1: one long reply per pane, no keys; phase 2: keys pressed while streaming."""

    async def loop_lag(stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            probe.loop_lags.append(max(0.0, time.perf_counter() - started - 0.01))

    async with app.run_test(size=size) as pilot:
        screen = app.main_screen
        assert screen is not None
        await pilot.pause(0.3)
        driver = app._driver
        assert driver is not None

        # Phase 1: cost per token at growing reply lengths (no keys pressed).
        screen.prompt.set_text("ねえ、アニメ好きなの？長めに語って！")
        # What Enter does; Pilot.press would wait for the app to be idle, i.e. the whole reply.
        screen.send_prompt()
        cpu_mark, wall_mark = time.process_time(), time.perf_counter()
        token_mark = 0
        while session.busy or len(session.user_turns) < 1:
            await asyncio.sleep(0.005)
            counts = [source.sent for source in sources.values()]
            length = min(counts)
            in_window = None
            for edge in windows:
                if edge - window_span(edge) <= length < edge:
                    in_window = edge
            if in_window != probe.window:
                previous = probe.current()
                now_cpu, now_wall = time.process_time(), time.perf_counter()
                total = sum(counts)
                if previous is not None:
                    previous.cpu_s += now_cpu - cpu_mark
                    previous.wall_s += now_wall - wall_mark
                    previous.tokens += total - token_mark
                probe.window = in_window
                cpu_mark, wall_mark, token_mark = now_cpu, now_wall, total
        probe.window = None
        await pilot.pause(0.3)

        # Phase 2: key presses while six panes stream the next reply.
        screen.action_focus_pane(0)  # "right" then moves the focus from pane to pane
        await pilot.pause(0.3)
        for source in sources.values():
            source.tokens = latency_tokens
        screen.prompt.set_text("もっと教えて！")
        screen.send_prompt()
        stop = asyncio.Event()
        lag_task = asyncio.create_task(loop_lag(stop))
        last_press = time.perf_counter()
        while session.busy or len(session.user_turns) < 2:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            streaming = min(source.sent for source in sources.values()) > 20
            if probe.key_sent is None and now - last_press > 0.15 and streaming:
                last_press = now
                probe.key_sent = time.perf_counter()
                key = events.Key("right", None)
                key.set_sender(app)
                driver.send_message(key)
            elif probe.key_sent is not None and now - probe.key_sent > 2.0:
                probe.key_sent = probe.key_handled = None  # lost; never seen so far
        stop.set()
        await lag_task


def window_span(edge: int) -> int:
    """Tokens measured before each length: 80 before 100, 250 before the longer ones."""
    return min(250, edge * 4 // 5)


def spread(values_ms: list[float]) -> str:
    return f"p50 {percentile(values_ms, 50):6.1f} ms   p95 {percentile(values_ms, 95):6.1f} ms"


PAINTED_P95_MS = 50
"""Target: a key's effect is on screen within this long, 95 times in 100, while panes stream."""


def target_met(probe: Probe) -> bool:
    return percentile([v * 1000 for v in probe.painted_latencies], 95) <= PAINTED_P95_MS


def print_results(
    probe: Probe, tokens: int, rate: float, panes: int, size: tuple[int, int]
) -> None:
    print(
        f"kurabe TUI benchmark: {panes} panes × {rate:.0f} tok/s, replies of {tokens} tokens, "
        f"{size[0]}×{size[1]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    handled = [v * 1000 for v in probe.handled_latencies]
    painted = [v * 1000 for v in probe.painted_latencies]
    lags = [v * 1000 for v in probe.loop_lags]
    verdict = "PASS" if target_met(probe) else "FAIL"
    print(f"key → action  : {spread(handled)}   (n={len(handled)})")
    print(f"key → painted : {spread(painted)}   target p95 ≤ {PAINTED_P95_MS} ms: {verdict}")
    pauses = [v * 1000 for v in probe.full_collections]
    longest = max(pauses, default=0.0)
    print(f"full gc       : {len(pauses)} collections, longest {longest:.1f} ms")
    print(f"loop lag      : {spread(lags)}")
    print("reply length   UI µs/token (flush + screen)   process CPU µs/token   tokens/s")
    rows = {}
    for edge, costs in sorted(probe.costs.items()):
        if costs.tokens <= 0:
            continue
        ui = (costs.flush_s + costs.screen_s) / costs.tokens * 1e6
        cpu = costs.cpu_s / costs.tokens * 1e6
        rows[edge] = (ui, cpu)
        print(
            f"{edge:>12}   {ui:8.1f} ({costs.flush_s / costs.tokens * 1e6:5.1f} + "
            f"{costs.screen_s / costs.tokens * 1e6:6.1f})        {cpu:8.1f}"
            f"           {costs.tokens / costs.wall_s if costs.wall_s else 0:6.0f}"
        )
    edges = sorted(rows)
    pairs = [(edges[-1], edges[0])] if len(edges) >= 2 else []
    if 1000 in rows and edges[-1] > 1000:
        pairs.append((edges[-1], 1000))
    for last, first in pairs:
        print(
            f"ratio {last}/{first}: UI {rows[last][0] / rows[first][0]:.2f}   "
            f"CPU {rows[last][1] / rows[first][1]:.2f}   (flat ≈ 1)"
        )


WORKAROUNDS = ("focus", "paint", "footer", "scroll", "gc")
"""The workarounds of :mod:`tui.textual_internals`, in its docstring's order."""


def turn_off(workaround: str) -> None:
    """Run the app as if ``workaround`` were not there (its fallback, or Textual's own way)."""
    from textual.reactive import Reactive
    from textual.widgets import Footer

    import tui.transcript_view
    from tui.main_screen import MainScreen
    from tui.quiet_footer import QuietFooter
    from tui.textual_internals import GcPacer

    if workaround == "focus":
        # Textual's own Screen.focused (repaint=True) in place of the redefined one.
        focused: Reactive[Any] = Reactive(None, repaint=True)
        focused.__set_name__(MainScreen, "focused")
        MainScreen.focused = focused
    elif workaround == "paint":
        MainScreen.paint_soon = lambda self: None  # type: ignore[method-assign]
    elif workaround == "footer":
        QuietFooter.bindings_changed = Footer.bindings_changed  # type: ignore[method-assign]
    elif workaround == "scroll":

        def set_limits_with_layout(view: Any, size: Any, bar: Any, height: int) -> None:
            view.virtual_size = size

        vars(tui.transcript_view)["set_scroll_limits"] = set_limits_with_layout
    elif workaround == "gc":
        GcPacer.start = lambda self: None  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--panes", type=int, default=6)
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--height", type=int, default=50)
    parser.add_argument(
        "--latency-tokens", type=int, default=3000, help="reply length while keys are pressed"
    )
    parser.add_argument("--quick", action="store_true", help="1000-token replies")
    parser.add_argument(
        "--without",
        choices=WORKAROUNDS,
        action="append",
        default=[],
        help="turn a workaround of tui/textual_internals.py off (to measure what it gains)",
    )
    args = parser.parse_args()
    for workaround in args.without:
        turn_off(workaround)
        print(f"without: {workaround}")
    longest = 1000 if args.quick else args.tokens
    windows = [edge for edge in (100, 1000, 2000, 3000, 4000) if edge <= longest]
    # Replies run a little past the last window so that its cost is not the end of the reply.
    tokens = longest + max(50, longest // 20)
    latency_tokens = 600 if args.quick else args.latency_tokens
    probe = asyncio.run(
        run(tokens, args.rate, args.panes, windows, (args.width, args.height), latency_tokens)
    )
    return 0 if target_met(probe) else 1


if __name__ == "__main__":
    sys.exit(main())
