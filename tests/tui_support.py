"""Helpers shared by the TUI tests (no tests here): an app over scripted fake backends, a
deterministic backend for snapshots, and waiting for the screen to reach a state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from backends.base import Backend, Conversation, StreamDone, StreamEvent, TextDelta
from backends.profiles import ModelProfile
from kurabe.session.comparison import ComparisonSession
from kurabe.session.launch import AppContext
from kurabe.store.store import Store
from personas.loader import load_personas
from scenarios.loader import load_scenarios
from tests.fake_backends import fake_factory, fake_profile
from tui.app import KurabeApp
from tui.main_screen import MainScreen


class FixedBackend(Backend):
    """Replies with fixed text and fixed figures, instantly: for screenshots that never change."""

    def __init__(self, replies: Sequence[str], header: str = "Q4_K_M · GPU 0/18") -> None:
        self.replies = list(replies)
        self.calls = 0
        self._header = header

    def header(self) -> str:
        return self._header

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        text = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        for start in range(0, len(text), 3):
            yield TextDelta(text[start : start + 3])
        yield StreamDone(
            finish_reason="stop",
            prompt_tokens=40,
            completion_tokens=len(text) // 2,
            ttft_s=0.25,
            total_s=1.25,
            context_size=4096,
        )


JUDGE_PROFILE = "judge-fake"


@dataclass
class Harness:
    app: KurabeApp
    session: ComparisonSession
    store: Store
    context: AppContext

    @property
    def screen(self) -> MainScreen:
        screen = self.app.main_screen
        assert screen is not None
        return screen


def make_harness(
    backends: Mapping[str, Backend],
    *,
    db_path: Path | None = None,
    scenario: str | None = None,
    persona: str = "anime-fan",
    blind: bool = False,
    local: bool = False,
    profiles: Mapping[str, ModelProfile] | None = None,
    export_dir: Path | None = None,
    shuffle_seed: int | None = 7,
    judge: Backend | None = None,
    judge_badge: str = "after-rating",
) -> Harness:
    """An app over ``backends`` (profile name -> backend), with a fresh store. ``judge``: the
    backend of the LLM judge the j key asks (profile ``judge-fake``)."""
    store = Store(db_path) if db_path is not None else Store(":memory:")
    personas = load_personas()
    scenarios = load_scenarios(personas=personas)
    if profiles is None:
        profiles = {name: fake_profile(name, local=local) for name in backends}
    judge_profile = fake_profile(JUDGE_PROFILE) if judge is not None else None
    every_backend = {**backends, JUDGE_PROFILE: judge} if judge is not None else backends
    context = AppContext(
        store=store,
        profiles=dict(profiles),
        personas=personas,
        scenarios=scenarios,
        backend_factory=fake_factory(every_backend),
        blind=blind,
        rater="tester",
        judge_profile=judge_profile,
        judge_badge=judge_badge,
    )
    chosen_scenario = scenarios.get(scenario) if scenario else None
    session = ComparisonSession.create(
        store,
        personas.get(chosen_scenario.persona if chosen_scenario else persona),
        [profiles[name] for name in backends],
        scenario=chosen_scenario,
        blind=blind,
        rater="tester",
        backend_factory=fake_factory(backends),
        shuffle_seed=shuffle_seed,
    )
    app = KurabeApp(context, session, export_dir=export_dir)
    return Harness(app=app, session=session, store=store, context=context)


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], *, timeout: float = 10.0
) -> None:
    """Let the app run until ``predicate()`` holds (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` the way a terminal delivers it (IME-committed Japanese included): one key
    event per character, carrying the character. (``Pilot.press`` drops the character of keys
    such as 、 and ？ whose key names are not Unicode names.)"""
    from textual import events
    from textual.keys import _character_to_key

    app = pilot.app
    for char in text:
        key = char if char.isalnum() else _character_to_key(char)
        event = events.Key(key, char)
        event.set_sender(app)
        app.post_message(event)  # as the driver hands a key read from the terminal to the app
        await pilot.pause()


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for pending flushes and a repaint."""
    await pilot.pause(0.12)
    await asyncio.sleep(0)
