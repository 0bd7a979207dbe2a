"""Shared fixtures: every test runs with its own KURABE_HOME; a tiny GGUF for llama.cpp tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole run: the embedded model (250 MB, checked against the package's
    sha256 when it is assembled) is assembled at most once, not once per test."""
    return tmp_path_factory.mktemp("kurabe-cache")


@pytest.fixture(autouse=True)
def kurabe_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path
) -> Iterator[Path]:
    """Isolate config and data; share the model cache; API keys from the shell never leak in."""
    home = tmp_path / "kurabe-home"
    monkeypatch.setenv("KURABE_HOME", str(home))
    monkeypatch.setenv("KURABE_CACHE_DIR", str(shared_cache))
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real llama GGUF (two layers, byte vocabulary, ChatML template), made once per run."""
    from tests.tiny_gguf import make_tiny_gguf

    return make_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
