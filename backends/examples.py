"""How a persona's example exchanges reach a model: one rule that every backend follows.

A persona may carry example exchanges (few-shot dialogue, like SillyTavern's example dialogue or
a Character Card's ``mes_example``); :attr:`Conversation.examples
<backends.base.Conversation.examples>` holds them. The model profile's ``examples_as`` and its
prompt format decide how they are sent, and each backend records that (:func:`examples_given`):

* chat templates (``gguf``, llama-cpp-python chat formats) and API models: as prior turns before
  the conversation (``examples_as = "turns"``, the default), or as a transcript at the end of the
  system prompt (``"system"``, under :data:`EXAMPLES_HEADING`);
* completion formats (``llama2-sys``, ``alpaca-ja``, ``custom``, ``transcript``): as part of the
  prompt, in the format's own dialogue lines, before the conversation;
* ``examples_as = "none"``: not sent at all, whatever the format (to compare with and without).
"""

from __future__ import annotations

from dataclasses import replace

from backends.base import ChatMessage, Conversation

EXAMPLES_AS: tuple[str, ...] = ("turns", "system", "none")
"""What a profile's ``examples_as`` may say."""
COMPLETION_FORMATS: tuple[str, ...] = ("llama2-sys", "alpaca-ja", "custom", "transcript")
"""The prompt formats that write the dialogue themselves (the examples become its lines)."""
EXAMPLES_HEADING = "会話の例:"
"""Heads the examples where they go into the system prompt."""


def example_pairs(conversation: Conversation) -> list[tuple[str, str]]:
    """The examples as (user line, character line) pairs."""
    messages = conversation.examples
    return [
        (messages[i].content, messages[i + 1].content)
        for i in range(0, len(messages) - 1, 2)
        if messages[i].role == "user" and messages[i + 1].role == "assistant"
    ]


def example_lines(conversation: Conversation) -> list[str]:
    """The examples as named lines, ``ユーザー: …`` / ``オタク: …`` (the persona's names)."""
    names = {"user": conversation.user_name, "assistant": conversation.char_name}
    return [f"{names[m.role]}: {m.content}" for m in conversation.examples]


def system_with_examples(conversation: Conversation) -> str:
    """The system prompt with the examples after it, as a named transcript."""
    if not conversation.examples:
        return conversation.system
    block = "\n".join([EXAMPLES_HEADING, *example_lines(conversation)])
    return f"{conversation.system}\n\n{block}" if conversation.system else block


def without_examples(conversation: Conversation) -> Conversation:
    return replace(conversation, examples=())


def for_chat(conversation: Conversation, examples_as: str) -> Conversation:
    """``conversation`` as a chat template or an API gets it: the examples moved into the turns
    or the system prompt (or dropped), so that ``examples`` is empty."""
    if not conversation.examples or examples_as == "none":
        return without_examples(conversation)
    if examples_as == "system":
        return replace(conversation, system=system_with_examples(conversation), examples=())
    turns: tuple[ChatMessage, ...] = (*conversation.examples, *conversation.turns)
    return replace(conversation, turns=turns, examples=())


def examples_given(examples_as: str, prompt_format: str | None = None) -> str:
    """How a profile sends a persona's examples, in words (records, ``w``, exports).
    ``prompt_format`` is None for an API model."""
    if examples_as == "none":
        return "not sent (examples_as = none)"
    if prompt_format in COMPLETION_FORMATS:
        return f"in the prompt, as {prompt_format} dialogue lines before the conversation"
    if examples_as == "system":
        return "in the system prompt, as a transcript after the persona"
    return "as prior turns before the conversation"
