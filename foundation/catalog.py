"""A catalog of things read from TOML files: bundled ones, the user's own, and explicit paths.

Personas and scenarios load the same way, in three layers, each overriding the one before by id:

1. the files bundled inside a package (``importlib.resources``), source ``built-in``;
2. the user's directory (``config_dir()/personas`` and so on);
3. paths given directly (a file, or a directory of ``*.toml`` files).

A bad file never stops the others: its :class:`~foundation.errors.ConfigError` goes to
:attr:`Catalog.problems` and every good file is still offered. Two files of the same layer with
the same id are a problem (the first, by file name, wins); a later layer replacing an earlier
one is an override, recorded in :attr:`Catalog.overridden` so the command line can say which file
is in use. This module also holds the field checks the persona and scenario loaders share.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from foundation.errors import ConfigError, KurabeError
from foundation.tomlfile import KeyPath, TomlDocument

BUILT_IN = "built-in"
"""The ``source`` of everything bundled with kurabe."""

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Identified(Protocol):
    """What a catalog holds: something with an id and the source it was read from."""

    @property
    def id(self) -> str: ...

    @property
    def source(self) -> str: ...


ItemT = TypeVar("ItemT", bound=Identified)


@dataclass
class Catalog(Generic[ItemT]):
    """What loaded, in a stable order (layer, then file name), and what went wrong."""

    kind: str
    """``persona`` or ``scenario``: used in messages."""
    items: dict[str, ItemT] = field(default_factory=dict)
    problems: list[ConfigError] = field(default_factory=list)
    """One error per bad file (or duplicate id); the good files are still in :attr:`items`."""
    overridden: dict[str, str] = field(default_factory=dict)
    """Id -> source of the item it replaced (``built-in`` or a file path)."""
    files: dict[str, str] = field(default_factory=dict)
    """Id -> the file the item in use was read from."""

    def get(self, item_id: str) -> ItemT:
        """The item with this id; a one-line :class:`KurabeError` listing known ids if none."""
        try:
            return self.items[item_id]
        except KeyError:
            raise KurabeError(self.unknown_message(item_id)) from None

    def unknown_message(self, item_id: str) -> str:
        hint = difflib.get_close_matches(item_id, list(self.items), n=1)
        suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
        known = ", ".join(self.items) or "none"
        message = f"unknown {self.kind} '{item_id}'{suffix}; known {self.kind}s: {known}"
        if self.problems:
            message += f" ({len(self.problems)} file(s) could not be loaded)"
        return message

    def ids(self) -> list[str]:
        return list(self.items)

    def source_label(self, item_id: str) -> str:
        """``built-in (file.toml)`` for bundled items, else the path of the file in use."""
        item = self.items[item_id]
        if item.source == BUILT_IN:
            return f"{BUILT_IN} ({Path(self.files.get(item_id, '')).name})"
        return item.source

    def override_label(self, item_id: str) -> str:
        """``overrides built-in`` / ``overrides PATH`` / empty."""
        replaced = self.overridden.get(item_id)
        return f"overrides {replaced}" if replaced else ""

    def __iter__(self) -> Iterator[ItemT]:
        return iter(self.items.values())

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items


Parse = Callable[[TomlDocument, str], ItemT]
"""Turns a parsed document and its source label into an item, or raises ConfigError."""


def bundled_files(package: str) -> list[Path]:
    """The ``*.toml`` files shipped inside ``package``, by file name."""
    root = resources.files(package)
    found: list[Path] = []
    for entry in sorted(root.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".toml") and entry.is_file():
            # Installs and checkouts give real paths. A zipped package would not: its files would
            # then show up as "file not found" problems rather than vanish silently.
            found.append(entry if isinstance(entry, Path) else Path(str(entry)))
    return found


def toml_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.toml`` files directly inside it, by file name."""
    if not path.is_dir():
        return [path]
    try:
        children = list(path.iterdir())
    except OSError as exc:
        raise ConfigError(path, f"cannot read the directory: {exc.strerror or exc}") from None
    return sorted(
        (child for child in children if child.suffix == ".toml" and child.is_file()),
        key=lambda child: child.name,
    )


def load_catalog(
    kind: str,
    parse: Parse[ItemT],
    *,
    bundled: Sequence[Path],
    user_dir: Path | None,
    extra_paths: Sequence[Path | str] = (),
) -> Catalog[ItemT]:
    """Read the three layers into one :class:`Catalog`; see the module docstring."""
    catalog: Catalog[ItemT] = Catalog(kind)
    user_files: list[Path] = []
    if user_dir is not None and user_dir.is_dir():
        user_files = _files_or_problem(catalog, user_dir)
    extra: list[Path] = []
    for given in extra_paths:
        path = Path(given).expanduser()
        if not path.exists():
            catalog.problems.append(ConfigError(path, "file not found"))
            continue
        extra.extend(_files_or_problem(catalog, path))
    # A source of None means "the file's own path".
    layers: list[tuple[str | None, list[Path]]] = [
        (BUILT_IN, list(bundled)),
        (None, user_files),
        (None, extra),
    ]

    seen_files: set[Path] = set()
    for source, paths in layers:
        defined_here: dict[str, tuple[Path, int | None]] = {}
        for path in paths:
            resolved = path.resolve()
            if resolved in seen_files:
                continue  # the same file named twice (say, a user file also given as a path)
            seen_files.add(resolved)
            try:
                document = TomlDocument.load(path)
                item = parse(document, source or str(path))
            except ConfigError as problem:
                catalog.problems.append(problem)
                continue
            id_line = document.line_of(("id",))
            if item.id in defined_here:
                first_path, first_line = defined_here[item.id]
                where = f"{first_path}:{first_line}" if first_line else str(first_path)
                catalog.problems.append(
                    document.error(("id",), f"duplicate {kind} id '{item.id}', already in {where}")
                )
                continue
            defined_here[item.id] = (path, id_line)
            if item.id in catalog.items:
                catalog.overridden[item.id] = catalog.items[item.id].source
            catalog.items[item.id] = item
            catalog.files[item.id] = str(path)
    return catalog


def _files_or_problem(catalog: Catalog[Any], path: Path) -> list[Path]:
    try:
        return toml_files(path)
    except ConfigError as problem:
        catalog.problems.append(problem)
        return []


# -- field checks shared by the loaders ---------------------------------------------------------


def take_id(document: TomlDocument, table: Mapping[str, Any], at: KeyPath, key: str) -> str:
    """A required id: ASCII letters, digits, ``-``, ``_`` or ``.``, so it is easy to type."""
    value: str = document.take(table, at, key, str, non_empty=True)
    if not ID_PATTERN.fullmatch(value):
        raise document.error(
            (*at, key),
            f"must be 1-64 ASCII letters, digits, '-', '_' or '.' (like 'anime-fan'), "
            f"got {value!r}",
        )
    return value


def take_one_line(
    document: TomlDocument,
    table: Mapping[str, Any],
    at: KeyPath,
    key: str,
    *,
    required: bool = True,
    default: str | None = None,
) -> Any:
    """A non-empty string without line breaks (titles, names): it goes into tables and templates."""
    value = document.take(table, at, key, str, required=required, default=default, non_empty=True)
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        raise document.error((*at, key), "must be one line")
    return value


def take_choice(
    document: TomlDocument,
    table: Mapping[str, Any],
    at: KeyPath,
    key: str,
    choices: Sequence[str],
    *,
    default: str,
) -> str:
    """An optional string that must be one of ``choices``."""
    value: str = document.take(table, at, key, str, required=False, default=default)
    if value not in choices:
        hint = difflib.get_close_matches(value, list(choices), n=1)
        suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise document.error(
            (*at, key), f"must be one of {', '.join(choices)}, got {value!r}{suffix}"
        )
    return value


def take_one_line_list(
    document: TomlDocument, table: Mapping[str, Any], at: KeyPath, key: str
) -> tuple[str, ...]:
    """An optional array of non-empty one-line strings."""
    values = document.take_list(table, at, key, str, non_empty_items=True)
    for index, value in enumerate(values):
        if "\n" in value or "\r" in value:
            raise document.error((*at, key, index), "must be one line")
    return tuple(values)
