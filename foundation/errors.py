"""Errors that kurabe shows to people as one line, never as a traceback."""

from __future__ import annotations

from pathlib import Path


class KurabeError(Exception):
    """An error with a message meant for the user, shown as one line."""


class ConfigError(KurabeError):
    """A problem in a TOML file the user can fix: names the file, the line and the key."""

    def __init__(
        self, path: Path | str, message: str, *, line: int | None = None, key: str | None = None
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            return f"{where}: {self.key}: {self.message}"
        return f"{where}: {self.message}"
