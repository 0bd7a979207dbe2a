"""Character cards in: a Character Card V2 (JSON, or a PNG carrying it) as a persona TOML file.

A Character Card V2 (the format of SillyTavern and other role-play tools) is a JSON object
``{"spec": "chara_card_v2", "spec_version": "2.0", "data": {…}}``; a V1 card has the same first
fields at the top level. The PNG form carries that JSON base64-encoded in a ``tEXt`` chunk with
the keyword ``chara``. What becomes of each field:

* ``name`` → the persona's ``title`` and ``char_name`` (the id comes from ``--id``, else the
  name's ASCII letters, else the file name);
* ``name``, ``description``, ``personality`` and ``scenario`` → the ``system`` text
  (「あなたは{name}として会話します。」, the description, 「性格: …」, 「状況: …」);
* ``mes_example`` → ``[[examples]]``: blocks separated by ``<START>``, lines ``{{user}}: …`` /
  ``{{char}}: …`` (a line without a speaker continues the one before it); a user line followed
  by a character line is one example;
* ``creator_notes``, ``creator`` and ``character_version`` → ``notes``, with the file it came from;
* ``{{char}}`` and ``{{user}}`` (and V1's ``<BOT>`` and ``<USER>``) → the persona's names,
  everywhere;
* everything else (``first_mes``, ``alternate_greetings``, ``system_prompt``,
  ``post_history_instructions``, ``tags``, ``character_book``, ``extensions``, a stray example
  line, any field the spec does not name) does not map: :attr:`ImportedCard.unmapped` lists it,
  the command prints it, and the persona file's notes name it.

The language is ``ja`` when most of the card's own text (description, personality, scenario) is
Japanese, else ``en``; the register is ``any``. The file written is read back through
:mod:`personas.loader` before it is kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.catalog import ID_PATTERN
from foundation.errors import KurabeError
from kurabe.checks.japanese import japanese_share
from kurabe.importing.questions import toml_string
from personas import ExampleExchange, Persona
from personas.loader import parse_persona_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_CHUNK_KEYWORD = b"chara"
DEFAULT_USER_NAME = "ユーザー"
MAPPED_FIELDS = (
    "name",
    "description",
    "personality",
    "scenario",
    "mes_example",
    "creator_notes",
    "creator",
    "character_version",
)
"""Card fields that become part of the persona."""
EMPTY_VALUES: tuple[Any, ...] = ("", None, [], {})
_START = re.compile(r"^\s*<start>\s*$", re.I | re.M)
_SPEAKER = re.compile(r"^\s*(\{\{user\}\}|\{\{char\}\}|<user>|<bot>)\s*[:：]\s?(.*)$", re.I)
_NAME_MACROS = (
    (re.compile(r"\{\{char\}\}|<bot>", re.I), "char"),
    (re.compile(r"\{\{user\}\}|<user>", re.I), "user"),
)


class CardError(KurabeError):
    """A file that is not a character card kurabe can read: one line, naming the file."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class ImportedCard:
    persona: Persona
    unmapped: list[str] = field(default_factory=list)
    """What of the card is not in the persona, one line each (``field: what it held``)."""
    spec: str = "chara_card_v2"


# -- reading the file ----------------------------------------------------------------------------


def png_text_chunks(path: Path, data: bytes) -> dict[bytes, bytes]:
    """The ``tEXt`` chunks of a PNG, keyword → text (latin-1 bytes, as stored)."""
    if not data.startswith(PNG_SIGNATURE):
        raise CardError(path, "not a PNG file (no PNG signature)")
    chunks: dict[bytes, bytes] = {}
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if len(body) != length or offset + 12 + length > len(data):
            raise CardError(path, f"PNG chunk {kind.decode('latin-1')!r} is cut off")
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise CardError(path, f"PNG chunk {kind.decode('latin-1')!r} has a bad checksum")
        if kind == b"tEXt" and b"\x00" in body:
            keyword, text = body.split(b"\x00", 1)
            chunks.setdefault(keyword, text)
        if kind == b"IEND":
            break
        offset += 12 + length
    return chunks


def read_card_json(path: Path) -> dict[str, Any]:
    """The card's JSON object, from a ``.json`` file or a PNG's ``chara`` chunk."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CardError(path, "file not found") from None
    except OSError as exc:
        raise CardError(path, f"cannot read: {exc.strerror or exc}") from None
    if raw.startswith(PNG_SIGNATURE):
        chunks = png_text_chunks(path, raw)
        if CARD_CHUNK_KEYWORD not in chunks:
            raise CardError(path, "this PNG carries no character card (no 'chara' tEXt chunk)")
        try:
            text = base64.b64decode(chunks[CARD_CHUNK_KEYWORD], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CardError(path, "the PNG's 'chara' chunk is not base64-encoded UTF-8") from None
        where = "the PNG's 'chara' chunk"
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CardError(path, "neither a PNG nor UTF-8 JSON") from None
        where = "the file"
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CardError(path, f"{where} is not JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(card, dict):
        raise CardError(path, f"{where} is JSON but not an object")
    return card


# -- turning it into a persona -------------------------------------------------------------------


def card_fields(path: Path, card: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[str]]:
    """(spec, the card's fields, unmapped top-level keys) for a V2 card or a V1 one."""
    spec = str(card.get("spec") or "")
    if "data" in card:
        data = card["data"]
        if not isinstance(data, dict):
            raise CardError(path, '"data" is not an object')
        if spec and spec != "chara_card_v2":
            raise CardError(path, f"unsupported card spec {spec!r} (kurabe reads chara_card_v2)")
        extra = [
            f"{key}: a top-level field outside data"
            for key, value in card.items()
            if key not in ("spec", "spec_version", "data") and value not in EMPTY_VALUES
        ]
        return "chara_card_v2", dict(data), extra
    if "name" in card:
        return "chara_card_v1", dict(card), []
    raise CardError(path, 'not a character card: no "data" object and no "name"')


def _text(path: Path, fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CardError(path, f"{key} must be a string, got {type(value).__name__}")
    return value.replace("\r\n", "\n").strip()


def replace_names(text: str, char_name: str, user_name: str) -> str:
    """``{{char}}``/``<BOT>`` and ``{{user}}``/``<USER>`` replaced by the persona's names."""
    names = {"char": char_name, "user": user_name}
    for pattern, role in _NAME_MACROS:
        # A function, not a replacement string: a name may hold backslashes.
        name = names[role]
        text = pattern.sub(lambda _match: name, text)  # noqa: B023 - used at once, in the loop
    return text


def parse_mes_example(
    text: str, char_name: str, user_name: str
) -> tuple[list[ExampleExchange], list[str]]:
    """``mes_example`` as example exchanges, and what of it did not fit (one line each)."""
    examples: list[ExampleExchange] = []
    leftovers: list[str] = []
    blocks = [block for block in _START.split(text) if block.strip()]
    for number, block in enumerate(blocks, start=1):
        messages: list[list[str]] = []  # [role, text]
        for line in block.split("\n"):
            speaker = _SPEAKER.match(line)
            if speaker is not None:
                role = "user" if speaker.group(1).lower() in ("{{user}}", "<user>") else "char"
                messages.append([role, speaker.group(2).strip()])
            elif messages:
                messages[-1][1] = f"{messages[-1][1]}\n{line}".strip("\n")
            elif line.strip():
                leftovers.append(f"mes_example block {number}: a line without a speaker: {line}")
        index = 0
        while index < len(messages):
            role, content = messages[index]
            has_reply = index + 1 < len(messages) and messages[index + 1][0] == "char"
            if role == "user" and has_reply and content and messages[index + 1][1]:
                examples.append(
                    ExampleExchange(
                        user=replace_names(content.strip(), char_name, user_name),
                        char=replace_names(messages[index + 1][1].strip(), char_name, user_name),
                    )
                )
                index += 2
                continue
            what = (
                "a {{user}} line without a {{char}} reply"
                if role == "user"
                else ("a {{char}} line without a {{user}} line before it")
            )
            leftovers.append(f"mes_example block {number}: {what}: {_preview(content)}")
            index += 1
    return examples, leftovers


def _preview(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _unmapped_field(key: str, value: Any) -> str:
    if key == "character_book" and isinstance(value, Mapping):
        entries = value.get("entries")
        count = len(entries) if isinstance(entries, list) else 0
        return f"character_book: a lorebook of {count} entr{'y' if count == 1 else 'ies'}"
    if key == "extensions" and isinstance(value, Mapping):
        return f"extensions: {', '.join(str(k) for k in value)}"
    if key == "alternate_greetings" and isinstance(value, list):
        return f"alternate_greetings: {len(value)} greeting{'s' if len(value) != 1 else ''}"
    if key == "tags" and isinstance(value, list):
        return f"tags: {', '.join(str(tag) for tag in value)}"
    return f"{key}: {_preview(value)}"


def persona_id_for(path: Path, name: str, given: str | None) -> str:
    """``given``, else the name's ASCII letters and digits, else the file name's, else 'card'."""
    if given is not None:
        if not ID_PATTERN.fullmatch(given):
            raise KurabeError(f"--id {given!r}: use 1-64 ASCII letters, digits, '-', '_' or '.'")
        return given
    for source in (name, path.stem):
        slug = re.sub(r"[^A-Za-z0-9]+", "-", source).strip("-").lower()[:64]
        if slug:
            return slug
    return "card"


def card_persona(
    path: Path,
    card: Mapping[str, Any],
    *,
    user_name: str = DEFAULT_USER_NAME,
    persona_id: str | None = None,
) -> ImportedCard:
    """The persona a card describes, and what of it does not map."""
    spec, fields, unmapped = card_fields(path, card)
    name = " ".join(_text(path, fields, "name").split())
    if not name:
        raise CardError(path, "the card has no name")
    values = {
        key: replace_names(_text(path, fields, key), name, user_name) for key in MAPPED_FIELDS
    }
    parts = [f"あなたは{name}として会話します。"]
    if values["description"]:
        parts.append(values["description"])
    if values["personality"]:
        parts.append(f"性格: {values['personality']}")
    if values["scenario"]:
        parts.append(f"状況: {values['scenario']}")
    system = "\n\n".join(parts)
    examples, leftovers = parse_mes_example(_text(path, fields, "mes_example"), name, user_name)
    unmapped += [
        replace_names(_unmapped_field(key, value), name, user_name)
        for key, value in fields.items()
        if key not in MAPPED_FIELDS and value not in EMPTY_VALUES
    ]
    unmapped += leftovers
    notes = [f"{path.name} から取り込んだキャラクターカード（{spec}）。"]
    credits = [
        f"{label}: {values[key]}"
        for key, label in (("creator", "作者"), ("character_version", "版"))
        if values[key]
    ]
    if credits:
        notes.append("、".join(credits))
    if values["creator_notes"]:
        notes.append(values["creator_notes"])
    if unmapped:
        notes.append("取り込まなかった項目: " + "; ".join(line.split(":")[0] for line in unmapped))
    card_text = "\n".join(values[key] for key in ("description", "personality", "scenario"))
    share = japanese_share(card_text) if card_text.strip() else 1.0
    persona = Persona(
        id=persona_id_for(path, name, persona_id),
        title=name,
        system=system,
        char_name=name,
        user_name=user_name,
        language="ja" if share is not None and share >= 0.5 else "en",
        register="any",
        notes="\n".join(notes) + "\n",
        examples=tuple(examples),
        source=str(path),
    )
    return ImportedCard(persona=persona, unmapped=unmapped, spec=spec)


# -- writing the persona file --------------------------------------------------------------------


def persona_toml(persona: Persona, comment: str = "") -> str:
    """The persona file text that :mod:`personas.loader` reads back as ``persona``."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [
        f"id = {toml_string(persona.id)}",
        f"title = {toml_string(persona.title)}",
        f"system = {toml_string(persona.system)}",
        f"char_name = {toml_string(persona.char_name)}",
        f"user_name = {toml_string(persona.user_name)}",
        f"language = {toml_string(persona.language)}",
        f"register = {toml_string(persona.register)}",
    ]
    if persona.max_reply_chars is not None:
        lines.append(f"max_reply_chars = {persona.max_reply_chars}")
    if persona.first_person:
        lines.append(f"first_person = [{', '.join(toml_string(w) for w in persona.first_person)}]")
    if persona.notes:
        lines.append(f"notes = {toml_string(persona.notes)}")
    for example in persona.examples:
        lines += [
            "",
            "[[examples]]",
            f"user = {toml_string(example.user)}",
            f"char = {toml_string(example.char)}",
        ]
    return "\n".join(lines) + "\n"


def import_card(
    path: Path,
    out_dir: Path,
    *,
    user_name: str = DEFAULT_USER_NAME,
    persona_id: str | None = None,
    force: bool = False,
) -> tuple[Path, ImportedCard]:
    """Read the card at ``path`` and write its persona as ``out_dir/<id>.toml``."""
    imported = card_persona(path, read_card_json(path), user_name=user_name, persona_id=persona_id)
    target = out_dir / f"{imported.persona.id}.toml"
    if target.exists() and not force:
        raise KurabeError(f"{target}: already exists (use --force to overwrite, or --id)")
    text = persona_toml(imported.persona, f"Imported by kurabe personas import from {path.name}")
    parse_persona_text(text, target)  # what is written must read back
    out_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target, imported
