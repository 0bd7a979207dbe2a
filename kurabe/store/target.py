"""Which database kurabe opens, and opening it: a file path means SQLite, a
``postgresql://`` (or ``postgres://``) URL a PostgreSQL server.

The choice, first found wins: ``--db``, the environment variable ``KURABE_DB``, ``db = "…"`` in
``config.toml``, else ``kurabe.sqlite3`` in the data directory (:func:`resolve_target`). A URL is
never a file name: any other ``scheme://`` is refused rather than becoming a directory named
after it, and what is shown of a URL (:func:`shown_target`) never carries its password.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from backends.api_errors import public_url
from foundation.errors import KurabeError
from kurabe.store.database import Database, SqliteDatabase

DB_ENV = "KURABE_DB"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_postgres_url(target: str | Path) -> bool:
    found = _SCHEME.match(str(target))
    return found is not None and found.group(1).lower() in POSTGRES_SCHEMES


def shown_target(target: str | Path) -> str:
    """``target`` as it may be printed, logged or exported (a URL without its secrets)."""
    return public_url(str(target)) if _SCHEME.match(str(target)) else str(target)


def configured_target() -> str | None:
    """``db`` in ``config.toml``, if set."""
    from foundation.tomlfile import TomlDocument
    from kurabe.core.rating_config import config_file

    file = config_file()
    if not file.exists():
        return None
    doc = TomlDocument.load(file)
    value = doc.take(doc.data, (), "db", str, required=False)
    if value is not None and not value.strip():
        raise doc.error(("db",), "expected a file path or a postgresql:// URL")
    return value.strip() if value else None


def resolve_target(db: str | Path | None = None) -> str | Path:
    """The database to open: ``db`` (``--db``), else ``$KURABE_DB``, else ``db`` in
    ``config.toml``, else the default file in the data directory."""
    from foundation.paths import default_db_path

    for value in (db, os.environ.get(DB_ENV, "").strip() or None, configured_target()):
        if value:
            return str(value) if _SCHEME.match(str(value)) else Path(value).expanduser()
    return default_db_path()


def open_database(target: str | Path, *, migrate: bool = True) -> Database:
    """An open database: PostgreSQL for a ``postgresql://`` URL, SQLite for a file path."""
    text = str(target)
    if is_postgres_url(text):
        from kurabe.store.postgres import PostgresDatabase

        return PostgresDatabase(text, migrate=migrate)
    found = _SCHEME.match(text)
    if found is not None:
        raise KurabeError(
            f"cannot open {shown_target(text)}: kurabe's databases are a file path (SQLite) or a "
            "postgresql://user@host:port/dbname URL"
        )
    return SqliteDatabase(target, migrate=migrate)
