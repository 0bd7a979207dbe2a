"""AnthropicBackend against a loopback server that speaks the Messages API's real SSE format.

The server sends ``message_start`` / ``content_block_start`` / ``ping`` / ``content_block_delta``
/ ``content_block_stop`` / ``message_delta`` / ``message_stop`` events as api.anthropic.com does,
or its real error bodies (``{"type": "error", "error": {...}}``) with the real status codes, and
records what the ``anthropic`` SDK sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backends.anthropic_backend import AnthropicBackend, finish_reason
from backends.base import ChatMessage, Conversation, StreamDone, StreamError
from backends.profiles import ModelProfile, Sampling
from backends.sent import ANTHROPIC_SAMPLING_API_VERSION
from tests.api_backend_support import (
    PERSONA,
    assert_missing_key,
    assert_one_line_error,
    cancel_after_two_deltas,
    run_closed,
    serve,
    two_at_once,
    wire_profile,
)
from tests.wire_servers import (
    Collected,
    WireServer,
    anthropic_401,
    anthropic_404,
    anthropic_429,
    anthropic_500,
    anthropic_529,
    anthropic_context_400,
    anthropic_error,
    anthropic_stream,
    free_port,
)

KEY = "sk-ant-api03-kurabe-test-0123456789abcdef"
MODEL = "claude-haiku-4-5"
CONVERSATION = Conversation(
    system=PERSONA,
    turns=(
        ChatMessage("user", "チェンソーマンのアニメ見た？"),
        ChatMessage("assistant", "見た見た！作画すごかったよね。"),
        ChatMessage("user", "オープニング曲って誰が歌ってる？"),
    ),
)
REPLY = ["米津玄師の", "「KICK BACK」", "だよ！", "めっちゃ", "カッコいい"]


@pytest.fixture
def server() -> Iterator[WireServer]:
    yield from serve("anthropic")


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return KEY


@pytest.fixture
def official(server: WireServer, monkeypatch: pytest.MonkeyPatch) -> WireServer:
    """Profiles without base_url mean api.anthropic.com; the SDK's variable points it here."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.origin)
    return server


def profile(server: WireServer | None = None, **changes: Any) -> ModelProfile:
    values: dict[str, Any] = {
        "name": "wire-anthropic",
        "backend": "anthropic",
        "model": MODEL,
        "base_url": server.origin if server else None,
        "api_key_env": "ANTHROPIC_API_KEY",
    }
    return wire_profile(values, changes)


async def run(backend: AnthropicBackend, conversation: Conversation = CONVERSATION) -> Collected:
    return await run_closed(backend, conversation)


def sent_key(headers: dict[str, str]) -> str | None:
    """The key as the SDK sent it (x-api-key, or a Bearer token in SDK 2.x)."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


# -- a normal reply ------------------------------------------------------------------------------


async def test_streams_japanese_deltas_then_done_with_usage(official: WireServer, key: str) -> None:
    official.script(anthropic_stream(REPLY, input_tokens=61, output_tokens=19))
    got = await run(AnthropicBackend(profile()))
    assert got.deltas == REPLY
    assert got.text == "米津玄師の「KICK BACK」だよ！めっちゃカッコいい"
    done = got.final
    assert isinstance(done, StreamDone)
    assert done.finish_reason == "stop"
    assert (done.prompt_tokens, done.completion_tokens) == (61, 19)
    assert done.ttft_s is not None and 0 < done.ttft_s <= done.total_s < 5


async def test_prompt_tokens_include_cache_reads(official: WireServer, key: str) -> None:
    official.script(anthropic_stream(REPLY, input_tokens=12, cache_read_input_tokens=2048))
    done = (await run(AnthropicBackend(profile()))).final
    assert isinstance(done, StreamDone)
    assert done.prompt_tokens == 12 + 2048
    assert done.cached_prompt_tokens == 2048


async def test_request_on_the_wire(official: WireServer, key: str) -> None:
    sampling = Sampling(max_tokens=300, stop=("ユーザー:",), seed=7)
    official.script(anthropic_stream(REPLY))
    await run(AnthropicBackend(profile(sampling=sampling)))
    [request] = official.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert sent_key(request.headers) == KEY
    assert "anthropic-version" in request.headers
    body = request.body
    assert body["model"] == MODEL
    # The persona goes in `system`, never among the messages.
    assert body["system"] == PERSONA
    assert body["messages"] == [
        {"role": "user", "content": "チェンソーマンのアニメ見た？"},
        {"role": "assistant", "content": "見た見た！作画すごかったよね。"},
        {"role": "user", "content": "オープニング曲って誰が歌ってる？"},
    ]
    assert body["stream"] is True
    assert body["max_tokens"] == 300
    assert body["stop_sequences"] == ["ユーザー:"]
    # Anthropic's own API gets no sampling parameters (see backends/sent.py), and the SDK's own
    # API version, which would reject them.
    for name in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed"):
        assert name not in body
    assert request.headers["anthropic-version"] != ANTHROPIC_SAMPLING_API_VERSION


async def test_send_sampling_reaches_the_official_api_with_the_api_version_that_takes_it(
    official: WireServer, key: str
) -> None:
    official.script(anthropic_stream(REPLY))
    sampling = Sampling(temperature=0.7, top_p=0.95, top_k=40, max_tokens=120)
    backend = AnthropicBackend(profile(sampling=sampling, send_sampling=("temperature",)))
    await run(backend)
    [request] = official.requests
    assert request.body["temperature"] == 0.7
    assert "top_p" not in request.body and "top_k" not in request.body
    assert request.headers["anthropic-version"] == "2023-06-01"
    record = backend.settings_snapshot()["request"]
    assert record["sent"] == {"max_tokens": 120, "temperature": 0.7}
    assert record["headers"] == {"anthropic-version": "2023-06-01"}
    assert record["model_default"] == [
        "top_k",
        "top_p",
        "min_p",
        "repeat_penalty",
        "repeat_last_n",
        "seed",
        "stop",
    ]


async def test_send_sampling_sends_what_it_names_and_clamps_the_temperature(
    official: WireServer, key: str
) -> None:
    official.script(anthropic_stream(REPLY))
    sampling = Sampling(temperature=1.6, top_p=0.9, top_k=20)
    backend = AnthropicBackend(profile(sampling=sampling, send_sampling=("top_k", "temperature")))
    await run(backend)
    body = official.requests[0].body
    assert (body["temperature"], body["top_k"]) == (1.0, 20)  # Anthropic's maximum is 1.0
    assert "top_p" not in body
    assert backend.settings_snapshot()["request"]["sent"]["temperature"] == 1.0


async def test_empty_send_sampling_sends_none_even_to_a_compatible_server(
    server: WireServer, key: str
) -> None:
    server.script(anthropic_stream(REPLY))
    backend = AnthropicBackend(profile(server, send_sampling=()))
    await run(backend)
    request = server.requests[0]
    for name in ("temperature", "top_p", "top_k"):
        assert name not in request.body
    assert request.headers["anthropic-version"] != ANTHROPIC_SAMPLING_API_VERSION
    assert backend.settings_snapshot()["request"]["sent"] == {"max_tokens": 256}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"send_sampling": ("temperature", "top_p", "top_k")},
        {"sampling": Sampling(stop=("ユーザー:",), temperature=1.0, top_p=0.8)},
        {"base_url": None},
        {"base_url": None, "send_sampling": ("top_p",)},
    ],
)
async def test_the_snapshot_records_exactly_what_went_out(
    server: WireServer, key: str, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any]
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.origin)
    server.script(anthropic_stream(REPLY))
    backend = AnthropicBackend(profile(server, **changes))
    await run(backend)
    request = server.requests[0]
    record = backend.settings_snapshot()["request"]
    not_sampling = {"model", "messages", "stream", "system"}
    on_the_wire = {k: v for k, v in request.body.items() if k not in not_sampling}
    assert on_the_wire == record["sent"]
    for name, value in record["headers"].items():
        assert request.headers[name] == value


async def test_empty_persona_sends_no_system(official: WireServer, key: str) -> None:
    official.script(anthropic_stream(["うん"]))
    conversation = Conversation(system="", turns=(ChatMessage("user", "トトロ好き？"),))
    await run(AnthropicBackend(profile()), conversation)
    assert "system" not in official.requests[0].body


async def test_compatible_server_gets_temperature_and_top_k(server: WireServer, key: str) -> None:
    server.script(anthropic_stream(REPLY))
    sampling = Sampling(temperature=0.7, top_p=0.95, top_k=40)
    await run(AnthropicBackend(profile(server, sampling=sampling)))
    body = server.requests[0].body
    assert body["temperature"] == 0.7 and body["top_k"] == 40
    assert "top_p" not in body  # never together with temperature


async def test_compatible_server_gets_top_p_only_at_temperature_one(
    server: WireServer, key: str
) -> None:
    server.script(anthropic_stream(REPLY))
    sampling = Sampling(temperature=1.0, top_p=0.9, top_k=0)
    await run(AnthropicBackend(profile(server, sampling=sampling)))
    body = server.requests[0].body
    assert body["top_p"] == 0.9
    assert "temperature" not in body and "top_k" not in body


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "refusal"),
    ],
)
async def test_stop_reason_becomes_finish_reason(
    official: WireServer, key: str, stop_reason: str, expected: str
) -> None:
    official.script(anthropic_stream(["ナウシカ"], stop_reason=stop_reason))
    done = (await run(AnthropicBackend(profile()))).final
    assert isinstance(done, StreamDone) and done.finish_reason == expected
    assert finish_reason(stop_reason) == expected


async def test_two_streams_at_once_through_one_backend(official: WireServer, key: str) -> None:
    official.script(
        anthropic_stream(["千と千尋", "の神隠し"], interval_s=0.02),
        anthropic_stream(["アキラ", "も名作"], interval_s=0.02),
    )
    first, second = await two_at_once(AnthropicBackend(profile()), CONVERSATION)
    assert {first.text, second.text} == {"千と千尋の神隠し", "アキラも名作"}


# -- keys, header, snapshot ----------------------------------------------------------------------


async def test_missing_key_is_reported_without_any_request(official: WireServer) -> None:
    backend = AnthropicBackend(profile())
    assert_missing_key(await run(backend), backend, "ANTHROPIC_API_KEY", official)


async def test_keyless_server_gets_a_placeholder_not_the_users_key(
    server: WireServer, key: str
) -> None:
    server.script(anthropic_stream(REPLY))
    got = await run(AnthropicBackend(profile(server, api_key_env=None)))
    assert isinstance(got.final, StreamDone)
    assert sent_key(server.requests[0].headers) == "not-needed"


def test_header_and_snapshot(server: WireServer, key: str) -> None:
    official = AnthropicBackend(profile())
    assert official.header() == f"Anthropic · {MODEL}"
    snapshot = official.settings_snapshot()
    assert KEY not in json.dumps(snapshot, ensure_ascii=False)
    assert snapshot["backend"] == "anthropic"
    assert snapshot["base_url"] == "https://api.anthropic.com"
    assert snapshot["request"] == {
        "sent": {"max_tokens": 256},
        "model_default": [
            "temperature",
            "top_k",
            "top_p",
            "min_p",
            "repeat_penalty",
            "repeat_last_n",
            "seed",
            "stop",
        ],
        "headers": {},
    }
    assert snapshot["sdk"].startswith("anthropic ")
    assert snapshot["sdk"] != "anthropic not installed"
    local = AnthropicBackend(profile(server, base_url=f"http://u:{KEY}@127.0.0.1:{server.port}"))
    assert local.header() == f"127.0.0.1:{server.port} · {MODEL}"
    local_snapshot = local.settings_snapshot()
    assert KEY not in json.dumps(local_snapshot)
    assert local_snapshot["request"]["sent"] == {"max_tokens": 256, "temperature": 0.7, "top_k": 40}


# -- errors with real status codes and bodies ----------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "retryable", "starts"),
    [
        (anthropic_401(), "auth", False, "authentication failed (401): invalid x-api-key"),
        (anthropic_429(), "rate_limit", True, "rate limited (429), retry after 20 s"),
        (anthropic_529(), "server", True, "Anthropic overloaded (529): Overloaded"),
        (anthropic_500(), "server", True, "server error (500): Internal server error"),
        (anthropic_404("claude-9"), "model_not_found", False, f"model '{MODEL}' not found"),
        (anthropic_context_400(), "context_overflow", False, "context too long (400): prompt is"),
        (
            anthropic_error(400, "invalid_request_error", "messages: roles must alternate"),
            "bad_request",
            False,
            "request rejected (400): messages: roles must alternate",
        ),
    ],
    ids=["401", "429", "529", "500", "404", "400-context", "400-other"],
)
async def test_api_errors_map_to_one_line(
    official: WireServer, key: str, reply: Any, kind: str, retryable: bool, starts: str
) -> None:
    official.script(reply)
    got = await run(AnthropicBackend(profile()))
    assert_one_line_error(got, kind, retryable, starts, KEY)
    assert len(official.requests) == 1


async def test_rate_limit_carries_retry_after(official: WireServer, key: str) -> None:
    official.script(anthropic_429("20"))
    error = (await run(AnthropicBackend(profile()))).final
    assert isinstance(error, StreamError) and error.retry_after_s == 20.0


async def test_sdk_retries_an_overload_when_allowed(official: WireServer, key: str) -> None:
    official.script(anthropic_529(), anthropic_stream(REPLY))
    got = await run(AnthropicBackend(profile(max_retries=1)))
    assert isinstance(got.final, StreamDone) and got.text == "".join(REPLY)
    assert len(official.requests) == 2


async def test_connection_refused(key: str) -> None:
    port = free_port()
    error = (await run(AnthropicBackend(profile(base_url=f"http://127.0.0.1:{port}")))).final
    assert isinstance(error, StreamError)
    assert error.kind == "connection" and error.retryable
    assert error.reason == f"connection failed: cannot reach http://127.0.0.1:{port}"


async def test_no_answer_before_the_timeout(official: WireServer, key: str) -> None:
    official.script(anthropic_error(200, "x", "never sent", delay_s=5.0))
    started = time.perf_counter()
    error = (await run(AnthropicBackend(profile(timeout_s=0.3)))).final
    assert time.perf_counter() - started < 3.0
    assert isinstance(error, StreamError)
    assert error.kind == "timeout" and error.retryable and not error.partial


# -- a reply cut off mid-stream keeps its text ---------------------------------------------------


async def test_connection_dropped_mid_stream_keeps_the_text(official: WireServer, key: str) -> None:
    # message_start, content_block_start, ping, three deltas; then the socket closes.
    official.script(anthropic_stream(REPLY, drop_after=6))
    got = await run(AnthropicBackend(profile()))
    assert got.deltas == REPLY[:3]
    error = got.final
    assert isinstance(error, StreamError)
    assert error.partial and error.retryable and error.kind == "connection"
    assert (
        error.reason == f"connection dropped mid-reply; kept {len(''.join(REPLY[:3]))} characters"
    )
    assert error.prompt_tokens == 37  # message_start had arrived


async def test_overloaded_event_mid_stream_keeps_the_text(official: WireServer, key: str) -> None:
    official.script(
        anthropic_stream(REPLY[:2], error={"type": "overloaded_error", "message": "Overloaded"})
    )
    got = await run(AnthropicBackend(profile()))
    assert got.deltas == REPLY[:2]
    error = got.final
    assert isinstance(error, StreamError)
    assert error.kind == "server" and error.partial and error.retryable
    assert error.reason.startswith("Anthropic overloaded")
    assert error.reason.endswith(f"kept {len(''.join(REPLY[:2]))} characters")


async def test_stream_without_message_stop_is_not_done(official: WireServer, key: str) -> None:
    official.script(anthropic_stream(REPLY, end_after=5))
    got = await run(AnthropicBackend(profile()))
    assert got.deltas == REPLY[:2]
    assert isinstance(got.final, StreamError) and got.final.partial


async def test_stall_mid_stream_times_out_and_keeps_the_text(
    official: WireServer, key: str
) -> None:
    official.script(anthropic_stream(REPLY, stall_after=4, stall_s=5.0))
    got = await run(AnthropicBackend(profile(timeout_s=0.3)))
    assert got.deltas == REPLY[:1]
    error = got.final
    assert isinstance(error, StreamError)
    assert error.kind == "timeout" and error.partial


# -- cancellation --------------------------------------------------------------------------------


async def test_cancel_closes_the_http_stream_promptly_and_backend_stays_usable(
    official: WireServer, key: str
) -> None:
    official.script(anthropic_stream(["ずっと", "話し続ける", "よ"] * 200, interval_s=0.05))
    backend = AnthropicBackend(profile())
    await cancel_after_two_deltas(backend, CONVERSATION, official)

    official.script(anthropic_stream(REPLY))
    got = await run(backend)
    assert got.text == "".join(REPLY) and isinstance(got.final, StreamDone)


async def test_timeout_of_the_consumer_cancels_cleanly(official: WireServer, key: str) -> None:
    official.script(anthropic_stream(["まだまだ"] * 400, interval_s=0.05))
    backend = AnthropicBackend(profile())

    async def consume() -> None:
        async for _ in backend.stream(CONVERSATION):
            pass

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(consume(), 0.3)
    assert await asyncio.to_thread(official.client_gone.wait, 2.0)
    official.script(anthropic_stream(["復活"]))
    got = await run(backend)
    assert got.text == "復活"
