"""Where kurabe keeps its files.

Config lives in the platform's user config directory, data and cache in the user data and
cache directories. Setting ``KURABE_HOME`` moves all of them under one folder
(``$KURABE_HOME/config`` and ``$KURABE_HOME/data``) so tests and scripts can isolate themselves.
``KURABE_CACHE_DIR`` moves the cache alone (the assembled model, 250 MB, and the engine check's
answers): a disk with room, or one cache shared by a whole test run.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "kurabe"
HOME_ENV = "KURABE_HOME"
CACHE_ENV = "KURABE_CACHE_DIR"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The directory of ``models.toml`` and the user's own personas and scenarios."""
    home = _home()
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    """The directory of the database and the llama.cpp log."""
    home = _home()
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """The directory of the assembled embedded model and the engine check's answers."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    home = _home()
    if home is not None:
        return home / "data" / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_path() -> Path:
    return data_dir() / "kurabe.sqlite3"


def llama_log_path() -> Path:
    return data_dir() / "llama.log"
