"""Import rules: the packages stack in layers, each importing only from the layers below it.

- base: ``foundation`` (errors, directories, TOML files, the catalog) imports nothing of kurabe's;
- ``personas``, ``scenarios`` and ``backends`` build on the base (personas and scenarios never
  import the backends);
- the domain, ``kurabe`` less its command line, builds on those;
- on top, side by side: the command line (``kurabe/cli.py``, ``kurabe/commands/``) and the
  Textual app (``tui``). Neither imports the other, except that the command line's entry point
  starts the app, lazily, inside a function;
- only ``tui`` imports Textual; ``kurabe --help`` loads no heavy library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("foundation", "personas", "scenarios", "backends", "kurabe", "tui")

BASE, MIDDLE, DOMAIN, TOP = 0, 1, 2, 3
COMMAND_LINE = ("kurabe.cli", "kurabe.commands")
ENTRY_POINT = ("kurabe/cli.py", "tui.app")
"""The one place the command line imports the app: ``kurabe`` with no subcommand."""


def is_within(module: str, parent: str) -> bool:
    return module == parent or module.startswith(parent + ".")


def part_of(module: str) -> tuple[int, str] | None:
    """(layer, group) of one of kurabe's modules; None for anything else (stdlib, libraries)."""
    top = module.split(".")[0]
    if top == "foundation":
        return BASE, "foundation"
    if top in ("personas", "scenarios", "backends"):
        return MIDDLE, top
    if any(is_within(module, name) for name in COMMAND_LINE):
        return TOP, "command line"
    if top == "kurabe":
        return DOMAIN, "domain"
    if top == "tui":
        return TOP, "tui"
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported module, imported at module level) for every import in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks count as module level
        if isinstance(node, ast.If):
            top_level.update(id(child) for child in node.body)
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, id(node) in top_level) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top_level))
            # `from kurabe import export` names a module too
            found.extend(
                (f"{node.module}.{alias.name}", id(node) in top_level) for alias in node.names
            )
    return found


def breaks_layers(source: str, target: str) -> bool:
    """Whether module ``source`` importing ``target`` goes against the layers."""
    here, there = part_of(source), part_of(target)
    if here is None or there is None or here[1] == there[1]:
        return False
    if there[0] > here[0]:
        return True  # upward
    if there[0] == here[0] and here[0] != MIDDLE:
        return True  # sideways at the top: the command line and the app
    return here[1] in ("personas", "scenarios") and there[1] == "backends"


def layer_violations() -> list[str]:
    violations = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = module_name(path)
            relative = str(path.relative_to(ROOT))
            for target, at_module_level in imports_of(path):
                if is_within(target, "textual") and not is_within(source, "tui"):
                    violations.append(f"{relative} imports {target}: only tui imports Textual")
                if (
                    relative == ENTRY_POINT[0]
                    and is_within(target, ENTRY_POINT[1])
                    and not at_module_level
                ):
                    continue
                if breaks_layers(source, target):
                    violations.append(f"{relative} imports {target}")
    return violations


def test_packages_import_only_from_the_layers_below() -> None:
    assert layer_violations() == []


def test_every_module_belongs_to_a_layer() -> None:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            assert part_of(module_name(path)) is not None, path


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("foundation.errors", "kurabe.store", False),
        ("backends.base", "kurabe.session", False),
        ("backends.base", "foundation.paths", True),
        ("personas.loader", "backends.profiles", False),
        ("kurabe.session", "backends.base", True),
        ("kurabe.session", "kurabe.commands.models", False),
        ("kurabe.session", "tui.app", False),
        ("kurabe.commands.models", "tui.app", False),
        ("tui.app", "kurabe.commands.models", False),
        ("tui.app", "kurabe.session", True),
    ],
)
def test_the_rules_themselves(source: str, target: str, allowed: bool) -> None:
    assert breaks_layers(source, target) is not allowed


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
