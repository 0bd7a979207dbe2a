"""Streaming backends: llama.cpp (GGUF, GPU offload), OpenAI(-compatible) and Anthropic.

Heavy SDKs are imported only when a backend of that kind is created, so ``kurabe --help`` stays
fast. Backends never import the UI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.base import Backend
    from backends.profiles import ModelProfile


def create_backend(profile: ModelProfile) -> Backend:
    """Build the backend for ``profile`` (nothing is loaded or connected yet)."""
    if profile.backend == "llama_cpp":
        from backends.llama_cpp_backend import LlamaCppBackend

        return LlamaCppBackend(profile)
    if profile.backend == "openai":
        from backends.openai_backend import OpenAIBackend

        return OpenAIBackend(profile)
    if profile.backend == "anthropic":
        from backends.anthropic_backend import AnthropicBackend

        return AnthropicBackend(profile)
    raise ValueError(f"unknown backend {profile.backend!r}")
