"""Export from the app: write the session in the chosen format to a file and return its path.

The file goes to the current directory when it is writable, else to ``exports/`` in the data
directory, written whole or not at all (:func:`kurabe.export.exporter.write_export`). The formats
themselves are :mod:`kurabe.export.exporter`'s.
"""

from __future__ import annotations

import os
from pathlib import Path

from foundation.errors import KurabeError
from kurabe.store.store import Store

EXTENSIONS = {"md": "md", "jsonl": "jsonl", "csv": "csv", "html": "html", "battles": "jsonl"}


def export_directory(directory: Path | None = None) -> Path:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    cwd = Path.cwd()
    if os.access(cwd, os.W_OK):
        return cwd
    from foundation.paths import data_dir, ensure_dir

    return ensure_dir(data_dir() / "exports")


def export_file_name(session_id: int, fmt: str) -> str:
    suffix = "-battles" if fmt == "battles" else ""
    return f"kurabe-session-{session_id}{suffix}.{EXTENSIONS[fmt]}"


def export_session_file(
    store: Store, session_id: int, fmt: str, *, directory: Path | None = None
) -> Path:
    """Write session ``session_id`` as ``fmt`` (md, jsonl, csv, html, battles); return the path."""
    from kurabe.export import exporter as export

    if fmt not in EXTENSIONS or fmt not in export.FORMATS:
        raise KurabeError(f"unknown export format {fmt!r}; choose {', '.join(export.FORMATS)}")
    text = export.export_session(store, session_id, fmt)
    path = export_directory(directory) / export_file_name(session_id, fmt)
    return export.write_export(path, text, database=store.path)
