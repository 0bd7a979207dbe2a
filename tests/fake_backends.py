"""Scripted fake backends for tests of the session, the replay and the TUI.

A :class:`FakeBackend` speaks the real :class:`backends.base.Backend` interface and plays one
:class:`Script` per call to :meth:`FakeBackend.stream`: chunks of text with a delay between them,
then a :class:`StreamDone`, or a :class:`StreamError`, or a stall until the stream is cancelled,
or an exception. Loading can be slowed down, made to fail, or the backend marked unusable; where
its model computes (GPU layers, CPU sharing, the model file it shares) is declared as a real
backend declares it.

``fake_factory({"name": backend, ...})`` gives a ``backend_factory`` for
:meth:`kurabe.session.comparison.ComparisonSession.create`; :class:`ActivityLog` records when each backend
was streaming so a test can tell whether two panes overlapped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import (
    Backend,
    Conversation,
    ProgressCallback,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
)
from backends.profiles import ModelProfile


@dataclass(frozen=True)
class Script:
    """What one call to ``stream`` does."""

    chunks: Sequence[str] = ("うん、", "大好き", "だよ！")
    delay_s: float = 0.0
    """Sleep before each chunk."""
    error: StreamError | None = None
    """Yielded after the chunks instead of a StreamDone."""
    stall: bool = False
    """After the chunks, wait until cancelled."""
    raise_exc: BaseException | None = None
    """Raised after the chunks (a backend bug: it should have yielded a StreamError)."""
    finish_reason: str = "stop"
    prompt_tokens: int | None = 12
    completion_tokens: int | None = None
    """Default: one token per chunk."""
    ttft_s: float | None = None
    """Reported time to first token; default: measured."""
    engine: Mapping[str, Any] = field(default_factory=dict)
    """More :class:`StreamDone` fields, as a local engine reports them (``history_trimmed_turns``
    …)."""

    @classmethod
    def text(cls, text: str, *, chunk: int = 2, **kwargs: Any) -> Script:
        """Split ``text`` into chunks of ``chunk`` characters."""
        pieces = [text[i : i + chunk] for i in range(0, len(text), chunk)] or [""]
        return cls(chunks=tuple(pieces), **kwargs)


@dataclass
class ActivityLog:
    """Who streamed when: (name, start, end) per stream, shared by several fakes."""

    spans: list[tuple[str, float, float]] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    max_active: int = 0

    def begin(self, name: str) -> float:
        self.active.add(name)
        self.max_active = max(self.max_active, len(self.active))
        return time.perf_counter()

    def end(self, name: str, started: float) -> None:
        self.active.discard(name)
        self.spans.append((name, started, time.perf_counter()))

    def order(self) -> list[str]:
        return [name for name, _, _ in sorted(self.spans, key=lambda span: span[1])]

    def overlapped(self, a: str, b: str) -> bool:
        for name_a, start_a, end_a in self.spans:
            for name_b, start_b, end_b in self.spans:
                if name_a == a and name_b == b and start_a < end_b and start_b < end_a:
                    return True
        return False


class FakeBackend(Backend):
    """A backend that plays scripts. ``replies``: a list (call *i* plays item *i*, the last one
    repeating), or a function of the conversation. A plain string is a one-chunk-per-2-chars
    script."""

    def __init__(
        self,
        name: str = "fake",
        replies: Sequence[Script | str] | Callable[[Conversation], Script | str] = (),
        *,
        load_delay_s: float = 0.0,
        load_error: Exception | None = None,
        unusable: str | None = None,
        header: str | None = None,
        offloaded_layers: int = 0,
        shares_compute: bool | None = None,
        model_key: str | None = None,
        snapshot: Mapping[str, Any] | None = None,
        activity: ActivityLog | None = None,
        load_messages: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.replies = replies
        self.load_delay_s = load_delay_s
        self.load_error = load_error
        self.unusable = unusable
        self._header = header if header is not None else f"fake {name}"
        self._offloaded_layers = offloaded_layers
        self._shares_compute = shares_compute
        self._model_key = model_key
        self.snapshot = dict(snapshot or {"fake": True, "name": name})
        self.activity = activity
        self.load_messages = tuple(load_messages)
        self.calls: list[Conversation] = []
        self.loaded = False
        self.load_calls = 0
        self.closed = False
        self.cancelled = 0

    def script_for(self, conversation: Conversation) -> Script:
        if callable(self.replies):
            chosen = self.replies(conversation)
        elif self.replies:
            chosen = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        else:
            chosen = Script()
        return Script.text(chosen) if isinstance(chosen, str) else chosen

    async def load(self, progress: ProgressCallback | None = None) -> None:
        self.load_calls += 1
        for message in self.load_messages:
            if progress is not None:
                progress(message)
        if self.load_delay_s:
            await asyncio.sleep(self.load_delay_s)
        if self.load_error is not None:
            raise self.load_error
        self.loaded = True

    def unusable_reason(self) -> str | None:
        return self.unusable

    def header(self) -> str:
        return self._header

    @property
    def offloaded_layers(self) -> int:
        return self._offloaded_layers

    @property
    def shares_compute(self) -> bool:
        """As given, else the default: on the CPU while no layer is offloaded."""
        if self._shares_compute is None:
            return super().shares_compute
        return self._shares_compute

    @property
    def model_key(self) -> str | None:
        return self._model_key

    def settings_snapshot(self) -> dict[str, Any]:
        return dict(self.snapshot)

    async def aclose(self) -> None:
        self.closed = True

    async def stream(self, conversation: Conversation) -> AsyncIterator[StreamEvent]:
        self.calls.append(conversation)
        script = self.script_for(conversation)
        started = time.perf_counter()
        mark = self.activity.begin(self.name) if self.activity else 0.0
        first: float | None = None
        try:
            for chunk in script.chunks:
                if script.delay_s:
                    await asyncio.sleep(script.delay_s)
                if first is None:
                    first = time.perf_counter()
                yield TextDelta(chunk)
            if script.stall:
                await asyncio.Event().wait()
            if script.raise_exc is not None:
                raise script.raise_exc
            if script.error is not None:
                yield script.error
                return
            total = time.perf_counter() - started
            yield StreamDone(
                finish_reason=script.finish_reason,
                prompt_tokens=script.prompt_tokens,
                completion_tokens=(
                    script.completion_tokens
                    if script.completion_tokens is not None
                    else len(script.chunks)
                ),
                ttft_s=script.ttft_s
                if script.ttft_s is not None
                else (None if first is None else first - started),
                total_s=total,
                **script.engine,
            )
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            if self.activity is not None:
                self.activity.end(self.name, mark)


def fake_profile(name: str, *, local: bool = False, **changes: Any) -> ModelProfile:
    """A profile for a fake pane: ``local=True`` makes it a llama_cpp profile (scheduled one at
    a time on the CPU), otherwise an OpenAI-like API profile."""
    if local:
        values: dict[str, Any] = {"backend": "llama_cpp", "model": f"/models/{name}.gguf"}
    else:
        values = {"backend": "openai", "model": name}
    values.update(changes)
    return ModelProfile(name=name, **values)


def fake_factory(backends: Mapping[str, Backend]) -> Callable[[ModelProfile], Backend]:
    """A ``backend_factory`` that hands out the given backends by profile name."""

    def factory(profile: ModelProfile) -> Backend:
        return backends[profile.name]

    return factory
