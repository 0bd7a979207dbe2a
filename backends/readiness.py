"""Can this profile run? The one answer, judged cheaply (no weights are loaded).

:func:`unusable_reason` is the rule: an API profile needs its key set, a local one its GGUF file
(the embedded model its chunk packages). The llama.cpp backend, the start-up plan, the models
dialog and ``kurabe models`` all ask it; :func:`describe_profile` adds what ``kurabe models``
shows beside the answer (host, quantization, GPU offload).
"""

from __future__ import annotations

from backends.profiles import EMBEDDED_MODEL, ModelProfile


def unusable_reason(profile: ModelProfile) -> str | None:
    """Why a profile cannot run now (a key unset, a model file missing), or None when it can."""
    missing = profile.missing_key_reason()
    if missing:
        return missing
    if profile.is_local and profile.model == EMBEDDED_MODEL:
        from backends.embedded import embedded_model_state

        return embedded_model_state()
    path = profile.model_path
    if path is not None and not path.exists():
        return f"model file not found: {path}"
    return None


def describe_profile(profile: ModelProfile, offload_supported: bool) -> tuple[str, str]:
    """(state, detail) for one profile, without loading any weights."""
    reason = unusable_reason(profile)
    if not profile.is_local:
        from backends.api_errors import public_url

        host = (
            public_url(profile.base_url)
            if profile.base_url
            else ("api.openai.com" if profile.backend == "openai" else "api.anthropic.com")
        )
        if reason:
            return "key unset", f"set {profile.api_key_env} · {host}"
        if profile.base_url:
            return "usable", f"{host} (server not contacted)"
        return "usable", host
    from backends.embedded import embedded_model_path
    from backends.gguf_meta import (
        GGUFMetadataError,
        block_count,
        offloaded_layer_count,
        quantization_name,
        read_gguf_metadata,
    )

    if profile.model_path is None:
        if reason:
            return "unusable", reason
        path = embedded_model_path()
        if not path.exists():
            return "usable", "embedded (assembled on first use)"
    else:
        path = profile.model_path
        if reason:
            return "file missing", str(path)
    try:
        metadata = read_gguf_metadata(path)
    except (GGUFMetadataError, OSError) as exc:
        return "unusable", f"{path.name}: {exc}"
    layers = block_count(metadata)
    quant = quantization_name(metadata.get("general.file_type"))
    if layers is None:
        gpu = "GPU ?"
    elif not offload_supported:
        gpu = f"CPU only (0/{layers + 1} layers offloaded)"
    else:
        wanted = offloaded_layer_count(layers, profile.n_gpu_layers, offload_supported)
        gpu = f"GPU {wanted}/{layers + 1} layers"
    return "usable", f"{path.name} · {quant} · {gpu}"
