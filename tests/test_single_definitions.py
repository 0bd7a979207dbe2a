"""One rule, one place: the names below are defined in exactly one module, and nothing reads a
command's argparse namespace with ``getattr`` (each command builds its typed options once)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    path
    for package in ("foundation", "personas", "scenarios", "backends", "kurabe", "tui")
    for path in (ROOT / package).rglob("*.py")
)

SINGLE_DEFINITIONS = {
    "MAX_PANES": "kurabe/pane_labels.py",
    "PANE_LABELS": "kurabe/pane_labels.py",
    "VERDICTS": "kurabe/verdicts.py",
    "VERDICT_LABELS": "kurabe/verdicts.py",
    "normalize_verdict": "kurabe/verdicts.py",
    "resolve_session_id": "kurabe/session_number.py",
    "pane_summaries": "kurabe/pane_summary.py",
    "one_line": "backends/base.py",
    "load_check_report": "kurabe/check_report.py",
}


def top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@pytest.mark.parametrize("name", sorted(SINGLE_DEFINITIONS))
def test_defined_once(name: str) -> None:
    where = [str(p.relative_to(ROOT)) for p in SOURCES if name in top_level_names(p)]
    assert where == [SINGLE_DEFINITIONS[name]]


def test_no_getattr_on_argparse_namespaces() -> None:
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "args"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
