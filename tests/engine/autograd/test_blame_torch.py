"""Blame for PyTorch: the wrong torch.autograd.Function is named, with decoys present."""

from __future__ import annotations

import inspect

import pytest

torch = pytest.importorskip("torch")

import framework_catalogue as fc  # noqa: E402

from engine.autograd.blame import blame  # noqa: E402
from engine.autograd.blame_torch import recording  # noqa: E402


class Tanh(torch.autograd.Function):  # a decoy: right
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class Scale(torch.autograd.Function):  # a decoy with a constant argument: right
    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, g):
        return g * ctx.k, None


def _culprit_class(name, backward):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x) * x

    return type(name, (torch.autograd.Function,), {
        "forward": staticmethod(forward), "backward": staticmethod(backward)})


def _right(ctx, g):
    (x,) = ctx.saved_tensors
    return g * (torch.cos(x) * x + torch.sin(x))


def _sign(ctx, g):
    return -_right(ctx, g)


def _factor(ctx, g):
    return 1.001 * _right(ctx, g)


def _negative_only(ctx, g):
    (x,) = ctx.saved_tensors
    return torch.where(x < 0, 2 * _right(ctx, g), _right(ctx, g))


def _one_element(ctx, g):
    mask = torch.ones_like(g)
    mask[1, 2] = 1.5
    return _right(ctx, g) * mask


WRONG = {"sign": _sign, "factor": _factor, "negative inputs only": _negative_only,
         "one element": _one_element}


def _model(op):
    def f(x, w):
        h = Tanh.apply(x @ w)  # a right Function before ...
        return (Scale.apply(op.apply(h), 2.0) + h).sum()  # ... and one after

    return f


def _inputs(dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, generator=gen, dtype=dtype).requires_grad_()
    w = torch.randn(4, 3, generator=gen, dtype=dtype).requires_grad_()
    return x, w


def _line(fn):
    return fn.__code__.co_firstlineno


def test_right_functions_blame_nothing():
    result = blame(_model(_culprit_class("Good", _right)), _inputs())
    assert result.culprit is None
    assert [c.name for c in result.checks] == ["TanhBackward", "GoodBackward", "ScaleBackward"]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(WRONG))
def test_the_wrong_function_is_named_with_its_backwards_line(kind, dtype):
    op = _culprit_class("MyOp", WRONG[kind])
    result = blame(_model(op), _inputs(dtype))
    culprit = result.culprit
    assert culprit is not None and culprit.user_class == "MyOp"
    assert culprit.name == "MyOpBackward"
    assert culprit.location.endswith(f"test_blame_torch.py:{_line(WRONG[kind])}")
    assert [c.ok for c in result.checks] == [True, False, True]  # the decoys are not named


def test_wrong_transposed_matmul_names_the_input():
    class MatMul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g @ b.T, g.T @ a  # should be a.T @ g

    a, b = (torch.randn(3, 3, dtype=torch.float64, requires_grad=True) for _ in range(2))
    result = blame(lambda a, b: Tanh.apply(MatMul.apply(a.exp(), b)).sum(), [a, b])
    assert result.culprit.user_class.endswith("MatMul") and result.culprit.input_index == 1


@pytest.mark.parametrize(
    "case", [c for c in fc.catalogue(fc.torch_ops()) if c.name in fc.SAMPLE and not
             c.second_order], ids=lambda c: c.name)
def test_catalogue_functions_are_blamed_exactly_when_wrong(case):
    func, args = case.build("float64")
    result = blame(lambda *xs: Tanh.apply(func(*[Tanh.apply(x) for x in xs])).sum(), args)
    names = [c.name for c in result.checks if not c.ok]
    # Only the catalogue's Function, never the Tanh decoys around it.
    assert names == ([func.__self__.__name__ + "Backward"] if case.wrong else []), str(result)


def test_a_backward_that_raises_is_named():
    class Boom(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")

    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    culprit = blame(lambda a: Tanh.apply(Boom.apply(a)).sum(), [x]).culprit
    assert culprit.name == "BoomBackward" and "raised ValueError: boom" in culprit.describe()


# ------------------------------------------------------------------------ second order


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x * x


class DetachedCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x.detach() ** 2


class NumpyCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.from_numpy(3 * g.detach().numpy() * x.detach().numpy() ** 2)


class OnceCube(Cube):
    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x * x


class CubeGradBug(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, g):
        ctx.save_for_backward(x, g)
        return 3 * g * x * x

    @staticmethod
    def backward(ctx, h):
        x, g = ctx.saved_tensors
        return 3 * h * g * x, 3 * h * x * x  # d/dx is 6 g x h


class NestedCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return CubeGradBug.apply(x, g)


def _second(op):
    x = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64, requires_grad=True)
    return blame(lambda a: Tanh.apply(Cube.apply(op.apply(a.sin()))).sum(), [x], order=2)


def test_second_order_right_functions_blame_nothing():
    assert _second(Cube).culprit is None


@pytest.mark.parametrize(
    ("op", "words"),
    [
        (DetachedCube, "outside the graph"),
        (NumpyCube, "does not require grad"),
        (OnceCube, "once_differentiable"),
    ],
    ids=["detached", "numpy", "once_differentiable"],
)
def test_second_order_names_the_function_whose_backward_is_not_differentiable(op, words):
    culprit = _second(op).culprit
    assert culprit is not None and culprit.user_class == op.__qualname__
    assert culprit.order == 2 and words in culprit.describe()
    backward = inspect.unwrap(op.backward)  # once_differentiable wraps it
    assert culprit.location.endswith(f"test_blame_torch.py:{_line(backward)}")


def test_second_order_names_a_wrong_function_its_backward_calls():
    culprit = _second(NestedCube).culprit
    assert culprit.user_class == "CubeGradBug" and "factor of 0.5" in culprit.describe()


CUBE = Cube.apply  # the usual alias, bound before any recording starts


def test_recording_sees_aliases_and_subclasses_restores_forward_skips_calls_without_grad():
    before = Cube.__dict__["forward"]
    with recording() as calls:
        CUBE(torch.ones(2))  # needs no grad: not a candidate
        CUBE(torch.ones(2, requires_grad=True))
        DetachedCube.apply(torch.ones(2, requires_grad=True))  # forward inherited from Cube
    assert Cube.__dict__["forward"] is before and "forward" not in DetachedCube.__dict__
    assert [c.cls for c in calls] == [Cube, DetachedCube]


def test_a_function_defined_inside_the_checked_function_is_recorded_and_named():
    def f(x):
        class Inner(torch.autograd.Function):  # created anew at every call
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 3 * g * x  # should be 2 g x

        return Tanh.apply(Inner.apply(x)).sum()

    x = torch.linspace(-1, 1, 5, dtype=torch.float64).requires_grad_()
    result = blame(f, (x,))
    assert [c.name for c in result.checks] == ["InnerBackward", "TanhBackward"]
    culprit = result.culprit
    assert culprit is not None and culprit.user_class.endswith("<locals>.Inner")
    # Inner's backward, from its decorator: seven lines below `def f`.
    assert culprit.location.endswith(f"test_blame_torch.py:{f.__code__.co_firstlineno + 7}")
    # The recording leaves no trace on classes created inside it or on torch's metaclass.
    assert type(torch.autograd.Function).__init__ is type(torch.autograd.Function).__dict__[
        "__init__"]
    with recording() as calls:
        f(x)
    assert [c.cls.__name__ for c in calls] == ["Inner", "Tanh"]
