"""What a request carries: the one place that decides each backend's sampling parameters.

Every backend kind has one function here that turns a profile into a :class:`SentRequest`, the
sampling part of its request exactly as it goes out:

* ``params``: keyword arguments of the SDK's own request method (or of llama-cpp-python);
* ``body``: fields merged into the JSON body as they are (the SDKs' ``extra_body``);
* ``headers``: extra HTTP headers (Anthropic's ``anthropic-version``).

The backends build their requests from it, and their :meth:`~backends.base.Backend.
settings_snapshot` records :meth:`SentRequest.record` under ``"request"``, so the stored record
cannot drift from what was sent. A sampling setting of the profile that no wire name carries was
not sent: the model used its own default, and exports say "model default", never a number.

What each backend sends by default:

* ``llama_cpp`` (:func:`llama_cpp_request`): every sampling setting of the profile — temperature,
  top_k, top_p, min_p, repeat_penalty, repeat_last_n, max_tokens — plus ``seed`` when set and the
  profile's ``stop`` strings when there are any.
* ``openai`` (:func:`openai_request`), OpenAI's own API: temperature (at most 2), top_p,
  ``max_completion_tokens``, seed when set, stop when set. An OpenAI-compatible server
  (``base_url``): temperature, top_p, ``max_tokens``, seed and stop when set, and top_k, min_p,
  repeat_penalty, repeat_last_n in the body, where llama.cpp-style servers read them.
* ``anthropic`` (:func:`anthropic_request`), Anthropic's own API: ``max_tokens`` and
  ``stop_sequences`` only. The SDK (2.x) sends ``anthropic-version: 2026-10-21``, an API version
  that answers 400 to ``temperature``, ``top_p`` or ``top_k`` even at their defaults. A profile
  asks for them with ``send_sampling = ["temperature"]`` (any of ``temperature``, ``top_p``,
  ``top_k``): they then travel in the body, with ``anthropic-version: 2023-06-01``, the API
  version that still takes them, for models that still honour them. An Anthropic-compatible
  server (``base_url``, e.g. llama-server's ``/v1/messages``) gets ``temperature`` and
  ``top_k`` by default (``top_p`` instead of ``temperature`` when the temperature is 1.0, as
  current Claude models take only one of the two); ``send_sampling`` overrides that too.
  Temperatures above 1.0 are sent as 1.0, Anthropic's maximum.

Structured output (``Sampling.json_schema``, which only the judge sets):

* ``llama_cpp``: ``grammar``, a grammar sampler built from the schema (GBNF, by
  llama-cpp-python's converter), so the reply is a matching JSON object by construction;
* ``openai``: ``response_format = {"type": "json_schema", "json_schema": {"name", "schema",
  "strict": true}}``, OpenAI's format, which llama-server takes too. OpenAI's own API refuses
  ``minLength`` and ``maxLength`` in a strict schema: they are left out there
  (:data:`OPENAI_REFUSED_SCHEMA_KEYWORDS`) and sent to compatible servers as they are;
* ``anthropic``: nothing (no structured output on this API path).

A record shows the field that carried the schema as ``json_schema`` (``grammar: json_schema``,
``response_format: json_schema``), and the schema as sent once, under ``json_schema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from backends.profiles import (
    ANTHROPIC_SAMPLING,
    SAMPLING_FIELDS,
    JsonSchema,
    ModelProfile,
    Sampling,
)

WIRE_FIELDS: Mapping[str, str] = {
    "max_completion_tokens": "max_tokens",
    "stop_sequences": "stop",
}
"""Wire names that carry a sampling setting under another name (wire name → setting)."""

MODEL_DEFAULT = "model default"
"""How a setting that was not sent reads, in every export and on screen."""

ANTHROPIC_SAMPLING_API_VERSION = "2023-06-01"
"""The ``anthropic-version`` under which the Messages API still takes sampling parameters
(``2026-10-21``, the SDK 2.x default, rejects them even at their defaults)."""
ANTHROPIC_MAX_TEMPERATURE = 1.0
OPENAI_MAX_TEMPERATURE = 2.0
STRUCTURED_OUTPUT = "json_schema"
"""How the field that carried a JSON schema reads in a record."""
STRUCTURED_OUTPUT_FIELDS = ("grammar", "response_format")
"""The wire names that carry structured output (llama.cpp, OpenAI)."""
OPENAI_REFUSED_SCHEMA_KEYWORDS = frozenset({"minLength", "maxLength"})
"""What OpenAI's own API refuses in a strict schema (compatible servers honour them)."""


@dataclass(frozen=True, slots=True)
class SentRequest:
    """The sampling part of one request, exactly as it goes out."""

    params: Mapping[str, Any]
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json_schema: JsonSchema | None = None
    """The schema a structured-output field carries, as sent; None when the request has none."""

    @property
    def sent(self) -> dict[str, Any]:
        """Every sampling value on the wire, by its wire name (SDK parameters and body alike)."""
        return {**self.params, **self.body}

    def model_default(self) -> list[str]:
        """The profile's sampling settings this request leaves to the model."""
        return not_sent(self.sent)

    def record(self) -> dict[str, Any]:
        """What a settings snapshot stores under ``"request"`` (plain JSON values)."""
        record: dict[str, Any] = {
            "sent": {
                name: STRUCTURED_OUTPUT if name in STRUCTURED_OUTPUT_FIELDS else _plain(value)
                for name, value in self.sent.items()
            },
            "model_default": self.model_default(),
            "headers": dict(self.headers),
        }
        if self.json_schema is not None:
            record["json_schema"] = {
                "name": self.json_schema.name,
                "schema": dict(self.json_schema.schema),
            }
        return record


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def setting_of(wire_name: str) -> str:
    """The sampling setting a wire name carries (``max_completion_tokens`` → ``max_tokens``)."""
    return WIRE_FIELDS.get(wire_name, wire_name)


def not_sent(sent: Mapping[str, Any]) -> list[str]:
    """The sampling settings that no wire name in ``sent`` carries."""
    carried = {setting_of(name) for name in sent}
    return [name for name in SAMPLING_FIELDS if name not in carried]


# -- one function per backend kind ---------------------------------------------------------------


def llama_cpp_request(sampling: Sampling) -> SentRequest:
    """llama.cpp (llama-cpp-python) in this process: every setting of the profile's sampling."""
    params: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_k": sampling.top_k,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty,
        "repeat_last_n": sampling.repeat_last_n,
        "max_tokens": sampling.max_tokens,
    }
    if sampling.seed is not None:
        params["seed"] = sampling.seed
    if sampling.stop:
        params["stop"] = list(sampling.stop)
    if sampling.json_schema is not None:
        params["grammar"] = sampling.json_schema
    return SentRequest(params=params, json_schema=sampling.json_schema)


def _without_keywords(schema: Any, refused: frozenset[str]) -> Any:
    """``schema`` with the ``refused`` keywords left out, at every depth."""
    if isinstance(schema, Mapping):
        return {k: _without_keywords(v, refused) for k, v in schema.items() if k not in refused}
    if isinstance(schema, list):
        return [_without_keywords(item, refused) for item in schema]
    return schema


def openai_response_format(schema: JsonSchema, official: bool) -> tuple[dict[str, Any], JsonSchema]:
    """OpenAI's strict ``response_format`` for ``schema``, and the schema as it goes out."""
    if official:
        schema = replace(
            schema, schema=_without_keywords(schema.schema, OPENAI_REFUSED_SCHEMA_KEYWORDS)
        )
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": schema.name, "schema": dict(schema.schema), "strict": True},
    }
    return response_format, schema


def openai_request(profile: ModelProfile) -> SentRequest:
    """OpenAI's API (no ``base_url``) or an OpenAI-compatible server; see the module docstring."""
    s = profile.sampling
    official = profile.base_url is None
    params: dict[str, Any] = {
        "temperature": min(s.temperature, OPENAI_MAX_TEMPERATURE) if official else s.temperature,
        "top_p": s.top_p,
    }
    # Newer OpenAI models reject max_tokens; every compatible server understands it.
    params["max_completion_tokens" if official else "max_tokens"] = s.max_tokens
    if s.seed is not None:
        params["seed"] = s.seed
    if s.stop:
        params["stop"] = list(s.stop)
    body: dict[str, Any] = {}
    if not official:
        body = {
            "top_k": s.top_k,
            "min_p": s.min_p,
            "repeat_penalty": s.repeat_penalty,
            "repeat_last_n": s.repeat_last_n,
        }
    schema = s.json_schema
    if schema is not None:
        params["response_format"], schema = openai_response_format(schema, official)
    return SentRequest(params=params, body=body, json_schema=schema)


def anthropic_sampling_names(profile: ModelProfile) -> tuple[str, ...]:
    """Which of temperature, top_p and top_k an Anthropic profile sends."""
    if profile.send_sampling is not None:
        return tuple(name for name in ANTHROPIC_SAMPLING if name in profile.send_sampling)
    if profile.base_url is None:
        return ()
    s = profile.sampling
    first = (
        "top_p" if s.temperature >= ANTHROPIC_MAX_TEMPERATURE and s.top_p < 1.0 else "temperature"
    )
    return (first, "top_k") if s.top_k > 0 else (first,)


def anthropic_request(profile: ModelProfile) -> SentRequest:
    """Anthropic's Messages API or a compatible server; see the module docstring. A JSON schema
    is not sent: the reply is parsed as it comes."""
    s = profile.sampling
    params: dict[str, Any] = {"max_tokens": s.max_tokens}
    if s.stop:
        params["stop_sequences"] = list(s.stop)
    values = {
        "temperature": min(s.temperature, ANTHROPIC_MAX_TEMPERATURE),
        "top_p": s.top_p,
        "top_k": s.top_k,
    }
    # The SDK (2.x) has no parameter for them: they travel in the body as they are.
    body = {name: values[name] for name in anthropic_sampling_names(profile)}
    headers = {"anthropic-version": ANTHROPIC_SAMPLING_API_VERSION} if body else {}
    return SentRequest(params=params, body=body, headers=headers)


def request_for(profile: ModelProfile) -> SentRequest:
    """What a pane with ``profile`` sends, whichever its backend."""
    if profile.backend == "openai":
        return openai_request(profile)
    if profile.backend == "anthropic":
        return anthropic_request(profile)
    return llama_cpp_request(profile.sampling)


# -- reading a stored record ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentSettings:
    """A pane's sent sampling as stored: per setting the value sent, or :data:`MODEL_DEFAULT`."""

    values: dict[str, Any]
    """Setting → the value sent, or :data:`MODEL_DEFAULT`; every one of :data:`SAMPLING_FIELDS`,
    then any other wire name the request carried."""
    wire_names: dict[str, str]
    """Setting → the wire name it went out under, where the two differ."""
    headers: dict[str, str]

    def value(self, name: str) -> Any:
        return self.values.get(name, MODEL_DEFAULT)

    def defaulted(self) -> list[str]:
        return [name for name, value in self.values.items() if value == MODEL_DEFAULT]


def sent_settings(backend_snapshot: Mapping[str, Any]) -> SentSettings | None:
    """What a backend's stored settings snapshot says was sent; None when it does not say.

    Reads ``"request"`` (this module's :meth:`SentRequest.record`), and the ``"sampling"`` block
    of snapshots stored before it: there the API backends kept exactly their wire parameters and
    the llama.cpp backend its whole sampling, ``None`` standing for a seed it did not set.
    """
    request = backend_snapshot.get("request")
    if isinstance(request, Mapping) and isinstance(request.get("sent"), Mapping):
        sent = dict(request["sent"])
        raw_headers = request.get("headers")
        headers = (
            {str(k): str(v) for k, v in raw_headers.items()}
            if isinstance(raw_headers, Mapping)
            else {}
        )
    else:
        legacy = backend_snapshot.get("sampling")
        if not isinstance(legacy, Mapping):
            return None
        sent = {k: v for k, v in legacy.items() if v is not None and v != []}
        headers = {}
    values: dict[str, Any] = dict.fromkeys(SAMPLING_FIELDS, MODEL_DEFAULT)
    wire_names: dict[str, str] = {}
    for wire_name, value in sent.items():
        name = setting_of(str(wire_name))
        values[name] = value
        if name != wire_name:
            wire_names[name] = str(wire_name)
    return SentSettings(values=values, wire_names=wire_names, headers=headers)
