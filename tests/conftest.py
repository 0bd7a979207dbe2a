"""Shared fixtures: every test runs with its own KURABE_HOME; a tiny GGUF for llama.cpp tests; a
real PostgreSQL server the suite starts itself (:mod:`tests.postgres_support`), and ``db_target``,
which runs a store-level test once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.postgres_support import PostgresServer


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
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "KURABE_DB"):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real llama GGUF (two layers, byte vocabulary, ChatML template), made once per run."""
    from tests.tiny_gguf import make_tiny_gguf

    return make_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run (skipped, or failed under CI, without one)."""
    from tests.postgres_support import PostgresServer, require_server

    server = PostgresServer(require_server())
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new empty database on the test server, one per test."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a store-level test keeps its database: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "k.sqlite3"
    url: str = request.getfixturevalue("postgres_url")
    return url
