"""The keys that take something out of a pane: y copies its reply, w shows its exact prompt."""

from __future__ import annotations

from typing import Any

import pytest
from rich.cells import cell_len
from textual.widgets import Static

from backends.base import ChatMessage, Conversation
from backends.templates import RenderedPrompt, render_prompt
from kurabe.core.persona_conversation import example_messages
from tests.fake_backends import FakeBackend
from tests.tui_support import make_harness, settle, wait_until
from tui.main_screen import MainScreen
from tui.sent_prompt_screen import SentPromptScreen
from tui.transcript_view import SELECTED, TranscriptView


class RenderingBackend(FakeBackend):
    """A fake local pane that renders its prompt as a llama.cpp pane does (alpaca-ja format)."""

    def render(self, conversation: Conversation) -> RenderedPrompt:
        return render_prompt("alpaca-ja", conversation)


async def send(pilot: Any, harness: Any, text: str) -> None:
    session = harness.session
    turns = len(session.user_turns)
    harness.screen.prompt.set_text(text)
    harness.screen.prompt.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: not session.busy and len(session.user_turns) == turns + 1)
    await settle(pilot)


async def test_y_copies_the_focused_panes_latest_reply_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backends = {
        "alpha": FakeBackend("alpha", ["最初の答え", "[bold]二つ目[/bold]の答え\n\n二段落目"]),
        "beta": FakeBackend("beta", ["べつの答え"]),
    }
    harness = make_harness(backends)
    copied: list[str] = []
    told: list[str] = []
    async with harness.app.run_test(size=(100, 30)) as pilot:
        app = harness.app
        monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
        original_notify = app.notify

        def notify(message: str, **options: Any) -> None:
            told.append(message)
            original_notify(message, **options)

        monkeypatch.setattr(app, "notify", notify)
        await wait_until(pilot, lambda: all(p.status == "ready" for p in harness.session.panes))
        await send(pilot, harness, "はじめまして")
        await send(pilot, harness, "続けて")
        await pilot.press("tab", "a", "y")
        await settle(pilot)
        assert copied == ["[bold]二つ目[/bold]の答え\n\n二段落目"]
        assert any("copied" in message for message in told)
        await pilot.press("b", "y")
        await settle(pilot)
        assert copied[-1] == "べつの答え"


async def test_y_on_a_pane_without_a_reply_copies_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = make_harness({"alpha": FakeBackend("alpha", ["はい"])})
    copied: list[str] = []
    async with harness.app.run_test(size=(100, 30)) as pilot:
        monkeypatch.setattr(harness.app, "copy_to_clipboard", copied.append)
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await pilot.press("tab", "y")
        await settle(pilot)
        assert copied == []
        assert harness.app.is_running


async def test_w_shows_the_exact_prompt_of_the_latest_turn_as_rendered_for_kurabe_prompt() -> None:
    backend = RenderingBackend("alpha", ["最初の[red]答え[/red]", "次の答え"])
    harness = make_harness({"alpha": backend})
    persona = harness.session.persona
    async with harness.app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await send(pilot, harness, "はじめまして")
        await send(pilot, harness, "続けて")
        await pilot.press("tab", "w")
        await settle(pilot)
        screen = harness.app.screen
        assert isinstance(screen, SentPromptScreen)
        expected = backend.render(
            Conversation(
                persona.system,
                (
                    ChatMessage("user", "はじめまして"),
                    ChatMessage("assistant", "最初の[red]答え[/red]"),
                    ChatMessage("user", "続けて"),
                ),
                persona.char_name,
                persona.user_name,
                examples=example_messages(persona),
            )
        ).text
        shown = screen.query_one("#sent-prompt-text", Static)
        assert str(shown.render()) == expected  # literally: the markup-like text stays
        assert "### 指示" in expected and "[red]答え[/red]" in expected
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(harness.app.screen, MainScreen)


async def test_w_keeps_a_blind_panes_prompt_hidden_until_the_reveal() -> None:
    harness = make_harness({"alpha": RenderingBackend("alpha", ["はい"])}, blind=True)
    async with harness.app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await send(pilot, harness, "だれ？")
        await pilot.press("tab", "w")
        await settle(pilot)
        screen = harness.app.screen
        assert isinstance(screen, SentPromptScreen)
        assert not screen.query("#sent-prompt-text")
        assert "ctrl+r" in screen.prompt.note


async def test_the_prompt_can_be_selected_with_the_mouse() -> None:
    backend = RenderingBackend("alpha", ["はい"])
    harness = make_harness({"alpha": backend})
    async with harness.app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await send(pilot, harness, "ねえ")
        await pilot.press("tab", "w")
        await settle(pilot)
        screen = harness.app.screen
        assert isinstance(screen, SentPromptScreen)
        text = screen.query_one("#sent-prompt-text", Static)
        await pilot.mouse_down(text, offset=(1, 0))
        await pilot.hover(text, offset=(6, 0))
        await pilot.mouse_up(text, offset=(6, 0))
        await settle(pilot)
        selected = screen.get_selected_text()
        assert selected and screen.prompt.text.startswith(selected)


async def test_y_and_w_type_into_the_input_and_the_help_lists_them() -> None:
    harness = make_harness({"alpha": FakeBackend("alpha")})
    async with harness.app.run_test(size=(100, 40)) as pilot:
        await pilot.press("y", "w")
        assert harness.screen.prompt.text == "yw"  # single-letter keys never steal typing
        await pilot.press("f1")
        await settle(pilot)
        shown = "\n".join(str(line.render()) for line in harness.app.screen.query(".help-line"))
        assert "copy the focused pane's latest reply" in shown
        assert "the exact prompt" in shown


async def test_a_reply_can_be_selected_with_the_mouse_across_wide_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reply = "うん、[bold]それ[/bold]めっちゃ分かる！昨日の回も最高だったよね"
    harness = make_harness({"alpha": FakeBackend("alpha", [reply])})
    copied: list[str] = []
    async with harness.app.run_test(size=(100, 30)) as pilot:
        monkeypatch.setattr(harness.app, "copy_to_clipboard", copied.append)
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await send(pilot, harness, "ねえ、あのアニメ見た？")
        screen = harness.app.screen
        view = screen.query_one(TranscriptView)
        row = next(y for y, line in enumerate(view.plain_lines) if "めっちゃ" in line)
        line = view.plain_lines[row]
        start = line.index("[bold]")
        last = line.index("！")
        end = last + 1
        # Mouse positions are terminal cells (every Japanese character before them takes two);
        # the character under the release is part of the selection.
        await pilot.mouse_down(view, offset=(cell_len(line[:start]), row))
        await pilot.hover(view, offset=(cell_len(line[:last]), row))
        await pilot.mouse_up(view, offset=(cell_len(line[:last]), row))
        await settle(pilot)
        assert screen.get_selected_text() == "[bold]それ[/bold]めっちゃ分かる！"
        highlight = view.get_component_rich_style(SELECTED, partial=True).bgcolor
        painted = view.render_line(row - view.scroll_offset.y)
        shown = "".join(s.text for s in painted if s.style and s.style.bgcolor == highlight)
        assert shown == line[start:end]
        await pilot.press("ctrl+c")  # with the prompt input focused, as after sending
        await settle(pilot)
        assert copied == ["[bold]それ[/bold]めっちゃ分かる！"]


async def test_w_says_what_kurabe_prompt_says_of_the_format_and_stop_strings() -> None:
    backend = RenderingBackend("alpha", ["はい"])
    harness = make_harness({"alpha": backend})
    persona = harness.session.persona
    async with harness.app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        await send(pilot, harness, "ねえ")
        await pilot.press("tab", "w")
        await settle(pilot)
        screen = harness.app.screen
        assert isinstance(screen, SentPromptScreen)
        conversation = Conversation(
            persona.system,
            (ChatMessage("user", "ねえ"),),
            persona.char_name,
            persona.user_name,
            examples=example_messages(persona),
        )
        rendered = backend.render(conversation)
        assert screen.prompt.note == rendered.describe()
        assert screen.prompt.note.startswith("format: alpaca-ja; stop: ")
