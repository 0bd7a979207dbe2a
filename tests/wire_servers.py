"""Loopback HTTP/1.1 servers that speak the OpenAI and Anthropic streaming wire formats.

Tests script what the server answers, request by request, and read back what it received (the
request line, headers and JSON body), so they check the real bytes the SDKs put on the wire and
the real bytes they parse. The server runs in threads (``ThreadingHTTPServer``) on 127.0.0.1 with
an ephemeral port and keeps connections alive like the real APIs do.

Streams are sent as the APIs send them: ``Transfer-Encoding: chunked`` with
``Content-Type: text/event-stream``, one SSE event per chunk. OpenAI: ``data: {chunk JSON}``
lines (role delta first, content deltas, a finish_reason chunk, a usage chunk with empty
``choices``) ending with ``data: [DONE]``. Anthropic: named events (``message_start``,
``content_block_start``, ``ping``, ``content_block_delta`` …, ``message_stop``). Errors use the
real status codes and JSON bodies.

Scripted faults: a connection closed mid-stream (some chunks, then the socket is shut without the
terminating chunk), a body that ends cleanly but early, a stall (headers, or part of the body,
then silence), and a slow stream that notes when the client goes away.

For whole runs a server can instead compute each reply from the request (``responder``: request
and its 1-based number → reply), serve at most ``capacity`` requests at once (the others wait
for a place, or with ``over_capacity="429"`` are refused with a 429 and ``Retry-After``), and
counts its peak of requests at once (:attr:`WireServer.peak`).
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    """The decoded JSON body (None when there was none)."""


@dataclass
class JSONReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Wait this long before answering (to provoke client timeouts)."""


@dataclass
class SSEReply:
    frames: list[bytes]
    """Complete SSE events (each ends with a blank line); one HTTP chunk each."""
    headers: dict[str, str] = field(default_factory=dict)
    interval_s: float = 0.0
    """Pause between frames."""
    drop_after: int | None = None
    """Close the socket after this many frames, without the terminating zero-length chunk."""
    stall_after: int | None = None
    """Stop sending after this many frames and keep the connection open (until the client
    leaves or ``stall_s`` passes)."""
    stall_s: float = 30.0
    end_after: int | None = None
    """End the body cleanly (zero-length chunk) after this many frames."""


Reply = JSONReply | SSEReply


class WireServer:
    """A scripted loopback server. ``script()`` queues replies; the last one is repeated."""

    def __init__(self, name: str = "wire") -> None:
        self.name = name
        self.requests: list[RecordedRequest] = []
        self.client_gone = threading.Event()
        """Set when a streaming reply noticed that the client closed the connection."""
        self.client_gone_at: float | None = None
        self.frames_sent = 0
        self.errors: list[BaseException] = []
        """Unexpected exceptions in handler threads (a client hanging up is expected)."""
        self.model_ids: list[str] = []
        """What ``GET /v1/models`` lists (an OpenAI-style model list)."""
        self.responder: Callable[[RecordedRequest, int], Reply] | None = None
        """Computes each POST's reply from the request and its number (instead of a script)."""
        self.capacity: int | None = None
        """At most this many POSTs served at once (None: no limit)."""
        self.over_capacity = "queue"
        """``queue``: a POST over capacity waits for a place; ``429``: it is refused."""
        self.retry_after = "0.05"
        """The ``Retry-After`` of a 429 over capacity (seconds)."""
        self.active = 0
        self.peak = 0
        """The most POSTs being answered at once."""
        self.refused = 0
        """POSTs refused with a 429 over capacity."""
        self.stream_seconds = 0.0
        """The time spent sending computed streams, all added up."""
        self._places: threading.Semaphore | None = None
        self._replies: deque[Reply] = deque()
        self._last: Reply | None = None
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ----------------------------------------------------------------------------

    def script(self, *replies: Reply) -> WireServer:
        with self._lock:
            self._replies.extend(replies)
        return self

    def _next_reply(self) -> Reply | None:
        with self._lock:
            if self._replies:
                self._last = self._replies.popleft()
            return self._last

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> WireServer:
        server = self
        if self.capacity is not None and self.over_capacity == "queue":
            self._places = threading.Semaphore(self.capacity)

        class Handler(_Handler):
            wire = server

        httpd = _QuietServer(("127.0.0.1", 0), Handler)
        httpd.wire = self
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    """Records handler exceptions instead of printing them; hang-ups are normal here."""

    wire: WireServer
    # socketserver listens with a backlog of 5: a sixth client connecting at once has its SYN
    # dropped and retries a second later, which no real server (uvicorn 2048, llama-server's
    # httplib SOMAXCONN) makes a client wait.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, (ConnectionError, TimeoutError)):
            self.wire.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    wire: WireServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            models = [
                {"id": model, "object": "model", "created": 1744000000, "owned_by": "kurabe"}
                for model in self.wire.model_ids
            ]
            self._send_json(JSONReply(200, {"object": "list", "data": models}))
        else:
            self._send_json(JSONReply(404, {"error": {"message": "Not Found"}}))

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        wire = self.wire
        number = self._record(body)
        if wire.responder is not None:
            self._serve_computed(number)
            return
        reply = wire._next_reply()
        if reply is None:
            self._send_json(JSONReply(500, {"error": {"message": "no reply scripted"}}))
        elif isinstance(reply, JSONReply):
            self._send_json(reply)
        else:
            self._send_sse(reply)

    def _record(self, body: Any) -> int:
        """Keep the request; returns its number (1-based)."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.wire._lock:
            self.wire.requests.append(RecordedRequest(self.command, self.path, headers, body))
            return len(self.wire.requests)

    def _serve_computed(self, number: int) -> None:
        """Answer with the responder's reply, within the server's capacity."""
        wire = self.wire
        assert wire.responder is not None
        if wire._places is not None:
            wire._places.acquire()
        with wire._lock:
            request = wire.requests[number - 1]
            if (
                wire.capacity is not None
                and wire.over_capacity == "429"
                and wire.active >= wire.capacity
            ):
                wire.refused += 1
                refused = True
            else:
                refused = False
                wire.active += 1
                wire.peak = max(wire.peak, wire.active)
        try:
            if refused:
                self._send_json(openai_429(wire.retry_after))
                return
            reply = wire.responder(request, number)
            if isinstance(reply, JSONReply):
                self._send_json(reply)
            else:
                started = time.perf_counter()
                self._send_sse(reply)
                with wire._lock:
                    wire.stream_seconds += time.perf_counter() - started
        finally:
            if not refused:
                with wire._lock:
                    wire.active -= 1
            if wire._places is not None:
                wire._places.release()

    def _send_json(self, reply: JSONReply) -> None:
        if reply.delay_s and self._client_left(reply.delay_s):
            self.close_connection = True
            return
        data = json.dumps(reply.body, ensure_ascii=False).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _client_left(self, wait_s: float) -> bool:
        """Wait up to ``wait_s``; True as soon as the client closes its side."""
        sock: socket.socket = self.connection
        readable, _, _ = select.select([sock], [], [], wait_s)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _gone(self) -> None:
        self.wire.client_gone_at = time.perf_counter()
        self.wire.client_gone.set()
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_sse(self, reply: SSEReply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for sent, frame in enumerate(reply.frames):
                if reply.drop_after is not None and sent == reply.drop_after:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if reply.end_after is not None and sent == reply.end_after:
                    break
                if reply.stall_after is not None and sent == reply.stall_after:
                    if self._client_left(reply.stall_s):
                        self._gone()
                    self.close_connection = True
                    return
                if sent and reply.interval_s and self._client_left(reply.interval_s):
                    self._gone()
                    return
                self._chunk(frame)
                self.wire.frames_sent += 1
            self._chunk(b"")  # the terminating zero-length chunk: the body is complete
        except (BrokenPipeError, ConnectionResetError):
            self._gone()


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event; ``data`` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


@contextmanager
def running(name: str = "wire") -> Iterator[WireServer]:
    server = WireServer(name).start()
    try:
        yield server
    finally:
        server.stop()


# -- OpenAI ------------------------------------------------------------------------------------

OPENAI_HEADERS = {
    "openai-processing-ms": "112",
    "openai-version": "2020-10-01",
    "x-request-id": "req_4c1f0b5d2f8e4e0e9a1b2c3d4e5f6a7b",
}


def openai_chunk(
    choices: list[dict[str, Any]],
    model: str = "gpt-4.1-mini-2025-04-14",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-BKz9d3K0kurabe0test",
        "object": "chat.completion.chunk",
        "created": 1744000000,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_6f2eabb9a5",
        "choices": choices,
        "usage": usage,
    }


def openai_frames(
    texts: list[str],
    *,
    finish_reason: str | None = "stop",
    prompt_tokens: int = 42,
    completion_tokens: int | None = None,
    cached_tokens: int = 0,
    include_usage: bool = True,
    model: str = "gpt-4.1-mini-2025-04-14",
) -> list[bytes]:
    """A streamed chat completion exactly as api.openai.com sends it."""

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    frames = [
        sse(openai_chunk([choice({"role": "assistant", "content": "", "refusal": None})], model))
    ]
    frames += [sse(openai_chunk([choice({"content": text})], model)) for text in texts]
    if finish_reason is not None:
        frames.append(sse(openai_chunk([choice({}, finish_reason)], model)))
    if include_usage:
        completion = completion_tokens if completion_tokens is not None else len(texts)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        frames.append(sse(openai_chunk([], model, usage)))
    frames.append(b"data: [DONE]\n\n")
    return frames


def openai_stream(texts: list[str], **kwargs: Any) -> SSEReply:
    reply_fields = {k: kwargs.pop(k) for k in list(kwargs) if k in _SSE_FIELDS}
    return SSEReply(openai_frames(texts, **kwargs), headers=dict(OPENAI_HEADERS), **reply_fields)


def openai_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    delay_s: float = 0.0,
) -> JSONReply:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JSONReply(status, body, {**OPENAI_HEADERS, **(headers or {})}, delay_s)


def openai_401() -> JSONReply:
    return openai_error(
        401,
        "Incorrect API key provided: sk-kurab*****************cdef. You can find your API key "
        "at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def openai_429(retry_after: str = "2") -> JSONReply:
    return openai_error(
        429,
        "Rate limit reached for gpt-4.1-mini in organization org-kurabe on requests per min "
        "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": retry_after, "x-ratelimit-remaining-requests": "0"},
    )


def openai_500() -> JSONReply:
    return openai_error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )


def openai_404(model: str) -> JSONReply:
    return openai_error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def openai_context_400() -> JSONReply:
    return openai_error(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 131072 tokens. Please reduce the length of the messages.",
        param="messages",
        code="context_length_exceeded",
    )


# -- Anthropic ---------------------------------------------------------------------------------

ANTHROPIC_HEADERS = {
    "request-id": "req_011CKurabeTestRequest",
    "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
}


def anthropic_frames(
    texts: list[str],
    *,
    stop_reason: str | None = "end_turn",
    input_tokens: int = 37,
    output_tokens: int | None = None,
    cache_read_input_tokens: int = 0,
    model: str = "claude-sonnet-4-6",
    error: dict[str, Any] | None = None,
) -> list[bytes]:
    """A streamed Messages API reply exactly as api.anthropic.com sends it.

    With ``error``, an ``event: error`` replaces everything after the text deltas (the API does
    that when it becomes overloaded mid-reply).
    """
    frames = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01KurabeTest0000000000",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": cache_read_input_tokens,
                        "output_tokens": 1,
                        "service_tier": "standard",
                    },
                },
            },
            "message_start",
        ),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
    ]
    frames += [
        sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
            "content_block_delta",
        )
        for text in texts
    ]
    if error is not None:
        frames.append(sse({"type": "error", "error": error}, "error"))
        return frames
    frames.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    if stop_reason is not None:
        frames.append(
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {
                        "output_tokens": output_tokens if output_tokens is not None else len(texts)
                    },
                },
                "message_delta",
            )
        )
        frames.append(sse({"type": "message_stop"}, "message_stop"))
    return frames


def anthropic_stream(texts: list[str], **kwargs: Any) -> SSEReply:
    reply_fields = {k: kwargs.pop(k) for k in list(kwargs) if k in _SSE_FIELDS}
    return SSEReply(
        anthropic_frames(texts, **kwargs), headers=dict(ANTHROPIC_HEADERS), **reply_fields
    )


def anthropic_error(
    status: int,
    error_type: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    delay_s: float = 0.0,
) -> JSONReply:
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": "req_011CKurabeTestError",
    }
    return JSONReply(status, body, {**ANTHROPIC_HEADERS, **(headers or {})}, delay_s)


def anthropic_401() -> JSONReply:
    return anthropic_error(401, "authentication_error", "invalid x-api-key")


def anthropic_429(retry_after: str = "20") -> JSONReply:
    return anthropic_error(
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per "
        "minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        headers={"retry-after": retry_after, "anthropic-ratelimit-requests-remaining": "0"},
    )


def anthropic_529() -> JSONReply:
    return anthropic_error(529, "overloaded_error", "Overloaded")


def anthropic_500() -> JSONReply:
    return anthropic_error(500, "api_error", "Internal server error")


def anthropic_404(model: str) -> JSONReply:
    return anthropic_error(404, "not_found_error", f"model: {model}")


def anthropic_context_400() -> JSONReply:
    return anthropic_error(
        400, "invalid_request_error", "prompt is too long: 215017 tokens > 200000 maximum"
    )


_SSE_FIELDS = {"interval_s", "drop_after", "stall_after", "stall_s", "end_after"}


def free_port() -> int:
    """A port that nothing listens on right now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- consuming a backend's stream ----------------------------------------------------------------


@dataclass
class Collected:
    deltas: list[str]
    final: Any
    """The last event: a StreamDone or a StreamError."""

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def collect(events: Any) -> Collected:
    """Drain a backend stream; checks that exactly one final event comes last."""
    deltas: list[str] = []
    finals: list[Any] = []
    async for event in events:
        assert not finals, f"event after the final one: {event!r}"
        text = getattr(event, "text", None)
        if type(event).__name__ == "TextDelta":
            assert text, "empty delta"
            deltas.append(text)
        else:
            finals.append(event)
    assert len(finals) == 1, f"expected one final event, got {finals!r}"
    return Collected(deltas, finals[0])
