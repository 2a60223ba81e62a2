"""torch's call signatures over the op table: module functions, Tensor methods, operators.

Each function here only parses torch's arguments and picks the row of engine/_ops.py to
run; no derivative is written here. `install()` makes them Tensor methods as well.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, cast, overload

import numpy as np

from engine import _creation, _device, _dtype, _ops
from engine._grad_mode import no_grad, state
from engine._ops import OPS, _broadcast_message, binary, call, const, unary
from engine._ops import where as _where
from engine.autograd._grad import backward as _backward
from engine.tensor import Tensor, VersionCounter, _wrap, _wrap_dim

_Number = (int, float, bool)
_ADD, _SUB, _MUL, _DIV = OPS["add"], OPS["sub"], OPS["mul"], OPS["div"]
_MM, _TRANSPOSE, _MATMUL_SQUEEZE = OPS["mm"], OPS["transpose"], OPS["matmul_squeeze"]


class ValuesIndices(NamedTuple):
    """torch.return_types' (values, indices) pairs: max(dim), min(dim), sort, topk."""

    values: Tensor
    indices: Tensor


def _return_type(name: str) -> type[ValuesIndices]:
    """A ValuesIndices named as torch names it, so that it prints `max(values=..., ...)`."""
    return cast("type[ValuesIndices]", type(name, (ValuesIndices,), {"__slots__": ()}))


return_types_max = _return_type("max")
return_types_min = _return_type("min")
return_types_sort = _return_type("sort")
return_types_topk = _return_type("topk")


def _shape_args(shape: Sequence[Any]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _as_tensor(x: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _Number) and like is not None:
        dt = _dtype.result_type((like._data.dtype, like.ndim), x)
        return const(np.asarray(x, dtype=dt))
    return _creation.tensor(x)


# ---- arithmetic ----------------------------------------------------------------------------
def add(a: Any, b: Any, *, alpha: Any = 1, out: Tensor | None = None) -> Tensor:
    """a + alpha * b."""
    result = binary(_ADD, a, b if alpha == 1 else mul(b, alpha))
    return result if out is None else _into(out, result)


def sub(a: Any, b: Any, *, alpha: Any = 1, out: Tensor | None = None) -> Tensor:
    """a - alpha * b."""
    result = binary(_SUB, a, b if alpha == 1 else mul(b, alpha))
    return result if out is None else _into(out, result)


def mul(a: Any, b: Any, *, out: Tensor | None = None) -> Tensor:
    """a * b, broadcasting."""
    result = binary(_MUL, a, b)
    return result if out is None else _into(out, result)


def div(a: Any, b: Any, *, rounding_mode: str | None = None, out: Tensor | None = None
        ) -> Tensor:
    """a / b: true division, or rounded ('trunc', 'floor'; no gradient, as in torch)."""
    result = binary(_DIV, a, b)
    if rounding_mode is not None:
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or "
                             f"'floor' but found '{rounding_mode}'")
        rounded = (np.trunc if rounding_mode == "trunc" else np.floor)(result._data)
        dt = _dtype.result_type(*((t._data.dtype, t.ndim) if isinstance(t, Tensor) else t
                                  for t in (a, b)))
        result = _wrap(np.asarray(rounded).astype(dt))
    return result if out is None else _into(out, result)


# The operators: the functions above without torch's keywords (a + b takes neither alpha
# nor out=), one call from the operator to the op table on the scalar graph's hot path.
def _add_op(a: Any, b: Any) -> Tensor:
    return binary(_ADD, a, b)


def _sub_op(a: Any, b: Any) -> Tensor:
    return binary(_SUB, a, b)


def _mul_op(a: Any, b: Any) -> Tensor:
    return binary(_MUL, a, b)


def _div_op(a: Any, b: Any) -> Tensor:
    return binary(_DIV, a, b)


def _into(out: Tensor, result: Tensor) -> Tensor:
    """torch's `out=`: the result written into `out` (resized if need be); no history."""
    if state.enabled and result._requires_grad:
        raise RuntimeError(f"{_OUT_AUTOGRAD}")
    data = result._data
    if out._data.shape != np.shape(data):
        out._data = np.array(data, dtype=out._data.dtype)
        out._bump_version()
    else:
        _write(out, result)
    return out


_OUT_AUTOGRAD = ("functions with out=... arguments don't support automatic differentiation, "
                 "but one of the arguments requires grad.")


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - torch's name
    """a ** b for a tensor and a number, a number and a tensor, or two tensors."""
    if isinstance(a, Tensor) and isinstance(b, _Number):
        if a._data.dtype.kind != "f" and isinstance(b, float):
            a = a.to(_dtype.get_default_dtype())
        return unary(OPS["pow"], a, b)
    if isinstance(a, _Number):
        if b._data.dtype.kind != "f":
            b = b.to(_dtype.get_default_dtype())
        return unary(OPS["rpow"], b, a)
    return binary(OPS["pow_tensor"], a, b)


def rsub(x: Tensor, other: Any) -> Tensor:
    """other - x."""
    if isinstance(other, Tensor):
        return sub(other, x)
    if x._data.dtype.kind != "f" and isinstance(other, float):
        x = x.to(_dtype.get_default_dtype())
    return unary(OPS["rsub"], x, other)


def true_divide_r(x: Tensor, other: Any) -> Tensor:
    """other / x, which torch computes as reciprocal(x) * other."""
    if x._data.dtype.kind != "f":
        x = x.to(_dtype.get_default_dtype())
    return mul(unary(OPS["reciprocal"], x), other)


def matmul(a: Tensor, b: Tensor, *, out: Tensor | None = None) -> Tensor:
    """Matrix product with numpy/torch semantics for 1-D and batched operands."""
    if out is not None:
        return _into(out, matmul(a, b))
    na, nb = a._data.ndim, b._data.ndim
    if na == 0 or nb == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{na}D and {nb}D")
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {a.dtype} != {b.dtype}"
        )
    if na == 2 and nb == 2:
        return call(_MM, a, b)
    if na == 1 and nb == 1:
        return call(OPS["dot"], a, b)
    if na == 2 and nb == 1:
        return call(OPS["mv"], a, b)
    # A 1-D operand gains a dimension that torch's matmul squeezes away again (SqueezeBackward4);
    # a batch times a vector is one matrix-vector product over the folded batch.
    if na == 1 and nb == 2:
        return unary(_MATMUL_SQUEEZE, call(_MM, a.unsqueeze(0), b), (0,))
    if na == 1:
        return unary(_MATMUL_SQUEEZE, call(OPS["matmul"], a.unsqueeze(0), b), (-2,))
    if nb == 1:
        lead = a._data.shape[:-1]
        folded = reshape(a, -1, a._data.shape[-1])
        return call(OPS["unsafe_view"], call(OPS["mv"], folded, b), lead)
    return call(OPS["matmul"], a, b)


def maximum(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise maximum; ties split the gradient equally."""
    return binary(OPS["maximum"], a, b)


def minimum(a: Tensor, b: Tensor) -> Tensor:
    """Elementwise minimum; ties split the gradient equally."""
    return binary(OPS["minimum"], a, b)


def where(condition: Any, input: Any, other: Any) -> Tensor:  # noqa: A002 - torch's names
    """Elements of `input` where `condition` holds, else of `other`."""
    cond = condition if isinstance(condition, Tensor) else const(np.asarray(condition))
    return _where(input, other, cond)


def clamp(x: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; the gradient passes at the bounds themselves."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        lo = _as_tensor(min, x) if min is not None else None
        hi = _as_tensor(max, x) if max is not None else None
        return call(OPS["clamp_tensor"], x, lo, hi)
    return unary(OPS["clamp"], x, min, max)


# ---- reductions ----------------------------------------------------------------------------
def sum(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:  # noqa: A001
    """Sum of all elements, or over `dim`."""
    if dtype is not None:
        x = x.to(dtype)
    elif x._data.dtype.kind in "biu":
        x = x.to(_dtype.int64)
    if dim is None:
        return unary(OPS["sum"], x, None, False)
    return unary(OPS["sum_dim"], x, dim, keepdim)


def mean(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Mean of all elements, or over `dim`."""
    if x._data.dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {x.dtype.name.capitalize()}"
        )
    if dim is None:
        return unary(OPS["mean"], x, None, False)
    return unary(OPS["mean_dim"], x, dim, keepdim)


def prod(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Product of all elements, or over `dim`."""
    if dim is None:
        return unary(OPS["prod"], x, None, False)
    return unary(OPS["prod_dim"], x, dim, keepdim)


def _extreme(kind: str, x: Tensor, dim: Any, keepdim: bool) -> Any:
    if isinstance(dim, Tensor):
        return maximum(x, dim) if kind == "max" else minimum(x, dim)
    if dim is None:
        if x.numel() == 0:
            raise RuntimeError(
                f"{kind}(): Expected reduction dim to be specified for input.numel() == 0. "
                "Specify the reduction dim with the 'dim' argument."
            )
        return unary(OPS[kind], x)
    values = unary(OPS[f"{kind}_dim"], x, dim, keepdim)
    arg = np.argmax if kind == "max" else np.argmin
    d = _wrap_dim(dim, x.ndim)
    idx = arg(x._data, axis=d)
    if keepdim:
        idx = np.expand_dims(idx, d)
    rt = return_types_max if kind == "max" else return_types_min
    return rt(values, _wrap(np.asarray(idx, dtype=np.int64)))


@overload
def max(x: Tensor) -> Tensor: ...
@overload
def max(x: Tensor, dim: Tensor) -> Tensor: ...
@overload
def max(x: Tensor, dim: int, keepdim: bool = False) -> ValuesIndices: ...
def max(x: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """Largest element; with `dim`, (values, indices); with a tensor, maximum."""
    return _extreme("max", x, dim, keepdim)


@overload
def min(x: Tensor) -> Tensor: ...
@overload
def min(x: Tensor, dim: Tensor) -> Tensor: ...
@overload
def min(x: Tensor, dim: int, keepdim: bool = False) -> ValuesIndices: ...
def min(x: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """Smallest element; with `dim`, (values, indices); with a tensor, minimum."""
    return _extreme("min", x, dim, keepdim)


def amax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Largest element over `dim` (values only)."""
    return _extreme("max", x, dim, keepdim) if dim is None else max(x, dim, keepdim).values


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest element (flattened when dim is None)."""
    if dim is None:
        return _wrap(np.asarray(np.argmax(x._data), dtype=np.int64))
    return max(x, dim, keepdim).indices


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest element (flattened when dim is None)."""
    if dim is None:
        return _wrap(np.asarray(np.argmin(x._data), dtype=np.int64))
    return min(x, dim, keepdim).indices


# ---- shapes --------------------------------------------------------------------------------
def _resolve_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    return shape


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """The same elements in a new shape; a view when the layout allows, as in torch."""
    shape = _resolve_shape(_shape_args(shape))
    data = x._data
    if type(data) is np.ndarray and not data.flags.c_contiguous and data.size > 1:
        # torch copies a non-contiguous input first: CloneBackward0 then UnsafeViewBackward0.
        return call(OPS["unsafe_view"], clone(x), shape)
    return unary(OPS["view"], x, shape)


def view(x: Tensor, *shape: Any) -> Tensor:
    """The same storage in a new shape; fails when the layout does not allow it."""
    return unary(OPS["view"], x, _resolve_shape(_shape_args(shape)))


def clone(x: Tensor) -> Tensor:
    """A copy that stays in the graph."""
    return unary(OPS["clone"], x)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _wrap_dim(start_dim, x.ndim), _wrap_dim(end_dim, x.ndim)
    shape = x._data.shape
    return reshape(x, (*shape[:s], -1, *shape[e + 1:]))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    n = x._data.ndim
    return unary(_TRANSPOSE, x, _wrap_dim(dim0, n), _wrap_dim(dim1, n))


def t(x: Tensor) -> Tensor:
    """Transpose of a matrix (a vector is returned as it is)."""
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return unary(OPS["t"], x)


def permute(x: Tensor, *dims: Any) -> Tensor:
    """Reorder dimensions."""
    dims = _shape_args(dims)
    if len(dims) != x.ndim:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match "
            f"the length of the desired ordering of dimensions i.e. input.dim() = {x.ndim} "
            f"is not equal to len(dims) = {len(dims)}"
        )
    return unary(OPS["permute"], x, tuple(_wrap_dim(d, x.ndim) for d in dims))


def squeeze(x: Tensor, dim: Any = None) -> Tensor:
    """Drop dimensions of size 1 (all, or those in `dim`)."""
    if dim is None:
        return unary(OPS["squeeze"], x)
    if isinstance(dim, (tuple, list)):
        return unary(OPS["squeeze_dims"], x, tuple(dim))
    return unary(OPS["squeeze_dim"], x, dim)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at `dim`."""
    return unary(OPS["unsqueeze"], x, _wrap_dim(dim, x.ndim + 1))


def expand(x: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to a larger shape without copying."""
    return unary(OPS["expand"], x, _shape_args(sizes))


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    """Broadcast to `other`'s shape."""
    return expand(x, other.shape)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    # torch skips legacy empty 1-D tensors; everything else must agree but along `dim`.
    shaped = [t for t in tensors if t._data.shape != (0,)] or tensors[:1]
    first = shaped[0]._data.shape
    d = _wrap_dim(dim, len(first))
    for k, t in enumerate(shaped[1:], 1):
        shape = t._data.shape
        if len(shape) != len(first):
            raise RuntimeError(f"Tensors must have same number of dimensions: got {len(first)} "
                               f"and {len(shape)}")
        for i, (a, b) in enumerate(zip(first, shape, strict=True)):
            if i != d and a != b:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. "
                                   f"Expected size {a} but got size {b} for tensor number {k} "
                                   "in the list.")
    return call(OPS["cat"], *_same_dtype(shaped), dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        first = tensors[0].shape
        k, bad = next((k, t) for k, t in enumerate(tensors) if t.shape != first)
        raise RuntimeError(
            f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 "
            f"and {list(bad.shape)} at entry {k}"
        )
    return call(OPS["stack"], *_same_dtype(tensors), dim)


def _same_dtype(tensors: list[Tensor]) -> list[Tensor]:
    dts = {t._data.dtype for t in tensors}
    if len(dts) == 1:
        return tensors
    rt = _dtype.result_type(*[(t._data.dtype, t.ndim) for t in tensors])
    return [t.to(_dtype.to_engine_dtype(rt)) for t in tensors]


def to(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """The tensor in another dtype (a no-op when it already is), on the CPU (the only device)."""
    dt = kwargs.get("dtype")
    dev = kwargs.get("device")
    for a in args:
        if isinstance(a, Tensor):
            dt = a.dtype
        elif isinstance(a, str | _device.device):
            dev = a
        elif a is not None:
            dt = a
    if dev is not None:
        _device.check(dev)
    if dt is None:
        return x.clone() if kwargs.get("copy") else x
    np_dt = _dtype.to_numpy_dtype(dt)
    if np_dt == x._data.dtype:
        return x.clone() if kwargs.get("copy") else x
    return unary(OPS["to"], x, np_dt)


def cpu(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """The tensor itself: it is on the CPU already."""
    return x


def cuda(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """torch's error: there is no GPU."""
    raise AssertionError(_device.NO_CUDA)


def type_(x: Tensor, dtype: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
    """With no argument, the type name ('torch.FloatTensor'); else the tensor cast to it."""
    if dtype is None:
        return f"torch.{x.dtype._tensor_type}"
    if isinstance(dtype, str):
        name = dtype.rsplit(".", 1)[-1]
        matches = [d for d in _dtype._ALL if d._tensor_type == name]
        if not matches:
            raise ValueError(f"invalid type: '{dtype}'")
        dtype = matches[0]
    elif isinstance(dtype, type) and hasattr(dtype, "_engine_dtype"):
        dtype = dtype._engine_dtype  # engine.LongTensor and friends
    return to(x, dtype)


# ---- indexing ------------------------------------------------------------------------------
def _normalize_index(index: Any) -> tuple[tuple, bool]:
    idx = index if isinstance(index, tuple) else (index,)
    out = []
    advanced = False
    for c in idx:
        if isinstance(c, Tensor):
            if c.ndim == 0 and c._data.dtype.kind in "iu":
                c = int(c.item())
            else:
                c = np.asarray(c._data)
                advanced = True
        elif isinstance(c, (list, np.ndarray)):
            c = np.asarray(c)
            advanced = True
        elif isinstance(c, np.integer):
            c = int(c)
        elif isinstance(c, bool):
            c = np.asarray(c)
            advanced = True
        elif isinstance(c, slice) and c.step is not None and c.step <= 0:
            # torch has no negative strides (flip() reverses); NumPy would view backwards
            raise ValueError("step must be greater than zero" if c.step else
                             "slice step cannot be zero")
        out.append(c)
    return tuple(out), advanced


def getitem(x: Tensor, index: Any) -> Tensor:
    """x[index]: ints and slices as chains of select/slice views; arrays and masks gather."""
    idx, advanced = _normalize_index(index)
    if advanced:
        try:
            x._data[idx]
        except IndexError as e:
            raise IndexError(str(e)) from None
        return call(OPS["index"], x, idx)
    consumed = builtins.sum(1 for c in idx if c is not None and c is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    out, dim = x, 0
    for c in idx:
        if c is None:
            out = unsqueeze(out, dim)
            dim += 1
        elif c is Ellipsis:
            dim += x.ndim - consumed
        elif isinstance(c, int):
            size = out._data.shape[dim]
            if not -size <= c < size:
                raise IndexError(
                    f"index {c} is out of bounds for dimension {dim} with size {size}"
                )
            out = call(OPS["select"], out, (slice(None),) * dim + (c,))
        else:
            if c != slice(None):
                out = call(OPS["slice"], out, (slice(None),) * dim + (c,))
            dim += 1
    if out is x:
        out = call(OPS["slice"], x, (slice(None),))
    return out


def setitem(x: Tensor, index: Any, value: Any) -> None:
    """x[index] = value, in place."""
    idx, _ = _normalize_index(index)
    v = value if isinstance(value, Tensor) else const(np.asarray(value, dtype=x._data.dtype))
    if not _tracks(x, v):
        _check_inplace(x, v)
        data = x._storage()
        try:
            data[idx] = v._data
        except ValueError as e:
            raise RuntimeError(str(e)) from None
        x._bump_version()
        return
    _inplace_tracked(x, lambda old: call(OPS["copy_slices"], old, v, idx), saves_self=False)


# ---- in place ------------------------------------------------------------------------------
def _tracks(x: Tensor, *args: Any) -> bool:
    return state.enabled and (
        x._requires_grad or builtins.any(isinstance(a, Tensor) and a._requires_grad for a in args)
    )


def _check_inplace(x: Tensor, *args: Any) -> None:
    if state.enabled and x._requires_grad:
        if x._grad_fn is None:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
            )
        base = x._x.get("base") if x._x else None
        if base is not None and base._requires_grad and base._grad_fn is None:
            raise RuntimeError(
                "a view of a leaf Variable that requires grad is being used in an in-place "
                "operation."
            )


def _write(x: Tensor, result: Tensor) -> None:
    if result._data.shape != x._data.shape:
        raise RuntimeError(
            f"output with shape {list(x._data.shape)} doesn't match the broadcast shape "
            f"{list(result._data.shape)}"
        )
    if result._data.dtype != x._data.dtype and not np.can_cast(
        result._data.dtype, x._data.dtype, casting="same_kind"
    ):
        raise RuntimeError(
            f"result type {_dtype.to_engine_dtype(result._data.dtype).name.capitalize()} can't "
            f"be cast to the desired output type {x.dtype.name.capitalize()}"
        )
    if type(x._data) is not np.ndarray:
        # A 0-d value is a NumPy scalar until something shares it (detach, views, numpy()),
        # so nothing else can see this write: replace the value.
        x._data = np.asarray(result._data).astype(x._data.dtype)[()]
        x._bump_version()
        return
    data = x._data
    if not data.flags.writeable:
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )
    np.copyto(data, result._data, casting="unsafe")
    x._bump_version()


def _inplace_tracked(x: Tensor, fn: Any, saves_self: bool) -> None:
    _check_inplace(x)
    base = x._x.get("base") if x._x else None
    if base is not None and base._requires_grad:
        raise RuntimeError(
            "engine does not support in-place operations on a view of a tensor that requires "
            "grad; apply the operation out of place, or clone() the view first."
        )
    # The op is recorded on a stand-in for x's old value; x itself then takes the result
    # and the new history (torch "rebases" the history the same way).
    old = _wrap(np.array(x._data, copy=True) if saves_self else x._data)
    old._grad_fn, old._requires_grad, old._output_nr = x._grad_fn, x._requires_grad, x._output_nr
    old._acc = x._acc
    # A counter of its own: the nodes recorded on the stand-in keep it as a tensor, not as a
    # value whose changes they would look for at x's producer (which x's write is about to bump).
    old._vc = VersionCounter()
    result = fn(old)
    _write(x, result)
    x._grad_fn, x._requires_grad, x._output_nr = result._grad_fn, True, result._output_nr


def _inplace(name: str, fn: Any, ufunc: Any, saves_self: bool) -> Any:
    def method(self: Tensor, other: Any, **kwargs: Any) -> Tensor:
        if state.enabled:  # (under no_grad, as in an optimizer step, neither applies)
            if _tracks(self, other):
                _inplace_tracked(self, lambda old: fn(old, other, **kwargs), saves_self)
                return self
            _check_inplace(self, other)
        data = self._data
        od = other._data if isinstance(other, Tensor) else other
        alpha = kwargs.get("alpha", 1) if kwargs else 1
        if type(data) is np.ndarray and (
            # The same dtype and shape (a gradient) needs no promotion check.
            (type(od) is np.ndarray and od.dtype == data.dtype and od.shape == data.shape)
            or (np.result_type(data, od) == data.dtype and np.shape(od) in ((), data.shape))
        ) and data.dtype.kind == "f" and data.flags.writeable:
            # The optimizer's hot path: one NumPy call writing into the storage.
            ufunc(data, od if alpha == 1 else od * alpha, out=data)
            self._bump_version()
        else:
            _write(self, fn(self, other, **kwargs))
        return self

    method.__name__ = name
    method.__doc__ = f"In-place {name.rstrip('_')}; returns self."
    return method


add_ = _inplace("add_", add, np.add, saves_self=False)
sub_ = _inplace("sub_", sub, np.subtract, saves_self=False)
mul_ = _inplace("mul_", mul, np.multiply, saves_self=True)
div_ = _inplace("div_", div, np.true_divide, saves_self=True)


def copy_(x: Tensor, src: Tensor) -> Tensor:
    """Copy src's values into x (broadcasting), in place."""
    src_t = _as_tensor(src)
    if _tracks(x, src_t):
        _inplace_tracked(
            x, lambda old: call(OPS["copy_slices"], old, src_t.to(x.dtype), (Ellipsis,)), False
        )
    else:
        _check_inplace(x)
        _write(x, _wrap(np.broadcast_to(src_t._data, x._data.shape).astype(x._data.dtype)))
    return x


def zero_(x: Tensor) -> Tensor:
    """Set every element to 0, in place."""
    return fill_(x, 0)


def fill_(x: Tensor, value: Any) -> Tensor:
    """Set every element to `value`, in place."""
    if _tracks(x):
        return copy_(x, _wrap(np.full(x._data.shape, value, dtype=x._data.dtype)))
    _check_inplace(x)
    _write(x, _wrap(np.full(x._data.shape, value, dtype=x._data.dtype)))
    return x


# ---- comparisons (no gradient) -----------------------------------------------------------------
def _compare(ufunc: Any) -> Any:
    def fn(a: Any, b: Any) -> Tensor:
        ad = a._data if isinstance(a, Tensor) else a
        bd = b._data if isinstance(b, Tensor) else b
        try:
            return _wrap(np.asarray(ufunc(ad, bd)))
        except ValueError as e:
            raise RuntimeError(_broadcast_message(ad, bd, e)) from None

    return fn


eq, ne = _compare(np.equal), _compare(np.not_equal)
lt, le = _compare(np.less), _compare(np.less_equal)
gt, ge = _compare(np.greater), _compare(np.greater_equal)
logical_and, logical_or = _compare(np.logical_and), _compare(np.logical_or)


def logical_not(x: Tensor) -> Tensor:
    """Elementwise not."""
    return _wrap(np.asarray(np.logical_not(x._data)))


def isnan(x: Tensor) -> Tensor:
    """Elementwise isnan."""
    return _wrap(np.asarray(np.isnan(x._data)))


def isfinite(x: Tensor) -> Tensor:
    """Elementwise isfinite."""
    return _wrap(np.asarray(np.isfinite(x._data)))


def allclose(a: Tensor, b: Tensor, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    """Whether all elements are close: |a - b| <= atol + rtol * |b|."""
    return bool(np.allclose(a._data, b._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a: Tensor, b: Tensor) -> bool:
    """Whether a and b have the same shape and elements."""
    return a.shape == b.shape and bool(np.array_equal(a._data, b._data))


def all(x: Tensor, dim: Any = None) -> Tensor:  # noqa: A001
    """Whether all elements are true."""
    return _wrap(np.asarray(np.all(x._data, axis=dim)))


def any(x: Tensor, dim: Any = None) -> Tensor:  # noqa: A001
    """Whether any element is true."""
    return _wrap(np.asarray(np.any(x._data, axis=dim)))


# ---- linear algebra ----------------------------------------------------------------------------
def _require_dims(name: str, x: Tensor, n: int, what: str) -> None:
    if x.ndim != n:
        raise RuntimeError(f"{what} must be a {n}D tensor" if name != "mv" else
                           f"vector + matrix @ vector expected, got {x.ndim}")


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product of two 2-D tensors."""
    _require_dims("mm", a, 2, "self")
    _require_dims("mm", b, 2, "mat2")
    return call(_MM, a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of two 3-D tensors."""
    _require_dims("bmm", a, 3, "batch1")
    _require_dims("bmm", b, 3, "batch2")
    if a._data.shape[0] != b._data.shape[0]:
        raise RuntimeError("batch1 and batch2 must have same number of batches, got "
                           f"{a._data.shape[0]} and {b._data.shape[0]}")
    return call(OPS["bmm"], a, b)


def mv(a: Tensor, v: Tensor) -> Tensor:
    """Matrix-vector product."""
    if a.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {a.ndim}, {v.ndim}")
    return call(OPS["mv"], a, v)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Inner product of two 1-D tensors."""
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    return call(OPS["dot"], a, b)


def addmm(bias: Any, a: Tensor, b: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """beta * bias + alpha * (a @ b), one node (AddmmBackward0), as nn.Linear records."""
    _require_dims("addmm", a, 2, "mat1")
    _require_dims("addmm", b, 2, "mat2")
    bias = _as_tensor(bias, a)
    return call(OPS["addmm"], bias, a, b, beta, alpha)


def outer(a: Tensor, b: Tensor) -> Tensor:
    """The outer product of two vectors (torch: a column times a row, MulBackward0)."""
    return mul(reshape(a, -1, 1), b)


def vector_norm(x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *,  # noqa: A002
                dtype: Any = None) -> Tensor:
    """The p-norm of the elements (over `dim`): linalg.vector_norm."""
    if x._data.dtype.kind != "f":
        raise RuntimeError(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
            f"{x.dtype.name.capitalize()}"
        )
    if dtype is not None:
        x = x.to(dtype)
    if isinstance(dim, list):
        dim = tuple(dim)
    return unary(OPS["vector_norm"], x, float(ord), dim, keepdim)


def linalg_norm(x: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *,  # noqa: A002
                dtype: Any = None) -> Tensor:
    """linalg.norm: the vector 2-norm (Frobenius for a matrix) unless `ord` says otherwise."""
    if ord is None or ord == "fro":
        return vector_norm(x, 2, dim, keepdim, dtype=dtype)
    if isinstance(ord, str) or (x.ndim == 2 and dim is None) or (
            isinstance(dim, tuple | list) and len(dim) == 2):
        raise NotImplementedError(f"engine: matrix norm ord={ord!r} is not implemented")
    return vector_norm(x, ord, dim, keepdim, dtype=dtype)


def norm(x: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False,
         dtype: Any = None) -> Tensor:
    """torch.norm / Tensor.norm: the p-norm of all elements, or over `dim`."""
    if p == "fro" or p is None:
        p = 2
    if p == "nuc":
        raise NotImplementedError("engine: the nuclear norm is not implemented")
    return vector_norm(x, p, dim, keepdim, dtype=dtype)


# ---- statistics and normalised exponentials --------------------------------------------------
def _correction(unbiased: Any, correction: Any) -> float:
    if correction is not None:
        return float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def _stat(name: str) -> Any:
    def fn(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
           correction: Any = None) -> Tensor:
        if isinstance(dim, bool):  # var(x, False): torch's old positional `unbiased`
            dim, unbiased = None, dim
        if isinstance(dim, list):
            dim = tuple(dim)
        if x._data.dtype.kind != "f":
            raise RuntimeError(
                f"{name}(): could not infer output dtype. Input dtype must be either a floating "
                f"point or complex dtype. Got: {x.dtype.name.capitalize()}"
            )
        return unary(OPS[name], x, dim, _correction(unbiased, correction), keepdim)

    fn.__name__ = name
    fn.__doc__ = f"The {'standard deviation' if name == 'std' else 'variance'} (Bessel-corrected" \
                 " unless told otherwise)."
    return fn


std = _stat("std")
var = _stat("var")


def logsumexp(x: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over `dim`, without overflow."""
    if isinstance(dim, list):
        dim = tuple(dim)
    if x._data.dtype.kind != "f":
        x = x.to(_dtype.get_default_dtype())
    return unary(OPS["logsumexp"], x, dim, keepdim)


def _softmax_dim(x: Tensor, dim: Any, dtype: Any) -> tuple[Tensor, int]:
    if dtype is not None:
        x = x.to(dtype)
    if x._data.dtype.kind != "f":
        raise RuntimeError(f'"softmax_lastdim_kernel_impl" not implemented for '
                           f"'{x.dtype.name.capitalize()}'")
    return x, _wrap_dim(dim, x.ndim)


def softmax(x: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`: one node (SoftmaxBackward0)."""
    x, d = _softmax_dim(x, dim, dtype)
    return unary(OPS["softmax"], x, d)


def log_softmax(x: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """log(softmax(x)) along `dim`, stably: one node (LogSoftmaxBackward0)."""
    x, d = _softmax_dim(x, dim, dtype)
    return unary(OPS["log_softmax"], x, d)


def cumsum(x: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Cumulative sum along `dim`."""
    if dtype is not None:
        x = x.to(dtype)
    elif x._data.dtype.kind in "biu":
        x = x.to(_dtype.int64)
    return unary(OPS["cumsum"], x, _wrap_dim(dim, x.ndim))


# ---- selecting and rearranging -----------------------------------------------------------------
def _index_array(index: Any, name: str) -> np.ndarray:
    arr = np.asarray(index._data if isinstance(index, Tensor) else index)
    if arr.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    return arr.astype(np.int64, copy=False)


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """Values along `dim` at `index` (out[i][j] = x[i][index[i][j]] for dim 1)."""
    idx = _index_array(index, "gather")
    d = _wrap_dim(dim, x.ndim)
    if idx.ndim != x.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    n = x._data.shape[d]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise RuntimeError(f"index {int(idx.max())} is out of bounds for dimension {d} with "
                           f"size {n}")
    return unary(OPS["gather"], x, d, idx)


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of x with src added at `index` along `dim` (repeated indices accumulate)."""
    idx = _index_array(index, "scatter_add")
    d = _wrap_dim(dim, x.ndim)
    return call(OPS["scatter_add"], x, src, d, idx)


def scatter_add_(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """scatter_add in place."""
    return _apply_inplace(x, lambda old: scatter_add(old, dim, index, src), src)


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of x along `dim` named by the 1-D `index`."""
    idx = _index_array(index, "index_select")
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    d = _wrap_dim(dim, x.ndim)
    n = x._data.shape[d] if x.ndim else 1
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise RuntimeError(f"index_select(): index {int(idx.max())} out of range for tensor of "
                           f"size {list(x._data.shape)} at dimension {d}")
    return unary(OPS["index_select"], x, (slice(None),) * d + (idx.reshape(-1),))


def masked_fill(x: Tensor, mask: Tensor, value: Any) -> Tensor:
    """x with `value` where `mask` is true."""
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if np.asarray(m).dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{_dtype.to_engine_dtype(np.asarray(m).dtype).name}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got "
                               f"tensor with {value.ndim} dimension(s).")
        value = value.item()
    try:
        np.broadcast_shapes(np.shape(m), x._data.shape)
    except ValueError as e:
        raise RuntimeError(_broadcast_message(x._data, m, e)) from None
    return call(OPS["masked_fill"], x, np.asarray(m), value)


def masked_fill_(x: Tensor, mask: Tensor, value: Any) -> Tensor:
    """masked_fill in place."""
    return _apply_inplace(x, lambda old: masked_fill(old, mask, value))


def _apply_inplace(x: Tensor, fn: Any, *others: Any) -> Tensor:
    if _tracks(x, *others):
        _inplace_tracked(x, fn, saves_self=False)
    else:
        _check_inplace(x)
        _write(x, fn(x))
    return x


def _sorted_indices(x: Tensor, d: int, descending: bool, stable: bool) -> np.ndarray:
    data = np.asarray(x._data)
    if descending:
        # A stable descending order: sort the negated keys (NaN last, as torch puts it first
        # only for ascending... torch treats NaN as largest).
        key = -data if data.dtype.kind != "b" else ~data
        return np.argsort(key, axis=d, kind="stable")
    return np.argsort(data, axis=d, kind="stable")




def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False
         ) -> ValuesIndices:
    """(values, indices) sorted along `dim`."""
    if x.ndim == 0:
        return return_types_sort(clone(x), _wrap(np.zeros((), np.int64)))
    d = _wrap_dim(dim, x.ndim)
    idx = _sorted_indices(x, d, descending, stable)
    return return_types_sort(unary(OPS["sort"], x, d, idx), _wrap(idx))


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort x along `dim`."""
    return sort(x, dim, descending, stable).indices


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True  # noqa: A002
         ) -> ValuesIndices:
    """The k largest (or smallest) elements along `dim` and their indices."""
    d = _wrap_dim(dim, x.ndim)
    n = x._data.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    idx = _sorted_indices(x, d, largest, True)
    idx = np.take(idx, np.arange(k), axis=d) if x.ndim else idx
    return return_types_topk(unary(OPS["topk"], x, d, idx), _wrap(idx))


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle (on and below `diagonal`) of the last two dimensions."""
    return unary(OPS["tril"], x, int(diagonal))


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle (on and above `diagonal`) of the last two dimensions."""
    return unary(OPS["triu"], x, int(diagonal))


def flip(x: Tensor, dims: Any) -> Tensor:
    """Reverse the order of elements along `dims`."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return unary(OPS["flip"], x, tuple(_wrap_dim(d, x.ndim) for d in dims))


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """Tile x `sizes` times along each dimension."""
    reps = _shape_args(sizes)
    if len(reps) < x.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    return unary(OPS["repeat"], x, reps)


def tile(x: Tensor, *dims: Any) -> Tensor:
    """repeat, with fewer repeats than dimensions padded with ones in front."""
    reps = _shape_args(dims)
    reps = (1,) * (x.ndim - len(reps)) + reps
    return repeat(x, reps)


def unflatten(x: Tensor, dim: int, sizes: Any) -> Tensor:
    """Split dimension `dim` into `sizes`."""
    d = _wrap_dim(dim, x.ndim)
    shape = x._data.shape
    return view(x, (*shape[:d], *sizes, *shape[d + 1:]))


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The slice start:start+length along `dim` (a view)."""
    d = _wrap_dim(dim, x.ndim)
    n = x._data.shape[d]
    if start < 0:
        start += n
    if not 0 <= start <= n or start + length > n or length < 0:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return call(OPS["slice"], x, (slice(None),) * d + (slice(start, start + length),))


def split(x: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of x along `dim`: of one size (the last may be smaller), or of the sizes listed."""
    d = _wrap_dim(dim, x.ndim)
    n = x._data.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {n}")
        sizes = [builtins.min(size, n - s) for s in range(0, n, size)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got "
                               f"split_sizes={sizes}")
    row = OPS["split" if isinstance(split_size_or_sections, int) else "split_with_sizes"]
    out, start = [], 0
    for size in sizes:
        out.append(unary(row, x, (slice(None),) * d + (slice(start, start + size),)))
        start += size
    return tuple(out)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most `chunks` pieces of equal size (the last may be smaller) along `dim`."""
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    n = x._data.shape[_wrap_dim(dim, x.ndim)]
    return split(x, builtins.max(-(-n // chunks), 1) if n else 1, dim)


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices of x along `dim`, each without that dimension."""
    d = _wrap_dim(dim, x.ndim)
    return tuple(unary(OPS["unbind"], x, (slice(None),) * d + (i,))
                 for i in range(x._data.shape[d]))


# ---- comparisons and predicates beyond the operators -------------------------------------------
logical_xor = _compare(np.logical_xor)


def isinf(x: Tensor) -> Tensor:
    """Elementwise isinf."""
    return _wrap(np.asarray(np.isinf(x._data)))


def isclose(a: Tensor, b: Any, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:
    """Elementwise |a - b| <= atol + rtol * |b|."""
    bd = b._data if isinstance(b, Tensor) else b
    return _wrap(np.asarray(np.isclose(a._data, bd, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def count_nonzero(x: Tensor, dim: Any = None) -> Tensor:
    """The number of non-zero elements (over `dim`)."""
    return _wrap(np.asarray(np.count_nonzero(x._data, axis=dim), dtype=np.int64))


@overload
def nonzero(x: Tensor, *, as_tuple: Literal[False] = False) -> Tensor: ...
@overload
def nonzero(x: Tensor, *, as_tuple: Literal[True]) -> tuple[Tensor, ...]: ...
def nonzero(x: Tensor, *, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
    """The indices of the non-zero elements: one row per element, or a tuple of columns."""
    idx = np.nonzero(np.asarray(x._data))
    if as_tuple:
        return tuple(_wrap(np.asarray(i, dtype=np.int64)) for i in idx)
    return _wrap(np.stack(idx, axis=1).astype(np.int64) if idx else np.zeros((1, 0), np.int64))


# ---- Tensor.new_* and in-place samplers --------------------------------------------------------
def _new_factory(factory: Any) -> Any:
    def method(self: Tensor, *size: Any, dtype: Any = None, device: Any = None,
               requires_grad: bool = False, **kwargs: Any) -> Tensor:
        return factory(*size, dtype=self.dtype if dtype is None else dtype, device=device,
                       requires_grad=requires_grad)

    return method


def new_full(x: Tensor, size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """A tensor of `size` filled with `fill_value`, of x's dtype by default."""
    return _creation.full(size, fill_value, dtype=x.dtype if dtype is None else dtype,
                          device=device, requires_grad=requires_grad)


def new_tensor(x: Tensor, data: Any, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """A copy of `data` as a tensor of x's dtype by default."""
    return _creation.tensor(data, dtype=x.dtype if dtype is None else dtype, device=device,
                            requires_grad=requires_grad)


def _sample_into(x: Tensor, values: Any) -> Tensor:
    with no_grad():  # samplers write without history: they are not differentiable
        return copy_(x, _wrap(values))


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill with samples of U(a, b), in place."""
    return _sample_into(x, _creation.source.uniform(x._data.shape, x._data.dtype, a, b))


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
    """Fill with samples of N(mean, std^2), in place."""
    return _sample_into(x, _creation.source.normal(x._data.shape, x._data.dtype, mean, std))


def bernoulli_(x: Tensor, p: float = 0.5, *, generator: Any = None) -> Tensor:
    """Fill with 1 (probability p) or 0, in place."""
    return _sample_into(x, _creation.source.bernoulli(x._data.shape, x._data.dtype, p))


def random_(x: Tensor, low: int = 0, high: int | None = None, *, generator: Any = None) -> Tensor:
    """Fill with integers uniform in [low, high), in place."""
    if high is None:
        low, high = 0, low if low else 2**24
    return _sample_into(x, _creation.source.integers(low, high, x._data.shape, x._data.dtype))


# ---- Tensor methods and operators --------------------------------------------------------------
def _tensor_backward(self: Tensor, gradient: Tensor | None = None,
                     retain_graph: bool | None = None, create_graph: bool = False,
                     inputs: Any = None) -> None:
    """Accumulate d(self)/d(leaf) into the .grad of every leaf that requires grad."""
    _backward(self, gradient, retain_graph, create_graph, inputs=inputs)


def _reflected(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


def install() -> None:
    """Make the functions above (and the unary ops) Tensor methods and operators."""
    methods = {
        name: getattr(_ops, name)
        for name in ("exp", "log", "log1p", "sqrt", "sin", "cos", "tan", "asin", "acos", "atan",
                     "sinh", "cosh", "tanh", "sigmoid", "relu", "abs", "neg", "reciprocal",
                     "sign", "arcsin", "arccos", "arctan", "negative")
    }
    methods.update(
        add=add, sub=sub, mul=mul, div=div, pow=pow, matmul=matmul, maximum=maximum,
        minimum=minimum, clamp=clamp, clip=clamp, sum=sum, mean=mean, prod=prod, max=max,
        min=min, amax=amax, argmax=argmax, argmin=argmin, reshape=reshape, view=view,
        clone=clone, flatten=flatten, transpose=transpose, t=t, permute=permute,
        squeeze=squeeze, unsqueeze=unsqueeze, expand=expand, expand_as=expand_as, to=to,
        add_=add_, sub_=sub_, mul_=mul_, div_=div_, copy_=copy_, zero_=zero_, fill_=fill_,
        eq=eq, ne=ne, lt=lt, le=le, gt=gt, ge=ge, isnan=isnan, isfinite=isfinite,
        allclose=allclose, equal=equal, all=all, any=any, logical_not=logical_not,
        # other + x and other * x are recorded as torch records them, x + other and
        # x * other (the tensor first in next_functions); both are exact in either order.
        __add__=_add_op, __radd__=_add_op, __sub__=_sub_op, __rsub__=rsub,
        __mul__=_mul_op, __rmul__=_mul_op, __truediv__=_div_op, __rtruediv__=true_divide_r,
        __pow__=pow, __rpow__=_reflected(pow), __matmul__=matmul,
        __rmatmul__=_reflected(matmul), __neg__=_ops.neg, __pos__=lambda self: self,
        __abs__=_ops.abs, __getitem__=getitem, __setitem__=setitem,
        __iadd__=add_, __isub__=sub_, __imul__=mul_, __itruediv__=div_,
        __eq__=eq, __ne__=ne, __lt__=lt, __le__=le, __gt__=gt, __ge__=ge,
        __and__=logical_and, __or__=logical_or, __invert__=logical_not,
        float=lambda self: to(self, _dtype.float32), double=lambda self: to(self, _dtype.float64),
        long=lambda self: to(self, _dtype.int64), int=lambda self: to(self, _dtype.int32),
        bool=lambda self: to(self, _dtype.bool_), half=lambda self: to(self, _dtype.float16),
        type_as=lambda self, other: to(self, other.dtype),
        where=lambda self, condition, other: where(condition, self, other),
        cpu=cpu, cuda=cuda, type=type_, mm=mm, bmm=bmm, mv=mv, dot=dot, addmm=addmm,
        outer=outer, ger=outer, norm=norm, std=std, var=var, logsumexp=logsumexp,
        softmax=softmax, log_softmax=log_softmax, cumsum=cumsum, gather=gather,
        scatter_add=scatter_add, scatter_add_=scatter_add_, index_select=index_select,
        masked_fill=masked_fill, masked_fill_=masked_fill_, sort=sort, argsort=argsort,
        topk=topk, tril=tril, triu=triu, flip=flip, repeat=repeat, tile=tile,
        unflatten=unflatten, narrow=narrow,
        split=split, chunk=chunk, unbind=unbind, logical_and=logical_and,
        logical_or=logical_or, logical_xor=logical_xor, isinf=isinf, isclose=isclose,
        count_nonzero=count_nonzero, nonzero=nonzero, new_zeros=_new_factory(_creation.zeros),
        new_ones=_new_factory(_creation.ones), new_empty=_new_factory(_creation.empty),
        new_full=new_full, new_tensor=new_tensor, uniform_=uniform_, normal_=normal_,
        bernoulli_=bernoulli_, random_=random_,
        view_as=lambda self, other: view(self, other.shape),
        reshape_as=lambda self, other: reshape(self, other.shape),
        backward=_tensor_backward, __xor__=logical_xor, __rand__=_reflected(logical_and),
        __ror__=_reflected(logical_or),
    )
    methods.update({name: getattr(_ops, name) for name in _ops.MATH_FUNCTIONS})
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(lambda self: permute(self, *reversed(range(self.ndim))))
    Tensor.mT = property(lambda self: transpose(self, -2, -1))
