"""The engine's modules import one another in one direction: no cycles at module level, and
no imports inside functions that exist only to break one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
MODULES = sorted(ENGINE.rglob("*.py"))
# The checker's framework adapters are plug-ins loaded by name on first use (each imports its
# framework, torch and JAX being optional), and blame's torch half needs torch: the only
# imports allowed inside a function, and only in the registry and blame.
PLUGINS = {
    "engine.autograd.frameworks": {"engine.autograd.frameworks._engine",
                                   "engine.autograd.frameworks._numpy",
                                   "engine.autograd.frameworks._torch",
                                   "engine.autograd.frameworks._jax"},
    "engine.autograd.blame": {"engine.autograd.blame_torch"},
}


def _name(path: Path) -> str:
    parts = ["engine", *path.relative_to(ENGINE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.AST, package: str, known: set[str]) -> list[str]:
    """The engine modules an import statement loads (a submodule named in `from` included)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "engine"]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                            + ([base] if base else []))
        if base.split(".")[0] != "engine":
            return []
        subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
        return subs or [base]
    return []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ENGINE)))
def test_no_function_local_imports_of_engine(path):
    tree = ast.parse(path.read_text())
    known = {_name(p) for p in ENGINE.rglob("*.py")}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                targets = set(_targets(node, _name(path), known))
                assert not targets - PLUGINS.get(_name(path), set()), (
                    f"{path.name}:{node.lineno}: import inside {fn.name}()")


def test_module_level_imports_form_no_cycle():
    known = {_name(p) for p in ENGINE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        name = _name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.parse(path.read_text()).body:
            deps.update(t for t in _targets(node, package, known) if t in known and t != name)
        graph[name] = deps
    # Depth-first search with an explicit stack; a grey node met again closes a cycle.
    state: dict[str, int] = {}
    for start in graph:
        stack = [(start, iter(sorted(graph[start])))]
        state[start] = 1
        path = [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            if state.get(child) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [child]))
            if state.get(child) is None and child in graph:
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
