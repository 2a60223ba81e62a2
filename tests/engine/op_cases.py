"""One differentiable call per row of the op table, shared by the op tests.

Each case is (function of tensors, input shapes, domain). Inputs are drawn from the
domain in float64; `fn` uses only public engine calls, so the same lambda runs under
torch for the differential tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POS = (0.2, 2.0)  # strictly positive inputs (log, sqrt, ...)
UNIT = (-0.9, 0.9)  # inside (-1, 1) (asin, acos)
ANY = (-2.0, 2.0)
PROB = (0.1, 0.9)  # probabilities away from 0 and 1 (binary cross-entropy)


@dataclass(frozen=True)
class OpCase:
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    domain: tuple[float, float] = ANY
    smooth: bool = True  # whether a second derivative check makes sense at random points
    rtol: float = 1e-6  # against finite differences (looser where the op rounds to float32)


def _mask(t: Any) -> Any:
    return t > 0


CASES: dict[str, OpCase] = {
    "add": OpCase(lambda a, b: a + b, ((2, 3), (3,))),
    "sub": OpCase(lambda a, b: a - b, ((2, 1), (1, 3))),
    "rsub": OpCase(lambda a: 1.5 - a, ((3,),)),
    "mul": OpCase(lambda a, b: a * b, ((2, 3), (2, 1))),
    "div": OpCase(lambda a, b: a / b, ((3,), (2, 3)), POS),
    "neg": OpCase(lambda a: -a, ((2, 2),)),
    "reciprocal": OpCase(lambda a: 2.0 / a, ((3,),), POS),
    "pow": OpCase(lambda a: a ** 3, ((3,),)),
    "pow_tensor": OpCase(lambda a, b: a ** b, ((3,), (2, 3)), POS),
    "rpow": OpCase(lambda a: 2.0 ** a, ((3,),)),
    "abs": OpCase(lambda a: a.abs(), ((4,),)),
    "sign": OpCase(lambda a: a.sign() * a, ((4,),)),
    "exp": OpCase(lambda a: a.exp(), ((3,),)),
    "log": OpCase(lambda a: a.log(), ((3,),), POS),
    "log1p": OpCase(lambda a: a.log1p(), ((3,),), POS),
    "sqrt": OpCase(lambda a: a.sqrt(), ((3,),), POS),
    "sin": OpCase(lambda a: a.sin(), ((3,),)),
    "cos": OpCase(lambda a: a.cos(), ((3,),)),
    "tan": OpCase(lambda a: a.tan(), ((3,),), UNIT),
    "asin": OpCase(lambda a: a.asin(), ((3,),), UNIT),
    "acos": OpCase(lambda a: a.acos(), ((3,),), UNIT),
    "atan": OpCase(lambda a: a.atan(), ((3,),)),
    "sinh": OpCase(lambda a: a.sinh(), ((3,),)),
    "cosh": OpCase(lambda a: a.cosh(), ((3,),)),
    "tanh": OpCase(lambda a: a.tanh(), ((3,),)),
    "sigmoid": OpCase(lambda a: a.sigmoid(), ((3,),)),
    "relu": OpCase(lambda a: a.relu(), ((5,),), smooth=False),
    "clamp": OpCase(lambda a: a.clamp(-0.5, 0.7), ((5,),), smooth=False),
    "clamp_tensor": OpCase(lambda a, lo, hi: a.clamp(lo, hi + 2.5), ((4,), (4,), (4,)),
                           smooth=False),
    "maximum": OpCase(lambda a, b: a.maximum(b), ((3,), (2, 3)), smooth=False),
    "minimum": OpCase(lambda a, b: a.minimum(b), ((3,), (2, 3)), smooth=False),
    "where": OpCase(lambda a, b: a.where(_mask(a), b), ((2, 3), (3,)), smooth=False),
    # Rounding to float32 makes tiny finite-difference steps meaningless: a linear case.
    "to": OpCase(lambda a: a.float() * 3.0, ((3,),), rtol=1e-4, smooth=False),
    "clone": OpCase(lambda a: a.clone(), ((3,),)),
    "sum": OpCase(lambda a: a.sum(), ((2, 3),)),
    "sum_dim": OpCase(lambda a: a.sum(dim=1, keepdim=False) ** 2, ((2, 3),)),
    "mean": OpCase(lambda a: a.mean(), ((2, 3),)),
    "mean_dim": OpCase(lambda a: a.mean(0, keepdim=True) ** 2, ((2, 3),)),
    "prod": OpCase(lambda a: a.prod(), ((2, 3),)),
    "prod_dim": OpCase(lambda a: a.prod(1), ((2, 3),)),
    "max": OpCase(lambda a: a.max(), ((2, 3),), smooth=False),
    "min": OpCase(lambda a: a.min(), ((2, 3),), smooth=False),
    "max_dim": OpCase(lambda a: a.max(1).values, ((2, 3),), smooth=False),
    "min_dim": OpCase(lambda a: a.min(0, keepdim=True).values, ((2, 3),), smooth=False),
    "dot": OpCase(lambda a, b: a @ b, ((3,), (3,))),
    "mv": OpCase(lambda a, b: a @ b, ((2, 3), (3,))),
    "mm": OpCase(lambda a, b: a @ b, ((2, 3), (3, 4))),
    "matmul": OpCase(lambda a, b: a @ b, ((2, 2, 3), (3, 4))),
    "view": OpCase(lambda a: a.view(3, 2) * 1.0, ((2, 3),)),
    "unsafe_view": OpCase(lambda a: a.t().reshape(6), ((2, 3),)),
    "squeeze": OpCase(lambda a: a.squeeze(), ((1, 3, 1),)),
    "squeeze_dim": OpCase(lambda a: a.squeeze(0), ((1, 3),)),
    "squeeze_dims": OpCase(lambda a: a.squeeze((0, 2)), ((1, 3, 1),)),
    "unsqueeze": OpCase(lambda a: a.unsqueeze(1), ((3,),)),
    "expand": OpCase(lambda a: a.expand(2, 3), ((1, 3),)),
    "transpose": OpCase(lambda a: a.transpose(0, 1), ((2, 3),)),
    "permute": OpCase(lambda a: a.permute(2, 0, 1), ((2, 3, 4),)),
    "select": OpCase(lambda a: a[1], ((3, 2),)),
    "slice": OpCase(lambda a: a[1:3], ((4, 2),)),
    "index": OpCase(lambda a: a[[0, 2, 0]], ((3, 2),)),
    "index_put_add": OpCase(lambda a: a[[1, 1, 0]] * a[[1, 1, 0]], ((3,),)),
    "copy_slices": OpCase(lambda a, b: _setitem(a, b), ((3, 2), (2,))),
    "cat": OpCase(lambda a, b: _cat(a, b), ((2, 3), (1, 3))),
    "stack": OpCase(lambda a, b: _stack(a, b), ((2, 3), (2, 3))),
    # The math functions of the expression language (issue 14).
    "asinh": OpCase(lambda a: a.asinh(), ((3,),)),
    "acosh": OpCase(lambda a: (a + 1.0).acosh(), ((3,),), POS),
    "atanh": OpCase(lambda a: a.atanh(), ((3,),), UNIT),
    "erf": OpCase(lambda a: a.erf(), ((3,),)),
    "erfc": OpCase(lambda a: a.erfc(), ((3,),)),
    "log2": OpCase(lambda a: a.log2(), ((3,),), POS),
    "log10": OpCase(lambda a: a.log10(), ((3,),), POS),
    "exp2": OpCase(lambda a: a.exp2(), ((3,),)),
    "expm1": OpCase(lambda a: a.expm1(), ((3,),)),
    "atan2": OpCase(lambda a, b: _lib(a).atan2(a, b), ((2, 3), (3,))),
    "hypot": OpCase(lambda a, b: _lib(a).hypot(a, b), ((3,), (2, 3))),
    "floor": OpCase(lambda a: a.floor() * a, ((4,),), smooth=False),
    "ceil": OpCase(lambda a: a.ceil() * a, ((4,),), smooth=False),
    "gelu": OpCase(lambda a: _F(a).gelu(a), ((5,),)),
    "gelu_backward": OpCase(lambda a: _grad_of(a, lambda x: _F(x).gelu(x, approximate="tanh")),
                            ((5,),)),
    "silu": OpCase(lambda a: _F(a).silu(a), ((5,),)),
    "elu": OpCase(lambda a: _F(a).elu(a, alpha=1.5), ((5,),)),
    "leaky_relu": OpCase(lambda a: _F(a).leaky_relu(a, 0.2), ((5,),)),
    "softsign": OpCase(lambda a: _F(a).softsign(a), ((5,),)),
    "logsigmoid": OpCase(lambda a: _F(a).logsigmoid(a), ((5,),)),
    # fused rows: one node where torch records one
    "matmul_squeeze": OpCase(lambda a, b: a @ b, ((3,), (3, 4))),
    "t": OpCase(lambda a: a.t(), ((2, 3),)),
    "addmm": OpCase(lambda c, a, b: _lib(a).addmm(c, a, b, beta=0.5, alpha=2.0),
                    ((4,), (2, 3), (3, 4))),
    "bmm": OpCase(lambda a, b: _lib(a).bmm(a, b), ((2, 2, 3), (2, 3, 4))),
    "softmax": OpCase(lambda a: a.softmax(dim=1), ((2, 3),)),
    "log_softmax": OpCase(lambda a: _F(a).log_softmax(a, dim=-1), ((2, 3),)),
    "logsumexp": OpCase(lambda a: a.logsumexp(dim=1), ((2, 3),)),
    "var": OpCase(lambda a: a.var(dim=0), ((3, 2),)),
    "std": OpCase(lambda a: a.std(), ((2, 3),)),
    "vector_norm": OpCase(lambda a: a.norm(dim=1), ((2, 3),)),
    "cumsum": OpCase(lambda a: a.cumsum(dim=1), ((2, 3),)),
    "flip": OpCase(lambda a: a.flip(0), ((3, 2),)),
    "gather": OpCase(lambda a: a.gather(1, _lib(a).tensor([[0, 0], [2, 1]])), ((2, 3),)),
    "sort": OpCase(lambda a: a.sort(dim=1, descending=True).values, ((2, 3),)),
    "topk": OpCase(lambda a: a.topk(2, dim=1).values, ((2, 3),)),
    "scatter_add": OpCase(lambda a, b: a.scatter_add(1, _lib(a).tensor([[0, 0], [2, 1]]), b),
                          ((2, 3), (2, 2))),
    "index_select": OpCase(lambda a: a.index_select(0, _lib(a).tensor([2, 0, 2])), ((3, 2),)),
    "split": OpCase(lambda a: a.split(2, dim=1)[1], ((2, 3),)),
    "split_with_sizes": OpCase(lambda a: a.split([1, 2], dim=1)[1], ((2, 3),)),
    "unbind": OpCase(lambda a: a.unbind(1)[2], ((2, 3),)),
    "tril": OpCase(lambda a: a.tril(), ((3, 3),)),
    "triu": OpCase(lambda a: a.triu(1), ((3, 4),)),
    "repeat": OpCase(lambda a: a.repeat(2, 1, 2), ((2, 3),)),
    "masked_fill": OpCase(lambda a: a.masked_fill(a > 0, 0.5), ((2, 3),), smooth=False),
    "embedding": OpCase(lambda w: _F(w).embedding(_lib(w).tensor([[0, 2], [2, 1]]), w),
                        ((3, 2),)),
    "mse_loss": OpCase(lambda a, b: _F(a).mse_loss(a, b), ((2, 3), (2, 3))),
    "bce_with_logits": OpCase(
        lambda a, t: _F(a).binary_cross_entropy_with_logits(
            a, t, pos_weight=_lib(a).tensor([2.0, 0.5, 1.0], dtype=a.dtype)), ((2, 3), (2, 3))),
    "binary_cross_entropy": OpCase(
        lambda x, t: _F(x).binary_cross_entropy(
            x, t, weight=_lib(x).tensor([2.0, 0.5, 1.0], dtype=x.dtype)), ((2, 3), (2, 3)), PROB),
    "smooth_l1_loss": OpCase(lambda a, b: _F(a).smooth_l1_loss(a, b, beta=0.7), ((2, 3), (2, 3))),
    "huber_loss": OpCase(lambda a, b: _F(a).huber_loss(a, b, reduction="sum", delta=0.8),
                         ((2, 3), (2, 3))),
    "layer_norm": OpCase(lambda x, w, b: _F(x).layer_norm(x, (3,), w, b), ((2, 3), (3,), (3,))),
    "batch_norm": OpCase(
        lambda x, w, b: _F(x).batch_norm(x, None, None, w, b, training=True),
        ((4, 2, 3), (2,), (2,))),
    "nll_loss": OpCase(lambda a: _F(a).nll_loss(a, _lib(a).tensor([0, 2])), ((2, 3),)),
    "conv": OpCase(lambda x, w, b: _F(x).conv2d(x, w, b, padding=1), ((2, 2, 4, 4), (3, 2, 3, 3),
                                                                      (3,))),
    "conv_transpose_input": OpCase(lambda x, w: _grad_of(x, lambda v: _sq_conv(v, w)),
                                   ((1, 2, 4, 4), (2, 2, 3, 3))),
    "conv_weight_grad": OpCase(lambda x, w: _grad_of(w, lambda v: _sq_conv(x, v)),
                               ((1, 2, 4, 4), (2, 2, 3, 3))),
    "max_pool": OpCase(lambda x: _F(x).max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
                       ((1, 2, 6, 6),), smooth=False),
    "max_pool_backward": OpCase(
        lambda x: _grad_of(x, lambda v: _F(v).max_pool2d(v, 3, stride=2, padding=1,
                                                        ceil_mode=True) ** 2),
        ((2, 6, 6),), smooth=False),
}


def _sq_conv(x: Any, w: Any) -> Any:
    out = _F(x).conv2d(x, w, stride=2, padding=1)
    return out * out


def _lib(t: Any) -> Any:
    """The library (engine or torch) a tensor belongs to."""
    import sys

    return sys.modules[type(t).__module__.split(".")[0]]


def _F(t: Any) -> Any:  # noqa: N802 - torch's spelling of nn.functional
    return _lib(t).nn.functional


def _grad_of(a: Any, fn: Callable[[Any], Any]) -> Any:
    """The gradient of sum(fn(a)), as a differentiable tensor (a double-backward row)."""
    lib = _lib(a)
    with lib.enable_grad():  # (finite differences evaluate the case under no_grad)
        x = a if a.requires_grad else a.detach().requires_grad_()
        return lib.autograd.grad(fn(x).sum(), x, create_graph=True)[0]


def _setitem(a: Any, b: Any) -> Any:
    c = a * 1.0
    c[1] = b
    return c


def _cat(a: Any, b: Any) -> Any:
    return _lib(a).cat([a, b], dim=0)


def _stack(a: Any, b: Any) -> Any:
    return _lib(a).stack([a, b], dim=1)
