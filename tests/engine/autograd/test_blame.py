"""Blame names the node whose own backward is wrong, for a catalogue of wrong backwards."""

from __future__ import annotations

import pytest

import engine
from engine.autograd import Function
from engine.autograd.blame import blame, forward_order


def _function(name, backward):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin() * x

    return type(name, (Function,), {"forward": staticmethod(forward),
                                     "backward": staticmethod(backward)})


def _right(ctx, g):
    (x,) = ctx.saved_tensors
    return g * (x.cos() * x + x.sin())


WRONG = {
    "sign": lambda ctx, g: -_right(ctx, g),
    "factor 2": lambda ctx, g: 2 * _right(ctx, g),
    "factor 1.0001": lambda ctx, g: 1.0001 * _right(ctx, g),
    "forgotten chain-rule factor": lambda ctx, g: _right(ctx, engine.ones_like(g)),
    "negative inputs only": lambda ctx, g: engine.where(
        ctx.saved_tensors[0] < 0, 3 * _right(ctx, g), _right(ctx, g)),
    "one element": lambda ctx, g: _right(ctx, g) * engine.tensor(
        [1.0, 1.0, 1.5, 1.0, 1.0, 1.0], dtype=engine.float64).reshape(2, 3),
}


def _model(op):
    def f(x, w):
        h = (x @ w).tanh()  # correct engine ops before ...
        return (op.apply(h) * 2.0).sum()  # ... and after the custom op

    return f


def _inputs():
    engine.manual_seed(0)
    x = engine.randn(2, 4, dtype=engine.float64, requires_grad=True)
    w = engine.randn(4, 3, dtype=engine.float64, requires_grad=True)
    return x, w


def test_correct_backward_blames_nothing():
    result = blame(_model(_function("Good", _right)), _inputs())
    assert result.culprit is None
    assert [c.name for c in result.checks] == ["MmBackward0", "TanhBackward0", "GoodBackward",
                                               "MulBackward0", "SumBackward0"]


@pytest.mark.parametrize("kind", sorted(WRONG))
def test_blame_names_the_wrong_function(kind):
    op = _function("MyOp", WRONG[kind])
    result = blame(_model(op), _inputs())
    culprit = result.culprit
    assert culprit is not None and culprit.name == "MyOpBackward"
    assert culprit.user_class == "MyOp"
    assert culprit.location.endswith(f"test_blame.py:{_line(WRONG[kind])}")
    assert all(c.ok for c in result.checks if c is not culprit)


def test_blame_describes_the_pattern():
    result = blame(_model(_function("MyOp", WRONG["factor 2"])), _inputs())
    assert "off by a factor of 2" in str(result)
    assert str(result).startswith("MyOp.backward at ")
    result = blame(_model(_function("MyOp", WRONG["sign"])), _inputs())
    assert "wrong sign" in str(result)


def test_blame_wrong_transposed_matmul():
    class MatMul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g @ b.t(), (g.t() @ a).t().t().t().t()  # forgot to transpose back

    engine.manual_seed(1)
    a = engine.randn(3, 3, dtype=engine.float64, requires_grad=True)
    b = engine.randn(3, 3, dtype=engine.float64, requires_grad=True)
    result = blame(lambda a, b: MatMul.apply(a.exp(), b).sum(), [a, b])
    assert result.culprit.name == "MatMulBackward" and result.culprit.input_index == 1


def test_forward_order_puts_inputs_first():
    x = engine.tensor([1.0], requires_grad=True)
    y = (x * 2).exp() + x.sin()
    names = [n.name() for n in forward_order([y])]
    assert names.index("MulBackward0") < names.index("ExpBackward0") < names.index("AddBackward0")
    assert names.index("SinBackward0") < names.index("AddBackward0")


def _line(fn):
    return fn.__code__.co_firstlineno


def test_every_op_table_rule_passes_its_local_check():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from op_cases import CASES

    rng = __import__("numpy").random.default_rng(0)
    for name, case in CASES.items():
        lo, hi = case.domain
        xs = [engine.tensor(rng.uniform(lo, hi, s), dtype=engine.float64, requires_grad=True)
              for s in case.shapes]
        result = blame(lambda *t, case=case: case.fn(*t), xs)
        assert result.culprit is None, (name, str(result))


# ------------------------------------------------------------------------ second order


class Cube(Function):
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
        return engine.tensor(3 * g.detach().numpy() * x.detach().numpy() ** 2,
                             dtype=engine.float64)


class CubeGradBug(Function):
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
    x = engine.tensor([0.5, -1.25, 2.0], dtype=engine.float64, requires_grad=True)
    return blame(lambda a: (Cube.apply(op.apply(a.sin())) * 2).sum(), [x], order=2)


def test_second_order_right_graph_blames_nothing():
    result = _second(Cube)
    assert result.culprit is None
    assert {c.order for c in result.checks} == {1, 2}


@pytest.mark.parametrize(("op", "words"), [(DetachedCube, "outside the graph"),
                                            (NumpyCube, "does not require grad")],
                         ids=["detached", "numpy"])
def test_second_order_names_the_function_whose_backward_leaves_the_graph(op, words):
    culprit = _second(op).culprit
    assert culprit.user_class == op.__qualname__ and culprit.order == 2
    assert words in culprit.describe() and "double backward" in culprit.describe()
    assert culprit.location.endswith(f"test_blame.py:{_line(op.backward)}")
    # First order, the same function is right: blame at order 1 finds nothing.
    x = engine.tensor([0.5, -1.25, 2.0], dtype=engine.float64, requires_grad=True)
    assert blame(lambda a: op.apply(a).sum(), [x]).culprit is None


def test_second_order_names_a_wrong_function_that_a_backward_calls():
    culprit = _second(NestedCube).culprit
    assert culprit.user_class == "CubeGradBug" and culprit.order == 1
    assert "factor of 0.5" in culprit.describe()


def test_every_op_table_rule_passes_its_second_order_check():
    import sys
    from pathlib import Path

    import numpy as np

    from engine.autograd.blame import _engine_op, check_op
    from engine.autograd.frameworks import for_name
    from engine.autograd.graph import keeping_inputs

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from op_cases import CASES

    rng = np.random.default_rng(0)
    adapter = for_name("engine")
    for name, case in CASES.items():
        lo, hi = case.domain
        xs = [engine.tensor(rng.uniform(lo, hi, s), dtype=engine.float64, requires_grad=True)
              for s in case.shapes]
        # Each node's backward against its double backward (the first-order checks are the
        # test above): no rule of the table is named by a second-order blame.
        with keeping_inputs():  # (blame() records this way: every node keeps its inputs)
            out = case.fn(*xs)
        for i, node in enumerate(forward_order([out])):
            check = check_op(adapter, _engine_op(node), i, rng, 1e-8, 1e-6, order=2)
            assert check.ok, (name, check.describe())
