"""Every key of the main screen in one place: its bindings and the help screen read from here.

Keys marked ``panes`` work when a pane has the focus (so typing in the input box is never taken
by a single-letter key); ``anywhere`` keys work from the input box too (they are control keys the
input does not use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding

Where = Literal["anywhere", "input", "panes"]
PANE_LETTERS = "abcdef"


@dataclass(frozen=True, slots=True)
class KeyHelp:
    keys: str
    """As shown to people."""
    description: str
    where: Where


MAIN_BINDINGS: list[Binding] = [
    # anywhere
    Binding("escape", "cancel_turn", "Cancel", key_display="esc"),
    Binding("ctrl+n", "send_next", "Next", key_display="^n"),
    Binding("ctrl+g", "send_all", "All", key_display="^g"),
    Binding("ctrl+t", "toggle_expect", "Expect", key_display="^t"),
    Binding("ctrl+r", "reveal", "Reveal", key_display="^r"),
    Binding("f1", "help", "Keys", key_display="f1"),
    # panes
    Binding("question_mark", "help", "Keys", key_display="?", show=False),
    Binding("left", "move_focus(-1)", "Prev pane", show=False),
    Binding("right", "move_focus(1)", "Next pane", show=False),
    *[
        Binding(letter, f"focus_pane({index})", f"Pane {letter.upper()}", show=False)
        for index, letter in enumerate(PANE_LETTERS)
    ],
    Binding("1", "score(1)", "Score", key_display="1-5"),
    *[
        Binding(str(score), f"score({score})", f"Score {score}", show=False)
        for score in range(2, 6)
    ],
    Binding("t", "tags", "Tags"),
    Binding("n", "note", "Note"),
    Binding("p", "pick", "Best"),
    Binding("v", "verdict", "Verdict"),
    Binding("r", "retry", "Retry"),
    Binding("equals_sign", "pick_tie", "Tie", key_display="=", show=False),
    Binding("x", "pick_bad", "All bad", show=False),
    Binding("g", "regenerate", "Regen", show=False),
    Binding("k", "cancel_pane", "Stop pane", show=False),
    Binding("s", "summary", "Summary"),
    Binding("o", "pane_settings", "Sent", show=False),
    Binding("j", "judge", "Judge", show=False),
    Binding("y", "copy_reply", "Copy", show=False),
    Binding("w", "sent_prompt", "Prompt", show=False),
    Binding("i", "focus_input", "Input", show=False),
]

PANE_ACTIONS = frozenset(
    {
        "move_focus",
        "focus_pane",
        "score",
        "tags",
        "note",
        "verdict",
        "pick",
        "pick_tie",
        "pick_bad",
        "retry",
        "regenerate",
        "cancel_pane",
        "summary",
        "pane_settings",
        "judge",
        "copy_reply",
        "sent_prompt",
        "focus_input",
    }
)
"""Actions that only apply when a pane (not the input box) has the focus."""

KEY_HELP: list[KeyHelp] = [
    KeyHelp("enter", "send the line to every pane", "input"),
    KeyHelp("ctrl+j", "new line in the input (shift+enter where the terminal has it)", "input"),
    KeyHelp("tab / shift+tab", "move the focus: input → pane A → pane B …", "anywhere"),
    KeyHelp("esc", "cancel the streams of the current turn (and stop a replay)", "anywhere"),
    KeyHelp("ctrl+n", "replay: send the scenario's next line (the one in the input)", "anywhere"),
    KeyHelp("ctrl+g", "replay: send all remaining lines, one turn after another", "anywhere"),
    KeyHelp("ctrl+t", "show or hide what a good answer to this turn contains", "anywhere"),
    KeyHelp("ctrl+r", "blind mode: reveal the model names (recorded)", "anywhere"),
    KeyHelp("ctrl+p", "commands: persona, scenario, panes, export, summary …", "anywhere"),
    KeyHelp("f1 / ?", "this help", "anywhere"),
    KeyHelp("ctrl+q", "quit (the session is already saved)", "anywhere"),
    KeyHelp("a … f", "focus the pane with that letter", "panes"),
    KeyHelp("← / →", "focus the previous / next pane", "panes"),
    KeyHelp("↑ ↓ pgup pgdn home end", "scroll the focused pane", "panes"),
    KeyHelp("1 … 5", "score the focused pane's latest reply (破綻 … 素晴らしい)", "panes"),
    KeyHelp("t", "tags for that reply (too-long, wrong-fact …)", "panes"),
    KeyHelp("n", "note on that reply", "panes"),
    KeyHelp("v", "verdict on the whole conversation of the focused pane", "panes"),
    KeyHelp("p", "pick the best pane of the latest turn (then its letter, = or x)", "panes"),
    KeyHelp("=", "the latest turn is a tie", "panes"),
    KeyHelp("x", "all replies of the latest turn are bad", "panes"),
    KeyHelp("r", "retry the focused pane (after an error or a cancel)", "panes"),
    KeyHelp("g", "generate the focused pane's latest reply again", "panes"),
    KeyHelp("k", "cancel only the focused pane's stream (esc cancels all)", "panes"),
    KeyHelp(
        "s", "session summary: scores, picks, verdicts, charts (l there: every session)", "panes"
    ),
    KeyHelp("o", "what the focused pane sent: each sampling value, or model default", "panes"),
    KeyHelp(
        "j",
        "ask the LLM judge (--judge) to score the latest turn; ⚖ shows once you have scored",
        "panes",
    ),
    KeyHelp("y", "copy the focused pane's latest reply to the clipboard (works over SSH)", "panes"),
    KeyHelp("w", "the exact prompt the focused pane's model was given (as kurabe prompt)", "panes"),
    KeyHelp("i", "back to the input box", "panes"),
]
