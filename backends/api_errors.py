"""What the OpenAI and Anthropic backends share: error mapping, key hygiene, SDK loading.

The main part turns what the SDKs raise into one-line :class:`StreamError` events.

Both SDKs are generated from the same template, so their exceptions look alike: a status error
carries ``status_code``, ``response`` (headers) and ``body`` (the decoded JSON error); a connection
error has none of those, and a timeout is a connection error whose class name says so. The mapping
below works on those shapes (duck typing), which keeps this module free of SDK imports and lets
one function serve both backends. Transport errors that an SDK lets through raw (``httpx2``
errors while reading a stream) are recognised by their class names.

Reasons are one line, start with what happened (``authentication failed (401)``, ``rate limited
(429), retry after 20 s``, ``connection dropped mid-reply; kept 42 characters``) and never contain
an API key: the key in use is removed, and so is anything shaped like one (servers echo a masked
key in 401 messages), and the credentials a URL may carry (``https://user:pass@host``,
``?api-key=…``). :func:`public_url` is the form of a ``base_url`` that may be shown, stored,
exported or logged; :class:`RedactingFilter` applies :func:`redact` to every log line.

The SDKs are heavy (about a second each to import), so :func:`build_off_loop` imports them and
builds clients in a worker thread: the first request never freezes the UI's event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from backends.base import ErrorKind, StreamClock, StreamError, one_line

_KEY_SHAPES = re.compile(r"\b(?:sk|pk|rk|key)[-_][A-Za-z0-9*_\-.]{4,}")
_CONTEXT_WORDS = re.compile(
    r"context[ _]length|context window|maximum context|too long|exceeds? (?:the )?"
    r"(?:model'?s? )?(?:context|max(?:imum)? (?:input|prompt|token))|prompt is too long"
    r"|too many tokens|context_length_exceeded|n_ctx",
    re.IGNORECASE,
)
_MODEL_WORDS = re.compile(r"\bmodel\b", re.IGNORECASE)
_SECRET_WORDS = r"key|token|secret|pass|pwd|auth|sig|credential|session"
_SECRET_QUERY_NAME = re.compile(_SECRET_WORDS, re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s'\"<>]*@")
_URL_SECRET_VALUE = re.compile(
    rf"(?i)([?&][^=&#\s'\"<>]*(?:{_SECRET_WORDS})[^=&#\s'\"<>]*=)[^&#\s'\"<>]+"
)
REDACTED = "***"

PLACEHOLDER_KEY = "not-needed"
"""Sent to servers that need no key (the SDKs refuse an empty one). It also keeps the SDKs from
falling back to a key in the user's environment and handing it to a third-party server."""

T = TypeVar("T")


@functools.cache
def sdk_version(package: str) -> str:
    """The installed version of ``package``, without importing it (read once: reading the
    installed metadata takes milliseconds, and every pane's settings snapshot asks)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def key_fingerprint(key: str) -> str:
    """A short digest to notice that the key changed, so the key itself is never kept around."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def client_tag(key: str) -> tuple[str, int]:
    """What a cached SDK client is valid for: this key, on the running event loop."""
    return key_fingerprint(key), id(asyncio.get_running_loop())


async def build_off_loop(build: Callable[[], T]) -> T:
    """Run ``build`` (SDK import and client construction) in a worker thread."""
    return await asyncio.to_thread(build)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove the given secrets, anything that looks like an API key and URL credentials
    (:func:`scrub_urls`) from ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(lambda m: m.group(0)[:3] + "…", scrub_urls(text))


def scrub_urls(text: str) -> str:
    """``text`` with the user info of every URL in it dropped and the values of secret-looking
    query parameters (``api-key``, ``token``, ``sig`` …) replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    return _URL_SECRET_VALUE.sub(rf"\1{REDACTED}", _URL_USERINFO.sub(r"\1", text))


class RedactingFilter(logging.Filter):
    """Applies :func:`redact` to each log record (message and traceback) a handler writes, so
    no key and no URL credential reaches a log file, whichever library logged it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def _host_port(url: str) -> tuple[str, str] | None:
    """(scheme, ``host[:port]``) of ``url`` without user info, or None if it does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return parts.scheme, f"{host}:{port}" if port is not None else host


def public_url(url: str) -> str:
    """``url`` safe to show, store, export and log: no user info, no fragment, and ``***`` for
    the value of every query parameter that looks secret (by its name or its value)."""
    found = _host_port(url)
    if found is None:
        return "<invalid url>"
    parts = urlsplit(url)
    query = [
        (name, REDACTED if _SECRET_QUERY_NAME.search(name) or _KEY_SHAPES.search(value) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((found[0], found[1], parts.path, urlencode(query, safe="*"), ""))


def url_host(url: str) -> str:
    """``host:port`` of ``url`` (the port only when it is explicit)."""
    found = _host_port(url)
    return found[1] if found is not None and found[1] else "<invalid url>"


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed)) - time.time())


def _format_seconds(seconds: float) -> str:
    if seconds >= 10 or seconds == int(seconds):
        return f"{seconds:.0f} s"
    return f"{seconds:.1f} s"


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What the mapper needs to know about the request that failed."""

    provider: str
    """``OpenAI`` or ``Anthropic``, for messages."""
    model: str
    url: str
    """The base URL actually used (already without credentials)."""
    timeout_s: float
    received_chars: int = 0
    """Characters of reply text already streamed; more than zero makes the error ``partial``."""
    secrets: tuple[str | None, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def _error_fields(exc: BaseException) -> tuple[str, str | None, str | None]:
    """(server message, error type, error code) from an SDK error's decoded body."""
    body: Any = getattr(exc, "body", None)
    inner: Any = body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        inner = body["error"]
    message = ""
    err_type: str | None = None
    code: str | None = None
    if isinstance(inner, Mapping):
        raw_message = inner.get("message") or inner.get("detail")
        message = str(raw_message) if raw_message else ""
        err_type = str(inner["type"]) if inner.get("type") else None
        code = str(inner["code"]) if inner.get("code") else None
    elif isinstance(inner, str):
        message = inner
    if not message:
        message = str(getattr(exc, "message", "") or exc)
    return message, err_type, code


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def classify(exc: BaseException, ctx: ErrorContext) -> tuple[ErrorKind, str, bool, float | None]:
    """(kind, reason without the partial suffix, retryable, retry_after_s) for ``exc``."""
    names = _class_names(exc)
    status = _status_of(exc)
    is_api_error = "APIError" in names
    message, err_type, code = _error_fields(exc) if is_api_error else (str(exc), None, None)
    message = one_line(redact(message, ctx.secrets), 140)
    detail = f": {message}" if message else ""
    code_word = f"{status}" if status and status >= 400 else ""
    tag = f" ({code_word})" if code_word else ""
    blob = " ".join(x for x in (message, err_type or "", code or "") if x)

    if "APITimeoutError" in names or "TimeoutException" in names or "RequestTimeoutError" in names:
        what = "connection stalled mid-reply" if ctx.received_chars else f"no answer from {ctx.url}"
        return "timeout", f"{what} (timed out after {_format_seconds(ctx.timeout_s)})", True, None
    if not is_api_error and ({"TransportError", "RequestError"} & names):
        # A raw transport error while reading the body: the connection went away.
        if ctx.received_chars:
            return "connection", "connection dropped mid-reply", True, None
        return (
            "connection",
            f"connection dropped before the reply ({type(exc).__name__})",
            True,
            None,
        )
    if "APIConnectionError" in names:
        if ctx.received_chars:
            return "connection", "connection dropped mid-reply", True, None
        return "connection", f"connection failed: cannot reach {ctx.url}", True, None

    if status == 401 or err_type == "authentication_error" or code == "invalid_api_key":
        return "auth", f"authentication failed (401){detail}", False, None
    if status == 403 or err_type == "permission_error":
        return "auth", f"permission denied (403){detail}", False, None
    if status == 429 or err_type == "rate_limit_error" or code == "rate_limit_exceeded":
        if code == "insufficient_quota" or err_type == "insufficient_quota":
            return "quota", f"quota exceeded (429){detail}", False, None
        wait = retry_after_seconds(_headers_of(exc))
        after = f", retry after {_format_seconds(wait)}" if wait is not None else ""
        return "rate_limit", f"rate limited (429){after}{detail}", True, wait
    if status == 404 or err_type == "not_found_error" or code == "model_not_found":
        if code == "model_not_found" or err_type == "not_found_error" or _MODEL_WORDS.search(blob):
            return "model_not_found", f"model '{ctx.model}' not found{tag}{detail}", False, None
        return (
            "bad_request",
            f"endpoint not found (404) at {ctx.url}{detail}; check base_url",
            False,
            None,
        )
    if status == 413 or err_type == "request_too_large":
        return "context_overflow", f"request too large (413){detail}", False, None
    if (status in (400, 422) or err_type == "invalid_request_error") and _CONTEXT_WORDS.search(
        blob
    ):
        return "context_overflow", f"context too long{tag}{detail}", False, None
    if status in (400, 422) or err_type == "invalid_request_error":
        return "bad_request", f"request rejected{tag}{detail}", False, None
    if status == 408:
        return "timeout", f"server timed out (408){detail}", True, None
    if status == 529 or err_type == "overloaded_error":
        return "server", f"{ctx.provider} overloaded{tag or ' (529)'}{detail}", True, None
    if (status is not None and status >= 500) or err_type in ("api_error", "server_error"):
        return "server", f"server error{tag}{detail}", True, None
    if status is not None and status >= 400:
        return "other", f"request failed{tag}{detail}", False, None
    if is_api_error:
        return "other", f"{ctx.provider} error{detail}", False, None
    text = one_line(redact(f"{type(exc).__name__}: {exc}", ctx.secrets), 140)
    return "other", f"unexpected error: {text}", False, None


def map_exception(exc: BaseException, ctx: ErrorContext, clock: StreamClock) -> StreamError:
    """The :class:`StreamError` for ``exc``; marks it partial when text had already arrived."""
    kind, reason, retryable, retry_after = classify(exc, ctx)
    if ctx.received_chars:
        if reason == "connection dropped mid-reply":
            reason = f"{reason}; kept {ctx.received_chars} characters"
        else:
            reason = f"{reason}; reply cut off, kept {ctx.received_chars} characters"
    return StreamError(
        reason=one_line(redact(reason, ctx.secrets)),
        retryable=retryable,
        kind=kind,
        partial=ctx.received_chars > 0,
        retry_after_s=retry_after,
        prompt_tokens=ctx.prompt_tokens,
        completion_tokens=ctx.completion_tokens,
        ttft_s=clock.ttft_s,
        total_s=clock.total_s,
    )


def ended_early(ctx: ErrorContext, clock: StreamClock) -> StreamError:
    """The stream closed cleanly but before the API said the reply was finished."""
    if ctx.received_chars:
        reason = f"stream ended before the reply was finished; kept {ctx.received_chars} characters"
    else:
        reason = "stream ended before any reply arrived"
    return StreamError(
        reason=reason,
        retryable=True,
        kind="connection",
        partial=ctx.received_chars > 0,
        prompt_tokens=ctx.prompt_tokens,
        completion_tokens=ctx.completion_tokens,
        ttft_s=clock.ttft_s,
        total_s=clock.total_s,
    )
