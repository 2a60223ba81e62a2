"""engine's public API as a type checker sees it: the declarations of the methods attached at
import time match what is attached, and a user's script type-checks under `mypy --strict`
with no expression of type Any."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine.tensor import Tensor

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("typed_user_script.py")
_IMPLICIT = {"__module__", "__doc__", "__slots__", "__weakref__", "__dict__", "__qualname__",
             "__firstlineno__", "__static_attributes__", "__annotations__",
             "__annotate_func__", "__annotations_cache__"}


def _class_body(path: Path, name: str) -> list[ast.stmt]:
    tree = ast.parse(path.read_text())
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name).body


def _names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def attached_names() -> set[str]:
    """The Tensor attributes that engine/_api.py attaches (not defined in tensor.py's class)."""
    defined = _names(_class_body(ROOT / "engine" / "tensor.py", "Tensor"))
    return {name for name in vars(Tensor)
            if name not in defined and name not in _IMPLICIT and name not in Tensor.__slots__}


DECLARED = _class_body(ROOT / "engine" / "_tensor_methods.pyi", "TensorMethods")


def test_every_attached_method_is_declared_and_nothing_else():
    declared = _names(DECLARED)
    attached = attached_names()
    assert attached, "install() attached nothing?"
    assert sorted(attached - declared) == [], "attached at run time, not declared in the stub"
    assert sorted(declared - attached) == [], "declared in the stub, not attached at run time"


def _calls(fn: ast.FunctionDef) -> list[tuple[list[object], dict[str, object]]]:
    """The fullest and the smallest call a declaration allows (self excluded)."""
    a = fn.args
    positional = [*a.posonlyargs, *a.args][1:]
    required = len(positional) - len(a.defaults)
    kwonly_required = [k.arg for k, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
                       if d is None]
    fullest: list[object] = [object()] * len(positional) + ([object()] if a.vararg else [])
    smallest: list[object] = [object()] * required
    return [(fullest, {k.arg: object() for k in a.kwonlyargs}),
            (smallest, dict.fromkeys(kwonly_required, object()))]


@pytest.mark.parametrize(
    "decl", [n for n in DECLARED if isinstance(n, ast.FunctionDef)],
    ids=lambda n: f"{n.name}:{n.lineno}",
)
def test_declared_parameters_are_accepted_by_the_attached_method(decl):
    runtime = inspect.getattr_static(Tensor, decl.name)
    if isinstance(runtime, property):
        assert any(isinstance(d, ast.Name) and d.id == "property" for d in decl.decorator_list)
        return
    signature = inspect.signature(runtime)
    for args, kwargs in _calls(decl):
        signature.bind(object(), *args, **kwargs)  # raises TypeError when they disagree


def test_the_declarations_describe_the_runtime_results():
    x = engine.tensor([[1.0, 2.0], [3.0, 0.5]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert isinstance(values, Tensor) and isinstance(indices, Tensor)
    assert isinstance(x.max(), Tensor)
    assert isinstance(x.type(), str) and isinstance(x.type(engine.float64), Tensor)
    assert isinstance(x.detach().nonzero(as_tuple=True), tuple)
    assert isinstance(x.shape[0], int) and isinstance(x.shape[1:], engine.Size)
    assert isinstance(x.size(0), int) and isinstance(x.size(), engine.Size)
    (x * 2).sum().backward()
    assert x.grad_fn is None and (x * 2).grad_fn.name() == "MulBackward0"


@pytest.mark.slow
def test_a_users_script_has_no_any_under_mypy_strict(tmp_path):
    pytest.importorskip("mypy")
    # A control: the same flags do report an Any (so a pass below is not a silent checker).
    control = tmp_path / "control.py"
    control.write_text("import json\n\nvalue = json.loads('1')\n")
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    # --follow-imports=silent: as for an installed package, errors inside engine are not the
    # user's; an Any that engine's public API returns still shows in the user's own lines.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--disallow-any-expr",
         "--follow-imports=silent", "--no-incremental", "--cache-dir", os.devnull,
         "--no-error-summary", "--hide-error-context", str(SCRIPT), str(control)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    lines = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [line for line in lines if SCRIPT.name in line] == []
    assert any("control.py:3" in line and "Any" in line for line in lines), result.stdout
