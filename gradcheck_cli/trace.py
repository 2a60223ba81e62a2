"""Traces of one computation: the engine graph (tree, Mermaid, DOT) and the step-size scan.

The node whose own derivative is wrong (engine.autograd.blame) is marked in every format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradcheck_cli.report import printable

if TYPE_CHECKING:
    from gradcheck_cli.lower import Lowered

# The V-plot's steps: half decades, scaled by max(1, |x|) like the checker's own step.
SCAN_STEPS = tuple(10.0 ** (k / 2) for k in range(-28, -1))
# The seed's diagrams colour sources light blue and the result light green; keep that.
LEAF_FILL = "#e1f5fe"
OUTPUT_FILL = "#c8e6c9"
BLAME_FILL = "#ffcdd2"  # the node whose own derivative is wrong (engine.autograd.blame)
BLAME_MARK = "✗"


@dataclass(frozen=True)
class TraceNode:
    """One distinct subexpression of the traced graph, with its value and gradient."""

    id: int
    label: str
    op: str
    grad_fn: str | None
    value: float | None  # None: not kept (a callable's inner node, or a non-scalar)
    grad: float | None
    children: tuple[int, ...]
    is_leaf: bool
    blame: str | None = None  # why this node's own derivative is wrong, when it is
    shape: tuple[int, ...] = ()  # non-scalar values (callables) show their shape instead


@dataclass(frozen=True)
class TraceGraph:
    """The traced graph: nodes in topological order, output last."""

    expr: str
    point: dict[str, float]
    nodes: tuple[TraceNode, ...]
    blame: str | None = None  # the culprit's one-line description, if any node is wrong

    @property
    def output(self) -> TraceNode:
        """The node whose value is the expression's value."""
        return self.nodes[-1]


@dataclass(frozen=True)
class TreeRow:
    """One line of the output-to-leaves tree; `shown_before` marks a reference line."""

    depth: int
    node: TraceNode
    shown_before: bool


def _scalar(tensor: Any) -> float | None:
    """A Python float from a 0-d engine tensor, or None."""
    return None if tensor is None else float(tensor.item())


def find_culprit(outputs: list[Any]) -> tuple[Any, str] | None:
    """(grad_fn node, description) of the first node whose own derivative is wrong.

    Runs engine.autograd.blame on the graph before its backward; a graph blame cannot
    re-run (an op it does not know how to replay) is traced without a mark.
    """
    from engine.autograd.blame import blame_graph

    try:
        culprit = blame_graph(outputs).culprit
    except Exception:  # noqa: BLE001 - the trace itself must still be shown
        return None
    return None if culprit is None else (culprit.node, culprit.describe())


def to_trace(lowered: Lowered, expr: str, point: dict[str, float]) -> TraceGraph:
    """Run backward through a lowered expression (its inner nodes retain their gradients)."""
    culprit = None
    if lowered.output.requires_grad:  # an expression with no variables has nothing to trace
        culprit = find_culprit([lowered.output])
        lowered.output.backward()
    nodes = []
    for index, node in enumerate(lowered.nodes):
        grad_fn = node.tensor.grad_fn
        blamed = culprit is not None and grad_fn is not None and grad_fn is culprit[0]
        nodes.append(
            TraceNode(
                id=index,
                label=node.label,
                op=node.op,
                grad_fn=grad_fn.name() if grad_fn is not None else None,
                value=float(node.tensor.item()),
                grad=_scalar(node.tensor.grad),
                children=tuple(node.children),
                is_leaf=node.is_leaf,
                blame=culprit[1] if blamed and culprit else None,
            )
        )
    return TraceGraph(
        expr=expr, point=dict(point), nodes=tuple(nodes), blame=culprit[1] if culprit else None
    )


def trace_callable(
    fn: Callable[..., Any], inputs: Sequence[Any], names: Sequence[str], target: str
) -> TraceGraph:
    """Trace a Python callable's engine graph: inputs, then every node in forward order.

    Each node's incoming gradient is captured during one backward (of the outputs' sum),
    which also gives its shape; the blamed node, if any, is marked.
    """
    import engine
    from engine.autograd.blame import forward_order
    from engine.autograd.graph import keeping_inputs

    with keeping_inputs():  # (blame replays each node at its inputs)
        out = fn(*inputs)
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, engine.Tensor)]
    live = [o for o in outs if o.requires_grad]
    order = forward_order(live)
    culprit = find_culprit(live) if live else None
    outputs = {id(o.grad_fn): o.detach() for o in live}
    seen: dict[int, Any] = {}  # id(grad_fn node) -> the gradient that reached its output 0

    def capture(key: int) -> Callable[[Any], None]:
        def hook(grad: Any) -> None:
            seen[key] = grad

        return hook

    for node in order:
        # The engine's per-output gradient hook slot (what Tensor.register_hook uses).
        hooks = node._hooks = node._hooks or {}
        hooks.setdefault(("pre", 0), []).append(capture(id(node)))
    leaves = [
        (i, x) for i, x in enumerate(inputs) if isinstance(x, engine.Tensor) and x.requires_grad
    ]
    for _, x in leaves:
        x.grad = None
    if live:
        engine.autograd.backward([o.sum() for o in live])
    nodes: list[TraceNode] = []
    ids: dict[int, int] = {}
    for i, x in leaves:
        ids[id(x)] = len(nodes)
        nodes.append(
            _tensor_node(
                len(nodes),
                names[i] if i < len(names) else f"x{i}",
                "leaf",
                None,
                x,
                x.grad,
                (),
                True,
                None,
            )
        )
    for node in order:
        children = []
        for nxt in node._next:
            if nxt is None:
                continue
            variable = getattr(nxt, "variable", None)
            key = id(variable) if variable is not None else id(nxt)
            if key in ids:
                children.append(ids[key])
        blamed = culprit is not None and node is culprit[0]
        name = node.name()
        grad = seen.get(id(node))
        value = outputs.get(id(node))
        ids[id(node)] = len(nodes)
        label = re.sub(r"Backward\d*$", "", name) or name
        nodes.append(
            _tensor_node(
                len(nodes),
                label,
                label.lower(),
                name,
                value,
                grad,
                tuple(children),
                False,
                culprit[1] if blamed and culprit else None,
            )
        )
    return TraceGraph(
        expr=target, point={}, nodes=tuple(nodes), blame=culprit[1] if culprit else None
    )


def trace_torch(
    fn: Callable[..., Any], inputs: Sequence[Any], names: Sequence[str], target: str
) -> TraceGraph:
    """Trace a PyTorch callable's graph (`grad_fn.next_functions` from the outputs), the
    custom torch.autograd.Function whose backward is wrong marked.

    Nodes are in forward order (torch's sequence numbers); each node's incoming gradient is
    captured by a pre-hook during one backward of the outputs' sum.
    """
    import torch

    culprit = _torch_culprit(fn, inputs)
    with torch.enable_grad():
        out = fn(*inputs)
    outs = out if isinstance(out, tuple | list) else (out,)
    live = [o for o in outs if isinstance(o, torch.Tensor) and o.grad_fn is not None]
    found: dict[int, Any] = {}
    stack = [o.grad_fn for o in live]  # explicit stack: graphs can be thousands of ops deep
    while stack:
        node = stack.pop()
        if node is None or id(node) in found or hasattr(node, "variable"):
            continue  # AccumulateGrad (a leaf's node) stands for its tensor
        found[id(node)] = node
        stack.extend(nxt for nxt, _ in node.next_functions)
    order = sorted(found.values(), key=lambda node: node._sequence_nr())
    marked = None
    if culprit is not None:
        same = [node for node in order if node.name() == culprit[0]]
        marked = same[culprit[1]] if culprit[1] < len(same) else None
    outputs = {id(o.grad_fn): o.detach() for o in live}
    seen: dict[int, Any] = {}  # id(node) -> the gradient that reached its output 0

    def capture(key: int) -> Callable[[Any], None]:
        def hook(grad_outputs: Any) -> None:
            seen[key] = grad_outputs[0]

        return hook

    handles = [node.register_prehook(capture(id(node))) for node in order]
    leaves = [(i, x) for i, x in enumerate(inputs)
              if isinstance(x, torch.Tensor) and x.requires_grad]
    for _, x in leaves:
        x.grad = None
    if live:
        torch.autograd.backward([o.sum() for o in live])
    for handle in handles:
        handle.remove()
    nodes: list[TraceNode] = []
    ids: dict[int, int] = {}
    for i, x in leaves:
        ids[id(x)] = len(nodes)
        name = names[i] if i < len(names) else f"x{i}"
        nodes.append(_tensor_node(len(nodes), name, "leaf", None, x.detach(), x.grad, (), True,
                                  None))
    for node in order:
        children = []
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            key = id(nxt.variable) if hasattr(nxt, "variable") else id(nxt)
            if key in ids:
                children.append(ids[key])
        name = node.name()
        label = re.sub(r"Backward\d*$", "", name) or name
        ids[id(node)] = len(nodes)
        blame = culprit[2] if culprit is not None and node is marked else None
        nodes.append(_tensor_node(len(nodes), label, label.lower(), name, outputs.get(id(node)),
                                  seen.get(id(node)), tuple(children), False, blame))
    return TraceGraph(expr=target, point={}, nodes=tuple(nodes),
                      blame=culprit[2] if culprit is not None else None)


def _torch_culprit(fn: Callable[..., Any], inputs: Sequence[Any]) -> tuple[str, int, str] | None:
    """(node name, which application of that Function, description) of the first custom
    Function whose backward is wrong (engine.autograd.blame_torch), or None."""
    from engine.autograd.blame import blame

    try:
        result = blame(fn, inputs)
    except Exception:  # noqa: BLE001 - the trace itself must still be shown
        return None
    culprit = result.culprit
    if culprit is None:
        return None
    before = sum(1 for c in result.checks[: culprit.index] if c.name == culprit.name)
    return culprit.name, before, culprit.describe()


def _tensor_node(
    index: int,
    label: str,
    op: str,
    grad_fn: str | None,
    value: Any,
    grad: Any,
    children: tuple[int, ...],
    is_leaf: bool,
    blame: str | None,
) -> TraceNode:
    """A TraceNode for a tensor-valued node: scalars show numbers, others their shape."""
    import math

    sample = value if value is not None else grad
    shape = tuple(sample.shape) if sample is not None else ()

    def number(t: Any) -> float | None:
        if t is None:
            return None
        return float(t.item()) if t.numel() == 1 else None

    return TraceNode(
        index,
        label,
        op,
        grad_fn,
        number(value),
        number(grad),
        children,
        is_leaf,
        blame,
        shape if math.prod(shape) != 1 else (),
    )


def trace_expression(expr: Any, text: str, point: dict[str, float], dtype: str) -> TraceGraph:
    """Lower a parsed expression onto the engine at a point and trace it."""
    import numpy as np

    from engine.autograd.graph import keeping_inputs

    from gradcheck_cli.lower import to_engine

    # log(-1) and friends are reported through NaN values, not as NumPy warnings on stderr.
    with np.errstate(all="ignore"):
        with keeping_inputs():  # (blame replays each node at its inputs)
            lowered = to_engine(expr, point, dtype)
        return to_trace(lowered, text, point)


def tree_rows(graph: TraceGraph) -> list[TreeRow]:
    """Depth-first rows from the output to the leaves; a node seen before is a reference."""
    rows: list[TreeRow] = []
    seen: set[int] = set()
    stack = [(graph.output.id, 0)]  # explicit stack: graphs can be thousands of ops deep
    while stack:
        node_id, depth = stack.pop()
        node = graph.nodes[node_id]
        rows.append(TreeRow(depth, node, node_id in seen))
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.extend((child, depth + 1) for child in reversed(node.children))
    return rows


def _num(value: float | None) -> str:
    """Compact number text for graph labels."""
    return "-" if value is None else f"{value:.6g}"


def node_caption(node: TraceNode) -> str:
    """'x*x = 9' (or 'x = 3' for a leaf, '2' for a constant): expression and forward value."""
    if node.op == "const" and node.label == _num(node.value):
        return node.label  # a literal is its own value
    if node.shape:
        return f"{node.label} [{', '.join(map(str, node.shape))}]"
    if node.value is None:
        return node.label
    return f"{node.label} = {_num(node.value)}"


def node_blame(node: TraceNode) -> str:
    """'✗ LogCosh.backward at ops.py:32: off by a factor of 2', or '' for a sound node."""
    return f"{BLAME_MARK} {node.blame}" if node.blame else ""


def node_detail(node: TraceNode) -> str:
    """'MulBackward0 · grad 1' / 'leaf · grad 8' / 'constant'."""
    if node.is_leaf:
        kind = "leaf"
    elif node.op == "const":
        kind = "constant"
    else:
        kind = node.grad_fn or node.op
    return kind if node.grad is None else f"{kind} · grad {_num(node.grad)}"


def _edges(graph: TraceGraph) -> list[tuple[int, int]]:
    """(child, parent) pairs in node order: data flows from child to parent."""
    return [(child, node.id) for node in graph.nodes for child in node.children]


def _mermaid_text(text: str) -> str:
    """Escape text for a Mermaid quoted label."""
    text = printable(text)
    for raw, entity in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, entity)
    return text


def to_mermaid(graph: TraceGraph) -> str:
    """A Mermaid `graph TD` of the trace, drawn like the seed's diagrams."""
    lines = ["graph TD"]
    for node in graph.nodes:
        label = _mermaid_text(node_caption(node)) + "<br/>" + _mermaid_text(node_detail(node))
        if node.blame:
            label += "<br/>" + _mermaid_text(node_blame(node))
        lines.append(f'    n{node.id}["{label}"]')
    lines.extend(f"    n{child} --> n{parent}" for child, parent in _edges(graph))
    for node in graph.nodes:
        if node.is_leaf:
            lines.append(f"    style n{node.id} fill:{LEAF_FILL}")
    lines.append(f"    style n{graph.output.id} fill:{OUTPUT_FILL}")
    for node in graph.nodes:
        if node.blame:
            lines.append(f"    style n{node.id} fill:{BLAME_FILL},stroke:#c62828,stroke-width:2px")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    """Escape text for a DOT double-quoted string."""
    text = "\n".join(printable(line) for line in text.split("\n"))
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(graph: TraceGraph) -> str:
    """A Graphviz DOT digraph of the trace; inputs at the bottom, output on top."""
    lines = [
        "digraph gradcheck {",
        "    rankdir=BT;",
        '    node [shape=box, style="rounded,filled", fillcolor="white", fontname="Helvetica"];',
    ]
    for node in graph.nodes:
        label = _dot_text(
            node_caption(node)
            + "\n"
            + node_detail(node)
            + (f"\n{node_blame(node)}" if node.blame else "")
        )
        fill = ""
        if node.blame:
            fill = f', fillcolor="{BLAME_FILL}", color="#c62828", penwidth=2'
        elif node.id == graph.output.id:
            fill = f', fillcolor="{OUTPUT_FILL}"'
        elif node.is_leaf:
            fill = f', fillcolor="{LEAF_FILL}"'
        lines.append(f'    n{node.id} [label="{label}"{fill}];')
    lines.extend(f"    n{child} -> n{parent};" for child, parent in _edges(graph))
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json_dict(graph: TraceGraph) -> dict[str, Any]:
    """The trace as plain data for `trace --json`."""
    nodes = []
    for node in graph.nodes:
        entry: dict[str, Any] = {
            "id": node.id,
            "label": node.label,
            "op": node.op,
            "grad_fn": node.grad_fn,
            "value": node.value,
            "grad": node.grad,
            "children": list(node.children),
            "leaf": node.is_leaf,
        }
        # Extra keys only where they say something, so that expression traces keep their shape.
        if node.shape:
            entry["shape"] = list(node.shape)
        if node.blame:
            entry["blame"] = node.blame
        nodes.append(entry)
    return {
        "version": 1,
        "expr": graph.expr,
        "point": graph.point,
        "output": graph.output.id,
        "blame": graph.blame,
        "nodes": nodes,
    }


@dataclass(frozen=True)
class StepScan:
    """Central-difference error against step size for one variable, and the chosen step."""

    variable: str
    point: dict[str, float]
    steps: tuple[float, ...]
    errors: tuple[float, ...]
    chosen: float


def to_step_scans(
    expr: Any, point: dict[str, float], exact: dict[str, float], dtype: str = "float64"
) -> list[StepScan]:
    """Scan the finite-difference step for every variable against SymPy's exact gradient."""
    import numpy as np

    from engine.autograd.numeric import choose_step, scan_steps
    from gradcheck_cli.lower import to_engine

    names = list(point)
    x = np.array([point[name] for name in names], dtype=np.float64)

    def value(v: Any) -> float:
        # Evaluated on the engine in the case's dtype, so float32 round-off shows in the plot.
        at = dict(zip(names, map(float, v), strict=True))
        return float(to_engine(expr, at, dtype, retain_grad=False).output.item())

    chosen = choose_step(x, np.dtype(dtype))
    scans = []
    for index, name in enumerate(names):
        if not isinstance(exact.get(name), float):
            continue  # no exact reference (an error, or not differentiable here)
        scale = max(1.0, abs(float(x[index])))
        steps, estimates = scan_steps(value, x, index, np.array(SCAN_STEPS) * scale)
        errors = tuple(float(e) for e in np.abs(estimates - exact[name]))
        scans.append(
            StepScan(name, dict(point), tuple(map(float, steps)), errors, float(chosen[index]))
        )
    return scans
