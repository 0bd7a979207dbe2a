"""Choose the panes: one to six model profiles, in order, from everything ``kurabe models`` lists
(the GGUF files in the model folders included), or a model typed in: a ``.gguf`` path,
``openai:MODEL``, ``anthropic:MODEL`` or a server ``URL[#MODEL]`` (:mod:`backends.model_specs`).

Profiles that cannot run now (no API key, no model file) are listed greyed out with the reason. A
typed model is resolved by ``add_model`` (the app's; it may ask a server which models it serves)
and joins the list, chosen; a bad one leaves its one-line reason in the hint. Dismisses with the
chosen profile names in list order, or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, SelectionList, Static
from textual.widgets.selection_list import Selection

from foundation.errors import KurabeError
from kurabe.core.pane_labels import MAX_PANES
from tui.choice_dialog import Choice, choice_prompt
from tui.dialog_base import Dialog

AddModel = Callable[[str], Awaitable[Choice]]
"""Resolve a typed model spec into a choice (raises :class:`KurabeError`, one line)."""
HINT = "space: toggle · enter: open a new session with these panes · esc: cancel"


class ModelsDialog(Dialog[list[str]]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "save", "Open", priority=True),
    ]

    def __init__(
        self,
        choices: Sequence[Choice],
        selected: Sequence[str],
        add_model: AddModel | None = None,
    ) -> None:
        super().__init__()
        self._choices = list(choices)
        self._selected = set(selected)
        self._add_model = add_model

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static("Panes: choose 1–6 models", classes="dialog-title", markup=False)
            yield SelectionList[str](
                *[
                    Selection(
                        choice_prompt(choice),
                        choice.key,
                        choice.key in self._selected and not choice.unavailable,
                        disabled=bool(choice.unavailable),
                    )
                    for choice in self._choices
                ]
            )
            if self._add_model is not None:
                yield Input(
                    placeholder="add a model: ./model.gguf · openai:MODEL · http://host:8080/v1",
                    id="model-spec",
                )
            yield Static(HINT, classes="dialog-hint", markup=False, id="models-hint")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def _hint(self, text: str) -> None:
        self.query_one("#models-hint", Static).update(text)

    def action_save(self) -> None:
        spec_input = self.focused if isinstance(self.focused, Input) else None
        if spec_input is not None and spec_input.value.strip():
            spec = spec_input.value.strip()
            self._hint(f"looking up {spec}…")
            self.run_worker(self._add(spec), name="add-model", exit_on_error=False)
            return
        chosen = set(self.query_one(SelectionList).selected)
        names = [choice.key for choice in self._choices if choice.key in chosen]
        if not 1 <= len(names) <= MAX_PANES:
            self._hint(f"choose between 1 and {MAX_PANES} models ({len(names)} chosen)")
            return
        self.dismiss(names)

    async def _add(self, spec: str) -> None:
        assert self._add_model is not None
        try:
            choice = await self._add_model(spec)
        except KurabeError as exc:
            self._hint(str(exc))
            return
        options = self.query_one(SelectionList)
        if all(known.key != choice.key for known in self._choices):
            self._choices.append(choice)
            disabled = bool(choice.unavailable)
            options.add_option(Selection(choice_prompt(choice), choice.key, disabled=disabled))
        if not choice.unavailable:
            options.select(choice.key)
        self.query_one("#model-spec", Input).value = ""
        self._hint(f"added {choice.label} · {HINT}")
