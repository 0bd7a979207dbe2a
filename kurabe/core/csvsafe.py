"""CSV cells that a spreadsheet opens as text, never as a formula.

Excel and LibreOffice read a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (``=HYPERLINK(…)`` makes a link that can leak data, ``@SUM(…)`` computes).
Model replies, user lines, notes and model names are untrusted text, so every text cell that starts
with one of those characters gets a leading ``'``, as OWASP's "CSV Injection" page advises; the
csv module quotes the cell as needed. Numbers stay numbers. Only the CSV exports do this: JSONL,
Markdown and HTML keep the text exact.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
