"""The AST on the engine: node order, sharing, names, values and gradients."""

from __future__ import annotations

import math

import pytest

import engine
from gradcheck_cli.expr import parse
from gradcheck_cli.lower import LoweredNode, to_engine


def test_nodes_are_topological_with_leaves_first_and_output_last() -> None:
    low = to_engine(parse("x**2 + 2*x*y + 1"), {"x": 3.0, "y": 2.0})
    assert [n.label for n in low.nodes[:2]] == ["x", "y"]
    assert all(n.is_leaf and n.op == "leaf" for n in low.nodes[:2])
    assert not any(n.is_leaf for n in low.nodes[2:])
    for i, node in enumerate(low.nodes):
        assert all(c < i for c in node.children)
    assert low.nodes[-1].tensor is low.output
    assert low.nodes[-1].label == "x**2 + 2*x*y + 1"
    assert float(low.output.item()) == 22.0


def test_each_distinct_subexpression_once() -> None:
    low = to_engine(parse("sin(x)*sin(x) + x"), {"x": 0.5})
    labels = [n.label for n in low.nodes]
    assert labels.count("sin(x)") == 1 and labels.count("x") == 1
    mul = next(n for n in low.nodes if n.op == "mul")
    assert mul.children[0] == mul.children[1]


def test_leaves_keep_user_names_and_require_grad() -> None:
    low = to_engine(parse("gamma*beta + E1"), {"gamma": 1.0, "beta": 2.0, "E1": 3.0})
    assert list(low.leaves) == ["gamma", "beta", "E1"]
    assert all(t.requires_grad and t.is_leaf for t in low.leaves.values())
    assert low.backward() == {"gamma": 2.0, "beta": 1.0, "E1": 1.0}


def test_intermediate_gradients_are_retained() -> None:
    low = to_engine(parse("exp(2*x)"), {"x": 0.0})
    low.backward()
    ops = {n.op: i for i, n in enumerate(low.nodes)}
    assert low.grad(ops["exp"]) == 1.0
    assert low.grad(ops["mul"]) == 1.0
    assert low.grad(ops["leaf"]) == 2.0
    assert low.grad(ops["const"]) is None
    assert low.nodes[ops["exp"]].tensor.grad_fn is not None


def test_retain_grad_false_builds_the_plain_graph() -> None:
    low = to_engine(parse("exp(2*x)"), {"x": 0.0}, retain_grad=False)
    assert low.backward() == {"x": 2.0}
    assert not any(n.tensor.retains_grad for n in low.nodes if not n.is_leaf)


def test_ops_and_labels() -> None:
    low = to_engine(parse("-x/y - pi + x**y"), {"x": 2.0, "y": 4.0})
    assert {n.op for n in low.nodes} == {"leaf", "neg", "div", "const", "sub", "pow", "add"}
    const = next(n for n in low.nodes if n.op == "const")
    assert const.label == "pi" and float(const.tensor.item()) == pytest.approx(math.pi)
    assert isinstance(low.nodes[0], LoweredNode)


def test_long_label_is_shortened_but_text_is_full() -> None:
    text = " + ".join(f"x{i}" for i in range(30))
    low = to_engine(parse(text), {f"x{i}": 1.0 for i in range(30)})
    assert len(low.nodes[-1].label) == 60 and low.nodes[-1].label.endswith("...")
    assert low.nodes[-1].text == text


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype(dtype: str) -> None:
    low = to_engine(parse("x*0.1"), {"x": 3.0}, dtype)
    assert low.output.dtype == getattr(engine, dtype)
    assert all(n.tensor.dtype == getattr(engine, dtype) for n in low.nodes)


def test_bad_dtype() -> None:
    with pytest.raises(ValueError, match="dtype must be"):
        to_engine(parse("x"), {"x": 1.0}, "float16")


def test_negative_base_with_literal_exponent() -> None:
    low = to_engine(parse("x**2 + x**-1"), {"x": -2.0})
    assert float(low.output.item()) == 3.5
    assert low.backward()["x"] == pytest.approx(-4 - 0.25)


def test_softplus_is_smooth_and_stable() -> None:
    for x, value, grad in [(0.0, math.log(2), 0.5), (100.0, 100.0, 1.0), (-100.0, 0.0, 0.0)]:
        low = to_engine(parse("softplus(x)"), {"x": x})
        assert float(low.output.item()) == pytest.approx(value, abs=1e-40)
        assert low.backward()["x"] == pytest.approx(grad, abs=1e-40)


def test_constant_expression_has_no_leaves() -> None:
    low = to_engine(parse("2*pi"), {})
    assert low.leaves == {} and not low.output.requires_grad
    assert float(low.output.item()) == pytest.approx(2 * math.pi)
