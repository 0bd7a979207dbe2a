"""Claude's sampling parameters against a real Anthropic-compatible server: llama-server.

llama.cpp's ``llama-server`` serves the Messages API at ``/v1/messages`` and passes
``temperature``, ``top_p``, ``top_k``, ``max_tokens`` and ``stop_sequences`` on to its sampler.
AnthropicBackend streams from it through the anthropic SDK exactly as it would from Claude; after
each reply the server's ``/slots`` says which sampling its slot ran with, so the test asserts
that what the backend recorded as sent (``settings_snapshot()["request"]``) really reached the
sampler, and that what it did not send stayed at the server's own default.

Skipped when no llama-server binary is found (see tests/llama_server_support.py).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.anthropic_backend import AnthropicBackend
from backends.base import ChatMessage, Conversation, StreamDone
from backends.profiles import ModelProfile, Sampling
from tests.llama_server_support import (
    MISSING_REASON,
    get_json,
    llama_server_binary,
    running_llama_server,
)
from tests.wire_servers import collect

BINARY = llama_server_binary()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(BINARY is None, reason=MISSING_REASON)]

# Values unlike llama-server's defaults (temperature 0.8, top_k 40, top_p 0.95), so a value that
# reached the sampler cannot be mistaken for a default.
SAMPLING = Sampling(temperature=0.35, top_k=7, top_p=0.83, max_tokens=6, stop=("ユーザー:",))
CONVERSATION = Conversation(
    system="あなたは大のアニメファンで、友達と会話しています。",
    turns=(ChatMessage("user", "トトロ好き？"),),
)
# How the slot reports each Messages API parameter.
SLOT_NAMES = {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p"}


@pytest.fixture(scope="module")
def server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert BINARY is not None
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with running_llama_server(BINARY, tiny_gguf, log) as origin:
        yield origin


@pytest.fixture(scope="module")
def defaults(server: str) -> dict[str, Any]:
    """The slot's sampling after a bare Messages request (no sampling): the server's defaults."""
    body = {"model": "tiny", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        f"{server}/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
    except urllib.error.HTTPError as exc:
        pytest.skip(f"this llama-server has no Messages API: {exc.code} at /v1/messages")
    params = _slot_params(server)
    if not all(name in params for name in SLOT_NAMES.values()):
        pytest.skip(f"this llama-server reports no slot sampling at {server}/slots")
    return params


def _slot_params(origin: str) -> dict[str, Any]:
    try:
        slots = get_json(f"{origin}/slots")
    except urllib.error.HTTPError:
        return {}
    return dict(slots[0].get("params") or {}) if slots else {}


def _backend(origin: str, **changes: Any) -> AnthropicBackend:
    values: dict[str, Any] = {
        "name": "llama-server-messages",
        "backend": "anthropic",
        "model": "tiny",
        "base_url": origin,
        "sampling": SAMPLING,
        "max_retries": 0,
        "timeout_s": 60.0,
    }
    return AnthropicBackend(ModelProfile(**{**values, **changes}))


async def _reply_then_slot(backend: AnthropicBackend, origin: str) -> dict[str, Any]:
    try:
        got = await collect(backend.stream(CONVERSATION))
    finally:
        await backend.aclose()
    assert isinstance(got.final, StreamDone), got.final
    return _slot_params(origin)


@pytest.mark.parametrize(
    ("send_sampling", "reached"),
    [
        (("temperature", "top_p", "top_k"), {"temperature": 0.35, "top_p": 0.83, "top_k": 7}),
        (None, {"temperature": 0.35, "top_k": 7}),  # the default for compatible servers
        (("temperature",), {"temperature": 0.35}),  # what the seed-page Claude profile sends
        ((), {}),
    ],
)
async def test_what_the_backend_records_as_sent_reaches_the_sampler(
    server: str,
    defaults: dict[str, Any],
    send_sampling: tuple[str, ...] | None,
    reached: dict[str, float],
) -> None:
    backend = _backend(server, send_sampling=send_sampling)
    record = backend.settings_snapshot()["request"]
    sent = {k: v for k, v in record["sent"].items() if k in SLOT_NAMES}
    assert sent == reached

    slot = await _reply_then_slot(backend, server)
    for name, slot_name in SLOT_NAMES.items():
        if name in reached:
            assert slot[slot_name] == pytest.approx(reached[name]), name
        else:  # not sent: the server's own default, as the export says ("model default")
            assert slot[slot_name] == pytest.approx(defaults[slot_name]), name
    assert slot["n_predict"] == SAMPLING.max_tokens == record["sent"]["max_tokens"]
