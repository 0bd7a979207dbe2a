"""TOML files whose every error names the file, the line and the key.

``tomllib`` parses but forgets where things were. :class:`TomlDocument` keeps the source and a
map from key paths (``("turns", 2, "text")``) to line numbers, built by a small scanner that walks
the (already validated) text once: tables, arrays of tables (nested ones too), dotted keys, inline
tables and arrays, and all four kinds of strings. Validation helpers (:meth:`TomlDocument.take`,
:meth:`TomlDocument.take_list`, :meth:`TomlDocument.reject_unknown`) raise :class:`ConfigError`.

Lines are counted the way TOML and ``tomllib`` count them: only ``\\n`` ends a line, so a U+2028
or a form feed inside a string does not shift the numbers.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from foundation.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    # mypy checks this branch (python_version = 3.10) where tomli may not be installed.
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

KeyPath = tuple[str | int, ...]
T = TypeVar("T")

_BARE_KEY = r"[A-Za-z0-9_-]+"
_QUOTED_KEY = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY_PART = rf"(?:{_BARE_KEY}|{_QUOTED_KEY})"
_DOTTED_KEY = rf"{_KEY_PART}(?:[ \t]*\.[ \t]*{_KEY_PART})*"
_ASSIGNMENT = re.compile(rf"^[ \t]*({_DOTTED_KEY})[ \t]*=")
_TABLE = re.compile(rf"^[ \t]*\[[ \t]*({_DOTTED_KEY})[ \t]*\]")
_ARRAY_TABLE = re.compile(rf"^[ \t]*\[\[[ \t]*({_DOTTED_KEY})[ \t]*\]\]")
_BARE_KEY_AT = re.compile(_BARE_KEY)
_ERROR_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_END_OF_DOCUMENT = "(at end of document)"
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "a table",
}


def _source_lines(text: str) -> list[str]:
    """Split like TOML does: on ``\\n`` only (``str.splitlines`` also splits on U+2028 etc.)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _unquote_key(part: str) -> str:
    if part.startswith("'"):
        return part[1:-1]
    if part.startswith('"'):
        try:
            # Let tomllib decode the escapes, so "\u00e9" matches the key in the parsed data.
            return str(next(iter(tomllib.loads(f"{part} = 0"))))
        except (tomllib.TOMLDecodeError, StopIteration):
            return part[1:-1]
    return part


def _split_key(dotted: str) -> list[str]:
    return [_unquote_key(part) for part in re.findall(_KEY_PART, dotted)]


def _type_name(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
    return _TYPE_NAMES.get(types, types.__name__)


class _ScanError(Exception):
    """The scanner met text it does not understand; the lines found so far are kept."""


class _LineIndexer:
    """Walks valid TOML text once, recording the line where each key path first appears."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.array_counts: dict[KeyPath, int] = {}

    def run(self) -> dict[KeyPath, int]:
        # Line numbers are a convenience: a scanner gap must never hide the real error.
        with contextlib.suppress(_ScanError):
            self._document()
        return self.lines

    # -- low level -------------------------------------------------------------------------

    def _at(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def _at_offset(self, offset: int, token: str) -> bool:
        return self.text.startswith(token, self.pos + offset)

    def _peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def _advance(self, count: int = 1) -> None:
        if self.pos + count > len(self.text):
            raise _ScanError("unexpected end of text")
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def _expect(self, token: str) -> None:
        if not self._at(token):
            raise _ScanError(f"expected {token!r} at line {self.line}")
        self._advance(len(token))

    def _skip_blank(self, *, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self._advance()
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self._advance((len(self.text) if end < 0 else end) - self.pos)
            else:
                return

    # -- grammar ---------------------------------------------------------------------------

    def _document(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.line
            if self._at("[["):
                self._advance(2)
                parts = self._key()
                self._expect("]]")
                base: KeyPath = (*self._resolve(parts[:-1]), parts[-1])
                index = self.array_counts.get(base, 0)
                self.array_counts[base] = index + 1
                table = (*base, index)
                self.lines.setdefault(base, start)
                self.lines[table] = start
            elif self._at("["):
                self._advance()
                parts = self._key()
                self._expect("]")
                table = (*self._resolve(parts[:-1]), parts[-1])
                self.lines.setdefault(table, start)
            else:
                parts = self._key()
                self._expect("=")
                self._record(table, parts, start)
                self._skip_blank(newlines=False)
                self._value((*table, *parts))

    def _resolve(self, parts: list[str]) -> KeyPath:
        """A header's parent path, with the current index of every array of tables on it.

        Parents the header creates implicitly (``[[a.b]]`` creates ``a``) get the header's line.
        """
        path: KeyPath = ()
        for part in parts:
            path = (*path, part)
            self.lines.setdefault(path, self.line)
            count = self.array_counts.get(path)
            if count:
                path = (*path, count - 1)
        return path

    def _record(self, table: KeyPath, parts: list[str], line: int) -> None:
        for end in range(1, len(parts) + 1):
            self.lines.setdefault((*table, *parts[:end]), line)

    def _key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            char = self._peek()
            if char == '"':
                start = self.pos
                self._basic_string()
                parts.append(_unquote_key(self.text[start : self.pos]))
            elif char == "'":
                start = self.pos
                self._literal_string()
                parts.append(self.text[start + 1 : self.pos - 1])
            else:
                match = _BARE_KEY_AT.match(self.text, self.pos)
                if not match:
                    raise _ScanError(f"expected a key at line {self.line}")
                parts.append(match.group())
                self._advance(match.end() - self.pos)
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return parts
            self._advance()

    def _basic_string(self) -> None:
        self._expect('"')
        while True:
            char = self._peek()
            if not char or char == "\n":
                raise _ScanError("unterminated string")
            if char == "\\":
                self._advance(2)
            elif char == '"':
                self._advance()
                return
            else:
                self._advance()

    def _literal_string(self) -> None:
        self._expect("'")
        end = self.text.find("'", self.pos)
        if end < 0:
            raise _ScanError("unterminated string")
        self._advance(end + 1 - self.pos)

    def _multiline_string(self, quote: str) -> None:
        self._expect(quote * 3)
        while True:
            char = self._peek()
            if not char:
                raise _ScanError("unterminated string")
            if char == "\\" and quote == '"':
                self._advance(2)
            elif self._at(quote * 3):
                run = 3
                while run < 5 and self._at_offset(run, quote):
                    run += 1
                self._advance(run)  # up to two quotes before the closing three are content
                return
            else:
                self._advance()

    def _value(self, path: KeyPath) -> None:
        char = self._peek()
        if self._at('"""') or self._at("'''"):
            self._multiline_string(char)
        elif char == '"':
            self._basic_string()
        elif char == "'":
            self._literal_string()
        elif char == "[":
            self._advance()
            index = 0
            while True:
                self._skip_blank(newlines=True)
                if self._peek() == "]":
                    self._advance()
                    return
                self.lines.setdefault((*path, index), self.line)
                before = self.pos
                self._value((*path, index))
                self._skip_blank(newlines=True)
                if self._peek() == ",":
                    self._advance()
                    index += 1
                elif self._peek() != "]" or self.pos == before:
                    raise _ScanError(f"unexpected text in an array at line {self.line}")
        elif char == "{":
            self._advance()
            while True:
                self._skip_blank(newlines=True)
                if self._peek() == "}":
                    self._advance()
                    return
                start = self.line
                parts = self._key()
                self._expect("=")
                self._record(path, parts, start)
                self._skip_blank(newlines=False)
                self._value((*path, *parts))
                self._skip_blank(newlines=True)
                if self._peek() == ",":
                    self._advance()
                elif self._peek() != "}":
                    raise _ScanError(f"unexpected text in an inline table at line {self.line}")
        else:
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self._advance()
            if self.pos == start:
                raise _ScanError(f"expected a value at line {self.line}")


def _index_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path to the 1-based line where it is assigned or its table begins."""
    return _LineIndexer(text).run()


def _table_before(lines: list[str], line: int) -> KeyPath:
    """The table in effect at ``line`` (1-based), from the headers above it; for broken files."""
    table: KeyPath = ()
    counts: dict[KeyPath, int] = {}
    for raw in lines[: line - 1]:
        array_match = _ARRAY_TABLE.match(raw)
        table_match = None if array_match else _TABLE.match(raw)
        match = array_match or table_match
        if not match:
            continue
        parts = _split_key(match.group(1))
        parent: KeyPath = ()
        for part in parts[:-1]:
            parent = (*parent, part)
            if counts.get(parent):
                parent = (*parent, counts[parent] - 1)
        base: KeyPath = (*parent, parts[-1])
        if array_match:
            index = counts.get(base, 0)
            counts[base] = index + 1
            table = (*base, index)
        else:
            table = base
    return table


def _unclosed_multiline_start(text: str) -> int | None:
    """The line where the last multi-line string opens without closing, if one does."""
    for quote in ('"""', "'''"):
        positions = [match.start() for match in re.finditer(re.escape(quote) + "+", text)]
        if len(positions) % 2 == 1:
            return text.count("\n", 0, positions[-1]) + 1
    return None


def format_path(path: KeyPath) -> str:
    """``("turns", 2, "text")`` -> ``turns[2].text``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def read_utf8(path: Path, kind: str) -> str:
    """The file as text (UTF-8, a byte order mark dropped). Errors are :class:`ConfigError` naming
    the file, and the line of the first byte that is not UTF-8; ``kind`` is what the file should
    be ("a TOML file"), for the error when it is a directory."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, f"is a directory, not {kind}") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(path, "not valid UTF-8 (save the file as UTF-8)", line=line) from None
    return text.removeprefix("\ufeff")


class TomlDocument:
    """A parsed TOML file that remembers where each key was written."""

    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        self.path = path
        self.text = text
        self.data = data
        self._lines = _index_lines(text)

    @classmethod
    def load(cls, path: Path | str) -> TomlDocument:
        path = Path(path)
        return cls.parse(path, read_utf8(path, "a TOML file"))

    @classmethod
    def parse(cls, path: Path | str, text: str) -> TomlDocument:
        path = Path(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise cls._syntax_error(path, text, exc) from None
        return cls(path, text, data)

    @staticmethod
    def _syntax_error(path: Path, text: str, exc: Exception) -> ConfigError:
        message = str(exc)
        source_lines = _source_lines(text)
        line: int | None = getattr(exc, "lineno", None)
        match = _ERROR_POSITION.search(message)
        if match:
            line = line or int(match.group(1))
            message = message[: match.start()].strip()
        elif _END_OF_DOCUMENT in message:
            message = message.replace(_END_OF_DOCUMENT, "").strip()
            if message.startswith("Unterminated string"):
                line = _unclosed_multiline_start(text)
                message = "a multi-line string opened here is never closed"
            if line is None:
                # tomllib names no line here; the last written line is where to look.
                written = [n for n, raw in enumerate(source_lines, start=1) if raw.strip()]
                line = written[-1] if written else 1
        if message == "Illegal character '\\n'":
            message = "a string is not closed on this line"
        key = None
        if line is not None and 0 < line <= len(source_lines):
            assignment = _ASSIGNMENT.match(source_lines[line - 1])
            if assignment:
                table = _table_before(source_lines, line)
                key = format_path((*table, *_split_key(assignment.group(1))))
        return ConfigError(path, f"TOML syntax error: {message}", line=line, key=key)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest enclosing key that has one."""
        for end in range(len(path), 0, -1):
            found = self._lines.get(path[:end])
            if found is not None:
                return found
        return None

    def error(self, path: KeyPath, message: str) -> ConfigError:
        """A :class:`ConfigError` about ``path``, with its line."""
        return ConfigError(
            self.path, message, line=self.line_of(path), key=format_path(path) or None
        )

    def take(
        self,
        table: Mapping[str, Any],
        at: KeyPath,
        key: str,
        types: type[T] | tuple[type, ...],
        *,
        required: bool = True,
        default: Any = None,
        non_empty: bool = False,
    ) -> Any:
        """Return ``table[key]`` checked against ``types``; raise naming file, line and key.

        A missing top-level key is reported at line 1, where the top-level table begins.
        """
        path = (*at, key)
        if key not in table:
            if required:
                where = self.line_of(at) if at else 1
                owner = format_path(at) or "top level"
                raise ConfigError(
                    self.path,
                    f"required key missing (in {owner})",
                    line=where,
                    key=format_path(path),
                )
            return default
        return self._checked(table[key], path, types, non_empty=non_empty)

    def take_list(
        self,
        table: Mapping[str, Any],
        at: KeyPath,
        key: str,
        item_types: type[T] | tuple[type, ...],
        *,
        required: bool = False,
        non_empty: bool = False,
        non_empty_items: bool = False,
    ) -> list[Any]:
        """Return ``table[key]`` as an array whose every element is one of ``item_types``.

        A missing optional key gives an empty list; a wrong element is reported with its index.
        """
        values: list[Any] = self.take(
            table, at, key, list, required=required, default=[], non_empty=non_empty
        )
        path = (*at, key)
        return [
            self._checked(value, (*path, index), item_types, non_empty=non_empty_items)
            for index, value in enumerate(values)
        ]

    def _checked(
        self, value: Any, path: KeyPath, types: type | tuple[type, ...], *, non_empty: bool
    ) -> Any:
        accepted = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) and bool not in accepted:
            raise self.error(path, f"expected {_type_name(types)}, got {str(value).lower()}")
        if float in accepted and int not in accepted and isinstance(value, int):
            value = float(value)
        if not isinstance(value, accepted):
            got = f"{_type_name(type(value))} {value!r}"
            if len(got) > 60:
                got = got[:57] + "..."
            raise self.error(path, f"expected {_type_name(types)}, got {got}")
        if non_empty and (
            (isinstance(value, str) and not value.strip())
            or (not isinstance(value, str) and not value)
        ):
            raise self.error(path, "must not be empty")
        return value

    def reject_unknown(self, table: Mapping[str, Any], at: KeyPath, allowed: Iterable[str]) -> None:
        """Raise for the first key of ``table`` that is not in ``allowed`` (typos must not pass)."""
        allowed = list(allowed)
        for key in table:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
                known = ", ".join(allowed)
                raise self.error((*at, key), f"unknown key{suffix}; known keys: {known}")
