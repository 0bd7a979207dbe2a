"""OpenAIBackend against a loopback server that speaks OpenAI's real streaming wire format.

Every test goes through the real ``openai`` SDK and real HTTP on 127.0.0.1: the server sends
``chat.completion.chunk`` SSE events as api.openai.com does, or its real error bodies with the
real status codes, and records what the SDK sent.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backends.api_errors import public_url, redact, retry_after_seconds
from backends.base import ChatMessage, Conversation, StreamDone, StreamError, TextDelta
from backends.openai_backend import OpenAIBackend
from backends.profiles import ModelProfile, Sampling
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
    JSONReply,
    SSEReply,
    WireServer,
    collect,
    free_port,
    openai_401,
    openai_404,
    openai_429,
    openai_500,
    openai_chunk,
    openai_context_400,
    openai_error,
    openai_stream,
    sse,
)

KEY = "sk-kurabe-test-0123456789abcdef"
CONVERSATION = Conversation(
    system=PERSONA,
    turns=(
        ChatMessage("user", "風の谷のナウシカって見たことある？"),
        ChatMessage("assistant", "もちろん！ジブリの名作だよね。"),
        ChatMessage("user", "鬼滅の刃の主題歌、何だっけ？"),
    ),
)
REPLY = ["「紅蓮華」", "だよ！", "LiSAの", "歌声が最高", "なんだよね〜"]


@pytest.fixture
def server() -> Iterator[WireServer]:
    yield from serve("openai")


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


def profile(server: WireServer | None = None, **changes: Any) -> ModelProfile:
    values: dict[str, Any] = {
        "name": "wire-openai",
        "backend": "openai",
        "model": "gpt-4.1-mini",
        "base_url": f"{server.origin}/v1" if server else None,
        "api_key_env": "OPENAI_API_KEY",
    }
    return wire_profile(values, changes)


async def run(backend: OpenAIBackend, conversation: Conversation = CONVERSATION) -> Collected:
    return await run_closed(backend, conversation)


# -- a normal reply ------------------------------------------------------------------------------


async def test_streams_japanese_deltas_then_done_with_usage(server: WireServer, key: str) -> None:
    server.script(openai_stream(REPLY, prompt_tokens=58, completion_tokens=17, cached_tokens=32))
    got = await run(OpenAIBackend(profile(server)))
    assert got.deltas == REPLY
    assert got.text == "「紅蓮華」だよ！LiSAの歌声が最高なんだよね〜"
    done = got.final
    assert isinstance(done, StreamDone)
    assert done.finish_reason == "stop"
    assert (done.prompt_tokens, done.completion_tokens) == (58, 17)
    assert done.cached_prompt_tokens == 32
    assert done.ttft_s is not None and 0 < done.ttft_s <= done.total_s < 5


async def test_request_on_the_wire_for_a_compatible_server(server: WireServer, key: str) -> None:
    sampling = Sampling(
        temperature=0.7,
        top_k=40,
        top_p=0.95,
        min_p=0.05,
        repeat_penalty=1.18,
        repeat_last_n=256,
        max_tokens=128,
        seed=1234,
        stop=("ユーザー:", "\n\n"),
    )
    server.script(openai_stream(REPLY))
    await run(OpenAIBackend(profile(server, sampling=sampling)))
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "gpt-4.1-mini"
    assert body["messages"] == [
        {"role": "system", "content": PERSONA},
        {"role": "user", "content": "風の谷のナウシカって見たことある？"},
        {"role": "assistant", "content": "もちろん！ジブリの名作だよね。"},
        {"role": "user", "content": "鬼滅の刃の主題歌、何だっけ？"},
    ]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.7 and body["top_p"] == 0.95
    assert body["max_tokens"] == 128 and "max_completion_tokens" not in body
    assert body["seed"] == 1234
    assert body["stop"] == ["ユーザー:", "\n\n"]
    # llama.cpp's sampling knobs travel in the body for compatible servers.
    assert body["top_k"] == 40 and body["min_p"] == 0.05
    assert body["repeat_penalty"] == 1.18 and body["repeat_last_n"] == 256


async def test_official_api_gets_only_openai_parameters(
    server: WireServer, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No base_url in the profile means api.openai.com; the SDK's OPENAI_BASE_URL points it here.
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.origin}/v1")
    backend = OpenAIBackend(profile(None, sampling=Sampling(temperature=3.0, max_tokens=200)))
    assert backend.header() == "OpenAI · gpt-4.1-mini"
    server.script(openai_stream(REPLY))
    got = await run(backend)
    assert isinstance(got.final, StreamDone)
    body = server.requests[0].body
    assert body["max_completion_tokens"] == 200 and "max_tokens" not in body
    assert body["temperature"] == 2.0  # OpenAI's maximum
    for name in ("top_k", "min_p", "repeat_penalty", "repeat_last_n", "seed", "stop"):
        assert name not in body


@pytest.mark.parametrize("official", [False, True])
async def test_the_snapshot_records_exactly_what_went_out(
    server: WireServer, key: str, monkeypatch: pytest.MonkeyPatch, official: bool
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.origin}/v1")
    sampling = Sampling(temperature=2.5, seed=9, stop=("ユーザー:",))
    backend = OpenAIBackend(profile(None if official else server, sampling=sampling))
    server.script(openai_stream(REPLY))
    await run(backend)
    body = server.requests[0].body
    record = backend.settings_snapshot()["request"]
    not_sampling = {"model", "messages", "stream", "stream_options"}
    assert {k: v for k, v in body.items() if k not in not_sampling} == record["sent"]
    expected_defaults = ["top_k", "min_p", "repeat_penalty", "repeat_last_n"] if official else []
    assert record["model_default"] == expected_defaults


async def test_finish_reason_length_is_kept(server: WireServer, key: str) -> None:
    server.script(openai_stream(["ナウシカは", "宮崎駿の"], finish_reason="length"))
    got = await run(OpenAIBackend(profile(server)))
    assert isinstance(got.final, StreamDone) and got.final.finish_reason == "length"


async def test_two_streams_at_once_through_one_backend(server: WireServer, key: str) -> None:
    server.script(
        openai_stream(["トトロ", "かわいい"], interval_s=0.02),
        openai_stream(["ネコバス", "乗りたい"], interval_s=0.02),
    )
    first, second = await two_at_once(OpenAIBackend(profile(server)), CONVERSATION)
    assert {first.text, second.text} == {"トトロかわいい", "ネコバス乗りたい"}
    assert isinstance(first.final, StreamDone) and isinstance(second.final, StreamDone)


# -- keys ----------------------------------------------------------------------------------------


async def test_missing_key_is_reported_without_any_request(server: WireServer) -> None:
    backend = OpenAIBackend(profile(server))
    assert_missing_key(await run(backend), backend, "OPENAI_API_KEY", server)


async def test_key_is_read_at_request_time(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = OpenAIBackend(profile(server))
    assert backend.unusable_reason() is not None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-first-key-0000")
    assert backend.unusable_reason() is None
    server.script(openai_stream(["一回目"]), openai_stream(["二回目"]))
    try:
        await collect(backend.stream(CONVERSATION))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-second-key-1111")
        await collect(backend.stream(CONVERSATION))
    finally:
        await backend.aclose()
    sent = [r.headers["authorization"] for r in server.requests]
    assert sent == ["Bearer sk-first-key-0000", "Bearer sk-second-key-1111"]


async def test_keyless_server_gets_a_placeholder_not_the_users_key(
    server: WireServer, key: str
) -> None:
    # A local server profile names no key variable: the user's OPENAI_API_KEY must not leak to it.
    server.script(openai_stream(REPLY))
    got = await run(OpenAIBackend(profile(server, api_key_env=None, model="local")))
    assert isinstance(got.final, StreamDone)
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_header_and_snapshot_never_show_the_key(server: WireServer, key: str) -> None:
    backend = OpenAIBackend(
        profile(server, base_url=f"http://kurabe:{KEY}@127.0.0.1:{server.port}/v1?token={KEY}")
    )
    assert backend.header() == f"127.0.0.1:{server.port} · gpt-4.1-mini"
    snapshot = backend.settings_snapshot()
    assert KEY not in json.dumps(snapshot, ensure_ascii=False)
    assert snapshot["backend"] == "openai"
    assert snapshot["model"] == "gpt-4.1-mini"
    assert snapshot["base_url"] == f"http://127.0.0.1:{server.port}/v1?token=***"
    assert snapshot["sdk"].startswith("openai ")
    assert snapshot["sdk"] != "openai not installed"
    assert snapshot["timeout_s"] == 5.0 and snapshot["max_retries"] == 0
    sent = snapshot["request"]["sent"]
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 256
    assert sent["repeat_penalty"] == 1.18
    assert snapshot["request"]["model_default"] == ["seed", "stop"]
    assert snapshot["api_key_env"] == "OPENAI_API_KEY"


# -- errors with real status codes and bodies ----------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "retryable", "starts"),
    [
        (openai_401(), "auth", False, "authentication failed (401): Incorrect API key"),
        (openai_429(), "rate_limit", True, "rate limited (429), retry after 2 s"),
        (openai_500(), "server", True, "server error (500): The server had an error"),
        (openai_404("gpt-4.1-mini"), "model_not_found", False, "model 'gpt-4.1-mini' not found"),
        (openai_context_400(), "context_overflow", False, "context too long (400)"),
        (
            openai_error(400, "Invalid value for 'temperature'", param="temperature"),
            "bad_request",
            False,
            "request rejected (400): Invalid value",
        ),
    ],
    ids=["401", "429", "500", "404", "400-context", "400-other"],
)
async def test_api_errors_map_to_one_line(
    server: WireServer, key: str, reply: Any, kind: str, retryable: bool, starts: str
) -> None:
    server.script(reply)
    got = await run(OpenAIBackend(profile(server)))
    assert_one_line_error(got, kind, retryable, starts, KEY)
    assert len(server.requests) == 1  # max_retries=0: no retry


async def test_rate_limit_carries_retry_after(server: WireServer, key: str) -> None:
    server.script(openai_429("20"))
    error = (await run(OpenAIBackend(profile(server)))).final
    assert isinstance(error, StreamError)
    assert error.retry_after_s == 20.0
    assert "retry after 20 s" in error.reason


async def test_401_message_never_echoes_the_key(server: WireServer, key: str) -> None:
    body = f"Incorrect API key provided: {KEY}. You can find your API key at platform.openai.com."
    server.script(openai_error(401, body, code="invalid_api_key"))
    error = (await run(OpenAIBackend(profile(server)))).final
    assert isinstance(error, StreamError) and error.kind == "auth"
    assert KEY not in error.reason and "kurabe-test" not in error.reason
    # The masked key OpenAI echoes normally is dropped too.
    server.script(openai_401())
    error = (await run(OpenAIBackend(profile(server)))).final
    assert isinstance(error, StreamError) and "sk-kurab" not in error.reason


async def test_sdk_retries_a_500_when_allowed(server: WireServer, key: str) -> None:
    server.script(openai_500(), openai_stream(REPLY))
    got = await run(OpenAIBackend(profile(server, max_retries=1)))
    assert isinstance(got.final, StreamDone)
    assert got.text == "".join(REPLY)
    assert len(server.requests) == 2
    assert server.requests[1].headers["x-stainless-retry-count"] == "1"
    assert server.requests[0].body == server.requests[1].body


async def test_connection_refused(key: str) -> None:
    port = free_port()
    backend = OpenAIBackend(
        ModelProfile(
            name="nowhere",
            backend="openai",
            model="local",
            base_url=f"http://127.0.0.1:{port}/v1",
            max_retries=0,
        )
    )
    error = (await run(backend)).final
    assert isinstance(error, StreamError)
    assert error.kind == "connection" and error.retryable
    assert error.reason == f"connection failed: cannot reach http://127.0.0.1:{port}/v1"


async def test_no_answer_before_the_timeout(server: WireServer, key: str) -> None:
    server.script(openai_error(200, "never sent", delay_s=5.0))
    started = time.perf_counter()
    error = (await run(OpenAIBackend(profile(server, timeout_s=0.3)))).final
    assert time.perf_counter() - started < 3.0
    assert isinstance(error, StreamError)
    assert error.kind == "timeout" and error.retryable and not error.partial
    assert "timed out after 0.3 s" in error.reason


# -- a reply cut off mid-stream keeps its text ---------------------------------------------------


async def test_connection_dropped_mid_stream_keeps_the_text(server: WireServer, key: str) -> None:
    # role chunk + three content chunks, then the socket closes without the final chunk.
    server.script(openai_stream(REPLY, drop_after=4))
    got = await run(OpenAIBackend(profile(server)))
    assert got.deltas == REPLY[:3]
    error = got.final
    assert isinstance(error, StreamError)
    assert error.partial and error.retryable and error.kind == "connection"
    kept = len("".join(REPLY[:3]))
    assert error.reason == f"connection dropped mid-reply; kept {kept} characters"
    assert error.ttft_s is not None and error.total_s is not None


async def test_stream_that_ends_without_a_finish_is_not_done(server: WireServer, key: str) -> None:
    server.script(openai_stream(REPLY, end_after=3))
    got = await run(OpenAIBackend(profile(server)))
    assert got.deltas == REPLY[:2]
    assert isinstance(got.final, StreamError) and got.final.partial
    assert "ended before the reply was finished" in got.final.reason


async def test_stall_mid_stream_times_out_and_keeps_the_text(server: WireServer, key: str) -> None:
    server.script(openai_stream(REPLY, stall_after=3, stall_s=5.0))
    got = await run(OpenAIBackend(profile(server, timeout_s=0.3)))
    assert got.deltas == REPLY[:2]
    error = got.final
    assert isinstance(error, StreamError)
    assert error.kind == "timeout" and error.partial and error.retryable
    assert error.reason.startswith("connection stalled mid-reply (timed out after 0.3 s)")


async def test_error_event_inside_the_stream(server: WireServer, key: str) -> None:
    frames = openai_stream(REPLY).frames[:3]
    frames.append(
        sse(
            {
                "error": {
                    "message": "The server had an error processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )
    )
    server.script(SSEReply(frames))
    got = await run(OpenAIBackend(profile(server)))
    assert got.deltas == REPLY[:2]
    error = got.final
    assert isinstance(error, StreamError)
    assert error.kind == "server" and error.partial and error.retryable
    assert error.reason.endswith(f"kept {len(''.join(REPLY[:2]))} characters")


async def test_usage_only_chunk_from_a_server_without_finish_reason(
    server: WireServer, key: str
) -> None:
    # Some compatible servers omit finish_reason; a usage chunk still marks a complete reply.
    usage = {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    frames = [
        sse(openai_chunk([{"index": 0, "delta": {"content": "ジブリ"}, "finish_reason": None}])),
        sse(openai_chunk([], usage=usage)),
        b"data: [DONE]\n\n",
    ]
    server.script(SSEReply(frames))
    got = await run(OpenAIBackend(profile(server)))
    assert isinstance(got.final, StreamDone)
    assert got.final.finish_reason == "unknown" and got.final.prompt_tokens == 9


async def test_chunks_of_odd_shape_are_passed_over_not_fatal(server: WireServer, key: str) -> None:
    # Compatible servers send nulls where OpenAI sends objects; chunks are read as sent, so each
    # field is checked for its shape: a null is passed over, the rest of the reply still counts.
    frames = [
        sse(openai_chunk([{"index": 0, "delta": {"content": "ナルト"}, "finish_reason": None}])),
        sse({"id": "x", "object": "chat.completion.chunk", "choices": None}),
        sse(openai_chunk([{"index": 0, "delta": None, "finish_reason": None}])),
        sse(openai_chunk([{"index": 1, "delta": {"content": "別の選択肢"}}])),
        sse(openai_chunk([{"index": 0, "delta": {"content": 7}, "finish_reason": None}])),
        sse(openai_chunk([{"index": 0, "delta": {"content": "だね"}, "finish_reason": "stop"}])),
        sse(openai_chunk([], usage={"prompt_tokens": None, "completion_tokens": 3})),
        b"data: [DONE]\n\n",
    ]
    server.script(SSEReply(frames))
    got = await run(OpenAIBackend(profile(server)))
    assert got.deltas == ["ナルト", "だね"]
    assert isinstance(got.final, StreamDone)
    assert got.final.finish_reason == "stop"
    assert (got.final.prompt_tokens, got.final.completion_tokens) == (None, 3)


async def test_empty_stream_from_a_compatible_server_is_diagnosed(
    server: WireServer, key: str
) -> None:
    # llama_cpp.server's way to refuse a long prompt when streaming: 200 and no events at all.
    server.script(SSEReply([]), openai_context_400())
    error = (await run(OpenAIBackend(profile(server)))).final
    assert isinstance(error, StreamError)
    assert error.kind == "context_overflow" and not error.retryable
    assert len(server.requests) == 2
    probe = server.requests[1].body
    assert "stream" not in probe and "stream_options" not in probe
    assert probe["max_tokens"] == 1
    assert probe["messages"] == server.requests[0].body["messages"]


async def test_empty_stream_without_a_complaint(server: WireServer, key: str) -> None:
    completion = {
        "id": "chatcmpl-probe",
        "object": "chat.completion",
        "created": 1744000000,
        "model": "local",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "う"},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21},
    }
    server.script(SSEReply([]), JSONReply(200, completion))
    error = (await run(OpenAIBackend(profile(server)))).final
    assert isinstance(error, StreamError)
    assert error.reason == "stream ended before any reply arrived"
    assert error.retryable and not error.partial


async def test_official_api_empty_stream_is_not_probed(
    server: WireServer, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server.origin}/v1")
    server.script(SSEReply([]))
    error = (await run(OpenAIBackend(profile(None)))).final
    assert isinstance(error, StreamError) and error.kind == "connection"
    assert len(server.requests) == 1


# -- cancellation --------------------------------------------------------------------------------


async def test_cancel_closes_the_http_stream_promptly_and_backend_stays_usable(
    server: WireServer, key: str
) -> None:
    server.script(openai_stream(["ずっと", "話し続ける", "よ"] * 200, interval_s=0.05))
    backend = OpenAIBackend(profile(server))
    await cancel_after_two_deltas(backend, CONVERSATION, server)
    frames = server.frames_sent
    await asyncio.sleep(0.2)
    assert server.frames_sent == frames  # nothing more is being streamed

    server.script(openai_stream(REPLY))
    got = await run(backend)
    assert got.text == "".join(REPLY) and isinstance(got.final, StreamDone)


async def test_closing_the_iterator_closes_the_http_stream(server: WireServer, key: str) -> None:
    server.script(openai_stream(["まだ", "続く"] * 200, interval_s=0.05))
    backend = OpenAIBackend(profile(server))
    stream = backend.stream(CONVERSATION)
    first = await stream.__anext__()
    assert isinstance(first, TextDelta) and first.text == "まだ"
    await stream.aclose()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(server.client_gone.wait, 2.0)
    server.script(openai_stream(REPLY))
    got = await run(backend)
    assert isinstance(got.final, StreamDone)


# -- helpers shared with the Anthropic backend ---------------------------------------------------


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "20"}) == 20.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    waited = retry_after_seconds({"retry-after": date})
    assert waited is not None and 25 <= waited <= 31


def test_redact_and_public_url() -> None:
    assert redact(f"bad key {KEY} here", [KEY]) == "bad key *** here"
    assert "0123" not in redact("provided: sk-proj-abc***********0123.")
    assert public_url("https://u:p@example.com:8443/v1?key=x#f") == (
        "https://example.com:8443/v1?key=***"
    )
    assert public_url("http://[::1]:8080/v1") == "http://[::1]:8080/v1"
    assert public_url("http://[::1") == "<invalid url>"


async def test_unusable_base_url_is_an_error_event_not_an_exception(key: str) -> None:
    backend = OpenAIBackend(profile(None, base_url="http://[::1"))
    assert backend.header() == "<invalid url> · gpt-4.1-mini"
    error = (await run(backend)).final
    assert isinstance(error, StreamError) and not error.retryable
    assert error.reason.startswith("cannot set up the OpenAI client")


def test_importing_the_backends_does_not_import_the_sdks() -> None:
    code = (
        "import sys, backends.openai_backend, backends.anthropic_backend, backends.api_errors\n"
        "heavy = [m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
