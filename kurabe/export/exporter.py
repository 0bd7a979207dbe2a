"""Exports of one stored session: Markdown, JSON lines, CSV, HTML and pairwise battles.

This module is the entry point (:func:`export_session`) and writes the file
(:func:`write_export`). The store is read once and everything the formats show is computed once,
into the view (:mod:`kurabe.export.view`); each format's module only formats it
(:mod:`kurabe.export.markdown`, :mod:`kurabe.export.tables` for jsonl and csv,
:mod:`kurabe.export.html`, :mod:`kurabe.export.battles`; the sampling's words:
:mod:`kurabe.export.sent`).

- ``md``: laid out like a hand-written comparison page (README, glossary) — a summary table of
  scores at the top, then per model a heading, ``Quality:`` (the verdict) and the note,
  ``Temp:``, the persona prompt in a code block, the settings block (model file, tokens/s and
  characters/s, names, the sampling that was sent), the transcript in a code block, and a table
  of the per-reply ratings and checks.
- ``jsonl``: one record per reply (every version, ``latest`` marks the newest) with the pane's
  settings, the figures, the checks and every rating.
- ``csv``: one flat row per reply (newest versions only) with the latest rating's columns and the
  checks; UTF-8 with a byte order mark by default so spreadsheets keep the Japanese intact, and
  a leading ``'`` on any text cell a spreadsheet would run as a formula
  (:mod:`kurabe.core.csvsafe`).
- ``html``: one self-contained page, the panes side by side per turn, as the rater saw them.
- ``battles``: pairwise results derived from the per-turn picks in FastChat's ``clean_battle``
  shape (``model_a``, ``model_b``, ``winner``, ``judge``, ``turn``, ``anony``, ``language``,
  ``tstamp``, ``conversation_a``, ``conversation_b``), one JSON object per line.

Every format carries the same replies (the newest version of each; jsonl also the older ones),
each with its state — ``complete``, ``incomplete`` (cancelled, cut off, or left streaming by a
process that stopped), ``failed`` or ``not sent`` (the pane's conversation stopped at an earlier
failed turn) — and the reason (:func:`reply_state`): md in the transcript
and the per-reply table, html on each reply, csv and jsonl as ``state`` and ``reason``, battles
as ``replies_a`` / ``replies_b`` beside the conversations.

A pick of pane W among N panes gives N−1 battles (W against each other pane; the pairs W was not
part of are unknown and left out); a tie gives a ``tie`` for every pair and "all bad" a
``tie (bothbad)`` for every pair. Only the newest pick per (turn, rater) counts.

Sampling is what each pane's backend recorded as sent (:mod:`backends.sent`), never the profile's
wish: a setting that was not sent reads "model default" in every format, and a pane whose backend
recorded nothing says "not recorded". The md and html show it per pane, the csv in its sampling
columns, the jsonl and battles as ``sent``.

An LLM judge's ratings (kind ``judge``, :mod:`kurabe.judge.runner`) never stand in for a person's:
the scores, means and "latest rating" of every format are people's. The jsonl lists every rating
with its ``kind`` and, per reply, every judgement (failed ones with the judge's raw answers); the md
and html end with a "Judge and agreement" section — the judge runs (rubric hash, temperature sent)
and this session's agreement figures (:mod:`kurabe.analysis.agreement`). The csv and battles carry
people's ratings only.

Blind sessions not yet revealed: every export says so, and shows the pane labels (A, B, …)
instead of model names, with the settings left out (model, file, backend, and the sampling sent,
which tells an API pane from a local one), unless ``reveal_names=True``
(``kurabe export --reveal-names``).

No API key or URL credential reaches an export: settings were scrubbed when stored and are
scrubbed again when read, and the output is scrubbed again of the current values of every key
variable the panes name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from foundation.errors import KurabeError
from kurabe.export.battles import to_battles
from kurabe.export.html import to_html
from kurabe.export.markdown import to_markdown
from kurabe.export.tables import to_csv, to_jsonl
from kurabe.export.view import build_view, scrub_text
from kurabe.store.store import Store

FORMATS = ("md", "jsonl", "csv", "html", "battles")
SHOWS_AGREEMENT = ("md", "html")
SHOWS_CHARTS = ("html",)
"""The formats that show the statistics, which take seconds; the others' views go without."""


# -- writing a file -----------------------------------------------------------------------

_DATABASE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _is_database(path: Path, database: Path) -> bool:
    """True when ``path`` is the database file or one of SQLite's files beside it."""
    target = path.resolve()
    for suffix in _DATABASE_SIDE_FILES:
        candidate = database.with_name(database.name + suffix)
        if target == candidate.resolve():
            return True
        with contextlib.suppress(OSError):
            if path.exists() and candidate.exists() and os.path.samefile(path, candidate):
                return True
    return False


def write_export(path: Path, text: str, *, database: Path | None = None) -> Path:
    """Write an export to ``path`` whole or not at all; return the path written.

    The text goes to a temporary file beside ``path``, is flushed to disk, then renamed over
    ``path`` in one step: a failed export leaves the old file as it was (or none) and no half
    file. ``database``, the store's file, is refused as a target, and so are SQLite's files
    beside it.
    """
    path = path.expanduser()
    if database is not None and _is_database(path, database):
        raise KurabeError(f"refusing to write the export over the database {database}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KurabeError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp's file is private (0600); an export is an ordinary file, like the one replaced.
        os.chmod(temporary, (path.stat().st_mode & 0o777) if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise KurabeError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


# -- entry point --------------------------------------------------------------------------


def export_session(
    store: Store,
    session_id: int,
    fmt: str,
    *,
    reveal_names: bool = False,
    bom: bool = True,
) -> str:
    """Render one session in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise KurabeError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    view = build_view(
        store.load_record(session_id),
        reveal_names=reveal_names,
        with_agreement=fmt in SHOWS_AGREEMENT,
        with_charts=fmt in SHOWS_CHARTS,
    )
    if fmt == "md":
        text = to_markdown(view)
    elif fmt == "jsonl":
        text = to_jsonl(view)
    elif fmt == "csv":
        text = to_csv(view, bom=bom)
    elif fmt == "html":
        text = to_html(view)
    else:
        text = to_battles(view)
    return scrub_text(text, view.secrets)


RUN_FORMATS = ("md", "jsonl", "csv", "battles")
"""What :func:`export_run` writes: the formats whose sessions follow one another."""


def export_run(
    store: Store,
    run_id: int,
    fmt: str,
    *,
    reveal_names: bool = False,
    bom: bool = True,
) -> str:
    """Every session of run ``run_id`` in ``fmt``, one after another: md sections, jsonl and
    battles lines, one csv table (one header)."""
    if fmt not in RUN_FORMATS:
        raise KurabeError(f"a run exports as {', '.join(RUN_FORMATS)}, not {fmt!r}")
    store.runs.get(run_id)  # a clear error for an unknown run
    parts: list[str] = []
    for index, session_id in enumerate(store.runs.session_ids(run_id)):
        text = export_session(
            store, session_id, fmt, reveal_names=reveal_names, bom=bom and index == 0
        )
        if fmt == "csv" and index > 0:
            text = text.split("\n", 1)[1] if "\n" in text else ""
        parts.append(text)
    separator = "\n---\n\n" if fmt == "md" else ""
    return separator.join(parts)
