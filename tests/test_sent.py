"""What each backend kind sends (backends/sent.py), and reading it back from a stored snapshot."""

from __future__ import annotations

import json

import pytest

from backends.profiles import SAMPLING_FIELDS, JsonSchema, ModelProfile, Sampling
from backends.sent import (
    MODEL_DEFAULT,
    llama_cpp_request,
    request_for,
    sent_settings,
)
from kurabe.core.profile_snapshot import profile_from_snapshot, profile_snapshot
from kurabe.export.sent import sent_lines

SEED_PAGE = Sampling(temperature=0.7, top_k=40, top_p=0.95, repeat_penalty=1.18)
VERDICT = JsonSchema(
    name="verdict",
    schema={
        "type": "object",
        "properties": {
            "score": {"type": "integer", "enum": [1, 2, 3]},
            "reason": {"type": "string", "minLength": 1, "maxLength": 50},
        },
        "required": ["score", "reason"],
        "additionalProperties": False,
    },
)
HELD = Sampling(json_schema=VERDICT)


def profile(backend: str, **changes: object) -> ModelProfile:
    values: dict[str, object] = {"name": "p", "backend": backend, "model": "m"}
    values.update(changes)
    return ModelProfile(**values)  # type: ignore[arg-type]


def test_llama_cpp_sends_the_whole_sampling_seed_and_stop_only_when_set() -> None:
    request = llama_cpp_request(SEED_PAGE)
    assert request.sent == {
        "temperature": 0.7,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.05,
        "repeat_penalty": 1.18,
        "repeat_last_n": 256,
        "max_tokens": 256,
    }
    assert request.model_default() == ["seed", "stop"]
    with_seed = llama_cpp_request(Sampling(seed=3, stop=("ユーザー:",)))
    assert with_seed.sent["seed"] == 3 and with_seed.sent["stop"] == ["ユーザー:"]
    assert with_seed.model_default() == []


@pytest.mark.parametrize(
    ("backend", "changes", "sent", "defaulted"),
    [
        (
            "openai",
            {},
            {"temperature": 0.7, "top_p": 0.95, "max_completion_tokens": 256},
            ["top_k", "min_p", "repeat_penalty", "repeat_last_n", "seed", "stop"],
        ),
        (
            "anthropic",
            {},
            {"max_tokens": 256},
            [f for f in SAMPLING_FIELDS if f not in ("max_tokens",)],
        ),
        (
            "anthropic",
            {"send_sampling": ("temperature",)},
            {"max_tokens": 256, "temperature": 0.7},
            [f for f in SAMPLING_FIELDS if f not in ("max_tokens", "temperature")],
        ),
        (
            "anthropic",
            {"base_url": "http://127.0.0.1:8080"},
            {"max_tokens": 256, "temperature": 0.7, "top_k": 40},
            ["top_p", "min_p", "repeat_penalty", "repeat_last_n", "seed", "stop"],
        ),
    ],
)
def test_what_each_api_backend_sends_by_default(
    backend: str, changes: dict[str, object], sent: dict[str, object], defaulted: list[str]
) -> None:
    request = request_for(profile(backend, sampling=SEED_PAGE, **changes))
    assert request.sent == sent
    assert request.model_default() == defaulted


def test_a_stored_record_reads_back_with_model_default_for_what_was_not_sent() -> None:
    record = request_for(profile("openai", sampling=SEED_PAGE)).record()
    stored = json.loads(json.dumps({"request": record}))
    settings = sent_settings(stored)
    assert settings is not None
    assert settings.value("temperature") == 0.7
    assert settings.value("max_tokens") == 256
    assert settings.wire_names == {"max_tokens": "max_completion_tokens"}
    assert settings.value("top_k") == MODEL_DEFAULT
    defaulted = ["top_k", "min_p", "repeat_penalty", "repeat_last_n", "seed", "stop"]
    assert settings.defaulted() == defaulted


def test_snapshots_stored_before_the_record_read_as_what_they_say() -> None:
    # The llama.cpp backend stored its whole sampling (seed None when unset); API backends
    # stored their wire parameters under "sampling".
    local = sent_settings({"sampling": {"temperature": 0.7, "seed": None, "stop": []}})
    assert local is not None
    assert local.value("temperature") == 0.7
    assert local.value("seed") == MODEL_DEFAULT and local.value("stop") == MODEL_DEFAULT
    claude = sent_settings({"sampling": {"max_tokens": 256}, "not_sent": ["temperature"]})
    assert claude is not None and claude.value("temperature") == MODEL_DEFAULT
    assert sent_settings({"fake": True}) is None


def test_send_sampling_survives_the_profile_snapshot() -> None:
    original = profile("anthropic", send_sampling=("temperature", "top_k"))
    stored = json.loads(json.dumps(profile_snapshot(original)))
    assert stored["send_sampling"] == ["temperature", "top_k"]
    assert profile_from_snapshot(stored) == original


# -- structured output ---------------------------------------------------------------------------


def test_a_json_schema_goes_out_as_each_backend_can_carry_it() -> None:
    local = llama_cpp_request(HELD)
    assert local.sent["grammar"] == VERDICT and local.json_schema == VERDICT
    server = request_for(profile("openai", base_url="http://127.0.0.1:8080/v1", sampling=HELD))
    assert server.sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": VERDICT.schema, "strict": True},
    }
    # OpenAI's own API refuses length limits in a strict schema; the rest goes out as it is.
    official = request_for(profile("openai", sampling=HELD))
    sent_schema = official.sent["response_format"]["json_schema"]["schema"]
    assert sent_schema["properties"]["reason"] == {"type": "string"}
    assert sent_schema["properties"]["score"] == VERDICT.schema["properties"]["score"]
    assert sent_schema["additionalProperties"] is False
    assert official.json_schema is not None and official.json_schema.schema == sent_schema
    claude = request_for(profile("anthropic", base_url="http://127.0.0.1:8080", sampling=HELD))
    assert claude.json_schema is None
    assert claude.sent == request_for(profile("anthropic", base_url="http://127.0.0.1:8080")).sent


def test_without_a_schema_nothing_about_one_is_sent() -> None:
    for backend in ("llama_cpp", "openai", "anthropic"):
        request = request_for(profile(backend, sampling=SEED_PAGE))
        assert not {"grammar", "response_format"} & set(request.sent)
        assert "json_schema" not in request.record()


def test_a_record_names_the_schema_once_and_reads_back_as_one_line() -> None:
    server = request_for(profile("openai", base_url="http://127.0.0.1:8080/v1", sampling=HELD))
    local = llama_cpp_request(HELD)
    for request, wire_name in ((server, "response_format"), (local, "grammar")):
        record = json.loads(json.dumps(request.record()))
        assert record["sent"][wire_name] == "json_schema"  # not the whole schema
        assert record["json_schema"] == {"name": "verdict", "schema": VERDICT.schema}
        settings = sent_settings({"request": record})
        assert settings is not None
        assert f"{wire_name}: json_schema" in sent_lines(settings)


def test_a_schema_outside_the_strict_subset_is_refused_up_front() -> None:
    assert HELD.validate() is None
    properties = VERDICT.schema["properties"]
    loose = [
        ("verdict!", VERDICT.schema, "name"),
        ("verdict", {**VERDICT.schema, "required": ["score"]}, "require every property"),
        ("verdict", {**VERDICT.schema, "additionalProperties": True}, "additionalProperties"),
        ("verdict", {"type": "string"}, "object with properties"),
        ("verdict", {**VERDICT.schema, "properties": {**properties, "x": {1, 2}}}, "JSON"),
    ]
    for name, schema, problem in loose:
        refused = Sampling(json_schema=JsonSchema(name, schema)).validate()
        assert refused is not None and problem in refused, (schema, refused)


def test_a_schema_survives_the_profile_snapshot() -> None:
    original = profile("llama_cpp", sampling=HELD)
    stored = json.loads(json.dumps(profile_snapshot(original)))
    assert profile_from_snapshot(stored) == original
    assert (
        profile_from_snapshot(profile_snapshot(profile("llama_cpp"))).sampling.json_schema is None
    )
