"""The stand-in for sympy.tensor.tensor: sums need no tensors, and tensors still work.

Each test runs in a fresh interpreter, where the real module is not loaded yet.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str, deferred: bool = True) -> list[str]:
    """The lines a fresh interpreter prints running code, after installing the stand-in
    (or, deferred=False, without it)."""
    prelude = "import sys, sympy\n"
    if deferred:
        prelude += (
            "from gradcheck_cli.sympy_startup import defer_tensor_module\n"
            "defer_tensor_module()\n"
        )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


FORMULAS = """
x, y = sympy.symbols("x y", real=True)
e = (x * x + sympy.sin(x * y) + 2 * x + x) / (1 + y)
print(e.diff(x), "|", sympy.factor_terms(e.diff(y)), "|", sympy.cancel(e.diff(x)))
"""


def test_sums_and_derivatives_load_no_tensor_module_and_no_groups() -> None:
    out = run(
        FORMULAS
        + """
print("sympy.combinatorics" in sys.modules)
print(type(sys.modules["sympy.tensor.tensor"]).__name__)
"""
    )
    # The same formulas as SymPy gives with its real tensor module.
    assert out[0] == run(FORMULAS, deferred=False)[0]
    assert out[1:] == ["False", "_DeferredTensorModule"]


def test_tensors_load_the_real_module_on_first_use_and_sums_of_them_still_work() -> None:
    out = run(
        """
        stand_in = sys.modules["sympy.tensor.tensor"]
        print(getattr(stand_in, "__file__", None))  # a dunder never loads the module
        print("sympy.combinatorics" in sys.modules)
        from sympy.tensor.tensor import TensorIndexType, tensor_heads, tensor_indices
        import sympy.tensor.tensor as real
        L = TensorIndexType("L")
        i = tensor_indices("i", L)
        A, B = tensor_heads("A B", [L])
        total = A(i) + B(i) + A(i)  # Add.flatten's tensor branch, with the real classes
        print(type(total).__name__, total)
        print(real is sys.modules["sympy.tensor.tensor"] is sympy.tensor.tensor)
        print(type(real).__name__, stand_in.TensExpr is real.TensExpr)
        print("sympy.combinatorics" in sys.modules)
        """
    )
    assert out == [
        "None",
        "False",
        "TensAdd 2*A(i) + B(i)",
        "True",
        "module True",
        "True",
    ]


def test_an_already_loaded_tensor_module_is_left_alone() -> None:
    code = (
        "import sys, sympy.tensor.tensor as real\n"
        "from gradcheck_cli.sympy_startup import defer_tensor_module\n"
        "defer_tensor_module()\n"
        "print(sys.modules['sympy.tensor.tensor'] is real)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout == "True\n", done.stderr


def test_a_star_import_gets_every_name_of_the_real_module() -> None:
    out = run(
        """
        from sympy.tensor.tensor import *
        print(TensorIndexType.__module__, callable(tensor_heads))
        print(type(sys.modules["sympy.tensor.tensor"]).__name__)
        """
    )
    assert out == ["sympy.tensor.tensor True", "module"]
