"""Import standard question sets as scenario TOML files: Japanese MT-Bench, ELYZA-tasks-100, JSONL.

Nothing is downloaded: the user brings the file. Three formats:

- ``mt-bench``: FastChat's ``question.jsonl`` as the Japanese MT-Bench ships it, one JSON object
  a line with ``question_id``, ``category``, ``turns`` (the user's lines) and an optional
  ``reference`` (one reference answer per turn, or a single string for the first turn). One
  scenario per question, id ``mtbench-<question_id>``: its two turns are a real follow-up, so
  they stay one conversation. Tags ``mt-bench`` and the category; the reference becomes the
  turn's ``expect`` note. MT-Bench's separate reference answers (``reference_answer/gpt-4.jsonl``,
  read by :func:`kurabe.importing.mtbench.read_references`) come in with the questions as
  ``references``; the judge frames them as MT-Bench's reference prompts do.
- ``elyza-tasks``: ELYZA-tasks-100 as JSONL or CSV (chosen by the file's extension, else by its
  first character) with ``input``, ``output`` (the model answer) and ``eval_aspect`` (the grading
  notes). The tasks are independent, and a scenario's turns share one conversation history, so
  each task is **one scenario of one turn** (id ``elyza-tasks-001`` … by the task's position in
  the file): no task's answer leaks into the next one's prompt, and each reply is rated, picked
  and judged on its own. The tag ``elyza-tasks-100`` replays them as a set
  (``kurabe replay --tag elyza-tasks-100``). The ``expect`` note is :func:`elyza_expect`: the
  model answer under ``模範解答:`` and the grading notes under ``採点基準:``, the rubric a judge
  reads.
- ``jsonl``: kurabe's own JSON lines, one scenario a line, with the scenario file's keys:
  ``turns`` (strings, or objects with ``text`` and ``expect``) or a single ``text`` (and
  ``expect``), and optional ``id``, ``title``, ``persona``, ``tags``, ``notes``. Unknown keys are
  errors (typos must not pass), as in the TOML files; the two standard formats ignore keys they
  do not use, since other tools add their own.

Every problem in the brought file is one :class:`~foundation.errors.ConfigError` line,
``file:line: field: reason``, as for TOML: the line is the record's line (a JSONL line; a CSV
row's first line, since a quoted field may span several). The whole file is checked before
anything is written. The persona is ``--persona`` or :data:`DEFAULT_PERSONA` (a neutral
assistant); every file is written only after the text produced has been read back by
:mod:`scenarios.loader` and compared with what was meant, and existing files are left alone
unless ``force``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.catalog import ID_PATTERN, toml_files
from foundation.errors import ConfigError, KurabeError
from foundation.tomlfile import read_utf8
from scenarios import Scenario, Turn

FORMATS: tuple[str, ...] = ("mt-bench", "elyza-tasks", "jsonl")
DEFAULT_PERSONA = "assistant"
"""The persona of imported scenarios unless ``--persona`` names another (personas/05-assistant)."""
MT_BENCH_TAG = "mt-bench"
ELYZA_TAG = "elyza-tasks-100"
DEFAULT_PREFIXES = {"mt-bench": "mtbench", "elyza-tasks": "elyza-tasks"}
"""Scenario ids are ``<prefix>-<question id or task number>``; ``jsonl`` uses the file's stem."""
MT_BENCH_CATEGORIES = {
    "writing": "作文",
    "roleplay": "ロールプレイ",
    "reasoning": "推論",
    "math": "数学",
    "coding": "コーディング",
    "extraction": "情報抽出",
    "stem": "理系知識",
    "humanities": "人文・社会",
}
"""Japanese names of MT-Bench's eight categories, for titles; other categories keep their name."""
JSONL_KEYS: tuple[str, ...] = ("id", "title", "persona", "tags", "notes", "turns", "text", "expect")
JSONL_TURN_KEYS: tuple[str, ...] = ("text", "expect")
TITLE_CELLS = 40
"""Titles made from a question's first line are cut to about this many terminal cells."""


@dataclass(frozen=True)
class ImportedScenario:
    """One scenario made from one record of the brought file."""

    scenario: Scenario
    line: int
    """The record's line in the brought file (notes and messages name it)."""


@dataclass
class ImportResult:
    """What :func:`import_file` wrote."""

    written: list[tuple[Path, Scenario]] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    """Files that existed and were overwritten (``force``)."""
    tag: str | None = None
    """The tag every imported scenario carries, when there is one (a set to replay)."""


# -- reading the brought file --------------------------------------------------------------------


def read_text(path: Path) -> str:
    """The file as text (UTF-8, a byte order mark dropped); errors name the line."""
    return read_utf8(path, "a question file")


class Record:
    """One record of the brought file with its line, and checks that raise ``file:line: key``."""

    def __init__(self, path: Path, line: int, data: Mapping[str, Any]) -> None:
        self.path = path
        self.line = line
        self.data = data

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.path, message, line=self.line, key=key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, *, required: bool = True, non_empty: bool = True) -> str | None:
        """A string (kept exactly as written); ``None`` when optional and absent or null."""
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "required field missing")
            return None
        return self.check_text(key, value, non_empty=non_empty)

    def check_text(self, key: str, value: Any, *, non_empty: bool = True) -> str:
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_describe(value)}")
        if non_empty and not value.strip():
            raise self.error(key, "must not be empty")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.error(key, "contains a lone surrogate (\\ud800-\\udfff), not text") from None
        return value

    def one_line(self, key: str, value: Any) -> str:
        text = self.check_text(key, value)
        if "\n" in text or "\r" in text:
            raise self.error(key, "must be one line")
        return text

    def text_list(self, key: str) -> list[str]:
        """A non-empty array of non-empty strings."""
        value = self.data.get(key)
        if value is None:
            raise self.error(key, "required field missing")
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of strings, got {_describe(value)}")
        if not value:
            raise self.error(key, "must not be empty")
        return [self.check_text(f"{key}[{index}]", item) for index, item in enumerate(value)]

    def reject_unknown(self, allowed: Collection[str]) -> None:
        import difflib

        for key in self.data:
            if key not in allowed:
                hint = difflib.get_close_matches(key, list(allowed), n=1)
                suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise self.error(key, f"unknown field{suffix}; known fields: {', '.join(allowed)}")


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    name = "an object" if isinstance(value, Mapping) else names.get(type(value), "a string")
    shown = json.dumps(value, ensure_ascii=False)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{name} {shown}"


def jsonl_records(path: Path, text: str) -> Iterator[Record]:
    """One :class:`Record` per non-blank line; a line that is not a JSON object is an error."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                path, f"not valid JSON: {exc.msg} (column {exc.colno})", line=number
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(
                path, f"each line must be a JSON object, got {_describe(data)}", line=number
            )
        yield Record(path, number, data)


def csv_records(path: Path, text: str, required_columns: Sequence[str]) -> Iterator[Record]:
    """One :class:`Record` per row after the header; its line is the row's first line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise ConfigError(path, f"not valid CSV: {exc}", line=reader.line_num) from None
    columns = [name.strip() for name in header]
    for name in required_columns:
        if name not in columns:
            raise ConfigError(
                path,
                f"column missing from the header (columns: {', '.join(columns) or 'none'})",
                line=1,
                key=name,
            )
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfigError(path, f"not valid CSV: {exc}", line=start) from None
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise ConfigError(
                path, f"the row has {len(row)} fields, the header {len(columns)}", line=start
            )
        yield Record(path, start, dict(zip(columns, row, strict=True)))


def _looks_like_csv(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return True
    if suffix in (".jsonl", ".json", ".ndjson"):
        return False
    return not text.lstrip().startswith("{")


# -- making scenarios ----------------------------------------------------------------------------


def scenario_id(record: Record, key: str, prefix: str, suffix: str) -> str:
    """``<prefix>-<suffix>``, which must be a valid scenario id (the error names ``key``)."""
    made = f"{prefix}-{suffix}" if prefix else suffix
    if not ID_PATTERN.fullmatch(made):
        raise record.error(
            key,
            f"gives the scenario id {made!r}, but ids are 1-64 ASCII letters, digits, "
            "'-', '_' or '.' (choose another --id-prefix, or fix the value)",
        )
    return made


def short_title(text: str, limit: int = TITLE_CELLS) -> str:
    """The first non-blank line of ``text``, spaces collapsed, cut to ``limit`` cells with …."""
    from rich.cells import cell_len

    first = next((line for line in text.splitlines() if line.strip()), text)
    words = " ".join(first.split())
    if cell_len(words) <= limit:
        return words
    out = ""
    for char in words:
        if cell_len(out + char) > limit - 1:
            break
        out += char
    return out + "…"


def elyza_expect(output: str | None, eval_aspect: str | None) -> str | None:
    """The ``expect`` note of an ELYZA task: the model answer and the grading notes.

    The layout is fixed, so a judge can find the two parts: ``模範解答:`` then the answer on the
    lines below, a blank line, ``採点基準:`` then the grading notes. A part that is empty is left
    out (both empty: no note).
    """
    parts = []
    if output and output.strip():
        parts.append(f"模範解答:\n{output.strip(chr(10))}")
    if eval_aspect and eval_aspect.strip():
        parts.append(f"採点基準:\n{eval_aspect.strip(chr(10))}")
    return "\n\n".join(parts) or None


def _source_note(kind: str, path: Path, line: int) -> str:
    return f"{kind}: imported by `kurabe import` from {path.name}, line {line}."


def _question_id(record: Record) -> str:
    value = record.data.get("question_id")
    if value is None:
        raise record.error("question_id", "required field missing")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise record.error("question_id", f"expected a number or a string, got {_describe(value)}")
    text = str(value).strip()
    if not text:
        raise record.error("question_id", "must not be empty")
    return text


def mt_bench_scenarios(
    path: Path,
    text: str,
    *,
    persona: str,
    prefix: str = DEFAULT_PREFIXES["mt-bench"],
    references: Mapping[str, Sequence[str]] | None = None,
) -> list[ImportedScenario]:
    """One scenario per MT-Bench question (see the module docstring). ``references``: question
    id -> reference answer per turn (``reference_answer/gpt-4.jsonl``), each the turn's
    ``expect`` note where the question carries no ``reference`` of its own; a reference for a
    question not in the file is refused, naming the ids."""
    out: list[ImportedScenario] = []
    seen: dict[str, int] = {}
    references = references or {}
    for record in jsonl_records(path, text):
        question = _question_id(record)
        if question in seen:
            raise record.error(
                "question_id", f"duplicate question {question}, already on line {seen[question]}"
            )
        seen[question] = record.line
        category_value = record.data.get("category")
        if category_value is None:
            raise record.error("category", "required field missing")
        category = record.one_line("category", category_value)
        turns = record.text_list("turns")
        references_here = _references(record, len(turns))
        brought = list(references.get(question, ()))[: len(turns)]
        for index, answer in enumerate(brought):
            if index >= len(references_here):
                references_here.append(None)
            if references_here[index] is None:
                references_here[index] = answer
        category_ja = MT_BENCH_CATEGORIES.get(category.lower())
        shown_category = f"{category_ja}（{category}）" if category_ja else category
        scenario = Scenario(
            id=scenario_id(record, "question_id", prefix, question),
            title=f"MT-Bench {question}: {shown_category}",
            persona=persona,
            turns=tuple(
                Turn(
                    text=line,
                    expect=references_here[index] if index < len(references_here) else None,
                )
                for index, line in enumerate(turns)
            ),
            tags=_unique((MT_BENCH_TAG, category)),
            notes=_source_note(
                f"Japanese MT-Bench question {question} ({category})", path, record.line
            ),
        )
        out.append(ImportedScenario(scenario, record.line))
    if not out:
        raise ConfigError(path, "no questions in the file (one JSON object a line)")
    unknown = sorted(set(references) - set(seen), key=_natural)
    if unknown:
        raise KurabeError(
            f"reference answers for question(s) not in {path.name}: {', '.join(unknown)};"
            " nothing written"
        )
    return out


def _natural(question: str) -> tuple[int, str]:
    return (int(question), "") if question.isdigit() else (1 << 62, question)


def _references(record: Record, turn_count: int) -> list[str | None]:
    """``reference`` as one note per turn: an array (one per turn) or a string (the first)."""
    value = record.data.get("reference")
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise record.error("reference", f"expected an array of strings, got {_describe(value)}")
    if len(value) > turn_count:
        raise record.error("reference", f"{len(value)} reference answers for {turn_count} turn(s)")
    notes: list[str | None] = []
    for index, item in enumerate(value):
        answer = record.check_text(f"reference[{index}]", item, non_empty=False)
        notes.append(f"参考解答:\n{answer}" if answer.strip() else None)
    return notes


def elyza_scenarios(
    path: Path, text: str, *, persona: str, prefix: str = DEFAULT_PREFIXES["elyza-tasks"]
) -> list[ImportedScenario]:
    """One single-turn scenario per ELYZA task (see the module docstring)."""
    columns = ("input", "output", "eval_aspect")
    is_csv = _looks_like_csv(path, text)
    records = csv_records(path, text, columns) if is_csv else jsonl_records(path, text)
    out: list[ImportedScenario] = []
    for number, record in enumerate(records, start=1):
        task = record.text("input")
        assert task is not None
        output = record.text("output", non_empty=False)
        eval_aspect = record.text("eval_aspect", non_empty=False)
        scenario = Scenario(
            id=scenario_id(record, "input", prefix, f"{number:03d}"),
            title=f"ELYZA-tasks-100 #{number}: {short_title(task)}",
            persona=persona,
            turns=(Turn(text=task, expect=elyza_expect(output, eval_aspect)),),
            tags=(ELYZA_TAG,),
            notes=_source_note(f"ELYZA-tasks-100 task {number}", path, record.line),
        )
        out.append(ImportedScenario(scenario, record.line))
    if not out:
        raise ConfigError(path, "no tasks in the file")
    return out


def jsonl_scenarios(
    path: Path,
    text: str,
    *,
    persona: str,
    prefix: str | None = None,
    known_personas: Collection[str] = (),
) -> list[ImportedScenario]:
    """kurabe's own JSON lines, one scenario a line (see the module docstring)."""
    stem_prefix = prefix if prefix is not None else _id_from_stem(path.stem)
    out: list[ImportedScenario] = []
    seen: dict[str, int] = {}
    for number, record in enumerate(jsonl_records(path, text), start=1):
        record.reject_unknown(JSONL_KEYS)
        if record.has("id"):
            value = record.data["id"]
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise record.error("id", f"expected a string, got {_describe(value)}")
            made_id = scenario_id(record, "id", prefix or "", str(value))
        else:
            made_id = scenario_id(record, "id", stem_prefix, f"{number:03d}")
        if made_id in seen:
            raise record.error("id", f"duplicate id '{made_id}', already on line {seen[made_id]}")
        seen[made_id] = record.line
        turns = _jsonl_turns(record)
        record_persona = persona
        if record.has("persona"):
            record_persona = record.one_line("persona", record.data["persona"])
            if known_personas and record_persona not in known_personas:
                raise record.error(
                    "persona",
                    f"no persona with id '{record_persona}'; known personas: "
                    f"{', '.join(known_personas)}",
                )
        title = record.data.get("title")
        tags = record.data.get("tags")
        if tags is not None and not isinstance(tags, list):
            raise record.error("tags", f"expected an array of strings, got {_describe(tags)}")
        notes = record.text("notes", required=False, non_empty=False)
        scenario = Scenario(
            id=made_id,
            title=record.one_line("title", title)
            if title is not None
            else short_title(turns[0].text),
            persona=record_persona,
            turns=tuple(turns),
            tags=_unique(record.one_line(f"tags[{i}]", tag) for i, tag in enumerate(tags or [])),
            notes=notes if notes is not None else _source_note("JSONL", path, record.line),
        )
        out.append(ImportedScenario(scenario, record.line))
    if not out:
        raise ConfigError(path, "no scenarios in the file (one JSON object a line)")
    return out


def _jsonl_turns(record: Record) -> list[Turn]:
    if record.has("turns") == record.has("text"):
        raise record.error(
            "turns", 'give either "turns" (an array) or "text" (one line of the user), not both'
        )
    if record.has("text"):
        text = record.text("text")
        assert text is not None
        return [Turn(text=text, expect=record.text("expect", required=False))]
    if record.has("expect"):
        raise record.error("expect", 'with "turns", put each expect note in its turn object')
    value = record.data["turns"]
    if not isinstance(value, list) or not value:
        raise record.error("turns", f"expected a non-empty array, got {_describe(value)}")
    turns = []
    for index, item in enumerate(value):
        at = f"turns[{index}]"
        if isinstance(item, str):
            turns.append(Turn(text=record.check_text(at, item)))
            continue
        if not isinstance(item, Mapping):
            raise record.error(at, f"expected a string or an object, got {_describe(item)}")
        turn = Record(record.path, record.line, item)
        for key in item:
            if key not in JSONL_TURN_KEYS:
                raise record.error(f"{at}.{key}", "unknown field; known fields: text, expect")
        if item.get("text") is None:
            raise record.error(f"{at}.text", "required field missing")
        expect = item.get("expect")
        turns.append(
            Turn(
                text=turn.check_text(f"{at}.text", item["text"]),
                expect=turn.check_text(f"{at}.expect", expect) if expect is not None else None,
            )
        )
    return turns


def _id_from_stem(stem: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:56]
    return cleaned or "imported"


def _unique(values: Iterator[str] | Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


# -- writing TOML --------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string; a multi-line one when it has line breaks.

    Backslashes, quotes, ``\\r`` and control characters are escaped, so the value reads back
    exactly (a multi-line string's first line break, right after the opening quotes, is the one
    TOML drops).
    """
    multiline = "\n" in text
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\n" if multiline else "\\n")
        elif char == "\t":
            out.append("\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    body = "".join(out)
    return f'"""\n{body}"""' if multiline else f'"{body}"'


def scenario_toml(scenario: Scenario, comment: str = "") -> str:
    """The scenario file text that :mod:`scenarios.loader` reads back as ``scenario``."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [
        f"id = {toml_string(scenario.id)}",
        f"title = {toml_string(scenario.title)}",
        f"persona = {toml_string(scenario.persona)}",
    ]
    if scenario.tags:
        lines.append(f"tags = [{', '.join(toml_string(tag) for tag in scenario.tags)}]")
    if scenario.notes:
        lines.append(f"notes = {toml_string(scenario.notes)}")
    for turn in scenario.turns:
        lines += ["", "[[turns]]", f"text = {toml_string(turn.text)}"]
        if turn.expect is not None:
            lines.append(f"expect = {toml_string(turn.expect)}")
    return "\n".join(lines) + "\n"


# -- the whole import ----------------------------------------------------------------------------


def read_scenarios(
    path: Path,
    fmt: str,
    *,
    persona: str = DEFAULT_PERSONA,
    prefix: str | None = None,
    known_personas: Collection[str] = (),
    references: Mapping[str, Sequence[str]] | None = None,
) -> list[ImportedScenario]:
    """Parse the brought file in ``fmt`` (one of :data:`FORMATS`) into scenarios
    (``references``: MT-Bench's reference answers, see :func:`mt_bench_scenarios`)."""
    if references and fmt != "mt-bench":
        raise KurabeError("reference answers go with --format mt-bench")
    if fmt not in FORMATS:
        raise KurabeError(f"unknown import format {fmt!r}; choose one of {', '.join(FORMATS)}")
    text = read_text(path)
    if fmt == "mt-bench":
        return mt_bench_scenarios(
            path,
            text,
            persona=persona,
            prefix=prefix or DEFAULT_PREFIXES[fmt],
            references=references,
        )
    if fmt == "elyza-tasks":
        return elyza_scenarios(path, text, persona=persona, prefix=prefix or DEFAULT_PREFIXES[fmt])
    return jsonl_scenarios(
        path, text, persona=persona, prefix=prefix, known_personas=known_personas
    )


def _ids_in(directory: Path) -> dict[str, Path]:
    """Scenario id -> file, of the TOML files already in ``directory`` (unreadable ones skipped)."""
    from foundation.tomlfile import TomlDocument

    found: dict[str, Path] = {}
    if not directory.is_dir():
        return found
    for path in toml_files(directory):
        try:
            value = TomlDocument.load(path).data.get("id")
        except ConfigError:
            continue
        if isinstance(value, str):
            found.setdefault(value, path)
    return found


def import_file(
    path: Path,
    fmt: str,
    *,
    out_dir: Path,
    persona: str = DEFAULT_PERSONA,
    known_personas: Collection[str],
    prefix: str | None = None,
    force: bool = False,
    references: Mapping[str, Sequence[str]] | None = None,
) -> ImportResult:
    """Read ``path``, check everything, then write one ``<id>.toml`` per scenario in ``out_dir``.

    Refused, with nothing written: an unknown persona, a file already there (unless ``force``),
    and an id that another file in ``out_dir`` already defines (the loader would reject the pair).
    """
    from kurabe.export.exporter import write_export
    from scenarios.loader import parse_scenario_text

    if persona not in known_personas:
        import difflib

        hint = difflib.get_close_matches(persona, list(known_personas), n=1)
        suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise KurabeError(
            f"unknown persona '{persona}'{suffix}; known personas: {', '.join(known_personas)}"
        )
    imported = read_scenarios(
        path,
        fmt,
        persona=persona,
        prefix=prefix,
        known_personas=known_personas,
        references=references,
    )
    existing_ids = _ids_in(out_dir)
    texts: list[tuple[Path, str, Scenario]] = []
    present: list[Path] = []
    for item in imported:
        scenario = item.scenario
        target = out_dir / f"{scenario.id}.toml"
        other = existing_ids.get(scenario.id)
        if other is not None and other.resolve() != target.resolve():
            raise ConfigError(
                path,
                f"scenario id '{scenario.id}' is already defined in {other} "
                "(choose another --id-prefix)",
                line=item.line,
            )
        if target.exists():
            present.append(target)
        comment = (
            f"Imported by `kurabe import --format {fmt}` from {path.name}, line {item.line}.\n"
            "Edit freely: this file is yours now."
        )
        text = scenario_toml(scenario, comment)
        again = parse_scenario_text(text, target, source=str(target), known_personas=known_personas)
        if again != _with_source(scenario, str(target)):  # pragma: no cover - a writer bug
            raise KurabeError(f"internal error: {target.name} would not read back as written")
        texts.append((target, text, again))
    if present and not force:
        shown = ", ".join(str(p) for p in present[:3])
        more = f" and {len(present) - 3} more" if len(present) > 3 else ""
        raise KurabeError(
            f"{len(present)} file(s) already exist: {shown}{more}; nothing written "
            "(--force overwrites them)"
        )
    result = ImportResult(replaced=present)
    tags = [set(item.scenario.tags) for item in imported]
    common = set.intersection(*tags) if tags else set()
    first_tags = imported[0].scenario.tags
    result.tag = next((tag for tag in first_tags if tag in common), None)
    for target, text, scenario in texts:
        write_export(target, text)
        result.written.append((target, scenario))
    return result


def _with_source(scenario: Scenario, source: str) -> Scenario:
    import dataclasses

    return dataclasses.replace(scenario, source=source)
