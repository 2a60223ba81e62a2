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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import _dtype
from engine._broadcast import sum_to
from engine._erf import erf as erf_array
from engine._erf import erfc as erfc_array
from engine._grad_mode import state
from engine.autograd.graph import FIT_ALL, FIT_NONE, FIT_SHAPE, record, record_one, record_pair
from engine.tensor import Tensor, _wrap, _wrap_dim, version_counter


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
    pair: bool = False  # two inputs and rules of (g, a, b) only: backward's short path (by `op`)


OPS: dict[str, OpDef] = {}
_NUMBERS = (float, int)


def op(name: str, node_name: str, forward: Callable, *rules: Any, **flags: Any) -> OpDef:
    """Register a row of the table."""
    if flags.get("variadic"):
        (rules,) = rules
    n_inputs = 0 if flags.get("variadic") else len(rules)
    frees = bool(flags.get("saves") or flags.get("saves_output"))
    pair = n_inputs == 2 and not flags.get("saves_output")
    row = OPS[name] = OpDef(
        name, node_name, forward, rules, n_inputs=n_inputs, frees=frees, pair=pair, **flags
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
            bd = b
            tb = type(b)
            # A float scalar and a Python number (the scalar graph's `y + 1`) first.
            if type(ad) not in _FLOAT_SCALARS or (tb is not float and tb is not int):
                if tb is not float and tb is not int and isinstance(b, np.generic):
                    b = bd = b.item()  # a NumPy scalar is a Python number to torch (no float64)
                if not (_is_float(ad) and isinstance(b, _NUMBERS)):
                    ad, bd = _promote(op, ad, bd)
                    fit = FIT_ALL
    else:
        ad, bd = a, b._data
        ta = type(a)
        if type(bd) not in _FLOAT_SCALARS or (ta is not float and ta is not int):  # as above
            if ta is not float and ta is not int and isinstance(a, np.generic):
                a = ad = a.item()
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
    """zeros(shape) with g added at x[index]'s positions (repeated positions add up)."""
    out = np.zeros(shape, dtype=g.dtype)
    parts = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(i, np.ndarray | list) for i in parts):
        out[index] = g  # basic indexing (ints, slices) reaches each position once
        return out
    if (len(parts) == len(shape) and g.dtype.kind == "f"
            and all(isinstance(i, np.ndarray) and i.dtype.kind in "iu" for i in parts)):
        # An integer index per dimension: a bincount over flat positions, ten times faster
        # than np.add.at (max pooling's and gather's gradients).
        flat = np.ravel_multi_index(np.broadcast_arrays(*parts), shape, mode="wrap")
        sums = np.bincount(flat.ravel(), np.broadcast_to(g, flat.shape).ravel(), out.size)
        return sums.astype(g.dtype, copy=False).reshape(shape)
    np.add.at(out, index, g)
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


# ---- ML activations (torch.nn.functional) ---------------------------------------------------
_SQRT_2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_TANH_K = math.sqrt(2.0 / math.pi)  # gelu's tanh approximation: tanh(k (x + c x^3))
_TANH_C = 0.044715


def _erf(x: Any) -> Any:
    return OPS["erf"].forward(x)  # the erf row's forward (issue 14's block, below the table)


def _float_only(kernel: str) -> Callable:
    def check(x: Any) -> None:
        if np.result_type(x).kind != "f":
            name = _dtype.to_engine_dtype(np.result_type(x)).name.capitalize()
            raise NotImplementedError(f'"{kernel}" not implemented for \'{name}\'')

    return check


def _gelu(x: Any, approximate: str) -> Any:
    if approximate == "tanh":
        inner = _TANH_K * (x + _TANH_C * x * x * x)
        return (0.5 * x * (1 + np.tanh(inner))).astype(np.result_type(x), copy=False)
    return (0.5 * x * (1 + _erf(x / _SQRT_2))).astype(np.result_type(x), copy=False)


def _gelu_derivative(x: Any, approximate: str, cdf: Any) -> Any:
    """d gelu / dx on NumPy values (cdf: Phi(x), when the forward's output gave it)."""
    if approximate == "tanh":
        u1 = _TANH_K * (1 + 3 * _TANH_C * x * x)
        t = np.tanh(_TANH_K * (x + _TANH_C * x * x * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * u1
    if cdf is None:
        cdf = 0.5 * (1 + _erf(x / _SQRT_2))
    return cdf + x * np.exp(-0.5 * x * x) / _SQRT_2PI


def _gelu_cdf(x: Tensor, out: Tensor, approximate: str) -> Any:
    # Phi(x) = gelu(x) / x, read off the forward's output: backward then needs no second
    # erf, which was a quarter of a transformer block's step. (Phi(0) = 1/2.)
    if approximate == "tanh":
        return None  # (1 + tanh) / 2 from gelu / x would cancel; tanh is cheap anyway
    xd, od = x._data, out._data
    # Where gelu(x) is zero or subnormal (x = 0, |x| below ~1e-308, x below about -37) the
    # quotient has lost its digits: Phi comes from erf there, as it would without the output.
    lost = np.abs(od) < np.finfo(od.dtype).tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        cdf = od / np.where(lost, 1, xd)
    if lost.any():
        cdf = np.where(lost, 0.5 * (1 + _erf(xd / _SQRT_2)), cdf)
    return cdf


def _gelu_backward(g: Any, x: Any, approximate: str, cdf: Any) -> Any:
    return (g * _gelu_derivative(x, approximate, cdf)).astype(np.result_type(g, x), copy=False)


def _gelu_second(gg: Tensor, g: Tensor, x: Tensor, approximate: str, cdf: Any) -> Tensor:
    # d^2 gelu / dx^2 in engine ops, so that third derivatives exist too.
    if approximate == "tanh":
        u1 = _TANH_K * (1 + 3 * _TANH_C * x * x)
        t = tanh(_TANH_K * (x + _TANH_C * x * x * x))
        return gg * g * (1 - t * t) * (u1 + 0.5 * x * (6 * _TANH_K * _TANH_C * x - 2 * t * u1 * u1))
    return gg * g * exp(-0.5 * x * x) / _SQRT_2PI * (2 - x * x)


def _silu(x: Any) -> Any:
    return x * _sigmoid(x)


def _silu_rule(g: Tensor, x: Tensor) -> Tensor:
    s = sigmoid(x)
    return g * s * (1 + x * (1 - s))


def _elu(x: Any, alpha: float) -> Any:
    # torch takes the negative branch at 0 itself (x <= 0), where both agree on the value.
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(
        np.result_type(x), copy=False)[()]


def _negative_part(x: Tensor) -> Tensor:
    # min(x, 0), so that the unused branch of a where never overflows (inf * 0 would be nan
    # in the second derivative).
    return unary(OPS["clamp"], x, None, 0.0)


def _leaky_relu(x: Any, slope: float) -> Any:
    return np.where(x > 0, x, x * slope).astype(np.result_type(x), copy=False)[()]


def _logsigmoid(x: Any) -> Any:
    # min(x, 0) - log1p(exp(-|x|)): exp never overflows, and large |x| keeps its digits.
    return (np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))).astype(np.result_type(x), copy=False)


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


# ---- fused ops: one row where torch records one node ----------------------------------------
def _addmm(bias: Any, a: Any, b: Any, beta: float, alpha: float) -> Any:
    out = _mm_checked(a, b)
    if alpha != 1:
        out = out * alpha
    return out + (bias if beta == 1 else bias * beta)


def _scaled(g: Any, k: float) -> Any:
    return g if k == 1 else g * k


def _softmax(x: Any, dim: int) -> Any:
    d = _wrap_dim(dim, np.ndim(x))
    e = np.exp(x - np.max(x, axis=d, keepdims=True))
    return e / np.sum(e, axis=d, keepdims=True)


def _log_softmax(x: Any, dim: int) -> Any:
    d = _wrap_dim(dim, np.ndim(x))
    z = x - np.max(x, axis=d, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=d, keepdims=True))


def _softmax_rule(g: Tensor, x: Tensor, dim: int, out: Tensor) -> Tensor:
    return out * (g - (g * out).sum(dim=dim, keepdim=True))


def _log_softmax_rule(g: Tensor, x: Tensor, dim: int, out: Tensor) -> Tensor:
    return g - exp(out) * g.sum(dim=dim, keepdim=True)


def _logsumexp(x: Any, dim: Any, keepdim: bool) -> Any:
    axis = _reduced_dims(dim, np.ndim(x))
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # all -inf (or an inf) along a row: no shift
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdim else np.squeeze(out, axis=axis)


def _logsumexp_rule(g: Tensor, x: Tensor, dim: Any, keepdim: bool, out: Tensor) -> Tensor:
    shape = x._data.shape
    return _unreduce(g, shape, dim, keepdim) * exp(x - _unreduce(out, shape, dim, keepdim))


def _var(x: Any, dim: Any, correction: float, keepdim: bool) -> Any:
    axis = None if dim is None else _reduced_dims(dim, np.ndim(x))
    return np.var(x, axis=axis, ddof=correction, keepdims=keepdim)


def _var_rule(g: Tensor, x: Tensor, dim: Any, correction: float, keepdim: bool) -> Tensor:
    shape = x._data.shape
    n = _count(shape, dim)
    centred = x - x.mean(dim=dim, keepdim=True) if dim is not None else x - x.mean()
    return _unreduce(g, shape, dim, keepdim) * centred * (2.0 * _inverse(n - correction))


def _inverse(k: float) -> float:
    # 1 / (n - correction); inf when no degrees of freedom are left (torch's nan, 0 * inf).
    return 1.0 / k if k > 0 else math.inf


def _std(x: Any, dim: Any, correction: float, keepdim: bool) -> Any:
    return np.sqrt(_var(x, dim, correction, keepdim))


def _std_rule(g: Tensor, x: Tensor, dim: Any, correction: float, keepdim: bool,
              out: Tensor) -> Tensor:
    shape = x._data.shape
    n = _count(shape, dim)
    centred = x - x.mean(dim=dim, keepdim=True) if dim is not None else x - x.mean()
    scale = _unreduce(g / out, shape, dim, keepdim) * _inverse(n - correction)
    return scale * centred


def _vector_norm(x: Any, ord: float, dim: Any, keepdim: bool) -> Any:  # noqa: A002
    axis = None if dim is None else _reduced_dims(dim, np.ndim(x))
    a = np.abs(x)
    if ord == math.inf:
        out = np.max(a, axis=axis, keepdims=keepdim)
    elif ord == -math.inf:
        out = np.min(a, axis=axis, keepdims=keepdim)
    elif ord == 0:
        out = np.sum(a != 0, axis=axis, keepdims=keepdim).astype(np.result_type(x))
    elif ord == 1:
        out = np.sum(a, axis=axis, keepdims=keepdim)
    elif ord == 2:
        out = np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdim))
    else:
        out = np.sum(a ** ord, axis=axis, keepdims=keepdim) ** (1.0 / ord)
    return np.asarray(out, dtype=np.result_type(x))[()]


def _vector_norm_rule(g: Tensor, x: Tensor, ord: float, dim: Any, keepdim: bool,  # noqa: A002
                      out: Tensor) -> Tensor:
    shape = x._data.shape
    g_full = _unreduce(g, shape, dim, keepdim)
    n_full = _unreduce(out, shape, dim, keepdim)
    if ord == 0:
        return _zeros_like(x)
    if ord == 1:
        return g_full * const(np.sign(x._data))
    if ord in (math.inf, -math.inf):
        # torch spreads the gradient evenly over the elements at the extreme.
        hit = np.abs(x._data) == n_full._data
        count = np.sum(hit, axis=None if dim is None else _reduced_dims(dim, len(shape)),
                       keepdims=True)
        return g_full * const((np.sign(x._data) * hit / count).astype(x._data.dtype))
    # |x|^(p-1) sign(x) / ||x||^(p-1); 0 where the norm is 0, as in torch.
    zero = const(n_full._data == 0)
    safe = where(1.0, n_full, zero)
    if ord == 2:
        return where(0.0, g_full * x / safe, zero)
    ratio = abs(x) / safe
    return where(0.0, g_full * const(np.sign(x._data)) * ratio ** (ord - 1), zero)


def _cumsum(x: Any, dim: int) -> Any:
    return np.cumsum(x, axis=_wrap_dim(dim, np.ndim(x)))


def _cumsum_rule(g: Tensor, x: Tensor, dim: int) -> Tensor:
    # The reversed cumulative sum of g.
    return call(OPS["flip"], call(OPS["cumsum"], call(OPS["flip"], g, (dim,)), dim), (dim,))


def _gather(x: Any, dim: int, index: np.ndarray) -> Any:
    return np.take_along_axis(np.asarray(x), index, axis=_wrap_dim(dim, np.ndim(x)))


def _gather_rule(g: Tensor, x: Tensor, dim: int, index: np.ndarray) -> Tensor:
    return call(OPS["scatter_add"], const(np.zeros(x._data.shape, g._data.dtype)), g, dim, index)


def _scatter_add(x: Any, src: Any, dim: int, index: np.ndarray) -> Any:
    out = np.array(x, copy=True)
    d = _wrap_dim(dim, out.ndim)
    src = np.asarray(src)
    # Every index position adds its src element along dim (repeated indices accumulate).
    grid = list(np.indices(index.shape, sparse=True))
    grid[d] = index
    np.add.at(out, tuple(grid), src[tuple(slice(0, n) for n in index.shape)])
    return out


def _repeat(x: Any, reps: tuple[int, ...]) -> Any:
    x = np.asarray(x)
    x = x.reshape((1,) * (len(reps) - x.ndim) + x.shape)
    return np.tile(x, reps)


def _repeat_rule(g: Tensor, x: Tensor, reps: tuple[int, ...]) -> Tensor:
    # Each tile's gradient adds up: split every dim into (repeats, size) and sum the repeats.
    shape = (1,) * (len(reps) - x.ndim) + tuple(x._data.shape)
    split = [n for r, s in zip(reps, shape, strict=True) for n in (r, s)]
    summed = g.reshape(tuple(split)).sum(dim=tuple(range(0, 2 * len(reps), 2)))
    return summed.reshape(x._data.shape)


def _masked_fill(x: Any, mask: Any, value: Any) -> Any:
    return np.where(mask, np.asarray(value, dtype=np.result_type(x)), x)[()]


def _embedding(weight: Any, index: np.ndarray, padding_idx: int | None) -> Any:
    return np.asarray(weight)[index]


def _embedding_rule(g: Tensor, weight: Tensor, index: np.ndarray, padding_idx: int | None
                    ) -> Tensor:
    grad = call(OPS["index_put_add"], g, weight._data.shape, (index,))
    if padding_idx is None:
        return grad
    keep = np.ones(weight._data.shape, dtype=bool)
    keep[padding_idx] = False  # the padding row never learns, as in torch
    return where(grad, 0.0, const(keep))


def _mse_loss(a: Any, b: Any, reduction: str) -> Any:
    d = a - b
    return _reduced(d * d, reduction)


def _reduced(v: Any, reduction: str) -> Any:
    if reduction == "mean":
        return np.mean(v)
    if reduction == "sum":
        return np.sum(v)
    return v


def _unreduced(g: Tensor, shape: tuple[int, ...], reduction: str) -> Tensor:
    # The gradient of a loss's reduction, as the elementwise terms see it.
    if reduction == "mean":
        return _unreduce(g / math.prod(shape), shape, None, False)
    if reduction == "sum":
        return _unreduce(g, shape, None, False)
    return g


def _mse_rule_a(g: Tensor, a: Tensor, b: Tensor, reduction: str) -> Tensor:
    return _unreduced(g, _broadcast_shape(a, b), reduction) * (2.0 * (a - b))


def _mse_rule_b(g: Tensor, a: Tensor, b: Tensor, reduction: str) -> Tensor:
    return _unreduced(g, _broadcast_shape(a, b), reduction) * (-2.0 * (a - b))


def _broadcast_shape(a: Any, b: Any) -> tuple[int, ...]:
    return np.broadcast_shapes(np.shape(a._data if isinstance(a, Tensor) else a),
                               np.shape(b._data if isinstance(b, Tensor) else b))


def _nll_loss(logp: Any, coef: np.ndarray, divisor: float, reduction: str) -> Any:
    # -sum_c coef[n, c] * logp[n, c]: coef holds the target one-hot rows (weighted, smoothed).
    per_sample = -np.sum(logp * coef, axis=1)
    if reduction == "none":
        return per_sample
    total = np.sum(per_sample)
    return total / divisor if reduction == "mean" else total


def _nll_rule(g: Tensor, logp: Tensor, coef: np.ndarray, divisor: float, reduction: str
              ) -> Tensor:
    c = const(coef.astype(logp._data.dtype))
    if reduction == "none":
        return -g.unsqueeze(1) * c
    scale = g / divisor if reduction == "mean" else g
    return -scale * c


def _bce_logits(x: Any, t: Any, weight: Any, pos_weight: Any, reduction: str) -> Any:
    # (1 - t) x + l softplus(-x), l = 1 + (pos_weight - 1) t; softplus(-x) computed stably.
    softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
    lw = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
    loss = (1 - t) * x + lw * softplus_neg
    if weight is not None:
        loss = loss * weight
    return np.asarray(_reduced(loss, reduction), dtype=np.result_type(x))[()]


def _bce_logits_grad_x(g: Tensor, x: Tensor, t: Tensor, weight: Any, pos_weight: Any,
                       reduction: str) -> Tensor:
    lw = 1 if pos_weight is None else 1 + (const(pos_weight) - 1) * t
    d = (1 - t) - lw * sigmoid(-x)
    if weight is not None:
        d = d * const(weight)
    return _unreduced(g, _broadcast_shape(x, t), reduction) * d


def _bce_logits_grad_t(g: Tensor, x: Tensor, t: Tensor, weight: Any, pos_weight: Any,
                       reduction: str) -> Tensor:
    d = -x
    if pos_weight is not None:
        softplus_neg = log1p(exp(-abs(x))) + unary(OPS["clamp"], -x, 0.0, None)
        d = d + (const(pos_weight) - 1) * softplus_neg
    if weight is not None:
        d = d * const(weight)
    return _unreduced(g, _broadcast_shape(x, t), reduction) * d


def _bce(x: Any, t: Any, weight: Any, reduction: str) -> Any:
    # torch's kernel: each log clamped at -100, so that x = 0 or 1 gives a finite loss.
    with np.errstate(divide="ignore"):
        loss = (t - 1) * np.maximum(np.log1p(-x), -100) - t * np.maximum(np.log(x), -100)
    if weight is not None:
        loss = loss * weight
    return np.asarray(_reduced(loss, reduction), dtype=np.result_type(x))[()]


_BCE_EPSILON = 1e-12  # torch's floor under x (1 - x) in the gradient


def _bce_grad_x(g: Tensor, x: Tensor, t: Tensor, weight: Any, reduction: str) -> Tensor:
    d = (x - t) / unary(OPS["clamp"], (1 - x) * x, _BCE_EPSILON, None)
    if weight is not None:
        d = d * const(weight)
    return _unreduced(g, _broadcast_shape(x, t), reduction) * d


def _bce_grad_t(g: Tensor, x: Tensor, t: Tensor, weight: Any, reduction: str) -> Tensor:
    d = unary(OPS["clamp"], log1p(-x), -100.0, None) - unary(OPS["clamp"], log(x), -100.0, None)
    if weight is not None:
        d = d * const(weight)
    return _unreduced(g, _broadcast_shape(x, t), reduction) * d


def _smooth_l1(a: Any, b: Any, reduction: str, beta: float) -> Any:
    d = a - b
    m = np.abs(d)
    return _reduced(np.where(m < beta, 0.5 * d * d / beta, m - 0.5 * beta), reduction)


def _smooth_l1_slope(a: Tensor, b: Tensor, beta: float) -> Tensor:
    d = a - b
    return where(d / beta, sign(d), const(np.abs(d._data) < beta))


def _huber(a: Any, b: Any, reduction: str, delta: float) -> Any:
    d = a - b
    m = np.abs(d)
    return _reduced(np.where(m < delta, 0.5 * d * d, delta * (m - 0.5 * delta)), reduction)


def _huber_slope(a: Tensor, b: Tensor, delta: float) -> Tensor:
    d = a - b
    return where(d, sign(d) * delta, const(np.abs(d._data) < delta))


def _pair_loss_rules(slope: Callable) -> tuple:
    # d loss / d a = slope(a - b), d loss / d b = -slope, through the reduction.
    def rule_a(g: Tensor, a: Tensor, b: Tensor, reduction: str, k: float) -> Tensor:
        return _unreduced(g, _broadcast_shape(a, b), reduction) * slope(a, b, k)

    def rule_b(g: Tensor, a: Tensor, b: Tensor, reduction: str, k: float) -> Tensor:
        return -(_unreduced(g, _broadcast_shape(a, b), reduction) * slope(a, b, k))

    return rule_a, rule_b


# Layer norm and batch norm: x standardised over `dims` ((x - mean) / sqrt(var + eps), the
# biased variance), then scaled and shifted per feature. `stats` is None for the batch's own
# statistics, else the (running) mean and variance to use, as constants.
def _layer_dims(ndim: int, n_normalized: int) -> tuple[int, ...]:
    return tuple(range(ndim - n_normalized, ndim))


def _batch_dims(ndim: int) -> tuple[int, ...]:
    return (0, *range(2, ndim))


def _feature_shape(ndim: int) -> tuple[int, ...]:
    return (1, -1) + (1,) * (ndim - 2)  # a channel's weight against (N, C, *)


def _standardised(x: Any, dims: tuple[int, ...], eps: float, stats: Any) -> Any:
    if stats is None:
        mean = np.mean(x, axis=dims, keepdims=True)
        c = x - mean
        var = np.mean(c * c, axis=dims, keepdims=True)
    else:
        shape = _feature_shape(np.ndim(x))
        c = x - stats[0].reshape(shape)
        var = stats[1].reshape(shape)
    return c * (1 / np.sqrt(var + eps))  # torch multiplies by the reciprocal std


def _affine(xhat: Any, w: Any, b: Any, shape: tuple[int, ...] | None) -> Any:
    if w is not None:
        xhat = xhat * (w if shape is None else w.reshape(shape))
    if b is not None:
        xhat = xhat + (b if shape is None else b.reshape(shape))
    return xhat


def _layer_norm(x: Any, w: Any, b: Any, n_normalized: int, eps: float) -> Any:
    return _affine(_standardised(x, _layer_dims(np.ndim(x), n_normalized), eps, None), w, b,
                   None)


def _batch_norm(x: Any, w: Any, b: Any, stats: Any, eps: float) -> Any:
    nd = np.ndim(x)
    return _affine(_standardised(x, _batch_dims(nd), eps, stats), w, b, _feature_shape(nd))


def _standardised_t(x: Tensor, dims: tuple[int, ...], eps: float, stats: Any
                    ) -> tuple[Tensor, Tensor]:
    """(x standardised, 1 / std) in engine ops, so the rules differentiate again."""
    if stats is None:
        c = x - x.mean(dim=dims, keepdim=True)
        rstd = 1 / sqrt((c * c).mean(dim=dims, keepdim=True) + eps)
    else:
        shape = _feature_shape(x.ndim)
        c = x - const(stats[0].reshape(shape))
        rstd = const(1 / np.sqrt(stats[1].reshape(shape) + eps))
    return c * rstd, rstd


def _norm_grad_input(g: Tensor, x: Tensor, w: Any, dims: tuple[int, ...], eps: float,
                     stats: Any, shape: tuple[int, ...] | None) -> Tensor:
    xhat, rstd = _standardised_t(x, dims, eps, stats)
    gx = g if w is None else g * (w if shape is None else w.reshape(shape))
    if stats is not None:  # constant statistics: the normalisation is affine in x
        return gx * rstd
    return rstd * (gx - gx.mean(dim=dims, keepdim=True)
                   - xhat * (gx * xhat).mean(dim=dims, keepdim=True))


def _outer_dims(ndim: int, dims: tuple[int, ...], shape: tuple[int, ...] | None) -> tuple:
    # The dims a weight's gradient sums over: all but the normalised ones (layer norm) or
    # all but the channel (batch norm).
    return tuple(range(ndim - len(dims))) if shape is None else dims


def _norm_rules(geometry: Callable) -> tuple:
    # geometry(x, *static) -> (dims, eps, stats, weight shape or None)
    def rule_x(g: Tensor, x: Tensor, w: Any, b: Any, *static: Any) -> Tensor:
        dims, eps, stats, shape = geometry(x, *static)
        return _norm_grad_input(g, x, w, dims, eps, stats, shape)

    def rule_w(g: Tensor, x: Tensor, w: Any, b: Any, *static: Any) -> Tensor:
        dims, eps, stats, shape = geometry(x, *static)
        xhat = _standardised_t(x, dims, eps, stats)[0]
        return (g * xhat).sum(dim=_outer_dims(x.ndim, dims, shape))

    def rule_b(g: Tensor, x: Any, w: Any, b: Any, *static: Any) -> Tensor:
        dims, _, _, shape = geometry(x, *static)
        return g.sum(dim=_outer_dims(g.ndim, dims, shape))

    return rule_x, rule_w, rule_b


def _layer_geometry(x: Any, n_normalized: int, eps: float) -> tuple:
    return _layer_dims(np.ndim(x._data), n_normalized), eps, None, None


def _batch_geometry(x: Any, stats: Any, eps: float) -> tuple:
    nd = np.ndim(x._data)
    return _batch_dims(nd), eps, stats, _feature_shape(nd)


def _conv_out(n: int, k: int, stride: int, pad: int, dil: int) -> int:
    return (n + 2 * pad - dil * (k - 1) - 1) // stride + 1


def _im2col(x: np.ndarray, kshape: tuple[int, ...], stride: tuple, pad: tuple, dil: tuple
            ) -> np.ndarray:
    """(N, C, *spatial) -> (N, C, *kernel, *out): every kernel offset's strided window, a view
    of the padded input (no copy until the contraction)."""
    nd = len(kshape)
    if any(pad):
        x = np.pad(x, [(0, 0), (0, 0), *((p, p) for p in pad)])
    out = [_conv_out(x.shape[2 + i] - 2 * pad[i], kshape[i], stride[i], pad[i], dil[i])
           for i in range(nd)]
    s = x.strides
    shape = (*x.shape[:2], *kshape, *out)
    strides = (*s[:2], *(s[2 + i] * dil[i] for i in range(nd)),
               *(s[2 + i] * stride[i] for i in range(nd)))
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=False)


def _conv(x: Any, w: Any, b: Any, stride: tuple, pad: tuple, dil: tuple, groups: int) -> Any:
    nd = w.ndim - 2
    cols = _im2col(np.asarray(x), w.shape[2:], stride, pad, dil)
    n, cin = cols.shape[:2]
    cout = w.shape[0]
    spatial = cols.shape[2 + nd:]
    cg, og = cin // groups, cout // groups
    outs = []
    for k in range(groups):
        c = cols[:, k * cg:(k + 1) * cg]
        wk = w[k * og:(k + 1) * og]
        # (N, Cg*K, L) contracted with (Og, Cg*K): one BLAS call per group.
        c2 = c.reshape(n, cg * math.prod(w.shape[2:]), math.prod(spatial))
        outs.append(np.matmul(wk.reshape(og, -1), c2))
    out = (outs[0] if groups == 1 else np.concatenate(outs, axis=1)).reshape(n, cout, *spatial)
    if b is not None:
        out = out + np.asarray(b).reshape((1, cout) + (1,) * nd)
    return out.astype(np.result_type(x, w), copy=False)


def _conv_grad_input(g: Tensor, x: Tensor, w: Tensor, b: Any, stride: tuple, pad: tuple,
                     dil: tuple, groups: int) -> Tensor:
    return call(OPS["conv_transpose_input"], g, w, tuple(x._data.shape), stride, pad, dil, groups)


def _conv_grad_weight(g: Tensor, x: Tensor, w: Tensor, b: Any, stride: tuple, pad: tuple,
                      dil: tuple, groups: int) -> Tensor:
    return call(OPS["conv_weight_grad"], g, x, tuple(w._data.shape), stride, pad, dil, groups)


def _conv_grad_bias(g: Tensor, x: Tensor, w: Tensor, b: Any, stride: tuple, pad: tuple,
                    dil: tuple, groups: int) -> Tensor:
    return g.sum(dim=(0, *range(2, g.ndim)))


def _padded_shape(xshape: tuple[int, ...], kshape: tuple, stride: tuple, pad: tuple,
                  dil: tuple, out: tuple) -> tuple[int, ...]:
    # x's padded shape, large enough for ceil_mode pooling's last windows too
    return (*xshape[:2], *(max(xshape[2 + i] + 2 * pad[i],
                               (out[i] - 1) * stride[i] + (kshape[i] - 1) * dil[i] + 1)
                           for i in range(len(kshape))))


def _offset_slices(offset: tuple, stride: tuple, dil: tuple, out: tuple) -> tuple:
    """The positions of the padded input that kernel offset `offset` reads, window by window."""
    return (slice(None), slice(None),
            *(slice(offset[i] * dil[i], offset[i] * dil[i] + stride[i] * out[i], stride[i])
              for i in range(len(offset))))


def _col2im(cols: np.ndarray, xshape: tuple[int, ...], kshape: tuple, stride: tuple,
            pad: tuple, dil: tuple) -> np.ndarray:
    """The adjoint of _im2col: add every window back into a (padded) input of xshape."""
    nd = len(kshape)
    out = cols.shape[2 + nd:]
    padded = np.zeros(_padded_shape(xshape, kshape, stride, pad, dil, out), dtype=cols.dtype)
    for offset in np.ndindex(*kshape):
        padded[_offset_slices(offset, stride, dil, out)] += cols[(slice(None), slice(None),
                                                                  *offset)]
    return padded[(slice(None), slice(None),
                   *(slice(pad[i], pad[i] + xshape[2 + i]) for i in range(nd)))]


def _conv_transpose_input(g: Any, w: Any, xshape: tuple, stride: tuple, pad: tuple, dil: tuple,
                          groups: int) -> Any:
    g = np.asarray(g)
    n, cout = g.shape[:2]
    spatial = g.shape[2:]
    cg, og = xshape[1] // groups, cout // groups
    ksize = math.prod(w.shape[2:])
    parts = []
    for k in range(groups):
        wk = w[k * og:(k + 1) * og].reshape(og, cg * ksize)
        gk = g[:, k * og:(k + 1) * og].reshape(n, og, -1)
        parts.append(np.matmul(wk.T, gk).reshape(n, cg, *w.shape[2:], *spatial))
    cols = parts[0] if groups == 1 else np.concatenate(parts, axis=1)
    return _col2im(cols, xshape, w.shape[2:], stride, pad, dil).astype(g.dtype, copy=False)


def _conv_weight_grad(g: Any, x: Any, wshape: tuple, stride: tuple, pad: tuple, dil: tuple,
                      groups: int) -> Any:
    cols = _im2col(np.asarray(x), wshape[2:], stride, pad, dil)
    g = np.asarray(g)
    n, cout = g.shape[:2]
    cg, og = wshape[1], cout // groups
    ksize = math.prod(wshape[2:])
    parts = []
    for k in range(groups):
        c = cols[:, k * cg:(k + 1) * cg].reshape(n, cg * ksize, -1)
        gk = g[:, k * og:(k + 1) * og].reshape(n, og, -1)
        # (Og, L) x (L, Cg*K) per sample, then the sum over the batch: one batched BLAS call,
        # 10x faster than einsum's contraction over (n, l) together.
        parts.append(np.matmul(gk, c.transpose(0, 2, 1)).sum(axis=0))
    out = parts[0] if groups == 1 else np.concatenate(parts, axis=0)
    return out.reshape(wshape).astype(g.dtype, copy=False)


def _conv_transpose_input_rules() -> tuple:
    # d/dg: the convolution of gg with w; d/dw: the weight gradient of g against gg.
    def rule_g(gg: Tensor, g: Tensor, w: Tensor, xshape: tuple, stride: tuple, pad: tuple,
               dil: tuple, groups: int) -> Tensor:
        return call(OPS["conv"], gg, w, None, stride, pad, dil, groups)

    def rule_w(gg: Tensor, g: Tensor, w: Tensor, xshape: tuple, stride: tuple, pad: tuple,
               dil: tuple, groups: int) -> Tensor:
        return call(OPS["conv_weight_grad"], g, gg, tuple(w._data.shape), stride, pad, dil,
                    groups)

    return rule_g, rule_w


def _conv_weight_grad_rules() -> tuple:
    def rule_g(gw: Tensor, g: Tensor, x: Tensor, wshape: tuple, stride: tuple, pad: tuple,
               dil: tuple, groups: int) -> Tensor:
        return call(OPS["conv"], x, gw, None, stride, pad, dil, groups)

    def rule_x(gw: Tensor, g: Tensor, x: Tensor, wshape: tuple, stride: tuple, pad: tuple,
               dil: tuple, groups: int) -> Tensor:
        return call(OPS["conv_transpose_input"], g, gw, tuple(x._data.shape), stride, pad, dil,
                    groups)

    return rule_g, rule_x


def _max_pool(x: Any, kernel: tuple, stride: tuple, pad: tuple, dil: tuple, ceil: bool) -> Any:
    # An unbatched (C, H, W) input is one node too, as in torch.
    batched = np.ndim(x) == 2 + len(kernel)
    offsets = _pool_offsets(_pool_windows(x if batched else x[None], kernel, stride, pad, dil,
                                          ceil), kernel)
    out = next(offsets).copy()
    for v in offsets:  # kernel-offset by kernel-offset: 20x faster than np.max over windows
        np.maximum(out, v, out=out)
    return out if batched else out[0]


def _pool_offsets(win: np.ndarray, kernel: tuple) -> Iterator[np.ndarray]:
    """The windows' values at each kernel offset in order: (N, C, *out) strided views."""
    for offset in np.ndindex(*kernel):
        yield win[(slice(None), slice(None), *offset)]


def _pool_out(n: int, k: int, stride: int, pad: int, dil: int, ceil: bool) -> int:
    """torch's pooling_output_shape: with ceil_mode a last partial window counts, unless it
    would start in the right padding."""
    if not ceil:
        return _conv_out(n, k, stride, pad, dil)
    out = -(-(n + 2 * pad - dil * (k - 1) - 1) // stride) + 1
    return out - 1 if (out - 1) * stride >= n + pad else out


def _pool_windows(x: Any, kernel: tuple, stride: tuple, pad: tuple, dil: tuple, ceil: bool
                  ) -> np.ndarray:
    x = np.asarray(x)
    nd = len(kernel)
    # Padding (and ceil_mode's partial windows past the right edge) never wins a max.
    right = [pad[i] + max(0, (_pool_out(x.shape[2 + i], kernel[i], stride[i], pad[i], dil[i],
                                        ceil) - 1) * stride[i] + dil[i] * (kernel[i] - 1) + 1
                          - x.shape[2 + i] - 2 * pad[i]) for i in range(nd)]
    if any(pad) or any(right):
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min  # (integer images)
        x = np.pad(x, [(0, 0), (0, 0), *zip(pad, right, strict=True)], constant_values=lowest)
    return _im2col(x, kernel, stride, (0,) * nd, dil)


def _max_pool_backward(g: Any, x: Any, kernel: tuple, stride: tuple, pad: tuple, dil: tuple,
                       ceil: bool) -> Any:
    """The whole gradient of each window to its first maximum (torch's index), added kernel
    offset by kernel offset into strided slices of the input (no index arrays, no np.add.at:
    3x faster than scattering at the indices)."""
    nd = len(kernel)
    batched = np.ndim(x) == 2 + nd
    x4, g4 = (x, g) if batched else (x[None], g[None])
    win = _pool_windows(x4, kernel, stride, pad, dil, ceil)
    out = _max_pool(x4, kernel, stride, pad, dil, ceil)
    padded = np.zeros(_padded_shape(x4.shape, kernel, stride, pad, dil, out.shape[2:]),
                      dtype=g4.dtype)
    if np.isnan(out).any():  # torch's index is then the last NaN: the index path
        return _index_put_add(g, np.shape(x), _max_pool_index(x, kernel, stride, pad, dil, ceil))
    taken = np.zeros(out.shape, dtype=bool)
    for offset, v in zip(np.ndindex(*kernel), _pool_offsets(win, kernel), strict=True):
        hit = v == out  # a maximum of its window
        hit &= ~taken  # the first one
        taken |= hit
        padded[_offset_slices(offset, stride, dil, out.shape[2:])] += g4 * hit
    gx = padded[(slice(None), slice(None),
                 *(slice(pad[i], pad[i] + x4.shape[2 + i]) for i in range(nd)))]
    return gx if batched else gx[0]


def _max_pool_double_rule(gg: Tensor, g: Tensor, x: Tensor, kernel: tuple, stride: tuple,
                          pad: tuple, dil: tuple, ceil: bool) -> Tensor:
    # Linear in g: its derivative picks gg at each window's maximum, as max_pool picks x.
    return call(OPS["index"], gg, _max_pool_index(x._data, kernel, stride, pad, dil, ceil))


def _max_pool_index(x: Any, kernel: tuple, stride: tuple, pad: tuple, dil: tuple, ceil: bool
                    ) -> tuple:
    """For every output position, the index into x of its window's first maximum."""
    nd = len(kernel)
    if np.ndim(x) == 1 + nd:  # unbatched
        index = _max_pool_index(x[None], kernel, stride, pad, dil, ceil)
        return tuple(a[0] for a in np.broadcast_arrays(*index)[1:])
    win = _pool_windows(x, kernel, stride, pad, dil, ceil)
    n, c = win.shape[:2]
    out = win.shape[2 + nd:]
    # The flat kernel offset of each window's maximum as torch's kernel finds it (the first
    # maximum; the last NaN), one offset at a time.
    values = _pool_offsets(win, kernel)
    best = next(values).copy()
    k = np.zeros(best.shape, dtype=np.intp)
    for j, v in enumerate(values, 1):
        better = (v > best) | (v != v)
        np.copyto(best, v, where=better)
        k[better] = j
    offsets = np.unravel_index(k, kernel)
    grid = np.indices(out, sparse=True)
    spatial = tuple(grid[i] * stride[i] + offsets[i] * dil[i] - pad[i] for i in range(nd))
    lead = (np.arange(n).reshape((n,) + (1,) * (nd + 1)),
            np.arange(c).reshape((1, c) + (1,) * nd))
    return lead + spatial


def max_pool_indices(x: Tensor, kernel: tuple, stride: tuple, pad: tuple, dil: tuple,
                     ceil: bool) -> Tensor:
    """torch's return_indices: each window's maximum as a flat index into its input plane."""
    nd = len(kernel)
    spatial = _max_pool_index(x._data, kernel, stride, pad, dil, ceil)[-nd:]
    plane = np.ravel_multi_index(np.broadcast_arrays(*spatial), x._data.shape[-nd:])
    return _wrap(np.ascontiguousarray(plane, dtype=np.int64))


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
# ML activations with torch's semantics (torch.nn.functional). Second derivatives: the rules
# are engine ops; gelu's is its own row, as torch's GeluBackwardBackward0.
op("gelu", "GeluBackward0", _gelu,
   lambda g, x, approximate, out: call(OPS["gelu_backward"], g, x, approximate,
                                       _gelu_cdf(x, out, approximate)),
   saves=(0,), saves_output=True)
op("gelu_backward", "GeluBackwardBackward0", _gelu_backward,
   lambda gg, g, x, approximate, cdf: call(OPS["gelu_backward"], gg, x, approximate, cdf),
   _gelu_second, saves=(0, 1), reads=((1,), (0, 1)))
op("silu", "SiluBackward0", _silu, _silu_rule, saves=(0,))
op("elu", "EluBackward0", _elu,
   lambda g, x, alpha: where(g, g * alpha * exp(_negative_part(x)), const(x._data > 0)),
   saves=(0,))
op("leaky_relu", "LeakyReluBackward0", _leaky_relu,
   lambda g, x, slope: where(g, g * slope, const(x._data > 0)), saves=(0,))
# torch computes softsign as x / (1 + |x|): its node is the division's.
op("softsign", "DivBackward0", lambda x: x / (1 + np.abs(x)),
   lambda g, x: g / ((abs(x) + 1) * (abs(x) + 1)), saves=(0,))
op("logsigmoid", "LogSigmoidBackward0", _logsigmoid, lambda g, x: g * sigmoid(-x), saves=(0,))
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
op("expand", "ExpandBackward0", _expand, lambda g, x, shape: sum_to(g, x._data.shape), view=True)
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

# Fused ops: torch records one node for each, with its own derivative.
op("addmm", "AddmmBackward0", _addmm,
   lambda g, bias, a, b, beta, alpha: _scaled(g, beta),
   lambda g, bias, a, b, beta, alpha: _scaled(g @ b.mT, alpha),
   lambda g, bias, a, b, beta, alpha: _scaled(a.mT @ g, alpha),
   saves=(1, 2), reads=((), (2,), (1,)), broadcasts=True, plain=True)
# matmul's own squeeze of a 1-D operand's dimension (torch's squeeze.dims, in place).
op("matmul_squeeze", "SqueezeBackward4", _squeeze,
   lambda g, x, dims: g.reshape(x._data.shape), view=True)
op("t", "TBackward0", lambda x: np.swapaxes(x, 0, 1) if np.ndim(x) == 2 else x,
   lambda g, x: call(OPS["t"], g), view=True)
op("bmm", "BmmBackward0", _mm_checked, _matmul_grad_a, _matmul_grad_b,
   saves=(0, 1), reads=((1,), (0,)))
op("softmax", "SoftmaxBackward0", _softmax, _softmax_rule, saves_output=True)
op("log_softmax", "LogSoftmaxBackward0", _log_softmax, _log_softmax_rule, saves_output=True)
op("logsumexp", "LogsumexpBackward0", _logsumexp, _logsumexp_rule, saves=(0,),
   saves_output=True)
op("var", "VarBackward0", _var, _var_rule, saves=(0,))
op("std", "StdBackward0", _std, _std_rule, saves=(0,), saves_output=True)
op("vector_norm", "LinalgVectorNormBackward0", _vector_norm, _vector_norm_rule, saves=(0,),
   saves_output=True)
op("cumsum", "CumsumBackward0", _cumsum, _cumsum_rule)
op("flip", "FlipBackward0", lambda x, dims: np.flip(x, dims).copy(),
   lambda g, x, dims: call(OPS["flip"], g, dims))
op("gather", "GatherBackward0", _gather, _gather_rule)
op("sort", "SortBackward0", _gather, _gather_rule)
op("topk", "TopkBackward0", _gather, _gather_rule)
op("scatter_add", "ScatterAddBackward0", _scatter_add,
   lambda g, x, src, dim, index: g,
   lambda g, x, src, dim, index: call(OPS["gather"], g, dim, index))
op("index_select", "IndexSelectBackward0", lambda x, index: x[index],
   lambda g, x, index: _index_backward(g, x._data.shape, index))
op("split", "SplitBackward0", lambda x, index: x[index],
   lambda g, x, index: _index_backward(g, x._data.shape, index), view=True)
op("tril", "TrilBackward0", lambda x, k: np.tril(x, k), lambda g, x, k: call(OPS["tril"], g, k))
op("triu", "TriuBackward0", lambda x, k: np.triu(x, k), lambda g, x, k: call(OPS["triu"], g, k))
op("split_with_sizes", "SplitWithSizesBackward0", lambda x, index: x[index],
   lambda g, x, index: _index_backward(g, x._data.shape, index), view=True)
op("unbind", "UnbindBackward0", lambda x, index: x[index],
   lambda g, x, index: _index_backward(g, x._data.shape, index), view=True)
op("repeat", "RepeatBackward0", _repeat, _repeat_rule)
op("masked_fill", "MaskedFillBackward0", _masked_fill,
   lambda g, x, mask, value: where(0.0, g, const(np.asarray(mask, dtype=bool))),
   broadcasts=True)
op("embedding", "EmbeddingBackward0", _embedding, _embedding_rule)
op("mse_loss", "MseLossBackward0", _mse_loss, _mse_rule_a, _mse_rule_b, saves=(0, 1),
   broadcasts=True)
op("nll_loss", "NllLossBackward0", _nll_loss, _nll_rule)
op("bce_with_logits", "BinaryCrossEntropyWithLogitsBackward0", _bce_logits, _bce_logits_grad_x,
   _bce_logits_grad_t, saves=(0, 1), broadcasts=True)
op("binary_cross_entropy", "BinaryCrossEntropyBackward0", _bce, _bce_grad_x, _bce_grad_t,
   saves=(0, 1))
op("smooth_l1_loss", "SmoothL1LossBackward0", _smooth_l1, *_pair_loss_rules(_smooth_l1_slope),
   saves=(0, 1), broadcasts=True)
op("huber_loss", "HuberLossBackward0", _huber, *_pair_loss_rules(_huber_slope), saves=(0, 1),
   broadcasts=True)
op("layer_norm", "NativeLayerNormBackward0", _layer_norm, *_norm_rules(_layer_geometry),
   saves=(0, 1), reads=((0, 1), (0,), ()))
op("batch_norm", "NativeBatchNormBackward0", _batch_norm, *_norm_rules(_batch_geometry),
   saves=(0, 1), reads=((0, 1), (0,), ()))
op("conv", "ConvolutionBackward0", _conv, _conv_grad_input, _conv_grad_weight, _conv_grad_bias,
   saves=(0, 1), reads=((1,), (0,), ()))
op("conv_transpose_input", "ConvolutionBackwardBackward0", _conv_transpose_input,
   *_conv_transpose_input_rules(), saves=(0, 1), reads=((1,), (0,)))
op("conv_weight_grad", "ConvolutionBackwardBackward0", _conv_weight_grad,
   *_conv_weight_grad_rules(), saves=(0, 1), reads=((1,), (0,)))
op("max_pool", "MaxPool2DWithIndicesBackward0", _max_pool,
   lambda g, x, *geometry: call(OPS["max_pool_backward"], g, x, *geometry), saves=(0,))
op("max_pool_backward", "MaxPool2DWithIndicesBackwardBackward0", _max_pool_backward,
   _max_pool_double_rule, lambda gg, g, x, *geometry: _zeros_like(x), saves=(1,),
   reads=((1,), ()))
# fmt: on


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


_check_gelu = _float_only("GeluKernelImpl")
_check_silu = _float_only("silu_cpu")
_check_elu = _float_only("elu_cpu")
_check_leaky = _float_only("leaky_relu_cpu")
_check_logsigmoid = _float_only("log_sigmoid_cpu")


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (Phi the standard normal CDF), or its tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    _check_gelu(x._data)
    return unary(OPS["gelu"], x, approximate)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    _check_silu(x._data)
    return unary(OPS["silu"], x)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, else alpha * (exp(x) - 1)."""
    _check_elu(x._data)
    return unary(OPS["elu"], x, float(alpha))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, else negative_slope * x."""
    _check_leaky(x._data)
    return unary(OPS["leaky_relu"], x, float(negative_slope))


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    if x._data.dtype.kind != "f":
        x = x.to(_dtype.float32)  # as torch's true division of an integer tensor
    return unary(OPS["softsign"], x)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)), computed without overflow."""
    _check_logsigmoid(x._data)
    return unary(OPS["logsigmoid"], x)


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
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _special(ufunc: Any) -> Callable[[Any], Any]:
    # NumPy has no erf: fdlibm's, vectorised (engine/_erf.py), in float64 then cast back (torch
    # computes float32 in float32; the two differ by less than one float32 ulp).
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
op("erf", "ErfBackward0", _special(erf_array),
   lambda g, x: g * _TWO_OVER_SQRT_PI * exp(-(x * x)), saves=(0,))
op("erfc", "ErfcBackward0", _special(erfc_array),
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
