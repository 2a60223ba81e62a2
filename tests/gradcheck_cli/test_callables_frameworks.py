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
