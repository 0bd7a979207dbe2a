"""What the focused pane's requests carry: the sampling its backend sent, value by value. ``o``.

Read from the store, as every export reads it (what is saved is what is shown): per sampling
setting the value that went out, or "model default" where none was sent, then the headers the
request set and where it went. In a blind session not yet revealed the settings stay hidden, as
they tell an API pane from a local one.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from backends.sent import sent_settings
from kurabe.export.sent import HIDDEN_SETTINGS, NOT_RECORDED, sent_lines
from kurabe.session.comparison import ComparisonSession
from kurabe.store.records import PaneRecord


def pane_settings_lines(pane: PaneRecord, hidden: bool) -> list[str]:
    """The view's text: the title line, then one line per setting."""
    if hidden:
        return [f"Pane {pane.label}", "", f"Settings {HIDDEN_SETTINGS} (ctrl+r)."]
    backend = pane.settings.get("backend")
    backend = backend if isinstance(backend, dict) else {}
    lines = [f"Pane {pane.label} · {pane.profile_name} · {pane.backend}", ""]
    sent = sent_settings(backend)
    if sent is None:
        lines.append(f"Sampling sent: {NOT_RECORDED}")
    else:
        lines.append("Sent with every request (model default: not sent, the model chose):")
        lines.extend(f"  {line}" for line in sent_lines(sent))
    lines.append("")
    for label, key in (("Model", "model"), ("Base URL", "base_url"), ("SDK", "sdk")):
        value = backend.get(key)
        if value not in (None, ""):
            lines.append(f"{label}: {value}")
    return lines


class PaneSettingsScreen(ModalScreen[None]):
    DEFAULT_CSS = Path(__file__).with_name("pane_settings.tcss").read_text(encoding="utf-8")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,o", "close", "Back"),
    ]

    def __init__(self, session: ComparisonSession, position: int) -> None:
        super().__init__()
        self.session = session
        self.position = position

    def compose(self) -> ComposeResult:
        record = self.session.record()
        pane = next(p for p in record.panes if p.position == self.position)
        with VerticalScroll(id="pane-settings-box"):
            yield Static(
                "\n".join(pane_settings_lines(pane, self.session.hidden)),
                id="pane-settings-text",
                markup=False,
            )
            yield Static("esc: back", classes="pane-settings-hint", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
