"""Shared fixtures: every test runs with its own KURABE_HOME; a tiny GGUF for llama.cpp tests; a
real PostgreSQL server the suite starts itself (:mod:`tests.postgres_support`), and ``db_target``,
which runs a store-level test once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kurabe.store.database import Database
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


@pytest.fixture(params=["sqlite", "postgres"])
def store_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a whole module on both engines (``pytestmark = pytest.mark.usefixtures(
    "store_engine")``): with ``postgres``, every store the test opens by an SQLite path opens a
    PostgreSQL database instead, one per path (the same path reopens the same database). A test
    that reads the SQLite file itself is marked ``sqlite_only`` and runs once; one that hands
    its path to another process hands :func:`tests.postgres_support.engine_target` instead."""
    engine: str = request.param
    if engine == "postgres":
        if request.node.get_closest_marker("sqlite_only") is not None:
            pytest.skip("reads the SQLite file itself (runs on sqlite)")
        import kurabe.store.store as store_module
        from kurabe.store.target import is_postgres_url, open_database
        from tests import postgres_support

        paths = postgres_support.PathsOnPostgres(request.getfixturevalue("postgres_server"))

        def open_on_postgres(target: str | Path, *, migrate: bool = True) -> Database:
            if is_postgres_url(target):
                return open_database(target, migrate=migrate)
            return open_database(paths.target_for(target), migrate=migrate)

        monkeypatch.setattr(store_module, "open_database", open_on_postgres)
        postgres_support.active.append(paths)
        try:
            yield engine
        finally:
            postgres_support.active.remove(paths)
        return
    yield engine
