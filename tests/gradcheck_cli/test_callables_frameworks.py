"""Callable cases with `framework = "torch" | "jax" | "numpy"`: inputs of that framework,
our verdict and blame, validation, and an error row when the framework is not installed."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcheck_cli import callables
from gradcheck_cli.cli import main
from gradcheck_cli.schema import iter_items, load_file

ENV = {"COLUMNS": "100", "NO_COLOR": None, "FORCE_COLOR": None, "GRADCHECK_ALLOW_PYTHON": None}

SOURCE = '''
import numpy as np


try:
    import torch
except ImportError:  # the torch case is skipped without torch
    torch = None
else:

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x.detach() ** 2  # right first derivative, cut second


def torch_model(x, w):
    return torch.tanh(Cube.apply(x @ w)).sum()


def jax_model(x):
    import jax.numpy as jnp

    return jnp.sum(jnp.sin(x) ** 2)


def f(x, data):
    return np.sum(np.sin(x - data) ** 2)


def f_grad(x, data):
    return 2 * np.sin(x - data) * np.cos(x - data)


def f_grad_half(x, data):
    return np.sin(x - data) * np.cos(x - data)
'''

CASES = '''
[[case]]
name = "torch model"
framework = "torch"
fn = "fwpkg_ops.ops:torch_model"
inputs = [{ shape = [2, 3] }, { shape = [3, 2] }]
order = ORDER

[[case]]
name = "jax model"
framework = "jax"
fn = "fwpkg_ops.ops:jax_model"
inputs = [{ shape = [4], dtype = "float32" }]
order = 2

[[case]]
name = "numpy right"
framework = "numpy"
fn = "fwpkg_ops.ops:f"
grad = "fwpkg_ops.ops:f_grad"
inputs = [{ shape = [4] }, { shape = [4], requires_grad = false }]

[[case]]
name = "numpy wrong"
framework = "numpy"
fn = "fwpkg_ops.ops:f"
grad = "fwpkg_ops.ops:f_grad_half"
inputs = [{ shape = [4], dtype = "float32" }, { shape = [4], requires_grad = false }]
'''


@pytest.fixture
def batch(tmp_path: Path):
    pkg = tmp_path / "fwpkg_ops"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "ops.py").write_text(textwrap.dedent(SOURCE), encoding="utf-8")
    path = sys.path[:]

    def write(order: int = 1) -> Path:
        file = tmp_path / "cases.toml"
        file.write_text(CASES.replace("ORDER", str(order)), encoding="utf-8")
        return file

    yield write
    sys.path[:] = path
    for name in [m for m in sys.modules if m.startswith("fwpkg_")]:
        del sys.modules[name]


def _rows(file: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["check", str(file), "--format", "json", "--allow-python",
                                       "--path", str(file.parent)], env=ENV)
    assert "Traceback" not in result.output
    return result.exit_code, {c["name"]: c for c in json.loads(result.output)["cases"]}


def test_torch_jax_and_numpy_cases_get_our_verdict_and_blame(batch):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    code, rows = _rows(batch(order=2))
    assert code == 1
    assert {n: r["status"] for n, r in rows.items()} == {
        "torch model": "fail", "jax model": "pass", "numpy right": "pass", "numpy wrong": "fail"}
    torch_row = rows["torch model"]
    assert torch_row["blame"]["class"].endswith("Cube")
    assert "double backward" in torch_row["blame"]["description"]
    assert "grad function fwpkg_ops.ops:f_grad_half (" in rows["numpy wrong"]["message"]
    # First order, the torch model is right.
    _, rows = _rows(batch(order=1))
    assert rows["torch model"]["status"] == "pass"


def test_a_missing_framework_is_an_error_row_that_says_what_to_install(batch, monkeypatch):
    monkeypatch.setattr(callables, "missing_package", lambda name: (
        None if name in ("engine", "numpy") else
        f"framework {name!r} needs the {name} package: pip install 'gradcheck[{name}]'"))
    items = [item for _, item in iter_items([load_file(str(batch()))], allow_python=True,
                                             paths=[str(batch().parent)])]
    results = [callables.run_callable_case(item)[0] for item in items]
    assert [r.status for r in results] == ["error", "error", "pass", "fail"]
    assert "pip install 'gradcheck[torch]'" in results[0].message
    assert "pip install 'gradcheck[jax]'" in results[1].message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('framework = "tensorflow"', "'framework' must be one of engine, torch, jax, numpy"),
        ('framework = "numpy"', 'framework = "numpy" needs'),
        ('grad = "m:g"', "'grad' goes with framework"),
        ('framework = "numpy"\ngrad = "not a target"', "'grad' must look like"),
        ('framework = "numpy"\ngrad = "m:g"\norder = 2', "needs a second derivative"),
    ],
)
def test_framework_and_grad_are_validated(tmp_path: Path, extra: str, message: str):
    file = tmp_path / "bad.toml"
    file.write_text(f'[[case]]\nfn = "m:f"\ninputs = [{{ shape = [2] }}]\n{extra}\n',
                    encoding="utf-8")
    (item,) = [i for _, i in iter_items([load_file(str(file))], allow_python=True)]
    assert message in item.message


# ------------------------------------------------------------------- trace of torch code

TRACE_SOURCE = '''
import torch


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x


class Abs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.abs()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.ones_like(x)  # wrong where x < 0 (the sign is lost)


def right(x):
    return Square.apply(Square.apply(x)).sum()


def wrong(x, w):
    # Abs twice: first where it is right (inputs > 0), then where it is not (inputs < 0).
    kept = Square.apply(Abs.apply(x * x + 0.5))
    return (kept + Abs.apply(x @ w - 5)).sum()
'''

TRACE_CASES = '''
[[case]]
name = "right"
framework = "torch"
fn = "fwtrace_ops.ops:right"
inputs = [{ name = "x", shape = [3] }]

[[case]]
name = "wrong"
framework = "torch"
fn = "fwtrace_ops.ops:wrong"
inputs = [{ name = "x", shape = [3, 3] }, { name = "w", shape = [3, 3] }]
'''


@pytest.fixture
def torch_trace_batch(tmp_path: Path):
    pytest.importorskip("torch")
    pkg = tmp_path / "fwtrace_ops"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "ops.py").write_text(TRACE_SOURCE, encoding="utf-8")
    file = tmp_path / "cases.toml"
    file.write_text(TRACE_CASES, encoding="utf-8")
    path = sys.path[:]
    yield file
    sys.path[:] = path
    for name in [m for m in sys.modules if m.startswith("fwtrace_")]:
        del sys.modules[name]


def _trace(file: Path, case: str, *args: str):
    result = CliRunner().invoke(main, ["trace", f"{file}::{case}", "--allow-python", "--path",
                                       str(file.parent), *args], env=ENV)
    assert "Traceback" not in result.output
    return result


def test_trace_of_a_torch_case_draws_its_graph_and_marks_nothing_when_right(torch_trace_batch):
    result = _trace(torch_trace_batch, "right", "--no-color")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"#3 Sum = {result.output.split('= ')[1].split()[0]}   SumBackward0 · grad 1",
        "└── #2 Square [3]   SquareBackward",
        "    └── #1 Square [3]   SquareBackward",
        "        └── #0 x [3]   leaf",
    ]
    data = json.loads(_trace(torch_trace_batch, "right", "--json").output)
    assert data["blame"] is None and not any("blame" in n for n in data["nodes"])


def test_trace_of_a_torch_case_marks_the_wrong_application_of_the_wrong_function(
    torch_trace_batch,
):
    data = json.loads(_trace(torch_trace_batch, "wrong", "--format", "json").output)
    nodes = data["nodes"]
    [marked] = [n for n in nodes if "blame" in n]
    # Abs.backward's first line (its decorator), as blame names a Function's backward.
    lines = TRACE_SOURCE.splitlines()
    start = lines.index("class Abs(torch.autograd.Function):")
    line = lines.index("    def backward(ctx, g):", start)
    source = torch_trace_batch.parent / "fwtrace_ops" / "ops.py"
    assert marked["grad_fn"] == "AbsBackward"
    assert f"Abs.backward at {source}:{line}: off by a sign" in marked["blame"]
    assert data["blame"] == marked["blame"]
    # The second Abs (applied to x @ w - 5 < 0) is the wrong one; the first is right there.
    abs_nodes = [n for n in nodes if n["grad_fn"] == "AbsBackward"]
    assert len(abs_nodes) == 2 and marked == abs_nodes[1]
    assert [nodes[c]["grad_fn"] for c in marked["children"]] == ["SubBackward0"]
    assert [(n["label"], n["shape"]) for n in nodes if n["leaf"]] == [("x", [3, 3]), ("w", [3, 3])]
    tree = _trace(torch_trace_batch, "wrong", "--no-color").output
    [line_marked] = [row for row in tree.splitlines() if "✗" in row]
    assert "Abs [3, 3]   AbsBackward   ✗ Abs.backward at" in line_marked
    mermaid = _trace(torch_trace_batch, "wrong", "--format", "mermaid").output
    assert f"style n{marked['id']} fill:#ffcdd2" in mermaid



def test_trace_of_a_case_whose_framework_is_missing_says_what_to_install(tmp_path, monkeypatch):
    file = tmp_path / "cases.toml"
    file.write_text(TRACE_CASES, encoding="utf-8")
    [(_, case), _] = list(iter_items([load_file(file)], allow_python=True, paths=[str(tmp_path)]))
    monkeypatch.setattr(callables, "missing_package",
                        lambda name: f"framework {name!r} needs the {name} package: pip install x")
    with pytest.raises(callables.UserCodeError, match="'torch' needs the torch package"):
        callables.trace_case(case)
