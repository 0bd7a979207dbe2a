"""What was sent: the sampling each pane's backend recorded as sent (:mod:`backends.sent`), in
the words every export and the TUI's pane settings use ("model default", "not recorded")."""

from __future__ import annotations

import json
from typing import Any

from backends.sent import MODEL_DEFAULT, SentSettings

SAMPLING_LABELS: dict[str, str] = {
    "temperature": "Temperature",
    "repeat_penalty": "Penalize repeat",
    "repeat_last_n": "Penalize tokens",
    "top_k": "Top-K",
    "top_p": "Top-P",
    "min_p": "Min-P",
    "max_tokens": "Max tokens",
    "seed": "Seed",
    "stop": "Stop",
}
"""The sampling settings in the hand-written comparison's order, with its words."""
NOT_RECORDED = "not recorded"
HIDDEN_SETTINGS = "hidden until the names are revealed"


def sent_value(value: Any) -> str:
    """One sent value as text; :data:`MODEL_DEFAULT` as it is."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def sent_lines(sent: SentSettings) -> list[str]:
    """``Label: value`` per sampling setting ("model default" where none was sent), then any
    other parameter the request carried and the headers it set."""
    lines = []
    for name, label in SAMPLING_LABELS.items():
        value = sent.value(name)
        line = f"{label}: {sent_value(value)}"
        if value != MODEL_DEFAULT and name in sent.wire_names:
            line += f" (sent as {sent.wire_names[name]})"
        lines.append(line)
    lines.extend(
        f"{name}: {sent_value(value)}"
        for name, value in sent.values.items()
        if name not in SAMPLING_LABELS
    )
    lines.extend(f"{name}: {value}" for name, value in sent.headers.items())
    return lines


def sent_summary(sent: SentSettings) -> str:
    """The sent sampling on one line: values first, then what was left to the model."""
    parts = [
        f"{label} {sent_value(sent.value(name))}"
        for name, label in SAMPLING_LABELS.items()
        if sent.value(name) != MODEL_DEFAULT
    ]
    parts.extend(
        f"{name} {sent_value(value)}"
        for name, value in sent.values.items()
        if name not in SAMPLING_LABELS
    )
    defaulted = [SAMPLING_LABELS[n] for n in SAMPLING_LABELS if sent.value(n) == MODEL_DEFAULT]
    if defaulted:
        parts.append(f"{MODEL_DEFAULT}: {', '.join(defaulted)}")
    parts.extend(f"{name}: {value}" for name, value in sent.headers.items())
    return " · ".join(parts)


def sent_record(sent: SentSettings | None) -> dict[str, Any] | None:
    """The jsonl/battles ``sent`` object: setting → value sent or "model default"."""
    return None if sent is None else dict(sent.values)
