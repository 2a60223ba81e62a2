"""engine.testing.assert_gradcheck: silent when right, the CLI's table when wrong."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine.autograd import Function
from engine.testing import assert_gradcheck

ROOT = Path(__file__).resolve().parents[2]


class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x


class SquareTimesThree(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 6 * g * x  # wrong on purpose: three times the derivative


class DetachedSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # Right values, computed outside the graph: the second derivative is lost.
        return g * engine.tensor(2 * x.detach().numpy(), dtype=engine.float64)


def inputs() -> engine.Tensor:
    return engine.tensor([0.5, -1.25, 2.0], dtype=engine.float64, requires_grad=True)


def test_a_right_backward_passes_silently() -> None:
    assert_gradcheck(Square.apply, inputs())
    assert_gradcheck(lambda x, w: (Square.apply(x) * w).sum(), [inputs(), inputs()], order=2)
    x32 = engine.tensor([0.5, -1.25], dtype=engine.float32, requires_grad=True)
    assert_gradcheck(Square.apply, (x32,))


def test_a_wrong_backward_raises_the_table_naming_the_class_and_line() -> None:
    def model(x):
        return Square.apply(SquareTimesThree.apply(x).sin()).sum()

    with pytest.raises(AssertionError) as info:
        assert_gradcheck(model, [inputs()])
    text = str(info.value)
    lines = text.splitlines()
    line = inspect.getsourcelines(SquareTimesThree.backward)[1]
    where = f"{os.path.relpath(__file__)}:{line}"
    # The verdict first (pytest's -r summary shows this line), then the table.
    assert lines[0] == (
        f"gradcheck failed for test_testing:model: blame: SquareTimesThree.backward at {where}:"
        " off by a factor of 3"
    )
    assert lines[1].startswith("assert_gradcheck(") and lines[1].endswith("test_testing:model)")
    assert lines[2].split() == ["status", "case", "point", "value", "auto−sym", "num−sym"]
    assert lines[3].split()[:4] == ["✗", "FAIL", "model", "x[3]"]
    assert f"blame: SquareTimesThree.backward at {where}: off by a factor of 3" in " ".join(
        text.split()
    )
    assert "hint: the analytic gradient is 3 times the numeric one" in text
    assert "\x1b[" not in text  # plain text, whatever the terminal


def test_order_2_fails_a_backward_that_is_not_differentiable() -> None:
    assert_gradcheck(DetachedSquare.apply, inputs())
    with pytest.raises(AssertionError, match="gradgradcheck"):
        assert_gradcheck(DetachedSquare.apply, inputs(), order=2)


def test_an_exception_in_user_code_is_an_error_row_with_its_line() -> None:
    def broken(x):
        return x * missing  # noqa: F821 - the error under test

    with pytest.raises(AssertionError) as info:
        assert_gradcheck(broken, inputs())
    line = inspect.getsourcelines(broken)[1] + 1
    text = str(info.value)
    assert text.startswith("gradcheck error for test_testing:broken: NameError: name 'missing'")
    assert "! ERROR  broken" in text
    assert "NameError: name 'missing' is not defined (raised at " in text
    assert f"{os.path.relpath(__file__)}:{line} in forward)" in " ".join(text.split())


def test_tolerances_and_bad_arguments() -> None:
    class Slightly(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2.0001 * g * x

    with pytest.raises(AssertionError):
        assert_gradcheck(Slightly.apply, inputs())
    # gradcheck's meaning: tolerances stated at float32 precision, scaled for float64.
    assert_gradcheck(Slightly.apply, inputs(), atol=0.1, rtol=0.1)
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        assert_gradcheck(Square.apply, inputs(), order=3)


PYTEST_USER_TEST = """
import engine
from engine.autograd import Function
from engine.testing import assert_gradcheck


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 6 * g * x**2  # twice the derivative


def test_cube():
    x = engine.tensor([0.5, -1.0, 2.0], dtype=engine.float64, requires_grad=True)
    assert_gradcheck(Cube.apply, x)
"""


def test_pytest_shows_the_verdict_and_the_users_line_not_the_librarys_source(tmp_path) -> None:
    (tmp_path / "test_user.py").write_text(PYTEST_USER_TEST, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "200"  # pytest cuts the summary line to the terminal's width
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rf", "-p", "no:cacheprovider", "test_user.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert ">       assert_gradcheck(Cube.apply, x)" in out  # the user's line is the last frame
    assert "def assert_gradcheck" not in out and "raise AssertionError" not in out
    summary = next(line for line in out.splitlines() if line.startswith("FAILED "))
    # The line inspect reports for backward: its decorator's, one above the def.
    line = PYTEST_USER_TEST.splitlines().index("    def backward(ctx, g):")
    assert summary == (
        "FAILED test_user.py::test_cube - AssertionError:"
        " gradcheck failed for test_user:Cube.apply:"
        f" blame: Cube.backward at test_user.py:{line}: off by a factor of 2"
    )
