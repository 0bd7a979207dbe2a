"""Import rules: the packages stack in layers, each importing only from the layers below it, and no
file imports another that imports it back.

- base: ``foundation`` (errors, directories, TOML files, the catalog) imports nothing of kurabe's;
- ``personas``, ``scenarios`` and ``backends`` build on the base (personas and scenarios never
  import the backends);
- the domain, ``kurabe`` less its command line, builds on those, in layers of its own (lowest
  first): ``core`` → ``checks`` → ``store`` → ``session`` → ``analysis`` → ``judge`` | ``export``
  → ``importing``. ``judge`` and ``export`` stand side by side and never import each other;
- on top, side by side: the command line (``kurabe/cli.py``, ``kurabe/commands/``) and the
  Textual app (``tui``). Neither imports the other, except that the command line's entry point
  starts the app, lazily, inside a function;
- no import circle between files, in any folder: every import counts, the lazy ones inside a
  function and those under ``TYPE_CHECKING`` too;
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
DOMAIN_LAYERS = (
    ("core",),
    ("checks",),
    ("store",),
    ("session",),
    ("analysis", "runs"),
    ("judge", "export"),
    ("importing",),
)
"""The domain's own layers, lowest first; packages in one tuple stand side by side."""
COMMAND_LINE = ("kurabe.cli", "kurabe.commands")
ENTRY_POINT = ("kurabe/cli.py", "tui.app")
"""The one place the command line imports the app: ``kurabe`` with no subcommand."""


def is_within(module: str, parent: str) -> bool:
    return module == parent or module.startswith(parent + ".")


def domain_rank(module: str) -> tuple[int, str]:
    """(rank, package) of a domain module within :data:`DOMAIN_LAYERS`; the root package
    (``kurabe/__init__.py``: the version) ranks lowest."""
    parts = module.split(".")
    in_root = (
        not (ROOT / "kurabe" / parts[-1]).is_dir()
        and not (ROOT / "kurabe" / f"{parts[-1]}.py").exists()
    )
    if len(parts) == 1 or (len(parts) == 2 and in_root):  # the root package or a name in it
        return -1, "kurabe"
    for rank, packages in enumerate(DOMAIN_LAYERS):
        if parts[1] in packages:
            return rank, parts[1]
    raise AssertionError(f"{module} is in no domain layer: add its package to DOMAIN_LAYERS")


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
        return DOMAIN, "domain"  # the domain's own layers: domain_rank
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
    if here is None or there is None:
        return False
    if here == there == (DOMAIN, "domain"):
        (rank_here, package_here), (rank_there, package_there) = (
            domain_rank(source),
            domain_rank(target),
        )
        return rank_there > rank_here or (rank_there == rank_here and package_there != package_here)
    if here[1] == there[1]:
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


def all_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            modules[module_name(path)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Which of kurabe's modules each module imports, every import counted (lazy ones too). A
    ``from package import name`` counts as importing ``package.name`` where that is a module."""
    modules = all_modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for source, path in modules.items():
        targets = set()
        for target, _ in imports_of(path):
            found = known(target)
            if found is not None and found != source:
                targets.add(found)
        graph[source] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one
    module (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_no_import_circle_between_files() -> None:
    assert import_cycles(import_graph()) == []


def test_an_added_import_circle_is_found() -> None:
    graph = import_graph()
    assert "kurabe.store.records" in graph["kurabe.store.store"]
    graph["kurabe.store.records"].add("kurabe.store.store")
    assert any(
        {"kurabe.store.records", "kurabe.store.store"} <= set(cycle)
        for cycle in import_cycles(graph)
    )


def test_packages_import_only_from_the_layers_below() -> None:
    assert layer_violations() == []


def test_every_module_belongs_to_a_layer() -> None:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            assert part_of(module_name(path)) is not None, path


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("foundation.errors", "kurabe.store.store", False),
        ("backends.base", "kurabe.session.comparison", False),
        ("backends.base", "foundation.paths", True),
        ("personas.loader", "backends.profiles", False),
        ("kurabe.session.comparison", "backends.base", True),
        ("kurabe.session.comparison", "kurabe.commands.models", False),
        ("kurabe.session.comparison", "tui.app", False),
        ("kurabe.commands.models", "tui.app", False),
        ("tui.app", "kurabe.commands.models", False),
        ("tui.app", "kurabe.session.comparison", True),
        ("kurabe.session.comparison", "kurabe.store.store", True),
        ("kurabe.store.store", "kurabe.session.comparison", False),
        ("kurabe.analysis.battles", "kurabe.export.view", False),
        ("kurabe.export.view", "kurabe.analysis.battles", True),
        ("kurabe.judge.runner", "kurabe.export.view", False),
        ("kurabe.export.view", "kurabe.judge.runner", False),
        ("kurabe.checks.japanese", "kurabe.core.verdicts", True),
        ("kurabe.core.verdicts", "kurabe.checks.japanese", False),
        ("kurabe.store.sessions", "kurabe", True),
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
