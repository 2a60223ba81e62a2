"""A catalogue of custom Functions with correct and deliberately wrong backwards, for PyTorch
(`torch.autograd.Function`) and JAX (`jax.custom_vjp`), built from one table of kernels.

Every kernel is written once against a small namespace of array ops (`ops.sin`, `ops.where`,
...) that both frameworks provide; each bug class is a transform of the right backward. The
tests parametrise over a sample of it and benchmarks/bench_frameworks.py over all of it, so
the same cases judge our checker and torch's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

# Bug classes, as named in issue 13.
SIGN = "sign"
FACTOR = "factor"
TRANSPOSED = "transposed matmul"
BROADCAST = "missing broadcast reduction"
ONE_ELEMENT = "one element"
NEGATIVE = "negative inputs only"
CHAIN = "forgotten chain factor"
FORMULA = "wrong formula"
DOUBLE = "wrong double backward"
NON_DIFF = "non-differentiable backward"
CORRECT = "correct"


@dataclass(frozen=True)
class Case:
    """One entry: build(dtype_name) -> (func, inputs); judged by gradgradcheck if second_order."""

    name: str
    kind: str  # a bug class above, or CORRECT
    build: Callable[[str], tuple[Callable, tuple]]
    second_order: bool = False

    @property
    def wrong(self) -> bool:
        return self.kind != CORRECT


# ------------------------------------------------------------------------------ kernels
# (name, forward(o, x), derivative(o, x), low, high): elementwise, d forward / dx.
UNARY = [
    ("square", lambda o, x: x * x, lambda o, x: 2 * x, -2.0, 2.0),
    ("sin", lambda o, x: o.sin(x), lambda o, x: o.cos(x), -2.0, 2.0),
    ("exp", lambda o, x: o.exp(x), lambda o, x: o.exp(x), -2.0, 2.0),
    ("tanh", lambda o, x: o.tanh(x), lambda o, x: 1 - o.tanh(x) ** 2, -2.0, 2.0),
    ("sigmoid", lambda o, x: o.sigmoid(x), lambda o, x: o.sigmoid(x) * (1 - o.sigmoid(x)),
     -3.0, 3.0),
    ("softplus", lambda o, x: o.log(1 + o.exp(x)), lambda o, x: o.sigmoid(x), -2.0, 2.0),
    ("x|x|", lambda o, x: x * o.abs(x), lambda o, x: 2 * o.abs(x), -2.0, 2.0),
    ("cube", lambda o, x: x**3, lambda o, x: 3 * x * x, -2.0, 2.0),
    ("sin(x^2)", lambda o, x: o.sin(x * x), lambda o, x: 2 * x * o.cos(x * x), -1.5, 1.5),
    ("log", lambda o, x: o.log(x), lambda o, x: 1 / x, 0.5, 3.0),
    ("sqrt", lambda o, x: o.sqrt(x), lambda o, x: 0.5 / o.sqrt(x), 0.5, 3.0),
    ("x log x at 1e8", lambda o, x: x * o.log(x), lambda o, x: o.log(x) + 1, 0.5e8, 2e8),
    ("1e-8 x^3", lambda o, x: 1e-8 * x**3, lambda o, x: 3e-8 * x * x, -2.0, 2.0),
    ("1e4 + sin", lambda o, x: 1e4 + o.sin(x), lambda o, x: o.cos(x), -2.0, 2.0),
]


def _mask(o: Any, x: Any) -> Any:
    m = np.ones(tuple(x.shape))
    m.flat[2] = 1.01
    return o.const(m, x)


# bug class -> backward transform (o, x, g, d) -> gradient, where d is the right derivative.
UNARY_BUGS: list[tuple[str, str, Callable]] = [
    ("sign flip", SIGN, lambda o, x, g, d: -(g * d)),
    ("factor 2", FACTOR, lambda o, x, g, d: 2 * g * d),
    ("factor 1.01", FACTOR, lambda o, x, g, d: 1.01 * g * d),
    ("factor 1.0001", FACTOR, lambda o, x, g, d: 1.0001 * g * d),
    ("one element 1% off", ONE_ELEMENT, lambda o, x, g, d: g * d * _mask(o, x)),
    ("wrong where x<0", NEGATIVE, lambda o, x, g, d: o.where(x < 0, 1.5 * g * d, g * d)),
    ("plus 1e-3 g", FORMULA, lambda o, x, g, d: g * (d + 1e-3)),
]


# ------------------------------------------------------------------------- the frameworks


def torch_ops() -> SimpleNamespace:
    import torch

    return SimpleNamespace(
        name="torch", sin=torch.sin, cos=torch.cos, exp=torch.exp, tanh=torch.tanh,
        sigmoid=torch.sigmoid, log=torch.log, sqrt=torch.sqrt, abs=torch.abs,
        where=torch.where, cumsum=lambda x: torch.cumsum(x, 0),
        flip=lambda x: torch.flip(x, (0,)), logsumexp=lambda x: torch.logsumexp(x, 0),
        softmax=lambda x: torch.softmax(x, -1),
        const=lambda values, like: torch.tensor(values, dtype=like.dtype),
        dtype=lambda name: getattr(torch, name),
        tensor=lambda values, dtype, grad: torch.tensor(values, dtype=dtype, requires_grad=grad),
    )


def jax_ops() -> SimpleNamespace:
    import jax
    import jax.numpy as jnp

    def tensor(values: np.ndarray, dtype: Any, grad: bool) -> Any:
        if dtype == jnp.float64 and not jax.config.jax_enable_x64:
            with jax.enable_x64(True):
                return jnp.asarray(values, dtype=dtype)
        return jnp.asarray(values, dtype=dtype)

    return SimpleNamespace(
        name="jax", sin=jnp.sin, cos=jnp.cos, exp=jnp.exp, tanh=jnp.tanh,
        sigmoid=jax.nn.sigmoid, log=jnp.log, sqrt=jnp.sqrt, abs=jnp.abs, where=jnp.where,
        cumsum=lambda x: jnp.cumsum(x, 0), flip=lambda x: jnp.flip(x, 0),
        logsumexp=lambda x: jax.scipy.special.logsumexp(x, 0),
        softmax=lambda x: jax.nn.softmax(x, -1),
        const=lambda values, like: jnp.asarray(values, dtype=like.dtype),
        dtype=lambda name: getattr(jnp, name), tensor=tensor,
    )


def function(o: Any, name: str, forward: Callable, backward: Callable) -> Callable:
    """A custom op: forward(o, *xs) -> out, backward(o, xs, out, g) -> grads (a tuple).

    torch: a torch.autograd.Function subclass named `name` (its `apply` is returned);
    jax: a jax.custom_vjp function whose bwd is `backward`.
    """
    if o.name == "torch":
        import torch

        def fwd(ctx: Any, *xs: Any) -> Any:
            out = forward(o, *xs)
            ctx.save_for_backward(*xs, out)
            return out

        def bwd(ctx: Any, g: Any) -> Any:
            *xs, out = ctx.saved_tensors
            grads = backward(o, xs, out, g)
            return grads if len(xs) > 1 else grads[0]

        cls = type(name, (torch.autograd.Function,), {
            "forward": staticmethod(fwd), "backward": staticmethod(bwd),
            "__qualname__": name, "__module__": __name__,
        })
        return cls.apply
    import jax

    @jax.custom_vjp
    def op(*xs: Any) -> Any:
        return forward(o, *xs)

    def op_fwd(*xs: Any) -> tuple:
        out = forward(o, *xs)
        return out, (xs, out)

    def op_bwd(res: tuple, g: Any) -> tuple:
        xs, out = res
        return tuple(backward(o, xs, out, g))

    op.defvjp(op_fwd, op_bwd)
    op.__name__ = op.__qualname__ = name
    return op


def _inputs(o: Any, dtype: str, *specs: tuple, seed: int = 0) -> tuple:
    """Seeded uniform inputs: specs are (shape, low, high)."""
    rng = np.random.default_rng(seed)
    return tuple(
        o.tensor(rng.uniform(low, high, size=shape), o.dtype(dtype), True)
        for shape, low, high in specs
    )


# ------------------------------------------------------------------------------ the catalogue


def catalogue(o: Any) -> list[Case]:
    """Every case for the framework whose ops namespace is `o` (torch_ops() or jax_ops())."""
    cases: list[Case] = []

    def add(name: str, kind: str, op: Callable, *specs: tuple, second_order: bool = False,
            wrap: Callable | None = None) -> None:
        def build(dtype: str, op: Callable = op, specs: tuple = specs) -> tuple:
            return (wrap(op) if wrap else op), _inputs(o, dtype, *specs)

        cases.append(Case(name, kind, build, second_order))

    for kname, f, df, low, high in UNARY:
        def forward(o: Any, x: Any, f: Callable = f) -> Any:
            return f(o, x)

        def right(o: Any, xs: tuple, out: Any, g: Any, df: Callable = df) -> tuple:
            return (g * df(o, xs[0]),)

        add(kname, CORRECT, function(o, _camel(kname), forward, right), ((6,), low, high))
        for bname, kind, bug in UNARY_BUGS:
            if kind == NEGATIVE and low >= 0:
                continue

            def wrong(o: Any, xs: tuple, out: Any, g: Any, df: Callable = df,
                      bug: Callable = bug) -> tuple:
                return (bug(o, xs[0], g, df(o, xs[0])),)

            add(f"{kname}: {bname}", kind, function(o, _camel(kname) + "Bug", forward, wrong),
                ((6,), low, high))
        # The chain rule through an inner scale: f(3x), whose derivative is 3 f'(3x).
        def scaled(o: Any, x: Any, f: Callable = f) -> Any:
            return f(o, 3 * x)

        def chain(o: Any, xs: tuple, out: Any, g: Any, df: Callable = df) -> tuple:
            return (g * df(o, 3 * xs[0]),)

        if low < 0:
            add(f"{kname}(3x): {'forgotten chain factor'}", CHAIN,
                function(o, _camel(kname) + "Of3x", scaled, chain), ((6,), low / 3, high / 3))
    cases += _structured(o)
    cases += _second_order(o)
    return cases


def _camel(name: str) -> str:
    return "".join(c for c in name.title() if c.isalnum()) or "Op"


def _structured(o: Any) -> list[Case]:
    """Multi-input and reduction kernels: matmul, bias, weighted sums, softmax, cumsum."""
    out: list[Case] = []

    def add(name: str, kind: str, fwd: Callable, bwd: Callable, *specs: tuple) -> None:
        op = function(o, _camel(name.split(":")[0]), fwd, bwd)
        out.append(Case(name, kind, lambda dtype, op=op: (op, _inputs(o, dtype, *specs))))

    def mm(o: Any, a: Any, b: Any) -> Any:
        return a @ b

    sq = (((3, 3), -2.0, 2.0), ((3, 3), -2.0, 2.0))
    add("matmul", CORRECT, mm, lambda o, xs, y, g: (g @ xs[1].T, xs[0].T @ g), *sq)
    add("matmul: transposed", TRANSPOSED, mm, lambda o, xs, y, g: (g @ xs[1], xs[0].T @ g), *sq)
    add("matmul: a instead of a.T", TRANSPOSED, mm,
        lambda o, xs, y, g: (g @ xs[1].T, xs[0] @ g), *sq)
    rect = (((4, 3), -2.0, 2.0), ((3, 2), -2.0, 2.0))
    add("matmul 4x3 3x2", CORRECT, mm, lambda o, xs, y, g: (g @ xs[1].T, xs[0].T @ g), *rect)

    def bias(o: Any, x: Any, b: Any) -> Any:
        return x + b

    xb = (((4, 3), -2.0, 2.0), ((3,), -2.0, 2.0))
    add("add bias", CORRECT, bias, lambda o, xs, y, g: (g, g.sum(0)), *xb)
    add("add bias: first row only", BROADCAST, bias, lambda o, xs, y, g: (g, g[0]), *xb)
    add("add bias: mean not sum", BROADCAST, bias, lambda o, xs, y, g: (g, g.mean(0)), *xb)

    def scale(o: Any, x: Any, w: Any) -> Any:
        return x * w

    add("scale by row", CORRECT, scale, lambda o, xs, y, g: (g * xs[1], (g * xs[0]).sum(0)), *xb)
    add("scale by row: reduction forgotten, row 0", BROADCAST, scale,
        lambda o, xs, y, g: (g * xs[1], (g * xs[0])[0]), *xb)
    add("scale by row: grads swapped", FORMULA, scale,
        lambda o, xs, y, g: (g * xs[0], (g * xs[1]).sum(0)), *xb)

    def wsum(o: Any, x: Any, w: Any) -> Any:
        return (x * w).sum(1)

    xw = (((4, 3), -2.0, 2.0), ((4, 3), -2.0, 2.0))
    add("weighted row sum", CORRECT, wsum,
        lambda o, xs, y, g: (g[:, None] * xs[1], g[:, None] * xs[0]), *xw)
    add("weighted row sum: x for w", FORMULA, wsum,
        lambda o, xs, y, g: (g[:, None] * xs[1], g[:, None] * xs[1]), *xw)

    one = (((5,), -2.0, 2.0),)

    def softmax(o: Any, x: Any) -> Any:
        return o.softmax(x)

    add("softmax", CORRECT, softmax, lambda o, xs, s, g: (s * (g - (g * s).sum(-1)),), *one)
    add("softmax: missing the sum term", FORMULA, softmax, lambda o, xs, s, g: (s * g,), *one)

    def lse(o: Any, x: Any) -> Any:
        return o.logsumexp(x)

    add("logsumexp", CORRECT, lse, lambda o, xs, y, g: (g * o.exp(xs[0] - y),), *one)
    add("logsumexp: unnormalised", FORMULA, lse, lambda o, xs, y, g: (g * o.exp(xs[0]),), *one)

    def cumsum(o: Any, x: Any) -> Any:
        return o.cumsum(x)

    add("cumsum", CORRECT, cumsum, lambda o, xs, y, g: (o.flip(o.cumsum(o.flip(g))),), *one)
    add("cumsum: not reversed", TRANSPOSED, cumsum, lambda o, xs, y, g: (o.cumsum(g),), *one)
    return out


def _second_order(o: Any) -> list[Case]:
    """Functions whose first derivative is right; gradgradcheck judges their backward."""
    out: list[Case] = []
    one = (((5,), -2.0, 2.0),)

    def cube(o: Any, x: Any) -> Any:
        return x**3

    def add(name: str, kind: str, bwd: Callable) -> None:
        op = function(o, _camel(name.split(":")[0]), cube, bwd)
        out.append(Case(name, kind, lambda dtype, op=op: (op, _inputs(o, dtype, *one)), True))

    add("cube (2nd)", CORRECT, lambda o, xs, y, g: (3 * g * xs[0] * xs[0],))
    add("cube (2nd): detached x", DOUBLE, lambda o, xs, y, g: (3 * g * _stop(o, xs[0]) ** 2,))
    add("cube (2nd): detached g", DOUBLE, lambda o, xs, y, g: (3 * _stop(o, g) * xs[0] ** 2,))
    add("cube (2nd): NumPy inside backward", NON_DIFF,
        lambda o, xs, y, g: (g * o.const(3 * np.asarray(_values(o, xs[0])) ** 2, xs[0]),))
    # The backward is itself a custom op: right values, its own backward right or wrong.
    grad_right = function(o, "CubeGrad", lambda o, x, g: 3 * g * x * x,
                          lambda o, xs, y, h: (6 * h * xs[1] * xs[0], 3 * h * xs[0] * xs[0]))
    grad_wrong = function(o, "CubeGradBug", lambda o, x, g: 3 * g * x * x,
                          lambda o, xs, y, h: (3 * h * xs[1] * xs[0], 3 * h * xs[0] * xs[0]))
    add("cube (2nd) via CubeGrad", CORRECT, lambda o, xs, y, g: (grad_right(xs[0], g),))
    add("cube (2nd) via CubeGrad: its backward off by 2", DOUBLE,
        lambda o, xs, y, g: (grad_wrong(xs[0], g),))
    return out


def _stop(o: Any, x: Any) -> Any:
    if o.name == "torch":
        return x.detach()
    import jax

    return jax.lax.stop_gradient(x)


def _values(o: Any, x: Any) -> np.ndarray:
    return x.detach().numpy() if o.name == "torch" else np.asarray(x)


SAMPLE = (
    "sin", "sin: sign flip", "sin: factor 1.0001", "sin: one element 1% off",
    "sin(3x): forgotten chain factor", "x|x|", "x|x|: wrong where x<0", "log: factor 2",
    "x log x at 1e8", "x log x at 1e8: factor 1.01", "1e-8 x^3", "1e-8 x^3: plus 1e-3 g",
    "matmul", "matmul: transposed", "add bias", "add bias: first row only", "softmax",
    "softmax: missing the sum term", "cumsum: not reversed", "cube (2nd)",
    "cube (2nd): detached x", "cube (2nd): NumPy inside backward", "cube (2nd) via CubeGrad",
    "cube (2nd) via CubeGrad: its backward off by 2",
)


def verdict(case: Case, dtype: str, **kwargs: Any) -> bool:
    """Our checker's verdict (gradcheck, or gradgradcheck for second-order cases)."""
    from engine.autograd import gradcheck, gradgradcheck

    func, args = case.build(dtype)
    check = gradgradcheck if case.second_order else gradcheck
    return check(func, args, raise_exception=False, **kwargs)


def sample(cases: list[Case]) -> list[Case]:
    """Every kind (bug class or correct) at least once: what the test suite runs (the
    benchmark runs everything)."""
    return [c for c in cases if c.name in SAMPLE]
