"""Judge rubrics: the Japanese instructions an LLM judge is given, as a TOML file.

The bundled rubric is ``kurabe/judge/rubrics/persona_ja.toml``; ``--rubric FILE`` replaces it. A
rubric has a ``[single]`` and a ``[pairwise]`` table (each a ``system`` and a ``prompt``) and a
``[retry]`` table whose ``prompt`` is sent after an answer that could not be parsed.

Placeholders are written ``{{name}}`` (as in the hand-written comparison's prompt formats) rather
than ``str.format``'s ``{name}``: the rubric shows the judge a JSON answer, whose braces would
otherwise all need doubling. Each table may use only the placeholders listed in
:data:`PLACEHOLDERS`; an unknown one is an error naming the file, the line and the key, and a prompt
without the reply (or replies) it is meant to judge is one too. Substitution is one pass: a
``{{…}}`` inside a model's reply is left as it is.

The rubric's identity is the sha256 of its file's bytes as text (:attr:`Rubric.hash`): judge runs
store it with the text, and a run is resumed only over judgements made with the same hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from foundation.tomlfile import TomlDocument

BUNDLED_RUBRIC = "persona_ja.toml"
PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")

_COMMON = ("persona", "char_name", "user_name", "expectations", "user", "expect")
PLACEHOLDERS: Mapping[str, tuple[str, ...]] = {
    "single": (*_COMMON, "history", "reply", "checks"),
    "pairwise": (*_COMMON, "history_a", "reply_a", "checks_a", "history_b", "reply_b", "checks_b"),
    "retry": ("error",),
}
"""The placeholders each table's texts may use."""
REQUIRED_IN_PROMPT: Mapping[str, tuple[str, ...]] = {
    "single": ("reply",),
    "pairwise": ("reply_a", "reply_b"),
    "retry": (),
}
"""What a table's ``prompt`` must contain: a judge prompt without the reply judges nothing."""
TOP_KEYS = ("name", "version", "single", "pairwise", "retry")


@dataclass(frozen=True, slots=True)
class RubricPart:
    system: str
    prompt: str


@dataclass(frozen=True, slots=True)
class Rubric:
    name: str
    source: str
    """The file it was read from, or ``built-in``."""
    text: str
    """The file's text, stored with every judge run."""
    hash: str
    """sha256 of :attr:`text` (hex)."""
    single: RubricPart
    pairwise: RubricPart
    retry_prompt: str

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def part(self, mode: str) -> RubricPart:
        return self.single if mode == "single" else self.pairwise


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{{name}}`` placeholders in one pass (values are never scanned again)."""

    def fill(match: re.Match[str]) -> str:
        return values[match.group(1).strip()]

    return PLACEHOLDER.sub(fill, template)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_placeholders(doc: TomlDocument, at: tuple[str, str], text: str, table: str) -> None:
    allowed = PLACEHOLDERS[table]
    for match in PLACEHOLDER.finditer(text):
        name = match.group(1).strip()
        if name not in allowed:
            raise doc.error(
                at, f"unknown placeholder {{{{{name}}}}}; this table may use: {', '.join(allowed)}"
            )


def _part(doc: TomlDocument, table_name: str, *, with_system: bool) -> tuple[str, str]:
    table: Any = doc.take(doc.data, (), table_name, dict)
    keys = ("system", "prompt") if with_system else ("prompt",)
    doc.reject_unknown(table, (table_name,), keys)
    system = ""
    if with_system:
        system = doc.take(table, (table_name,), "system", str, non_empty=True)
        _check_placeholders(doc, (table_name, "system"), system, table_name)
    prompt: str = doc.take(table, (table_name,), "prompt", str, non_empty=True)
    _check_placeholders(doc, (table_name, "prompt"), prompt, table_name)
    present = {m.group(1).strip() for m in PLACEHOLDER.finditer(prompt)}
    for needed in REQUIRED_IN_PROMPT[table_name]:
        if needed not in present:
            raise doc.error(
                (table_name, "prompt"), f"must contain {{{{{needed}}}}}: it is what is judged"
            )
    return system, prompt


def parse_rubric(doc: TomlDocument, source: str) -> Rubric:
    """Validate a parsed rubric file; raise :class:`~foundation.errors.ConfigError` at the first
    problem."""
    doc.reject_unknown(doc.data, (), TOP_KEYS)
    name: str = doc.take(doc.data, (), "name", str, non_empty=True)
    doc.take(doc.data, (), "version", int, required=False)
    single_system, single_prompt = _part(doc, "single", with_system=True)
    pair_system, pair_prompt = _part(doc, "pairwise", with_system=True)
    _, retry_prompt = _part(doc, "retry", with_system=False)
    return Rubric(
        name=name.strip(),
        source=source,
        text=doc.text,
        hash=text_hash(doc.text),
        single=RubricPart(single_system, single_prompt),
        pairwise=RubricPart(pair_system, pair_prompt),
        retry_prompt=retry_prompt,
    )


def bundled_rubric_text() -> str:
    return (
        resources.files("kurabe.judge")
        .joinpath("rubrics")
        .joinpath(BUNDLED_RUBRIC)
        .read_text("utf-8")
    )


def load_rubric(path: Path | str | None = None) -> Rubric:
    """The rubric at ``path`` (``--rubric FILE``), else the bundled one."""
    if path is None:
        text = bundled_rubric_text()
        doc = TomlDocument.parse(Path(BUNDLED_RUBRIC), text)
        return parse_rubric(doc, "built-in")
    file = Path(path).expanduser()
    return parse_rubric(TomlDocument.load(file), str(file))
