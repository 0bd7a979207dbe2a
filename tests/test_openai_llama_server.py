"""OpenAIBackend against a real OpenAI-compatible server: ``python -m llama_cpp.server``.

The server (the ``llama-cpp-python[server]`` extra) runs as a subprocess on 127.0.0.1 with the
tiny GGUF from ``tests/tiny_gguf.py``; the backend reaches it through ``base_url`` exactly as a
user's profile would. The tiny model's replies are meaningless ASCII, which is all we check:
deltas arrive, the stream ends with a StreamDone, a too-long conversation is reported as a
context overflow, and cancelling a stream leaves the backend (and the server) usable.

llama-cpp-python's server (0.3.x) ignores ``stream_options.include_usage``, so its streams carry
no token counts; the StreamDone says so with ``None`` rather than a guess.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import ChatMessage, Conversation, StreamDone, StreamError, TextDelta
from backends.openai_backend import OpenAIBackend
from backends.profiles import ModelProfile, Sampling
from tests.wire_servers import collect, free_port

# Checked without importing anything: collecting this file must stay cheap.
_SERVER_PACKAGES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(name) is None for name in _SERVER_PACKAGES),
        reason="needs the llama-cpp-python[server] extra",
    ),
]

STARTUP_TIMEOUT_S = 60.0
CONVERSATION = Conversation(
    system="あなたは大のアニメファンで、友達と会話しています。",
    turns=(ChatMessage("user", "トトロ好き？"),),
)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def llama_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the server on a free loopback port; yield its base URL (``…/v1``)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(tiny_gguf),
        "--model_alias",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "256",
        "--n_threads",
        "1",
        "--chat_format",
        "chatml",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not _answers(f"http://127.0.0.1:{port}/v1/models"):
                if process.poll() is not None:
                    pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server not up in {STARTUP_TIMEOUT_S:.0f} s")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def backend_for(base_url: str, max_tokens: int = 24) -> OpenAIBackend:
    return OpenAIBackend(
        ModelProfile(
            name="llama-server",
            backend="openai",
            model="tiny",
            base_url=base_url,
            max_retries=0,
            timeout_s=30.0,
            sampling=Sampling(temperature=0.0, top_k=1, max_tokens=max_tokens, seed=7),
        )
    )


def test_server_lists_the_model(llama_server: str) -> None:
    with urllib.request.urlopen(f"{llama_server}/models", timeout=5) as response:
        models = json.load(response)
    assert [m["id"] for m in models["data"]] == ["tiny"]


async def test_streams_a_chat_completion(llama_server: str) -> None:
    backend = backend_for(llama_server)
    try:
        got = await collect(backend.stream(CONVERSATION))
    finally:
        await backend.aclose()
    done = got.final
    assert isinstance(done, StreamDone), done
    assert got.deltas, "no text arrived"
    assert got.text.isascii()
    assert done.finish_reason in ("stop", "length")
    assert done.ttft_s is not None and 0 < done.ttft_s <= done.total_s
    if done.completion_tokens is not None:  # servers that honour include_usage
        assert 0 < done.completion_tokens <= 24
        assert done.prompt_tokens is not None and done.prompt_tokens > 0


async def test_greedy_replies_repeat_and_respect_max_tokens(llama_server: str) -> None:
    backend = backend_for(llama_server, max_tokens=8)
    try:
        first = await collect(backend.stream(CONVERSATION))
        second = await collect(backend.stream(CONVERSATION))
    finally:
        await backend.aclose()
    assert isinstance(first.final, StreamDone) and isinstance(second.final, StreamDone)
    assert first.text == second.text  # temperature 0 / top_k 1 reached the server
    assert len(first.deltas) <= 8  # one chunk per token: max_tokens reached the server
    assert first.final.finish_reason == "length" or len(first.deltas) < 8


async def test_conversation_longer_than_the_context_is_reported(llama_server: str) -> None:
    # Byte vocabulary: each Japanese character is three tokens, far beyond n_ctx=256. The server
    # answers the stream with an empty 200; the backend's one-token probe hears the real 400.
    long_turn = "ナウシカの話をしよう。" * 30
    conversation = Conversation(system="短く答えて。", turns=(ChatMessage("user", long_turn),))
    backend = backend_for(llama_server)
    try:
        got = await collect(backend.stream(conversation))
    finally:
        await backend.aclose()
    error = got.final
    assert isinstance(error, StreamError), error
    assert error.kind == "context_overflow", error.reason
    assert error.reason.startswith("context too long (400): This model's maximum context length")
    assert not error.retryable and not error.partial


async def test_cancel_then_stream_again(llama_server: str) -> None:
    backend = backend_for(llama_server, max_tokens=200)
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for event in backend.stream(CONVERSATION):
            if isinstance(event, TextDelta):
                first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    try:
        got = await asyncio.wait_for(collect(backend.stream(CONVERSATION)), 30)
    finally:
        await backend.aclose()
    assert isinstance(got.final, StreamDone) and got.deltas
