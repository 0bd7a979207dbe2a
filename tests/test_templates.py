"""Golden tests for the prompt formats: the seed page's two formats come out byte for byte, and
no format loses the persona."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backends.base import ChatMessage, Conversation
from backends.llama_cpp_backend import GEMMA3_TEMPLATE
from backends.templates import (
    LLAMA2_SYS_TEMPLATE,
    TemplateError,
    jinja_formatter,
    render_prompt,
)

ANIME_FAN = "あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。"
SEED_PAGE = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "003_9f1eb28be6545c69.txt"


def _seed_text() -> str:
    if not SEED_PAGE.exists():
        pytest.skip(f"seed page not found at {SEED_PAGE} (CI has shared/ beside the checkout)")
    return SEED_PAGE.read_text(encoding="utf-8")


def conversation(*turns: tuple[str, str], system: str = ANIME_FAN) -> Conversation:
    return Conversation(
        system=system,
        turns=tuple(ChatMessage(role, text) for role, text in turns),  # type: ignore[arg-type]
        char_name="オタク",
        user_name="ユーザー",
    )


def test_llama2_template_is_the_seed_pages_template_byte_for_byte() -> None:
    seed = _seed_text()
    match = re.search(r"```\n(<<SYS>>\n.*?)\n```", seed, re.S)
    assert match is not None
    assert match.group(1) == LLAMA2_SYS_TEMPLATE


def test_llama2_sys_renders_elyza_history_exactly() -> None:
    rendered = render_prompt(
        "llama2-sys",
        conversation(
            ("user", "ねえ、アニメ好きなの？"),
            ("assistant", "おうよ！私は週に３回くらい見てるな"),
            ("user", "ああ、あなたの好きなアニメシリーズは何ですか？"),
        ),
    )
    assert rendered.text == (
        "<<SYS>>\n"
        "あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。\n"
        "<</SYS>>\n"
        "\n"
        "ユーザー: ねえ、アニメ好きなの？\n"
        "オタク: おうよ！私は週に３回くらい見てるな\n"
        "ユーザー: ああ、あなたの好きなアニメシリーズは何ですか？\n"
        "オタク:"
    )
    assert "\nユーザー:" in rendered.stop
    assert "\nオタク:" in rendered.stop


def test_alpaca_ja_renders_weblab_turns_as_on_the_seed_page() -> None:
    seed = _seed_text()
    rendered = render_prompt(
        "alpaca-ja",
        conversation(
            ("user", "ねえ、アニメ好きなの？"),
            ("assistant", "そうだよ!"),
            ("user", "好きなアニメは何ですか?"),
        ),
    )
    assert rendered.text == (
        f"### 指示:\n{ANIME_FAN}\n\n"
        "### 指示:\nねえ、アニメ好きなの？\n\n### 応答:そうだよ!\n\n"
        "### 指示:\n好きなアニメは何ですか?\n\n### 応答:"
    )
    dialogue = rendered.text.split("\n\n", 2)[2]
    assert dialogue in seed
    assert "### 指示" in rendered.stop


def test_custom_template_uses_the_seed_placeholders() -> None:
    rendered = render_prompt(
        "custom",
        conversation(("user", "トトロは見た？")),
        custom_template="[{{char}}として答える]\n{{prompt}}\n{{history}}\n{{char}}:",
    )
    assert rendered.text == f"[オタクとして答える]\n{ANIME_FAN}\nユーザー: トトロは見た？\nオタク:"


def test_custom_without_template_is_refused() -> None:
    with pytest.raises(TemplateError):
        render_prompt("custom", conversation(("user", "こんにちは")))


def test_gemma3_official_template_keeps_the_persona_in_the_first_user_turn() -> None:
    formatter = jinja_formatter(GEMMA3_TEMPLATE, "<bos>", "<eos>")
    rendered = render_prompt(
        "gguf",
        conversation(
            ("user", "ねえ、アニメ好きなの？"), ("assistant", "うん！"), ("user", "何が好き？")
        ),
        gguf_formatter=formatter,
    )
    assert rendered.text == (
        "<bos><start_of_turn>user\n"
        f"{ANIME_FAN}\n\nねえ、アニメ好きなの？<end_of_turn>\n"
        "<start_of_turn>model\nうん！<end_of_turn>\n"
        "<start_of_turn>user\n何が好き？<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert not rendered.persona_folded
    assert rendered.add_bos is False


def test_a_chat_format_that_drops_the_system_message_gets_the_persona_folded_in() -> None:
    rendered = render_prompt("gemma", conversation(("user", "ねえ、アニメ好きなの？")))
    assert rendered.persona_folded
    assert f"{ANIME_FAN}\n\nねえ、アニメ好きなの？" in rendered.text


def test_chatml_keeps_the_system_message() -> None:
    rendered = render_prompt("chatml", conversation(("user", "ねえ、アニメ好きなの？")))
    assert not rendered.persona_folded
    assert f"<|im_start|>system\n{ANIME_FAN}<|im_end|>" in rendered.text


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(TemplateError, match="chatml"):
        render_prompt("no-such-format", conversation(("user", "やあ")))


def test_gguf_format_without_a_template_says_what_to_do() -> None:
    with pytest.raises(TemplateError, match="prompt_format"):
        render_prompt("gguf", conversation(("user", "やあ")))
