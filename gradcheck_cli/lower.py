"""The same AST lowered to engine ops, one node per distinct subexpression.

Leaves carry the user's variable names, every intermediate tensor retains its gradient, and
the nodes come in topological order (leaves first, output last), so ``trace`` can render the
graph, forward values and gradients without walking engine internals.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from gradcheck_cli.expr import (
    CONSTANT_VALUES,
    OPERATORS,
    Expr,
    Node,
    literal_value,
    postorder,
    row_of,
    subtree_texts,
)

__all__ = ["Lowered", "LoweredNode", "OP_NAMES", "to_engine"]

# Our node kinds -> op names shown in traces (PyTorch's vocabulary), from the table.
OP_NAMES = {
    "var": "leaf",
    "num": "const",
    "const": "const",
    **{name: row.op_name for name, row in OPERATORS.items()},
}
LABEL_LIMIT = 60


@dataclass(frozen=True)
class LoweredNode:
    """One engine value: label (user name, number or subexpression text), op, tensor.

    ``children`` are indices into ``Lowered.nodes``; ``is_leaf`` marks the user's variables
    (constants are op "const" and not leaves); ``text`` is the full subexpression text.
    """

    label: str
    op: str
    tensor: Any
    children: tuple[int, ...]
    is_leaf: bool
    text: str = ""


@dataclass
class Lowered:
    """An expression built on the engine: output, named leaves and every node in order."""

    expr: Expr
    output: Any
    leaves: dict[str, Any]
    nodes: list[LoweredNode]

    def backward(self) -> dict[str, float]:
        """Run output.backward() and return the gradient of each leaf as a float."""
        self.output.backward()
        return {
            name: (float(t.grad.item()) if t.grad is not None else 0.0)
            for name, t in self.leaves.items()
        }

    def grad(self, index: int) -> float | None:
        """The gradient that reached node ``index`` after backward(), if any."""
        g = self.nodes[index].tensor.grad
        return None if g is None else float(g.item())


def _engine() -> Any:
    return importlib.import_module("engine")


def _shorten(text: str) -> str:
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 3] + "..."


def to_engine(
    expr: Expr, point: dict[str, float], dtype: str = "float64", *, retain_grad: bool = True
) -> Lowered:
    """Build expr on the engine at point: leaves require grad, intermediates retain grad.

    ``retain_grad=False`` builds the plain graph (what a user's code would build), for
    checks that only need the leaves' gradients or differentiate twice.
    """
    E = _engine()
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    edtype = getattr(E, dtype)
    nodes: list[LoweredNode] = []
    index: dict[Node, int] = {}
    leaves: dict[str, Any] = {}
    for name in expr.variables:
        t = E.tensor(float(point[name]), requires_grad=True, dtype=edtype)
        leaves[name] = t
        index[Node("var", name)] = len(nodes)
        nodes.append(LoweredNode(name, "leaf", t, (), True, name))
    texts = subtree_texts(expr.root)
    for node in postorder(expr.root):
        if node in index:
            continue
        children = tuple(index[a] for a in node.args)
        tensor = _lower_node(E, edtype, node, [nodes[c].tensor for c in children])
        if retain_grad and getattr(tensor, "requires_grad", False) and not tensor.is_leaf:
            tensor.retain_grad()
        text = texts[id(node)]
        op = OP_NAMES.get(node.kind) or str(node.value)
        index[node] = len(nodes)
        nodes.append(LoweredNode(_shorten(text), op, tensor, children, False, text))
    return Lowered(expr, nodes[index[expr.root]].tensor, leaves, nodes)


def _lower_node(E: Any, edtype: Any, node: Node, args: list[Any]) -> Any:
    kind = node.kind
    if kind == "num":
        return E.tensor(float(node.value), dtype=edtype)  # type: ignore[arg-type]
    if kind == "const":
        return E.tensor(CONSTANT_VALUES[str(node.value)], dtype=edtype)
    row = row_of(node)
    for k in row.literals:
        # A literal stays a Python number, as in hand-written torch code (x ** 2, elu(x, 0.5)).
        value = literal_value(node.args[k]) if k < len(node.args) else None
        if value is not None:
            args[k] = value
    return row.engine(E, *args)
