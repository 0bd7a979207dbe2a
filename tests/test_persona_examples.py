"""A persona's example exchanges: validated in the persona file, sent by every backend (chat
templates and APIs as prior turns or in the system prompt, completion formats as dialogue lines,
the transcript format for base models), and shown by ``w``, ``kurabe prompt``, the records and
the exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backends.anthropic_backend import AnthropicBackend
from backends.base import ChatMessage, Conversation
from backends.examples import EXAMPLES_HEADING, for_chat
from backends.llama_cpp_backend import GEMMA3_TEMPLATE, LlamaCppBackend, unload_all_models
from backends.openai_backend import OpenAIBackend
from backends.profiles import BUILTIN_PROFILES, ModelProfile, Sampling, parse_models_file
from backends.templates import jinja_formatter, render_prompt
from foundation.errors import ConfigError
from kurabe.checks.japanese import run_checks
from kurabe.cli import main
from kurabe.core.persona_conversation import persona_conversation
from kurabe.export.exporter import export_session
from kurabe.session.comparison import ComparisonSession
from kurabe.session.launch import default_profiles
from kurabe.session.sent_prompt import sent_prompt
from kurabe.store.store import Store
from personas import ExampleExchange, Persona
from personas.loader import load_personas, parse_persona_text
from tests.api_backend_support import run_closed, serve, wire_profile
from tests.fake_backends import FakeBackend, fake_factory, fake_profile
from tests.wire_servers import WireServer, anthropic_stream, openai_stream

ANIME_FAN = "あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。"
EXAMPLES = (
    ExampleExchange("週末なにしてたの？", "ずっとアニメ見てた！"),
    ExampleExchange("泣けるアニメってある？", "『CLANNAD』は絶対泣く。"),
)
PERSONA = Persona(
    id="fan",
    title="アニメファン",
    system=ANIME_FAN,
    char_name="オタク",
    user_name="ユーザー",
    register="casual",
    max_reply_chars=80,
    examples=EXAMPLES,
)
EXAMPLE_LINES = (
    "ユーザー: 週末なにしてたの？\n"
    "オタク: ずっとアニメ見てた！\n"
    "ユーザー: 泣けるアニメってある？\n"
    "オタク: 『CLANNAD』は絶対泣く。"
)
PERSONA_FILE = """\
id = "fan"
title = "アニメファン"
system = "あなたは大のアニメファンです。"
register = "casual"

[[examples]]
user = "週末なにしてたの？"
char = "ずっとアニメ見てた！"

[[examples]]
user = "泣けるアニメってある？"
char = "『CLANNAD』は絶対泣く。"
"""


def conversation(*turns: tuple[str, str], persona: Persona = PERSONA) -> Conversation:
    return persona_conversation(
        persona,
        [ChatMessage(role, text) for role, text in turns],  # type: ignore[arg-type]
    )


ONE_LINE = conversation(("user", "ねえ、アニメ好きなの？"))


# -- the persona file ----------------------------------------------------------------------------


def persona_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_persona_text(text, "persona.toml")
    return caught.value


def test_examples_are_read_in_order() -> None:
    persona = parse_persona_text(PERSONA_FILE)
    assert persona.examples == EXAMPLES
    assert parse_persona_text(PERSONA_FILE.split("\n[[examples]]")[0]).examples == ()


@pytest.mark.parametrize(
    ("change", "line", "key", "words"),
    [
        (('char = "ずっとアニメ見てた！"\n', ""), 6, "examples[0].char", "required key missing"),
        (('user = "泣けるアニメってある？"', 'user = ""'), 11, "examples[1].user", "not be empty"),
        (('char = "ずっと', 'chars = "ずっと'), 8, "examples[0].chars", "did you mean 'char'?"),
        (('user = "泣けるアニメってある？"', "user = 3"), 11, "examples[1].user", "expected"),
    ],
)
def test_a_bad_example_names_file_line_and_key(
    change: tuple[str, str], line: int, key: str, words: str
) -> None:
    error = persona_error(PERSONA_FILE.replace(*change))
    assert (error.path, error.line, error.key) == (Path("persona.toml"), line, key)
    assert str(error).startswith(f"persona.toml:{line}: {key}: ")
    assert words in error.message and "\n" not in str(error)


def test_examples_must_be_tables() -> None:
    text = PERSONA_FILE.split("\n[[examples]]")[0] + 'examples = ["週末なにしてたの？"]\n'
    error = persona_error(text)
    assert (error.line, error.key) == (5, "examples[0]")
    assert "[[examples]]" in error.message


def test_examples_must_be_a_list() -> None:
    error = persona_error(PERSONA_FILE.split("\n[[examples]]")[0] + 'examples = "ユーザー: やあ"\n')
    assert (error.line, error.key) == (5, "examples")


def test_every_built_in_persona_has_examples_that_pass_its_own_checks() -> None:
    for persona in load_personas():
        if persona.source != "built-in":
            continue
        assert len(persona.examples) >= 2, persona.id
        for example in persona.examples:
            report = run_checks(example.char, persona)
            assert report.flag_codes == (), (persona.id, example.char, report.flag_codes)
            if persona.register != "any":
                assert report.register == persona.register, (persona.id, example.char)


# -- completion formats: the examples are dialogue lines ------------------------------------------


def test_transcript_format_golden() -> None:
    rendered = render_prompt(
        "transcript",
        conversation(
            ("user", "ねえ、アニメ好きなの？"),
            ("assistant", "うん！"),
            ("user", "最近見たアニメでおすすめある？"),
        ),
    )
    assert rendered.text == (
        "あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。\n"
        "\n"
        "ユーザー: 週末なにしてたの？\n"
        "オタク: ずっとアニメ見てた！\n"
        "\n"
        "ユーザー: 泣けるアニメってある？\n"
        "オタク: 『CLANNAD』は絶対泣く。\n"
        "\n"
        "ユーザー: ねえ、アニメ好きなの？\n"
        "オタク: うん！\n"
        "ユーザー: 最近見たアニメでおすすめある？\n"
        "オタク:"
    )
    assert rendered.stop == ("\nユーザー:", "\nユーザー：", "\nオタク:", "\nオタク：")
    assert rendered.add_bos and rendered.format_name == "transcript"
    assert "examples: in the prompt" in rendered.describe()


def test_transcript_uses_the_personas_names_and_works_without_examples() -> None:
    clerk = replace(PERSONA, char_name="店員", user_name="お客様", examples=())
    rendered = render_prompt("transcript", conversation(("user", "こんにちは"), persona=clerk))
    assert rendered.text == f"{ANIME_FAN}\n\nお客様: こんにちは\n店員:"
    assert rendered.stop[0] == "\nお客様:"
    assert "examples" not in rendered.describe()


def test_llama2_sys_writes_the_examples_before_the_history() -> None:
    rendered = render_prompt("llama2-sys", ONE_LINE)
    assert rendered.text == (
        f"<<SYS>>\n{ANIME_FAN}\n<</SYS>>\n\n{EXAMPLE_LINES}\nユーザー: ねえ、アニメ好きなの？\nオタク:"
    )


def test_alpaca_ja_writes_the_examples_as_instruction_response_pairs() -> None:
    rendered = render_prompt("alpaca-ja", ONE_LINE)
    assert rendered.text == (
        f"### 指示:\n{ANIME_FAN}\n\n"
        "### 指示:\n週末なにしてたの？\n\n### 応答:ずっとアニメ見てた！\n\n"
        "### 指示:\n泣けるアニメってある？\n\n### 応答:『CLANNAD』は絶対泣く。\n\n"
        "### 指示:\nねえ、アニメ好きなの？\n\n### 応答:"
    )


def test_custom_template_places_examples_where_it_says_else_before_the_history() -> None:
    placed = render_prompt(
        "custom", ONE_LINE, custom_template="{{prompt}}\n例:\n{{examples}}\n---\n{{history}}"
    )
    assert (
        placed.text == f"{ANIME_FAN}\n例:\n{EXAMPLE_LINES}\n---\nユーザー: ねえ、アニメ好きなの？"
    )
    opened = render_prompt("custom", ONE_LINE, custom_template="{{history}}\n{{char}}:")
    assert opened.text == f"{EXAMPLE_LINES}\nユーザー: ねえ、アニメ好きなの？\nオタク:"


def test_examples_as_none_leaves_them_out_of_every_format() -> None:
    for fmt in ("llama2-sys", "alpaca-ja", "transcript"):
        rendered = render_prompt(fmt, ONE_LINE, examples_as="none")
        assert "週末なにしてたの" not in rendered.text, fmt
        assert rendered.text == render_prompt(fmt, replace(ONE_LINE, examples=())).text


# -- chat templates: prior turns, or the system prompt ---------------------------------------------


def test_gemma_chat_template_gets_the_examples_as_prior_turns() -> None:
    formatter = jinja_formatter(GEMMA3_TEMPLATE, "<bos>", "<eos>")
    rendered = render_prompt("gguf", ONE_LINE, gguf_formatter=formatter)
    assert rendered.text == (
        "<bos><start_of_turn>user\n"
        f"{ANIME_FAN}\n\n週末なにしてたの？<end_of_turn>\n"
        "<start_of_turn>model\nずっとアニメ見てた！<end_of_turn>\n"
        "<start_of_turn>user\n泣けるアニメってある？<end_of_turn>\n"
        "<start_of_turn>model\n『CLANNAD』は絶対泣く。<end_of_turn>\n"
        "<start_of_turn>user\nねえ、アニメ好きなの？<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert "examples: as prior turns" in rendered.describe()


def test_a_chat_template_can_take_the_examples_in_the_system_prompt() -> None:
    formatter = jinja_formatter(GEMMA3_TEMPLATE, "<bos>", "<eos>")
    rendered = render_prompt("gguf", ONE_LINE, gguf_formatter=formatter, examples_as="system")
    system = f"{ANIME_FAN}\n\n{EXAMPLES_HEADING}\n{EXAMPLE_LINES}"
    assert rendered.text == (
        f"<bos><start_of_turn>user\n{system}\n\nねえ、アニメ好きなの？<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert "examples: in the system prompt" in rendered.describe()


def test_examples_as_is_validated_in_the_models_file(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        '[models.x]\nbackend = "openai"\nmodel = "m"\nexamples_as = "system"\n', encoding="utf-8"
    )
    assert parse_models_file(models)[0].examples_as == "system"
    models.write_text(
        '[models.x]\nbackend = "openai"\nmodel = "m"\nexamples_as = "prompt"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        parse_models_file(models)
    assert str(caught.value).startswith(f"{models}:4: models.x.examples_as: must be one of")


# -- the local backend -----------------------------------------------------------------------------


@pytest.fixture
def fresh_models() -> Iterator[None]:
    yield
    unload_all_models()


def tiny_profile(path: Path, **changes: Any) -> ModelProfile:
    profile = ModelProfile(
        name="tiny",
        backend="llama_cpp",
        model=str(path),
        prompt_format="transcript",
        n_ctx=512,
        sampling=Sampling(max_tokens=4, seed=7),
    )
    return replace(profile, **changes)


@pytest.mark.usefixtures("fresh_models")
@pytest.mark.parametrize(
    ("prompt_format", "given"),
    [
        ("transcript", "in the prompt, as transcript dialogue lines"),
        ("llama2-sys", "in the prompt, as llama2-sys dialogue lines"),
        ("chatml", "as prior turns"),
    ],
)
async def test_the_local_backend_sends_the_examples_and_records_how(
    tiny_gguf: Path, prompt_format: str, given: str
) -> None:
    backend = LlamaCppBackend(tiny_profile(tiny_gguf, prompt_format=prompt_format))
    await backend.load()
    rendered = backend.render(ONE_LINE)
    assert "週末なにしてたの？" in rendered.text and "『CLANNAD』は絶対泣く。" in rendered.text
    assert rendered.text.index("週末なにしてたの？") < rendered.text.index("ねえ、アニメ好きなの？")
    assert backend.settings_snapshot()["examples"].startswith(given)


@pytest.mark.usefixtures("fresh_models")
def test_kurabe_prompt_prints_the_transcript_with_the_personas_examples(
    tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        f'[models.tiny]\nbackend = "llama_cpp"\nmodel = "{tiny_gguf}"\n'
        'prompt_format = "transcript"\n',
        encoding="utf-8",
    )
    args = ["prompt", "--model", "tiny", "--models-file", str(models), "--user", "やあ"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    anime_fan = load_personas().get("anime-fan")
    first = anime_fan.examples[0]
    assert out.startswith(f"{anime_fan.system}\n\nユーザー: {first.user}\nオタク: {first.char}\n")
    assert out.endswith("\n\nユーザー: やあ\nオタク:\n")
    assert "format: transcript" in err and "examples: in the prompt" in err


# -- the API backends: what reached the server ----------------------------------------------------


@pytest.fixture
def openai_server() -> Iterator[WireServer]:
    yield from serve("openai")


@pytest.fixture
def anthropic_server() -> Iterator[WireServer]:
    yield from serve("anthropic")


def api_profile(server: WireServer, backend: str, **changes: Any) -> ModelProfile:
    base_url = f"{server.origin}/v1" if backend == "openai" else server.origin
    values = {"name": f"wire-{backend}", "backend": backend, "model": "m", "base_url": base_url}
    return wire_profile(values, changes)


async def test_openai_gets_the_examples_as_prior_turns(openai_server: WireServer) -> None:
    openai_server.script(openai_stream(["うん"]))
    backend = OpenAIBackend(api_profile(openai_server, "openai"))
    await run_closed(backend, ONE_LINE)
    assert openai_server.requests[0].body["messages"] == [
        {"role": "system", "content": ANIME_FAN},
        {"role": "user", "content": "週末なにしてたの？"},
        {"role": "assistant", "content": "ずっとアニメ見てた！"},
        {"role": "user", "content": "泣けるアニメってある？"},
        {"role": "assistant", "content": "『CLANNAD』は絶対泣く。"},
        {"role": "user", "content": "ねえ、アニメ好きなの？"},
    ]
    assert backend.settings_snapshot()["examples"] == "as prior turns before the conversation"


async def test_openai_can_get_them_in_the_system_message(openai_server: WireServer) -> None:
    openai_server.script(openai_stream(["うん"]))
    backend = OpenAIBackend(api_profile(openai_server, "openai", examples_as="system"))
    await run_closed(backend, ONE_LINE)
    messages = openai_server.requests[0].body["messages"]
    assert messages == [
        {"role": "system", "content": f"{ANIME_FAN}\n\n{EXAMPLES_HEADING}\n{EXAMPLE_LINES}"},
        {"role": "user", "content": "ねえ、アニメ好きなの？"},
    ]
    assert backend.settings_snapshot()["examples"].startswith("in the system prompt")


async def test_anthropic_gets_the_examples_as_prior_turns(anthropic_server: WireServer) -> None:
    anthropic_server.script(anthropic_stream(["うん"]))
    backend = AnthropicBackend(api_profile(anthropic_server, "anthropic"))
    await run_closed(backend, ONE_LINE)
    body = anthropic_server.requests[0].body
    assert body["system"] == ANIME_FAN
    assert [m["content"] for m in body["messages"]] == [
        "週末なにしてたの？",
        "ずっとアニメ見てた！",
        "泣けるアニメってある？",
        "『CLANNAD』は絶対泣く。",
        "ねえ、アニメ好きなの？",
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"] * 2 + ["user"]


async def test_anthropic_can_get_them_in_the_system_field(anthropic_server: WireServer) -> None:
    anthropic_server.script(anthropic_stream(["うん"]))
    backend = AnthropicBackend(api_profile(anthropic_server, "anthropic", examples_as="system"))
    await run_closed(backend, ONE_LINE)
    body = anthropic_server.requests[0].body
    assert body["system"] == f"{ANIME_FAN}\n\n{EXAMPLES_HEADING}\n{EXAMPLE_LINES}"
    assert body["messages"] == [{"role": "user", "content": "ねえ、アニメ好きなの？"}]


def test_for_chat_with_none_drops_them() -> None:
    chat = for_chat(ONE_LINE, "none")
    assert chat.turns == ONE_LINE.turns and chat.examples == () and chat.system == ANIME_FAN


# -- the session: what a pane gets, ``w``, the records and the exports ---------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "kurabe.sqlite3")


async def test_a_session_sends_the_examples_and_its_records_and_exports_show_them(
    store: Store,
) -> None:
    backend = FakeBackend("api", ["うん、大好き！"], snapshot={"examples": "as prior turns x"})
    session = ComparisonSession.create(
        store, PERSONA, [fake_profile("api")], backend_factory=fake_factory({"api": backend})
    )
    await session.send("ねえ、アニメ好きなの？")
    assert backend.calls[0].examples == ONE_LINE.examples
    assert session.conversation_for(0, 0).examples == ONE_LINE.examples
    record = store.load_record(session.id)
    assert record.session.persona_obj().examples == EXAMPLES
    assert record.panes[0].settings["profile"]["examples_as"] == "turns"
    markdown = export_session(store, session.id, "md")
    assert f"Examples:\n{EXAMPLE_LINES}" in markdown
    assert "Examples: as prior turns x" in markdown
    html = export_session(store, session.id, "html")
    assert "『CLANNAD』は絶対泣く。" in html
    assert "examples as prior turns x" in html
    jsonl = [json.loads(line) for line in export_session(store, session.id, "jsonl").splitlines()]
    assert jsonl[0]["settings"]["backend"]["examples"] == "as prior turns x"
    await session.aclose()


async def test_w_shows_the_examples_an_api_pane_sends(store: Store) -> None:
    profile = fake_profile("wire", base_url="http://127.0.0.1:9/v1")
    backends = {"wire": OpenAIBackend(profile)}
    session = ComparisonSession.create(
        store, PERSONA, [profile], backend_factory=fake_factory(backends)
    )
    await session.send("ねえ、アニメ好きなの？")
    shown = sent_prompt(session, 0, 0)
    messages = json.loads(shown.text)
    assert [m["content"] for m in messages[1:3]] == ["週末なにしてたの？", "ずっとアニメ見てた！"]
    await session.aclose()


# -- the default panes ----------------------------------------------------------------------------


def test_the_default_panes_compare_the_chat_template_with_the_few_shot_transcript() -> None:
    chosen = default_profiles({p.name: p for p in BUILTIN_PROFILES})
    assert [(p.name, p.prompt_format) for p in chosen] == [
        ("gemma-270m", "gguf"),
        ("gemma-270m-transcript", "transcript"),
    ]
    assert chosen[0].model == chosen[1].model


def test_personas_show_prints_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["personas", "show", "keigo-clerk"]) == 0
    out = capsys.readouterr().out
    clerk = load_personas().get("keigo-clerk")
    assert "examples (2):\n" in out
    assert f"  お客様: {clerk.examples[0].user}\n  店員: {clerk.examples[0].char}\n" in out
