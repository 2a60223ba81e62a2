"""The traced graph: nodes in order, tree rows with references, Mermaid and DOT text."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gradcheck_cli.expr import parse
from gradcheck_cli.trace import (
    TraceGraph,
    TraceNode,
    to_dot,
    to_json_dict,
    to_mermaid,
    to_step_scans,
    trace_expression,
    tree_rows,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_render import graph_of_quadratic  # noqa: E402

MERMAID_GOLDEN = """\
graph TD
    n0["x = 3<br/>leaf · grad 8"]
    n1["x*x = 9<br/>MulBackward0 · grad 1"]
    n2["2<br/>constant"]
    n3["2*x = 6<br/>MulBackward0 · grad 1"]
    n4["x*x + 2*x = 15<br/>AddBackward0 · grad 1"]
    n5["1<br/>constant"]
    n6["x*x + 2*x + 1 = 16<br/>AddBackward0 · grad 1"]
    n0 --> n1
    n0 --> n1
    n2 --> n3
    n0 --> n3
    n1 --> n4
    n3 --> n4
    n4 --> n6
    n5 --> n6
    style n0 fill:#e1f5fe
    style n6 fill:#c8e6c9
"""

DOT_GOLDEN = """\
digraph gradcheck {
    rankdir=BT;
    node [shape=box, style="rounded,filled", fillcolor="white", fontname="Helvetica"];
    n0 [label="x = 3\\nleaf · grad 8", fillcolor="#e1f5fe"];
    n1 [label="x*x = 9\\nMulBackward0 · grad 1"];
    n2 [label="2\\nconstant"];
    n3 [label="2*x = 6\\nMulBackward0 · grad 1"];
    n4 [label="x*x + 2*x = 15\\nAddBackward0 · grad 1"];
    n5 [label="1\\nconstant"];
    n6 [label="x*x + 2*x + 1 = 16\\nAddBackward0 · grad 1", fillcolor="#c8e6c9"];
    n0 -> n1;
    n0 -> n1;
    n2 -> n3;
    n0 -> n3;
    n1 -> n4;
    n3 -> n4;
    n4 -> n6;
    n5 -> n6;
}
"""


def test_mermaid_golden() -> None:
    assert to_mermaid(graph_of_quadratic()) == MERMAID_GOLDEN


def test_dot_golden() -> None:
    assert to_dot(graph_of_quadratic()) == DOT_GOLDEN


def test_labels_are_escaped() -> None:
    node = TraceNode(0, 'say "hi" <b>#1', "leaf", None, 1.0, 1.0, (), True)
    graph = TraceGraph("x", {"x": 1.0}, (node,))
    assert 'n0["say #quot;hi#quot; #lt;b#gt;#35;1 = 1<br/>leaf · grad 1"]' in to_mermaid(graph)
    assert 'label="say \\"hi\\" <b>#1 = 1\\nleaf · grad 1"' in to_dot(graph)


def test_tree_rows_show_each_node_once_then_reference_it() -> None:
    rows = tree_rows(graph_of_quadratic())
    assert [(r.depth, r.node.id, r.shown_before) for r in rows] == [
        (0, 6, False),
        (1, 4, False),
        (2, 1, False),
        (3, 0, False),
        (3, 0, True),
        (2, 3, False),
        (3, 2, False),
        (3, 0, True),
        (1, 5, False),
    ]


def test_tree_rows_walk_a_long_chain_without_recursion() -> None:
    depth = 5000  # far beyond Python's recursion limit
    nodes = [TraceNode(0, "x", "leaf", None, 1.0, 1.0, (), True)]
    for i in range(1, depth):
        nodes.append(TraceNode(i, f"n{i}", "neg", "NegBackward0", 1.0, 1.0, (i - 1,), False))
    rows = tree_rows(TraceGraph("x", {"x": 1.0}, tuple(nodes)))
    assert len(rows) == depth
    assert rows[-1].depth == depth - 1 and rows[-1].node.is_leaf


def test_trace_of_the_seed_quadratic_on_the_engine() -> None:
    graph = trace_expression(parse("x*x + 2*x + 1"), "x*x + 2*x + 1", {"x": 3.0}, "float64")
    leaves = [n for n in graph.nodes if n.is_leaf]
    assert [(n.label, n.value, n.grad) for n in leaves] == [("x", 3.0, 8.0)]
    assert graph.output.value == 16.0 and graph.output.grad == 1.0
    assert graph.output.grad_fn == "AddBackward0"
    # Each distinct subexpression appears once, children before parents.
    labels = [n.label for n in graph.nodes]
    assert len(labels) == len(set(labels))
    assert all(child < n.id for n in graph.nodes for child in n.children)


def test_trace_shares_a_repeated_subexpression() -> None:
    graph = trace_expression(
        parse("(a + b) * (a + b)"), "(a + b) * (a + b)", {"a": 1, "b": 2}, "float64"
    )
    product = graph.output
    assert product.children[0] == product.children[1]
    shared = graph.nodes[product.children[0]]
    assert (shared.value, shared.grad) == (3.0, 6.0)  # d(s*s)/ds = 2s, accumulated from both uses
    refs = [r for r in tree_rows(graph) if r.shown_before]
    assert [r.node.id for r in refs] == [shared.id]


def test_trace_json_is_plain_data() -> None:
    graph = graph_of_quadratic()
    data = to_json_dict(graph)
    assert data["output"] == 6 and len(data["nodes"]) == 7
    assert data["nodes"][1] == {
        "id": 1,
        "label": "x*x",
        "op": "mul",
        "grad_fn": "MulBackward0",
        "value": 9.0,
        "grad": 1.0,
        "children": [0, 0],
        "leaf": False,
    }


def test_step_scan_has_the_v_shape() -> None:
    [scan] = to_step_scans(parse("sin(x)"), {"x": 1.0}, {"x": 0.5403023058681398})
    best = min(range(len(scan.errors)), key=scan.errors.__getitem__)
    assert 0 < best < len(scan.errors) - 1
    assert scan.errors[0] > scan.errors[best] and scan.errors[-1] > scan.errors[best]
    assert scan.chosen == pytest.approx(6.06e-6, rel=0.01)  # cbrt(eps) * max(1, |x|)
