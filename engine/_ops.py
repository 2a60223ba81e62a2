"""THE op table: one row per op, with its NumPy forward and its derivative rules.

A row names the op, the node torch would record (`MulBackward0`), the NumPy forward, and
one derivative rule per differentiable input. A rule takes the incoming gradient `g` and
the op's arguments (plus the op's output when the row says `saves_output`) and returns
the gradient for its input, written in engine ops, so that the rules can themselves be
differentiated (`create_graph=True`). Rules never un-broadcast: the backward loop sums a
gradient back to its input's shape in one place (engine/_broadcast.py).

A row marked `plain` has rules that use only arithmetic NumPy arrays share with tensors
(`g * b`, `g @ b.mT`, `_unreduce`): when no graph is being built, backward runs them on the
arrays directly, with the same numbers (tests/engine/test_ops.py holds them to it).

Arguments come differentiable inputs first, then static ones (dims, exponents, indices).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import _dtype
from engine.autograd.grad_mode import state
from engine.autograd.graph import FIT_ALL, FIT_NONE, FIT_SHAPE, record, record_one, record_pair
from engine.tensor import Tensor, _wrap, _wrap_dim


@dataclass(frozen=True, slots=True)
class OpDef:
    """One op: its name, torch's node name, NumPy forward and derivative rules."""

    name: str
    node_name: str
    forward: Callable[..., Any]
    rules: tuple[Callable[..., Tensor | None] | None, ...] | Callable[..., Tensor | None]
    saves: tuple[int, ...] = ()  # inputs whose values the rules read (version-checked, freed)
    saves_output: bool = False  # rules read the output (kept as data, never as the Tensor)
    broadcasts: bool = False  # gradients may need summing back to the input's shape
    reads: tuple[tuple[int, ...], ...] | None = None  # per rule, the saved inputs it reads
    variadic: bool = False  # rules is one callable rule(g, i, *args) for every tensor input
    n_static: int = 0  # with variadic: how many trailing arguments are static
    view: bool = False  # the output shares storage (and version counter) with input 0
    plain: bool = False  # rules use only arithmetic that NumPy arrays share with tensors
    n_inputs: int = 0  # how many leading arguments are differentiable inputs (set by `op`)
    frees: bool = False  # backward can free the saved values (set by `op`)


OPS: dict[str, OpDef] = {}
_NUMBERS = (float, int)


def op(name: str, node_name: str, forward: Callable, *rules: Any, **flags: Any) -> OpDef:
    """Register a row of the table."""
    if flags.get("variadic"):
        (rules,) = rules
    n_inputs = 0 if flags.get("variadic") else len(rules)
    frees = bool(flags.get("saves") or flags.get("saves_output"))
    row = OPS[name] = OpDef(
        name, node_name, forward, rules, n_inputs=n_inputs, frees=frees, **flags
    )
    return row


# ---- applying an op ----------------------------------------------------------------------
def call(op: OpDef, *args: Any) -> Tensor:
    """Run `op` on `args` (tensors, numbers, static arguments) and record it."""
    if len(args) == 2 and op.n_inputs == 2 and not op.view:
        # Two tensors (mm, dot...): the straight-line record of binary ops.
        a, b = args
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            ad, bd = a._data, b._data
            try:
                out = op.forward(ad, bd)
            except RuntimeWarning:
                out = _quietly(op.forward, ad, bd)
            if not state.enabled:
                return _wrap(out)
            # fit, as in `binary`
            if ad.dtype != bd.dtype or out.dtype != ad.dtype:
                fit = FIT_ALL
            else:
                fit = FIT_SHAPE if op.broadcasts and ad.shape != bd.shape else FIT_NONE
            return record_pair(op, out, a, b, fit)
    datas = [a._data if isinstance(a, Tensor) else a for a in args]
    try:
        out = op.forward(*datas)
    except RuntimeWarning:
        out = _quietly(op.forward, *datas)
    t = record(op, out, args)
    if op.view:
        _share_storage(t, args[0])
    return t


def _quietly(fn: Callable, *args: Any) -> Any:
    # torch returns inf/nan without a word. NumPy warns; a module-scoped filter (engine
    # __init__) hides that, and when a user's filter turns warnings into errors we land here.
    with np.errstate(all="ignore"):
        return fn(*args)


def unary(op: OpDef, x: Tensor, *static: Any) -> Tensor:
    """The fast path for ops of one tensor."""
    try:
        out = op.forward(x._data, *static)
    except RuntimeWarning:
        out = _quietly(op.forward, x._data, *static)
    if x._requires_grad and state.enabled:
        t = record_one(op, out, x, static)
    else:
        t = _wrap(out)
    if op.view:
        _share_storage(t, x)
    return t


def binary(op: OpDef, a: Any, b: Any) -> Tensor:
    """The fast path for broadcasting ops of two operands, with torch's type promotion."""
    # `fit`: whether a gradient may need summing back (broadcasting: FIT_SHAPE) or casting
    # too (promotion: FIT_ALL) to its input; same-typed scalars, the scalar-graph case, are
    # decided first.
    fit = FIT_NONE
    if isinstance(a, Tensor):
        ad = a._data
        if isinstance(b, Tensor):
            bd = b._data
            ta = type(ad)
            if ta is not type(bd) or ta not in _FLOAT_SCALARS:
                if _is_float(ad) and ad.dtype == bd.dtype:
                    fit = FIT_SHAPE if ad.shape != bd.shape else FIT_NONE
                else:
                    ad, bd = _promote(op, ad, bd)
                    fit = FIT_ALL
        else:
            if type(b) is not float and type(b) is not int and isinstance(b, np.generic):
                b = b.item()  # a NumPy scalar is a Python number to torch (no float64 result)
            bd = b
            if not (_is_float(ad) and isinstance(b, _NUMBERS)):
                ad, bd = _promote(op, ad, bd)
                fit = FIT_ALL
    else:
        if type(a) is not float and type(a) is not int and isinstance(a, np.generic):
            a = a.item()  # as above
        ad, bd = a, b._data
        if not (_is_float(bd) and isinstance(a, _NUMBERS)):
            ad, bd = _promote(op, ad, bd)
            fit = FIT_ALL
    try:
        out = op.forward(ad, bd)
    except RuntimeWarning:
        out = _quietly(op.forward, ad, bd)
    except ValueError as e:
        raise RuntimeError(_broadcast_message(ad, bd, e)) from None
    if state.enabled:
        return record_pair(op, out, a, b, fit)
    return _wrap(out)


_FLOAT_SCALARS = frozenset((np.float16, np.float32, np.float64))


def _is_float(d: Any) -> bool:
    """Whether an operand's value is a floating NumPy scalar or array."""
    t = type(d)
    return t in _FLOAT_SCALARS or (t is np.ndarray and d.dtype.kind == "f")


def _promote(op: OpDef, ad: Any, bd: Any) -> tuple[Any, Any]:
    for d in (ad, bd):
        if not hasattr(d, "dtype") and not isinstance(d, (int, float, bool)):
            raise TypeError(f"unsupported operand type for {op.name}: '{type(d).__name__}'")
    operands = [(d.dtype, d.ndim) if hasattr(d, "dtype") else d for d in (ad, bd)]
    rt = _dtype.result_type(*operands)
    if op.name == "div" and rt.kind in "biu":
        rt = _dtype.DEFAULT_FLOAT  # true division of integers is float, as in torch
    if hasattr(ad, "dtype") and ad.dtype != rt:
        ad = ad.astype(rt)
    if hasattr(bd, "dtype") and bd.dtype != rt:
        bd = bd.astype(rt)
    return ad, bd


def _broadcast_message(a: Any, b: Any, error: ValueError) -> str:
    sa, sb = np.shape(a), np.shape(b)
    n = max(len(sa), len(sb))
    pa, pb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    for d in range(n - 1, -1, -1):
        if pa[d] != pb[d] and pa[d] != 1 and pb[d] != 1:
            return (
                f"The size of tensor a ({pa[d]}) must match the size of tensor b ({pb[d]}) "
                f"at non-singleton dimension {d}"
            )
    return str(error)


def _share_storage(t: Tensor, base: Tensor) -> None:
    # A view shares its base's version counter, so writing through either is seen by both.
    if type(base._data) is not np.ndarray:
        return
    from engine.tensor import version_counter

    t._vc = version_counter(base)
    root = base._x.get("base", base) if base._x else base
    t._x = {"base": root}


def const(data: Any) -> Tensor:
    """A tensor with no history (masks and other constants inside derivative rules)."""
    return _wrap(data)


# ---- helpers the rules share ---------------------------------------------------------------
def _reduced_dims(dim: Any, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted({_wrap_dim(d, ndim) for d in dims}))


def _unreduce(g: Any, shape: tuple[int, ...], dim: Any, keepdim: bool) -> Any:
    """Broadcast a reduced gradient back over the reduced dimensions (a tensor or an array)."""
    if not keepdim and shape and g.ndim:  # a 0-d gradient broadcasts as it is
        kept = list(shape)
        for d in _reduced_dims(dim, len(shape)):
            kept[d] = 1
        g = g.reshape(tuple(kept))
    if isinstance(g, Tensor):
        return g.expand(shape)
    if not g.ndim and shape:
        # The gradient of a full sum or mean, on the array path: a fresh array, which the next
        # rule reads twice as fast as a zero-strided view (torch allocates one here too).
        full = np.empty(shape, g.dtype)
        full.fill(g)
        return full
    return _expand(g, shape)


def _count(shape: tuple[int, ...], dim: Any) -> int:
    if dim is None:
        return math.prod(shape)
    return math.prod(shape[d] for d in _reduced_dims(dim, len(shape)))


def _index_backward(g: Tensor, shape: tuple[int, ...], index: Any) -> Tensor:
    return call(OPS["index_put_add"], g, shape, index)


def _index_put_add(g: np.ndarray, shape: tuple[int, ...], index: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)  # repeated indices scatter-add
    return out


def _sum(x: Any, dim: Any, keepdim: bool) -> Any:
    axis = None if dim is None else _reduced_dims(dim, np.ndim(x))
    if type(x) is np.ndarray and x.dtype.char in "fd":
        return np.add.reduce(x, axis=axis, keepdims=keepdim)  # np.sum, without its wrapper
    return np.sum(x, axis=axis, keepdims=keepdim)


def _sum_rule(g: Tensor, x: Tensor, dim: Any, keepdim: bool) -> Tensor:
    return _unreduce(g, x.shape, dim, keepdim)


def _mean_rule(g: Tensor, x: Tensor, dim: Any, keepdim: bool) -> Tensor:
    # Divide before broadcasting: one pass over the reduced gradient, not the full one.
    return _unreduce(g / _count(x.shape, dim), x.shape, dim, keepdim)


def _mean(x: Any, dim: Any, keepdim: bool) -> Any:
    axis = None if dim is None else _reduced_dims(dim, np.ndim(x))
    if type(x) is np.ndarray and x.dtype.char in "fd" and x.size:
        # np.mean's own steps for float32/float64 (the sum in the input's dtype, then one
        # division), without its Python wrapper.
        return np.add.reduce(x, axis=axis, keepdims=keepdim) / _count(x.shape, dim)
    return np.mean(x, axis=axis, keepdims=keepdim)


def _prod(x: Any, dim: Any, keepdim: bool) -> Any:
    axis = None if dim is None else _reduced_dims(dim, np.ndim(x))
    return np.prod(x, axis=axis, keepdims=keepdim)


def _prod_rule(g: Tensor, x: Tensor, dim: Any, keepdim: bool, out: Tensor) -> Tensor:
    shape = x._data.shape
    g_full = _unreduce(g, shape, dim, keepdim)
    if np.all(x._data != 0):
        return g_full * _unreduce(out, shape, dim, keepdim) / x
    # With zeros, out / x is 0/0: take the product of the other elements explicitly,
    # with engine ops so that it can be differentiated again.
    if dim is None:
        flat = x.reshape((-1,))
        n = flat.shape[0]
        rows = flat.unsqueeze(0).expand((n, n))
        others = where(1.0, rows, const(np.eye(n, dtype=bool))).prod(dim=1)
        return g_full * others.reshape(shape)
    d = _wrap_dim(dim, len(shape))
    moved = x.transpose(d, -1)
    n = moved.shape[-1]
    rows = moved.unsqueeze(-2).expand((*moved.shape[:-1], n, n))
    others = where(1.0, rows, const(np.eye(n, dtype=bool))).prod(dim=-1).transpose(d, -1)
    return g_full * others


def _extreme_all_rule(g: Tensor, x: Tensor, out: Tensor) -> Tensor:
    # torch spreads the gradient evenly over ties when reducing over all elements.
    mask = x._data == out._data
    return g * const((mask / mask.sum()).astype(x._data.dtype))


def _extreme_dim(fn: Callable) -> Callable:
    def forward(x: Any, dim: int, keepdim: bool) -> Any:
        return fn(x, axis=_wrap_dim(dim, np.ndim(x)), keepdims=keepdim)

    return forward


def _extreme_dim_rule(arg: Callable) -> Callable:
    # torch sends the whole gradient to the one element its indices name.
    def rule(g: Tensor, x: Tensor, dim: int, keepdim: bool) -> Tensor:
        d = _wrap_dim(dim, x.ndim)
        idx = np.expand_dims(arg(x._data, axis=d), d)
        onehot = np.zeros(x._data.shape, dtype=x._data.dtype)
        np.put_along_axis(onehot, idx, 1, axis=d)
        return _unreduce(g, x._data.shape, d, keepdim) * const(onehot)

    return rule


def _sigmoid(x: Any) -> Any:
    e = np.exp(-np.abs(x))  # never overflows: the large side is computed from exp(-|x|)
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.result_type(x), copy=False)


def _relu(x: Any) -> Any:
    return np.maximum(x, 0).astype(np.result_type(x), copy=False)


def _pow_exponent_rule(g: Tensor, a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    # d(a**b)/db = a**b * log(a), defined as 0 where a == 0 and b >= 0 (torch's choice).
    zero = (a._data == 0) & (b._data >= 0)
    safe_log = log(where(a, 1.0, const(~zero)))
    return where(g * out * safe_log, 0.0, const(~zero))


def _pow_scalar_rule(g: Tensor, x: Tensor, e: float) -> Tensor:
    if e == 0:
        return _zeros_like(g)
    return g * e * (x if e == 2 else x ** (e - 1))  # x ** 1 is x: one op fewer for squares


def _rpow_rule(g: Tensor, x: Tensor, base: float, out: Tensor) -> Tensor:
    if base == 0:
        return where(_zeros_like(g), g * out * float("-inf"), const(x._data >= 0))
    return g * out * float(np.log(base))


def _zeros_like(t: Any) -> Any:
    if not isinstance(t, Tensor):  # a plain rule running on arrays
        return np.zeros_like(t)
    return const(np.zeros_like(np.asarray(t._data)))


def _clamp(x: Any, lo: Any, hi: Any) -> Any:
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    return out.astype(np.result_type(x), copy=False)


def _clamp_mask(x: Tensor, lo: Any, hi: Any) -> Tensor:
    # torch passes the gradient at the bounds themselves (lo <= x <= hi).
    m = np.ones(np.shape(x._data), dtype=bool)
    if lo is not None:
        m &= x._data >= (lo._data if isinstance(lo, Tensor) else lo)
    if hi is not None:
        m &= x._data <= (hi._data if isinstance(hi, Tensor) else hi)
    return const(m)


def _clamp_bound_mask(x: Tensor, lo: Any, hi: Any, low: bool) -> Tensor:
    # torch's clamp_backward_min_max: min gets x < min only while min < max; max gets x > max,
    # and everything when max < min (the result is then max, whatever x).
    xd = x._data
    lod = None if lo is None else lo._data
    hid = None if hi is None else hi._data
    if low:
        m = xd < lod
        if hid is not None:
            m = m & (lod < hid)
    else:
        m = xd > hid
        if lod is not None:
            m = m | (hid < lod)
    return const(np.asarray(m))


def _tie_mask(a: Tensor, b: Tensor, win: Callable) -> Tensor:
    # maximum/minimum split the gradient equally between tied inputs, as torch does.
    ad, bd = np.asarray(a._data if isinstance(a, Tensor) else a), b._data if isinstance(
        b, Tensor
    ) else b
    m = win(ad, bd) + 0.5 * (ad == bd)
    return const(m.astype(np.result_type(ad), copy=False))


def _matmul_grad_a(g: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return g @ b.mT


def _matmul_grad_b(g: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return a.mT @ g


def _mm_checked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        sa = "x".join(map(str, a.shape))
        sb = "x".join(map(str, b.shape))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sa} and {sb})")
    return np.matmul(a, b)


def _dot(a: np.ndarray, b: np.ndarray) -> Any:
    if a.shape != b.shape:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] "
            f"to have the same number of elements, but got {a.shape[0]} and {b.shape[0]} "
            f"elements respectively"
        )
    return np.dot(a, b)


def _cat_rule(g: Tensor, i: int, *args: Any) -> Tensor:
    dim = args[-1]
    tensors = args[:-1]
    d = _wrap_dim(dim, tensors[0].ndim)
    start = sum(t._data.shape[d] for t in tensors[:i])
    index = (slice(None),) * d + (slice(start, start + tensors[i]._data.shape[d]),)
    return call(OPS["slice"], g, index)


def _stack_rule(g: Tensor, i: int, *args: Any) -> Tensor:
    d = _wrap_dim(args[-1], args[0].ndim + 1)
    return call(OPS["select"], g, (slice(None),) * d + (i,))


def _cat(*args: Any) -> np.ndarray:
    *arrays, dim = args
    arrays = [np.asarray(a) for a in arrays]
    d = _wrap_dim(dim, arrays[0].ndim)
    return np.concatenate(arrays, axis=d)


def _stack(*args: Any) -> np.ndarray:
    *arrays, dim = args
    return np.stack(arrays, axis=_wrap_dim(dim, np.ndim(arrays[0]) + 1))


def _copy_slices(x: Any, v: Any, index: Any) -> np.ndarray:
    out = np.array(x, copy=True)
    out[index] = v
    return out


def _copy_slices_self_rule(g: Tensor, x: Tensor, v: Any, index: Any) -> Tensor:
    keep = np.ones(x._data.shape, dtype=bool)
    keep[index] = False
    return where(g, 0.0, const(keep))


def _copy_slices_value_rule(g: Tensor, x: Tensor, v: Any, index: Any) -> Tensor:
    return call(OPS["index"], g, index)


def _squeeze(x: Any, dims: Any) -> Any:
    if dims is None:
        return np.squeeze(x)
    shape = np.shape(x)
    drop = [d for d in _reduced_dims(dims, len(shape)) if shape and shape[d] == 1]
    return np.squeeze(x, axis=tuple(drop)) if drop else np.asarray(x).view() if np.ndim(x) else x


def _view(x: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.reshape(x, shape, copy=False)
    except ValueError:
        if np.size(x) != np.prod([s for s in shape if s != -1]) and -1 not in shape:
            raise RuntimeError(
                f"shape '{list(shape)}' is invalid for input of size {np.size(x)}"
            ) from None
        try:
            np.reshape(np.zeros(np.shape(x), dtype=bool), shape)
        except ValueError:
            raise RuntimeError(
                f"shape '{list(shape)}' is invalid for input of size {np.size(x)}"
            ) from None
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
        ) from None


def _expand(x: Any, shape: tuple[int, ...]) -> np.ndarray:
    xs = x.shape if isinstance(x, (np.ndarray, np.generic)) else np.shape(x)
    lead = len(shape) - len(xs)
    target = (
        tuple(xs[i - lead] if s == -1 else s for i, s in enumerate(shape)) if -1 in shape
        else tuple(shape)
    )
    try:
        return np.broadcast_to(x, target)
    except ValueError:
        raise RuntimeError(
            f"The expanded size of the tensor ({shape[-1]}) must match the existing size "
            f"({xs[-1] if xs else 1}) at non-singleton dimension {len(shape) - 1}.  "
            f"Target sizes: {list(shape)}.  Tensor sizes: {list(xs)}"
        ) from None


# ---- the table -----------------------------------------------------------------------------
# fmt: off
# Python's operators, not np.add & co: on NumPy scalars they are ten times faster, and on
# arrays they are the same ufuncs.
op("add", "AddBackward0", operator.add, lambda g, a, b: g, lambda g, a, b: g, broadcasts=True,
   plain=True)
op("sub", "SubBackward0", operator.sub, lambda g, a, b: g, lambda g, a, b: -g, broadcasts=True,
   plain=True)
op("rsub", "RsubBackward1", lambda x, s: np.subtract(s, x), lambda g, x, s: -g, plain=True)
op("mul", "MulBackward0", operator.mul,
   lambda g, a, b: g * b,
   lambda g, a, b: g * a,
   saves=(0, 1), reads=((1,), (0,)), broadcasts=True, plain=True)
op("div", "DivBackward0", operator.truediv,
   lambda g, a, b: g / b,
   lambda g, a, b: -g * a / (b * b),
   saves=(0, 1), reads=((1,), (0, 1)), broadcasts=True, plain=True)
op("neg", "NegBackward0", operator.neg, lambda g, x: -g, plain=True)
op("reciprocal", "ReciprocalBackward0", np.reciprocal,
   lambda g, x, out: -g * out * out, saves_output=True, plain=True)
op("pow", "PowBackward0", operator.pow, _pow_scalar_rule, saves=(0,), plain=True)
op("pow_tensor", "PowBackward1", operator.pow,
   lambda g, a, b, out: g * b * a ** (b - 1),
   _pow_exponent_rule,
   saves=(0, 1), saves_output=True, broadcasts=True)
op("rpow", "PowBackward2", lambda x, base: np.power(base, x), _rpow_rule, saves_output=True)

op("abs", "AbsBackward0", np.abs, lambda g, x: g * const(np.sign(x._data)), saves=(0,))
op("sign", "SignBackward0", np.sign, lambda g, x: _zeros_like(g))
op("exp", "ExpBackward0", np.exp, lambda g, x, out: g * out, saves_output=True, plain=True)
op("log", "LogBackward0", np.log, lambda g, x: g / x, saves=(0,), plain=True)
op("log1p", "Log1PBackward0", np.log1p, lambda g, x: g / (x + 1), saves=(0,), plain=True)
op("sqrt", "SqrtBackward0", np.sqrt, lambda g, x, out: g / (2 * out), saves_output=True,
   plain=True)
op("sin", "SinBackward0", np.sin, lambda g, x: g * cos(x), saves=(0,))
op("cos", "CosBackward0", np.cos, lambda g, x: g * -sin(x), saves=(0,))
op("tan", "TanBackward0", np.tan, lambda g, x, out: g * (1 + out * out), saves_output=True,
   plain=True)
op("asin", "AsinBackward0", np.arcsin, lambda g, x: g / sqrt(1 - x * x), saves=(0,))
op("acos", "AcosBackward0", np.arccos, lambda g, x: -g / sqrt(1 - x * x), saves=(0,))
op("atan", "AtanBackward0", np.arctan, lambda g, x: g / (1 + x * x), saves=(0,), plain=True)
op("sinh", "SinhBackward0", np.sinh, lambda g, x: g * cosh(x), saves=(0,))
op("cosh", "CoshBackward0", np.cosh, lambda g, x: g * sinh(x), saves=(0,))
op("tanh", "TanhBackward0", np.tanh, lambda g, x, out: g * (1 - out * out), saves_output=True,
   plain=True)
op("sigmoid", "SigmoidBackward0", _sigmoid,
   lambda g, x, out: g * out * (1 - out), saves_output=True, plain=True)
# relu'(0) = 0, as torch's threshold_backward.
op("relu", "ReluBackward0", _relu, lambda g, x, out: g * (out > 0), saves_output=True, plain=True)
op("clamp", "ClampBackward1", _clamp, lambda g, x, lo, hi: where(g, 0.0, _clamp_mask(x, lo, hi)),
   saves=(0,))
op("clamp_tensor", "ClampBackward0", _clamp,
   lambda g, x, lo, hi: where(g, 0.0, _clamp_mask(x, lo, hi)),
   lambda g, x, lo, hi: where(g, 0.0, _clamp_bound_mask(x, lo, hi, low=True)),
   lambda g, x, lo, hi: where(g, 0.0, _clamp_bound_mask(x, lo, hi, low=False)),
   saves=(0, 1, 2), broadcasts=True)
op("maximum", "MaximumBackward0", np.maximum,
   lambda g, a, b: g * _tie_mask(a, b, np.greater),
   lambda g, a, b: g * _tie_mask(b, a, np.greater),
   saves=(0, 1), broadcasts=True)
op("minimum", "MinimumBackward0", np.minimum,
   lambda g, a, b: g * _tie_mask(a, b, np.less),
   lambda g, a, b: g * _tie_mask(b, a, np.less),
   saves=(0, 1), broadcasts=True)
op("where", "WhereBackward0", lambda a, b, cond: np.where(cond, a, b),
   lambda g, a, b, cond: where(g, 0.0, const(np.asarray(cond._data, dtype=bool))),
   lambda g, a, b, cond: where(0.0, g, const(np.asarray(cond._data, dtype=bool))),
   broadcasts=True)
op("to", "ToCopyBackward0", lambda x, dt: np.asarray(x).astype(dt),
   lambda g, x, dt: g.to(x.dtype))
op("clone", "CloneBackward0", lambda x: np.array(x, copy=True), lambda g, x: g)

op("sum", "SumBackward0", _sum, _sum_rule, plain=True)
op("sum_dim", "SumBackward1", _sum, _sum_rule, plain=True)
op("mean", "MeanBackward0", _mean, _mean_rule, plain=True)
op("mean_dim", "MeanBackward1", _mean, _mean_rule, plain=True)
op("prod", "ProdBackward0", _prod, _prod_rule, saves=(0,), saves_output=True)
op("prod_dim", "ProdBackward1", _prod, _prod_rule, saves=(0,), saves_output=True)
op("max", "MaxBackward1", lambda x: np.max(x), _extreme_all_rule, saves=(0,), saves_output=True)
op("min", "MinBackward1", lambda x: np.min(x), _extreme_all_rule, saves=(0,), saves_output=True)
op("max_dim", "MaxBackward0", _extreme_dim(np.max), _extreme_dim_rule(np.argmax), saves=(0,))
op("min_dim", "MinBackward0", _extreme_dim(np.min), _extreme_dim_rule(np.argmin), saves=(0,))

op("dot", "DotBackward0", _dot, lambda g, a, b: g * b, lambda g, a, b: g * a,
   saves=(0, 1), reads=((1,), (0,)), plain=True)
op("mv", "MvBackward0", _mm_checked,
   lambda g, a, b: g.unsqueeze(-1) * b, lambda g, a, b: a.transpose(0, 1) @ g,
   saves=(0, 1), reads=((1,), (0,)))
op("mm", "MmBackward0", _mm_checked, _matmul_grad_a, _matmul_grad_b,
   saves=(0, 1), reads=((1,), (0,)), plain=True)
op("matmul", "UnsafeViewBackward0", _mm_checked, _matmul_grad_a, _matmul_grad_b,
   saves=(0, 1), reads=((1,), (0,)), broadcasts=True, plain=True)

op("view", "ViewBackward0", _view, lambda g, x, shape: g.reshape(x._data.shape), view=True)
op("unsafe_view", "UnsafeViewBackward0", lambda x, shape: np.reshape(x, shape),
   lambda g, x, shape: g.reshape(x._data.shape))
op("squeeze", "SqueezeBackward0", lambda x: np.squeeze(x), lambda g, x: g.reshape(x._data.shape),
   view=True)
op("squeeze_dim", "SqueezeBackward1", _squeeze,
   lambda g, x, dims: g.reshape(x._data.shape), view=True)
op("squeeze_dims", "SqueezeBackward2", _squeeze,
   lambda g, x, dims: g.reshape(x._data.shape), view=True)
op("unsqueeze", "UnsqueezeBackward0", lambda x, d: np.expand_dims(x, d),
   lambda g, x, d: g.reshape(x._data.shape), view=True)
op("expand", "ExpandBackward0", _expand, lambda g, x, shape: sum_to_(g, x._data.shape), view=True)
op("transpose", "TransposeBackward0", lambda x, d0, d1: np.swapaxes(x, d0, d1),
   lambda g, x, d0, d1: g.transpose(d0, d1), view=True)
op("permute", "PermuteBackward0", lambda x, dims: np.transpose(x, dims),
   lambda g, x, dims: g.permute(tuple(np.argsort(dims))), view=True)
op("select", "SelectBackward0", lambda x, index: x[index],
   lambda g, x, index: _index_backward(g, x._data.shape, index), view=True)
op("slice", "SliceBackward0", lambda x, index: x[index],
   lambda g, x, index: _index_backward(g, x._data.shape, index), view=True)
op("index", "IndexBackward0", lambda x, index: x[index],
   lambda g, x, index: _index_backward(g, x._data.shape, index))
op("index_put_add", "IndexPutBackward0", _index_put_add,
   lambda g, src, shape, index: call(OPS["index"], g, index))
op("copy_slices", "torch::autograd::CopySlices", _copy_slices,
   _copy_slices_self_rule, _copy_slices_value_rule, broadcasts=True)
op("cat", "CatBackward0", _cat, _cat_rule, variadic=True, n_static=1)
op("stack", "StackBackward0", _stack, _stack_rule, variadic=True, n_static=1)
# fmt: on


def sum_to_(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    from engine._broadcast import sum_to

    return sum_to(g, shape)


# ---- the functions the rules and the public API use -------------------------------------------
def _unary_fn(name: str) -> Callable[[Tensor], Tensor]:
    row = OPS[name]

    def fn(x: Tensor) -> Tensor:
        return unary(row, x)

    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}."
    return fn


exp = _unary_fn("exp")
log = _unary_fn("log")
log1p = _unary_fn("log1p")
sqrt = _unary_fn("sqrt")
sin = _unary_fn("sin")
cos = _unary_fn("cos")
tan = _unary_fn("tan")
asin = _unary_fn("asin")
acos = _unary_fn("acos")
atan = _unary_fn("atan")
sinh = _unary_fn("sinh")
cosh = _unary_fn("cosh")
tanh = _unary_fn("tanh")
sigmoid = _unary_fn("sigmoid")
relu = _unary_fn("relu")
abs = _unary_fn("abs")  # noqa: A001 - torch's name
neg = _unary_fn("neg")
reciprocal = _unary_fn("reciprocal")
sign = _unary_fn("sign")
clone = _unary_fn("clone")
arcsin, arccos, arctan, negative = asin, acos, atan, neg


def where(a: Any, b: Any, cond: Tensor) -> Tensor:
    """Internal argument order (values first, then the condition); see engine.where."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("where expects at least one tensor value")
    ref = a if isinstance(a, Tensor) else b
    dt = ref._data.dtype
    if not isinstance(a, Tensor):
        a = const(np.asarray(a, dtype=dt))
    if not isinstance(b, Tensor):
        b = const(np.asarray(b, dtype=dt))
    if a._data.dtype != b._data.dtype:
        rt = _dtype.result_type((a._data.dtype, a.ndim), (b._data.dtype, b.ndim))
        a, b = a.to(_dtype.to_engine_dtype(rt)), b.to(_dtype.to_engine_dtype(rt))
    return call(OPS["where"], a, b, cond)


# ---- the math functions of the expression language (issue 14) --------------------------------
# torch's names, values and derivative conventions (checked against torch 2.13): floor, ceil
# and sign have derivative 0 everywhere; atan2's derivative at the origin is 0 (torch masks
# the 0/0); hypot's is NaN there (torch's self / result).
_erf_ufunc = np.frompyfunc(math.erf, 1, 1)
_erfc_ufunc = np.frompyfunc(math.erfc, 1, 1)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _special(ufunc: Any) -> Callable[[Any], Any]:
    # NumPy has no erf: libm's, element by element, in float64 then cast back (torch computes
    # float32 in float32; the two differ by less than one float32 ulp).
    def forward(x: Any) -> Any:
        dtype = np.result_type(x)
        if dtype.kind not in "f":
            dtype = np.dtype(_dtype.DEFAULT_FLOAT)
        out = ufunc(np.asarray(x, dtype=np.float64))
        return np.asarray(out, dtype=np.float64).astype(dtype, copy=False)[()]

    return forward


def _origin_mask(y: Tensor, x: Tensor) -> Any:
    return np.logical_and(np.asarray(y._data) == 0, np.asarray(x._data) == 0)


def _atan2_rule(k: int) -> Callable[..., Tensor]:
    # d atan2(y, x) = (x dy - y dx) / (x^2 + y^2), masked to 0 at the origin as torch does.
    def rule(g: Tensor, y: Tensor, x: Tensor) -> Tensor:
        origin = const(_origin_mask(y, x))
        inverse = where(0.0, 1 / where(1.0, y * y + x * x, origin), origin)
        return g * x * inverse if k == 0 else g * -y * inverse

    return rule


def _zero_rule(g: Tensor, x: Tensor) -> Tensor:
    return _zeros_like(g)


# fmt: off
op("asinh", "AsinhBackward0", np.arcsinh, lambda g, x: g / sqrt(x * x + 1), saves=(0,))
op("acosh", "AcoshBackward0", np.arccosh, lambda g, x: g / sqrt(x * x - 1), saves=(0,))
op("atanh", "AtanhBackward0", np.arctanh, lambda g, x: g / (1 - x * x), saves=(0,))
op("erf", "ErfBackward0", _special(_erf_ufunc),
   lambda g, x: g * _TWO_OVER_SQRT_PI * exp(-(x * x)), saves=(0,))
op("erfc", "ErfcBackward0", _special(_erfc_ufunc),
   lambda g, x: -g * _TWO_OVER_SQRT_PI * exp(-(x * x)), saves=(0,))
op("log2", "Log2Backward0", np.log2, lambda g, x: g / (x * math.log(2)), saves=(0,), plain=True)
op("log10", "Log10Backward0", np.log10, lambda g, x: g / (x * math.log(10)), saves=(0,),
   plain=True)
op("exp2", "Exp2Backward0", np.exp2, lambda g, x, out: g * out * math.log(2), saves_output=True,
   plain=True)
op("expm1", "Expm1Backward0", np.expm1, lambda g, x, out: g * (out + 1), saves_output=True,
   plain=True)
op("atan2", "Atan2Backward0", np.arctan2, _atan2_rule(0), _atan2_rule(1), saves=(0, 1),
   broadcasts=True)
op("hypot", "HypotBackward0", np.hypot, lambda g, a, b, out: g * a / out,
   lambda g, a, b, out: g * b / out, saves=(0, 1), saves_output=True, broadcasts=True)
op("floor", "FloorBackward0", np.floor, _zero_rule)
op("ceil", "CeilBackward0", np.ceil, _zero_rule)
# fmt: on

MATH_UNARY = ("asinh", "acosh", "atanh", "erf", "erfc", "log2", "log10", "exp2", "expm1",
              "floor", "ceil")
asinh, acosh, atanh, erf, erfc, log2, log10, exp2, expm1, floor, ceil = (
    _unary_fn(name) for name in MATH_UNARY
)
arcsinh, arccosh, arctanh = asinh, acosh, atanh


def atan2(input: Any, other: Any) -> Tensor:  # noqa: A002 - torch's name
    """Elementwise atan2(input, other), the angle of (other, input)."""
    return binary(OPS["atan2"], input, other)


def hypot(input: Any, other: Any) -> Tensor:  # noqa: A002 - torch's name
    """Elementwise sqrt(input**2 + other**2), without overflow."""
    return binary(OPS["hypot"], input, other)


arctan2 = atan2
MATH_FUNCTIONS = (*MATH_UNARY, "atan2", "hypot", "arcsinh", "arccosh", "arctanh", "arctan2")
