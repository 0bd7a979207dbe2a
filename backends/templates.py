"""Prompt formats for local models: render a :class:`Conversation` into the exact prompt text.

The formats, chosen per profile by ``prompt_format``:

* ``gguf`` — the model's own chat template from its GGUF metadata (Jinja2, as llama.cpp ships it);
* ``llama2-sys`` — the hand-written comparison's completion format for ELYZA::

      <<SYS>>
      {{prompt}}
      <</SYS>>

      {{history}}
      {{char}}:

  with one history line per turn, ``ユーザー: …`` / ``オタク: …`` (the persona's names);
* ``alpaca-ja`` — weblab's ``### 指示:`` / ``### 応答:`` format;
* ``custom`` — the profile's own ``template`` with the same ``{{prompt}}``, ``{{history}}``,
  ``{{char}}``, ``{{user}}`` placeholders as ``llama2-sys`` (and ``{{examples}}``: the example
  lines, which otherwise open ``{{history}}``);
* ``transcript`` — for base models: the persona, the example exchanges and the conversation as a
  named transcript ending with ``{{char}}:``, stopping where the model would write the next
  ``{{user}}:`` line::

      {{prompt}}

      ユーザー: (example)
      オタク: (example)

      ユーザー: ねえ、アニメ好きなの？
      オタク:

* any other name — a llama-cpp-python ``chat_format`` (``chatml``, ``gemma``, ``llama-2``…).

A persona's example exchanges go into every format (:mod:`backends.examples`): completion formats
write them as dialogue lines before the conversation, chat formats get them as prior turns or in
the system prompt (``examples_as``); :attr:`RenderedPrompt.examples_given` says how.

Some chat formats silently drop the system message (llama-cpp-python's ``gemma`` does). Every
render checks that the persona really reached the prompt; where it did not, the persona is folded
into the first user turn and :attr:`RenderedPrompt.persona_folded` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from backends.base import ChatMessage, Conversation
from backends.examples import (
    example_lines,
    example_pairs,
    examples_given,
    for_chat,
    without_examples,
)

LLAMA2_SYS_TEMPLATE = "<<SYS>>\n{{prompt}}\n<</SYS>>\n\n{{history}}\n{{char}}:"
ALPACA_INSTRUCTION = "### 指示:"
ALPACA_RESPONSE = "### 応答:"
TRANSCRIPT = "transcript"
_SENTINEL = "KURABE-PERSONA-SENTINEL-7f3a"


class TemplateError(ValueError):
    """A prompt format that cannot be rendered (unknown name, broken Jinja template)."""


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    text: str
    stop: tuple[str, ...]
    """Stop strings that keep the model from writing the next speaker's line."""
    add_bos: bool
    """Whether the tokenizer should still add BOS (False when the text already starts with it)."""
    persona_folded: bool = False
    format_name: str = ""
    examples_given: str = ""
    """How the persona's example exchanges are in the text (empty: there were none)."""

    def describe(self) -> str:
        """One line on what the text is: its format, its stop strings, how the examples were
        given and whether the persona was folded into the first turn. ``kurabe prompt`` prints
        it; the TUI's ``w`` shows it."""
        note = f"format: {self.format_name}; stop: {list(self.stop)}"
        if self.examples_given:
            note += f"; examples: {self.examples_given}"
        if self.persona_folded:
            note += (
                "; this format drops the system message, "
                "so the persona was folded into the first user turn"
            )
        return note


def _history_lines(conversation: Conversation) -> str:
    names = {"user": conversation.user_name, "assistant": conversation.char_name}
    return "\n".join(f"{names[m.role]}: {m.content}" for m in conversation.turns)


def render_completion_template(template: str, conversation: Conversation) -> RenderedPrompt:
    """Render a ``{{prompt}}/{{history}}/{{char}}/{{user}}`` completion template; the example
    lines go where ``{{examples}}`` is, else they open ``{{history}}``."""
    examples = "\n".join(example_lines(conversation))
    history = _history_lines(conversation)
    if "{{examples}}" not in template and examples:
        history = f"{examples}\n{history}" if history else examples
    values = {
        "prompt": conversation.system,
        "system": conversation.system,
        "examples": examples,
        "history": history,
        "char": conversation.char_name,
        "user": conversation.user_name,
    }
    text = template
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    stop = (f"\n{conversation.user_name}:", f"\n{conversation.char_name}:")
    return RenderedPrompt(text=text, stop=stop, add_bos=True, format_name="custom")


def render_alpaca_ja(conversation: Conversation) -> RenderedPrompt:
    """weblab's format: the persona as a first instruction, then 指示/応答 pairs."""
    blocks: list[str] = []
    if conversation.system:
        blocks.append(f"{ALPACA_INSTRUCTION}\n{conversation.system}\n\n")
    for user, char in example_pairs(conversation):
        blocks.append(f"{ALPACA_INSTRUCTION}\n{user}\n\n{ALPACA_RESPONSE}{char}\n\n")
    for message in conversation.turns:
        if message.role == "user":
            blocks.append(f"{ALPACA_INSTRUCTION}\n{message.content}\n\n{ALPACA_RESPONSE}")
        else:
            blocks.append(f"{message.content}\n\n")
    return RenderedPrompt(
        text="".join(blocks),
        stop=("### 指示", "\n### "),
        add_bos=True,
        format_name="alpaca-ja",
    )


def render_transcript(conversation: Conversation) -> RenderedPrompt:
    """A base model's format: the persona, each example exchange and the conversation as named
    lines (blank lines between them), ending with the character's name; stop strings at the next
    speaker's line (either colon, as a model may write the full-width one)."""
    user, char = conversation.user_name, conversation.char_name
    blocks: list[str] = [conversation.system] if conversation.system else []
    blocks.extend(f"{user}: {u}\n{char}: {c}" for u, c in example_pairs(conversation))
    history = _history_lines(conversation)
    blocks.append(f"{history}\n{char}:" if history else f"{char}:")
    stop = (f"\n{user}:", f"\n{user}：", f"\n{char}:", f"\n{char}：")
    return RenderedPrompt(text="\n\n".join(blocks), stop=stop, add_bos=True, format_name=TRANSCRIPT)


def _messages(system: str, turns: Sequence[ChatMessage]) -> list[dict[str, str]]:
    out = [{"role": "system", "content": system}] if system else []
    out.extend({"role": m.role, "content": m.content} for m in turns)
    return out


def _fold_persona(conversation: Conversation) -> tuple[ChatMessage, ...]:
    turns = list(conversation.turns)
    for index, message in enumerate(turns):
        if message.role == "user":
            turns[index] = ChatMessage("user", f"{conversation.system}\n\n{message.content}")
            break
    return tuple(turns)


Formatter = Callable[[list[dict[str, str]]], tuple[str, tuple[str, ...], bool]]


def jinja_formatter(template: str, bos_token: str, eos_token: str) -> Formatter:
    """A formatter for a GGUF's own Jinja chat template (as llama-cpp-python renders it)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        formatter = Jinja2ChatFormatter(template=template, bos_token=bos_token, eos_token=eos_token)
    except Exception as exc:  # jinja2 raises its own TemplateSyntaxError
        raise TemplateError(f"the GGUF's chat template does not parse: {exc}") from exc

    def render(messages: list[dict[str, str]]) -> tuple[str, tuple[str, ...], bool]:
        response = formatter(messages=messages)  # type: ignore[arg-type]
        stop = response.stop
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        return response.prompt, stops, not response.prompt.startswith(bos_token)

    return render


def named_formatter(name: str) -> Formatter:
    """A formatter for a llama-cpp-python ``chat_format`` name (``chatml``, ``gemma``…)."""
    from llama_cpp import llama_chat_format

    candidates = {name, name.replace("-", "_"), name.replace("-", "")}
    function: Any = None
    for candidate in candidates:
        function = getattr(llama_chat_format, f"format_{candidate}", None)
        if function is not None:
            break
    if function is None:
        known = sorted(
            n.removeprefix("format_") for n in dir(llama_chat_format) if n.startswith("format_")
        )
        raise TemplateError(f"unknown prompt format {name!r}; known: {', '.join(known)}")

    def render(messages: list[dict[str, str]]) -> tuple[str, tuple[str, ...], bool]:
        response = function(messages=messages)
        stop = response.stop
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        return response.prompt, stops, True

    return render


def render_with_formatter(
    formatter: Formatter, conversation: Conversation, format_name: str
) -> RenderedPrompt:
    """Render through a chat formatter, folding the persona in where the format drops it."""
    probe, _, _ = formatter(_messages(_SENTINEL, (ChatMessage("user", "ping"),)))
    folded = bool(conversation.system) and _SENTINEL not in probe
    if folded:
        text, stop, add_bos = formatter(_messages("", _fold_persona(conversation)))
    else:
        text, stop, add_bos = formatter(_messages(conversation.system, conversation.turns))
    if conversation.system and conversation.system not in text:
        raise TemplateError(f"prompt format {format_name!r} lost the persona")
    return RenderedPrompt(
        text=text, stop=stop, add_bos=add_bos, persona_folded=folded, format_name=format_name
    )


def render_prompt(
    prompt_format: str,
    conversation: Conversation,
    *,
    custom_template: str | None = None,
    gguf_formatter: Formatter | None = None,
    examples_as: str = "turns",
) -> RenderedPrompt:
    """The exact text a local profile sends for ``conversation``; the persona's examples go in
    as :mod:`backends.examples` says (``examples_as``: the profile's setting)."""
    given = examples_given(examples_as, prompt_format) if conversation.examples else ""
    if examples_as == "none":
        conversation = without_examples(conversation)
    rendered = _render(prompt_format, conversation, custom_template, gguf_formatter, examples_as)
    return replace(rendered, examples_given=given)


def _render(
    prompt_format: str,
    conversation: Conversation,
    custom_template: str | None,
    gguf_formatter: Formatter | None,
    examples_as: str,
) -> RenderedPrompt:
    if prompt_format == "llama2-sys":
        rendered = render_completion_template(LLAMA2_SYS_TEMPLATE, conversation)
        stop = (*rendered.stop, "<</SYS>>", "<<SYS>>")
        return RenderedPrompt(rendered.text, stop, True, False, "llama2-sys")
    if prompt_format == "alpaca-ja":
        return render_alpaca_ja(conversation)
    if prompt_format == TRANSCRIPT:
        return render_transcript(conversation)
    if prompt_format == "custom":
        if not custom_template:
            raise TemplateError('prompt_format "custom" needs a template')
        return render_completion_template(custom_template, conversation)
    chat = for_chat(conversation, examples_as)
    if prompt_format == "gguf":
        if gguf_formatter is None:
            raise TemplateError("this GGUF has no chat template; choose another prompt_format")
        return render_with_formatter(gguf_formatter, chat, "gguf")
    return render_with_formatter(named_formatter(prompt_format), chat, prompt_format)
