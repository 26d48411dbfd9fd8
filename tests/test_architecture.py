"""The import rules of docs/architecture.md, read from the source (ast): layers point down, no cycles.

A package may import only packages of a lower layer; within the ground floor, and between any two
modules, there is no import cycle. Imports inside functions count too: a lazy import is still a
dependency. Adding a package means giving it a layer here (and in docs/architecture.md).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "locseg_cli"

# lowest first; a package imports only from layers before its own
LAYERS: list[set[str]] = [
    {"__init__", "errors", "lazy", "registry", "stages", "progress", "console", "config"},  # ground floor
    {"io"},
    {"location", "datasets", "models", "runtime"},
    {"bpr", "phantom", "evaluation"},
    {"preprocessing"},
    {"sampling", "inference"},
    {"training", "shift", "atlas", "export"},
    {"postprocessing", "reporting"},
    {"commands"},
    {"app"},
    {"__main__"},
]
GROUND = LAYERS[0]


def _module_name(path: Path, root: Path) -> str:
    parts = ("locseg_cli", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The locseg_cli modules `path` imports (a name imported from a package counts as its module)."""
    name = _module_name(path, root).split(".")
    package = name if path.name == "__init__.py" else name[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module or ""
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n == "locseg_cli" or n.startswith("locseg_cli."))
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    return {name: _imports(path, root, set(files)) - {name} for name, path in files.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _layer(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"package {package!r} has no layer in tests/test_architecture.py (and docs/architecture.md)")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in graph.items():
        a = _package(src)
        for dst in targets:
            b = _package(dst)
            if a != b and not (_layer(b) < _layer(a) or (a in GROUND and b in GROUND)):
                bad.append(f"{src} -> {dst} ({a} may not import {b})")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iteratively)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter[0]
                counter[0] += 1
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(sorted(graph.get(nxt, ())))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for src, targets in graph.items():
        out[_package(src)].update(_package(t) for t in targets if _package(t) != _package(src))
    return dict(out)


def test_packages_import_only_lower_layers():
    assert layer_violations(import_graph()) == []


def test_no_import_cycles_between_modules_or_packages():
    graph = import_graph()
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == []


def test_every_package_has_a_layer():
    for name in import_graph():
        _layer(_package(name))


@pytest.mark.parametrize("source, target", [
    ("inference/predictor.py", "from ..training.config import TrainConfig\n"),  # inference below training
    ("atlas/run.py", "from ..postprocessing.bpr_range import out_of_range\n"),  # atlas below postprocessing
    ("datasets/base.py", "from . import layouts\n"),  # layouts imports base: a cycle
])
def test_the_rules_catch_a_planted_import(tmp_path, source, target):
    import shutil

    copy = tmp_path / "locseg_cli"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / source).write_text((copy / source).read_text() + "\n" + target)
    graph = import_graph(copy)
    assert layer_violations(graph) or cycles(graph)
