"""``kurabe prompt``: print the exact prompt text a local profile would send (the preview).

``--user`` and ``--assistant`` may repeat, in conversation order; the last line should be the
user's. Nothing is generated; the model is loaded only to read its tokenizer and template.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from backends.base import ChatMessage
from foundation.errors import KurabeError
from foundation.options import options_from


class _AppendTurn(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        turns = list(getattr(namespace, "turns", None) or [])
        turns.append(ChatMessage(self.const, str(values)))
        namespace.turns = turns


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("prompt", help="print the exact prompt a local model would get")
    parser.add_argument("--model", required=True, metavar="NAME", help="a local model profile")
    parser.add_argument("--persona", default="anime-fan", metavar="ID")
    parser.add_argument("--user", action=_AppendTurn, const="user", dest="turns", metavar="TEXT")
    parser.add_argument(
        "--assistant", action=_AppendTurn, const="assistant", dest="turns", metavar="TEXT"
    )
    parser.add_argument("--models-file", metavar="FILE")
    parser.set_defaults(func=run, turns=None)


@dataclass(frozen=True)
class PromptOptions:
    """``kurabe prompt``'s options."""

    model: str
    persona: str = "anime-fan"
    turns: list[ChatMessage] | None = None
    """The ``--user`` and ``--assistant`` turns, in the order given."""
    models_file: str | None = None


def run(args: argparse.Namespace) -> int:
    from backends.model_specs import SPEC_FORMS, resolve_spec
    from backends.profiles import load_profiles
    from kurabe.core.persona_conversation import persona_conversation
    from personas.loader import load_personas

    options = options_from(PromptOptions, args)
    profiles = load_profiles(options.models_file)
    profile = resolve_spec(options.model, profiles)  # a profile name or a .gguf path …
    if profile is None:
        raise KurabeError(
            f"unknown model {options.model!r}; known: {', '.join(profiles)}; or {SPEC_FORMS}"
        )
    if not profile.is_local:
        raise KurabeError(
            f"{profile.name} is an API model: its server applies the template (the persona goes "
            "in the system message)"
        )
    persona = load_personas().get(options.persona)
    turns = tuple(options.turns or [ChatMessage("user", "ねえ、アニメ好きなの？")])
    conversation = persona_conversation(persona, turns)
    from backends.llama_cpp_backend import LlamaCppBackend, ModelFileError
    from backends.templates import TemplateError

    backend = LlamaCppBackend(profile)
    try:
        backend.load_blocking()
        rendered = backend.render(conversation)
    except (ModelFileError, TemplateError) as exc:
        raise KurabeError(str(exc)) from None
    sys.stdout.write(rendered.text)
    if not rendered.text.endswith("\n"):
        sys.stdout.write("\n")
    print(f"# {rendered.describe()}", file=sys.stderr)
    return 0
