"""The command palette (ctrl+p): persona, scenario, panes, export, summary, reveal, help.

Not the command line's subcommands (those are in :mod:`kurabe.commands`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import KurabeApp

Command = tuple[str, str, Callable[[], object]]


class PaletteCommands(Provider):
    """kurabe's own commands, listed first when the palette opens."""

    def _commands(self) -> list[Command]:
        app = cast("KurabeApp", self.app)
        return [
            (
                "Choose persona…",
                "start a new session with another persona",
                app.action_choose_persona,
            ),
            (
                "Choose scenario…",
                "replay a scripted conversation (new session)",
                app.action_choose_scenario,
            ),
            (
                "Choose panes (models)…",
                "which models to compare, 1 to 6 (new session)",
                app.action_choose_panes,
            ),
            (
                "Export session…",
                "write this session as Markdown, JSONL, CSV, HTML or battles",
                app.action_export,
            ),
            ("Session summary", "scores per pane, picks, verdicts", app.action_summary),
            (
                "Replay: wait for a pick after each turn",
                "toggle for ctrl+g (send all)",
                app.action_toggle_wait,
            ),
            (
                "Reveal model names",
                "blind mode: show which model is behind each letter",
                app.action_reveal,
            ),
            ("Keys", "every key of the main screen", app.action_keys),
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
