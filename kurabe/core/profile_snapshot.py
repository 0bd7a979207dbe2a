"""A model profile as plain JSON values, stored with each pane so that a session can be resumed
(and exported truthfully) when the profile has since changed or gone."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from backends.api_errors import public_url
from backends.profiles import JsonSchema, ModelProfile, Sampling


def profile_snapshot(profile: ModelProfile) -> dict[str, Any]:
    """The profile's fields as plain JSON values (the *name* of the key variable, never a key;
    the ``base_url`` without the credentials it may carry)."""
    data = dataclasses.asdict(profile)
    if profile.base_url is not None:
        data["base_url"] = public_url(profile.base_url)
    data["sampling"]["stop"] = list(profile.sampling.stop)
    if profile.send_sampling is not None:
        data["send_sampling"] = list(profile.send_sampling)
    return data


def profile_from_snapshot(data: Mapping[str, Any]) -> ModelProfile:
    """Rebuild a profile from :func:`profile_snapshot` (to resume when the profile is gone)."""
    known = {f.name for f in dataclasses.fields(ModelProfile)}
    values = {k: v for k, v in data.items() if k in known}
    sampling_known = {f.name for f in dataclasses.fields(Sampling)}
    sampling = {k: v for k, v in dict(values.get("sampling") or {}).items() if k in sampling_known}
    sampling["stop"] = tuple(sampling.get("stop") or ())
    schema = sampling.get("json_schema")
    sampling["json_schema"] = JsonSchema(**schema) if isinstance(schema, Mapping) else None
    values["sampling"] = Sampling(**sampling)
    if values.get("send_sampling") is not None:
        values["send_sampling"] = tuple(values["send_sampling"])
    return ModelProfile(**values)
