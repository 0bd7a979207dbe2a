"""A small TOML writer for tests, which also says on which line it wrote each key.

It covers what personas and scenarios use (strings, integers, booleans, arrays of those, tables,
arrays of tables) so that tests can round-trip bundled files and check
:meth:`foundation.tomlfile.TomlDocument.line_of` against the lines a writer really used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

KeyPath = tuple[str | int, ...]
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _escape(text: str, *, multiline: bool) -> str:
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n" and multiline:
            out.append("\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def string(text: str) -> str:
    """A basic string, or a multi-line basic string when ``text`` has line breaks."""
    if "\n" not in text:
        return f'"{_escape(text, multiline=False)}"'
    body = _escape(text, multiline=True)
    if body.startswith("\n"):
        body = "\\n" + body[1:]  # a newline right after the opening quotes would be dropped
    return f'"""{body}"""'


def key(name: str) -> str:
    return name if _BARE.fullmatch(name) else f'"{_escape(name, multiline=False)}"'


def value(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, Sequence):
        return "[" + ", ".join(value(element) for element in item) + "]"
    if isinstance(item, Mapping):
        return "{" + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + "}"
    raise TypeError(f"cannot write {type(item).__name__}")


def _is_table_array(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(e, Mapping) for e in item)


def dumps_with_lines(data: Mapping[str, Any]) -> tuple[str, dict[KeyPath, int]]:
    """TOML text for ``data`` and the 1-based line of every key, table and array-of-table entry."""
    out: list[str] = []
    lines: dict[KeyPath, int] = {}

    def line_now() -> int:
        return sum(chunk.count("\n") for chunk in out) + 1

    def emit(text: str) -> None:
        out.append(text + "\n")

    def write(table: Mapping[str, Any], path: KeyPath, header_names: tuple[str, ...]) -> None:
        for name, item in table.items():
            if isinstance(item, Mapping) or _is_table_array(item):
                continue
            entry: KeyPath = (*path, name)
            lines[entry] = line_now()
            emit(f"{key(name)} = {value(item)}")
        for name, item in table.items():
            names = (*header_names, name)
            dotted = ".".join(key(part) for part in names)
            table_path: KeyPath = (*path, name)
            if isinstance(item, Mapping):
                lines[table_path] = line_now()
                emit(f"[{dotted}]")
                write(item, table_path, names)
            elif _is_table_array(item):
                for index, element in enumerate(item):
                    element_path: KeyPath = (*path, name, index)
                    lines.setdefault(table_path, line_now())
                    lines[element_path] = line_now()
                    emit(f"[[{dotted}]]")
                    write(element, element_path, names)

    write(data, (), ())
    return "".join(out), lines


def dumps(data: Mapping[str, Any]) -> str:
    return dumps_with_lines(data)[0]
