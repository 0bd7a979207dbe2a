"""One rule, one place: the names below are defined in exactly one module, every module that
imports one gets that very object (identity, not a file path, so a move keeps the test true),
and nothing reads a command's argparse namespace with ``getattr`` (each command builds its typed
options once)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from backends import base
from kurabe.checks import report
from kurabe.core import blind, languages, pane_labels, scores, verdicts
from kurabe.export import pane_summary
from kurabe.store import session_number

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    path
    for package in ("foundation", "personas", "scenarios", "backends", "kurabe", "tui")
    for path in (ROOT / package).rglob("*.py")
)

SINGLE_DEFINITIONS: dict[str, object] = {
    "MAX_PANES": pane_labels.MAX_PANES,
    "PANE_LABELS": pane_labels.PANE_LABELS,
    "VERDICTS": verdicts.VERDICTS,
    "VERDICT_LABELS": verdicts.VERDICT_LABELS,
    "normalize_verdict": verdicts.normalize_verdict,
    "resolve_session_id": session_number.resolve_session_id,
    "pane_summaries": pane_summary.pane_summaries,
    "one_line": base.one_line,
    "load_check_report": report.load_check_report,
    "names_hidden": blind.names_hidden,
    "shown_name": blind.shown_name,
    "LANGUAGE_NAMES": languages.LANGUAGE_NAMES,
    "SCORES": scores.SCORES,
    "is_score": scores.is_score,
    "check_score": scores.check_score,
}
"""Each rule, as the object its users must get: imported here from where it lives today."""


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


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_from(name: str) -> set[str]:
    """Every module some source file imports ``name`` from (``from MODULE import name``)."""
    found = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.level == 0
                and any(alias.name == name for alias in node.names)
            ):
                found.add(node.module)
    return found


@pytest.mark.parametrize("name", sorted(SINGLE_DEFINITIONS))
def test_defined_once(name: str) -> None:
    where = [path for path in SOURCES if name in top_level_names(path)]
    assert len(where) == 1, where
    rule = SINGLE_DEFINITIONS[name]
    if callable(rule):
        assert Path(inspect.getfile(rule)).resolve() == where[0].resolve()


@pytest.mark.parametrize("name", sorted(SINGLE_DEFINITIONS))
def test_every_user_gets_the_one_rule(name: str) -> None:
    home = module_name(next(path for path in SOURCES if name in top_level_names(path)))
    for module in imported_from(name) | {home}:
        assert getattr(importlib.import_module(module), name) is SINGLE_DEFINITIONS[name], module


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
