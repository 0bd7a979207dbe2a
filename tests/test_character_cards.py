"""``kurabe personas import FILE``: Character Card V2 (JSON, and the PNG that carries it in a
``chara`` tEXt chunk) into a persona file. The cards and the PNG are written here, with zlib and
struct: nothing is downloaded."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from kurabe.cli import main
from kurabe.importing.character_card import card_persona, persona_toml
from personas import ExampleExchange
from personas.loader import load_personas, parse_persona_file, user_personas_dir

CARD: dict[str, Any] = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        "name": "ミカ",
        "description": "{{char}}は喫茶店で働く大学生。{{user}}とは幼なじみ。",
        "personality": "明るくて世話焼き。タメ口で話す。",
        "scenario": "閉店後の喫茶店で、{{user}}と{{char}}が話している。",
        "first_mes": "あ、{{user}}！ 今日も来てくれたんだ。",
        "mes_example": (
            "<START>\n"
            "{{user}}: 今日のおすすめは？\n"
            "{{char}}: 今日はね、自家製のチーズケーキ！\n"
            "絶対食べてほしいな。\n"
            "<START>\n"
            "{{user}}: 疲れたー\n"
            "{{char}}: お疲れさま、{{user}}。コーヒー淹れるね。\n"
            "{{char}}: 砂糖は二つだよね？"
        ),
        "creator_notes": "タメ口のキャラクター。",
        "system_prompt": "",
        "post_history_instructions": "Stay in character.",
        "alternate_greetings": ["いらっしゃい！", "おかえり！"],
        "tags": ["cafe", "friend"],
        "creator": "hana",
        "character_version": "1.2",
        "character_book": {"entries": [{"keys": ["店"], "content": "喫茶店の名前は木漏れ日"}]},
        "extensions": {"depth_prompt": {"prompt": "x"}},
    },
}


def write_json(path: Path, card: Any) -> Path:
    path.write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png(path: Path, text_chunks: dict[bytes, bytes]) -> Path:
    """A 1×1 grey PNG with the given tEXt chunks (keyword → text) before its image data."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    chunks = [png_chunk(b"IHDR", header)]
    chunks += [png_chunk(b"tEXt", key + b"\x00" + value) for key, value in text_chunks.items()]
    chunks += [png_chunk(b"IDAT", zlib.compress(b"\x00\x80")), png_chunk(b"IEND", b"")]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))
    return path


def chara(card: Any) -> bytes:
    return base64.b64encode(json.dumps(card, ensure_ascii=False).encode("utf-8"))


def expected_examples() -> tuple[ExampleExchange, ...]:
    return (
        ExampleExchange(
            "今日のおすすめは？", "今日はね、自家製のチーズケーキ！\n絶対食べてほしいな。"
        ),
        ExampleExchange("疲れたー", "お疲れさま、ユーザー。コーヒー淹れるね。"),
    )


def test_a_v2_card_maps_to_a_persona_and_lists_what_does_not(tmp_path: Path) -> None:
    imported = card_persona(tmp_path / "mika.json", CARD)
    persona = imported.persona
    assert (persona.title, persona.char_name, persona.user_name) == ("ミカ", "ミカ", "ユーザー")
    assert persona.system == (
        "あなたはミカとして会話します。\n\n"
        "ミカは喫茶店で働く大学生。ユーザーとは幼なじみ。\n\n"
        "性格: 明るくて世話焼き。タメ口で話す。\n\n"
        "状況: 閉店後の喫茶店で、ユーザーとミカが話している。"
    )
    assert persona.examples == expected_examples()
    assert persona.language == "ja" and persona.id == "mika"
    assert "タメ口のキャラクター。" in persona.notes and "作者: hana" in persona.notes
    unmapped = {line.split(":")[0]: line for line in imported.unmapped}
    assert set(unmapped) == {
        "first_mes",
        "post_history_instructions",
        "alternate_greetings",
        "tags",
        "character_book",
        "extensions",
        "mes_example block 2",
    }
    assert unmapped["character_book"] == "character_book: a lorebook of 1 entry"
    assert "{{char}} line without a {{user}} line" in unmapped["mes_example block 2"]
    assert "砂糖は二つだよね？" in unmapped["mes_example block 2"]


def test_the_written_toml_reads_back_as_the_same_persona(tmp_path: Path) -> None:
    persona = card_persona(tmp_path / "mika.json", CARD).persona
    path = tmp_path / "mika.toml"
    path.write_text(persona_toml(persona), encoding="utf-8")
    again = parse_persona_file(path, source=persona.source)
    assert again == persona


def test_user_name_and_v1_macros(tmp_path: Path) -> None:
    card = {"name": "Bot", "description": "<BOT> helps <USER>.", "mes_example": ""}
    persona = card_persona(tmp_path / "bot.json", card, user_name="Hana").persona
    assert "Bot helps Hana." in persona.system
    assert persona.language == "en"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_import_a_json_card_into_the_persona_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = write_json(tmp_path / "mika.json", CARD)
    code, out, err = run(["personas", "import", str(card)], capsys)
    assert (code, err) == (0, "")
    target = user_personas_dir() / "mika.toml"
    assert out.startswith(f"wrote {target}  mika  2 examples\n")
    assert "not mapped (7):\n" in out
    assert "  first_mes: あ、ユーザー！ 今日も来てくれたんだ。\n" in out
    assert "  tags: cafe, friend\n" in out
    persona = load_personas().get("mika")
    assert persona.examples == expected_examples()
    code, _, err = run(["personas", "import", str(card)], capsys)
    assert code == 2 and "already exists" in err
    assert run(["personas", "import", str(card), "--force"], capsys)[0] == 0


def test_import_a_png_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = write_png(tmp_path / "ミカ.png", {b"Software": b"test", b"chara": chara(CARD)})
    argv = ["personas", "import", str(png), "--id", "mika-png", "--out", str(tmp_path)]
    code, _, _ = run(argv, capsys)
    assert code == 0
    persona = parse_persona_file(tmp_path / "mika-png.toml")
    assert persona.char_name == "ミカ"
    assert persona.examples == expected_examples()


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.json", None, "file not found"),
        ("broken.json", b'{"spec": "chara_card_v2", "data": {', "is not JSON"),
        ("list.json", b"[1, 2]", "JSON but not an object"),
        ("nameless.json", json.dumps({"data": {"description": "x"}}).encode(), "has no name"),
        ("other.json", b'{"spec": "chara_card_v3", "data": {"name": "x"}}', "unsupported card"),
        ("plain.json", b'{"title": "x"}', "not a character card"),
        ("bad-type.json", b'{"data": {"name": "x", "description": 3}}', "must be a string"),
    ],
)
def test_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, words: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(["personas", "import", str(path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"kurabe: {path}: ") and err.count("\n") == 1
    assert words in err


@pytest.mark.parametrize(
    ("chunks", "words"),
    [
        ({b"Software": b"test"}, "no 'chara' tEXt chunk"),
        ({b"chara": b"not base64 !!"}, "not base64-encoded UTF-8"),
        ({b"chara": base64.b64encode(b"{oops")}, "the PNG's 'chara' chunk is not JSON"),
    ],
)
def test_a_bad_png_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chunks: dict[bytes, bytes], words: str
) -> None:
    png = write_png(tmp_path / "card.png", chunks)
    code, _, err = run(["personas", "import", str(png)], capsys)
    assert code == 2 and err.count("\n") == 1 and words in err


def test_a_damaged_png_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = write_png(tmp_path / "card.png", {b"chara": chara(CARD)})
    data = bytearray(png.read_bytes())
    data[40] ^= 0xFF  # inside the tEXt chunk: its checksum no longer matches
    png.write_bytes(bytes(data))
    code, _, err = run(["personas", "import", str(png)], capsys)
    assert code == 2 and "bad checksum" in err and err.count("\n") == 1
