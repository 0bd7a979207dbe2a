"""Import rules: backends never import the UI or the domain's session; the domain never imports
Textual; ``kurabe --help`` loads no heavy library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("backends", ("textual", "tui", "kurabe.session", "kurabe.store")),
        ("kurabe", ("textual", "tui")),
        ("personas", ("textual", "tui", "backends")),
        ("scenarios", ("textual", "tui", "backends")),
    ],
)
def test_import_rules(package: str, forbidden: tuple[str, ...]) -> None:
    allowed_entry = {"kurabe/cli.py"}  # the command line hands over to the app, lazily
    violations = [
        (path, module)
        for path, module in imported_modules(package)
        if path not in allowed_entry
        and any(module == bad or module.startswith(bad + ".") for bad in forbidden)
    ]
    assert violations == []


def test_help_imports_no_heavy_library() -> None:
    script = (
        "import sys\n"
        "from kurabe.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in ('llama_cpp', 'openai', 'anthropic', 'textual', 'numpy', 'scipy', 'sklearn', 'krippendorff') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
