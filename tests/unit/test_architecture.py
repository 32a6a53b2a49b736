"""The package's layers run one way, and no module imports itself back through others.

Layers, lowest first (CONTRIBUTING.md, "Layers"): a module may import modules of its own package
and of lower layers only. Imports inside functions count too: they are still dependencies.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skelem

PACKAGE = Path(skelem.__file__).resolve().parent

LAYERS: list[set[str]] = [
    {"__init__", "errors"},
    {"events", "grid", "seeds", "atomic", "memory", "sample_data", "_lazy"},
    {"config"},
    {"io"},
    {"data", "metrics", "viz"},
    {"models"},
    {"diffusion"},
    {"training", "inference"},
    {"evaluation", "export"},
    {"cli", "napari"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``skelem...`` module that ``path`` imports (absolute or relative, anywhere in it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "skelem")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "skelem":
                continue
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from pkg import module`
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_subpackage_has_a_layer():
    tops = {_top(m) for m in _graph()}
    assert tops <= set(LAYER_OF), f"modules outside the layer table: {sorted(tops - set(LAYER_OF))}"


def test_no_module_imports_a_higher_or_sibling_layer():
    bad = []
    for module, deps in _graph().items():
        src = _top(module)
        for dep in deps:
            dst = _top(dep)
            if dst == src or dst == "__init__":
                continue
            if LAYER_OF[dst] >= LAYER_OF[src]:
                bad.append(f"{module} -> {dep}")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("text, expected", [
    ("from skelem.io import open_volume\n", {"skelem.io", "skelem.io.open_volume"}),
    ("import numpy\nimport skelem.grid\n", {"skelem.grid"}),
])
def test_the_import_reader_sees_absolute_imports(tmp_path, text, expected):
    f = PACKAGE / "__probe_never_committed__.py"
    try:
        f.write_text(text)
        assert _imports(f) == expected
    finally:
        f.unlink()
