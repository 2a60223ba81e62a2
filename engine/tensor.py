"""Tensor: storage, flags and repr. The math lives in the op table (engine/_ops.py).

A Tensor holds its values in `_data`: an ndarray, or a NumPy scalar for 0-d results,
which makes scalar graphs several times cheaper (NumPy scalar arithmetic skips the
array machinery). Whenever storage must be shared or written in place, a 0-d value is
first materialised as a 0-d ndarray (`_storage`).

A Tensor never references its own node's saved state, and a node never references its
output Tensor, so graphs contain no reference cycles and die by reference counting.
"""

from __future__ import annotations

import itertools
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, SupportsIndex, overload

import numpy as np

from engine import _device, _dtype
from engine._format import tensor_repr

if TYPE_CHECKING:
    # The methods engine/_api.py attaches at import time, declared for type checkers.
    from engine._tensor_methods import GradFn
    from engine._tensor_methods import TensorMethods as _Methods
else:
    _Methods = object

_new = object.__new__

NON_LEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more information."
)


# One clock for recording and in-place writes. Every node takes the next tick as its
# sequence number (backward runs nodes from the latest back, as torch orders its nodes), and
# every in-place write to any tensor stamps WRITES[0] with one: a node recorded since the last
# write has nothing to check in backward (a version check per node would cost more than the
# op on a scalar).
SEQUENCE = itertools.count(1)
WRITES = [0]


class VersionCounter:
    """Counts in-place writes to a storage; shared by a tensor, its views and detach()."""

    __slots__ = ("v", "owner")

    def __init__(self) -> None:
        self.v = 0
        self.owner = None  # when lent to a node: a weak reference to the tensor it counts


def version_counter(t: Tensor) -> VersionCounter:
    """t's version counter, created on first need and shared by every tensor over one value.

    A node keeps the values of clean inputs (never written, viewed or detached) rather than
    the tensors, so that intermediate tensors can die; backward rebuilds tensors over those
    values. All tensors over the output of one node (the user's, and the rebuilt ones) share
    one counter, lent to that node, where the nodes that kept the value look; all tensors
    over a leaf's value share the leaf's.
    """
    vc = t._vc
    if vc is not None:
        return vc
    fn = t._grad_fn
    if fn is None:
        acc = t._acc
        leaf = None if acc is None else acc._variable()
        vc = version_counter(leaf) if leaf is not None and leaf is not t else VersionCounter()
    else:
        lent = getattr(fn, "_out_vc", False) if not t._output_nr else False
        if lent:  # another tensor over this node's output has it already
            vc = lent
        else:
            vc = VersionCounter()
            if lent is None:  # a Node (custom Functions keep their outputs as tensors)
                fn._out_vc = vc
                vc.owner = weakref.ref(t)  # errors name the tensor's history as it is then
    t._vc = vc
    return vc


class Size(tuple[int, ...]):
    """A tensor's shape: a tuple that prints as torch.Size does."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"engine.Size({list(self)})"

    @overload
    def __getitem__(self, index: SupportsIndex) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> Size: ...
    def __getitem__(self, index: SupportsIndex | slice) -> int | Size:
        if isinstance(index, slice):
            return Size(tuple.__getitem__(self, index))
        return tuple.__getitem__(self, index)

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        return int(np.prod(self, dtype=np.int64))


class Tensor(_Methods):
    """A multi-dimensional array that can record the operations applied to it."""

    __slots__ = (
        "_data",  # ndarray, or a NumPy scalar for 0-d values
        "_requires_grad",
        "_grad_fn",  # the node that produced this tensor; None for leaves
        "_output_nr",  # which output of _grad_fn this is
        "_grad",
        "_vc",  # VersionCounter, created on first need (in-place write, view, detach)
        "_acc",  # a leaf's AccumulateGrad node, created when the leaf enters a graph
        "_x",  # rarely used state: hooks, retains_grad, view base (dict or None)
        "__weakref__",
    )
    # The slots' types, for type checkers (annotations only: no class attributes).
    _data: Any  # np.ndarray, or a NumPy scalar
    _requires_grad: bool
    _grad_fn: Any
    _output_nr: int
    _grad: Tensor | None
    _vc: VersionCounter | None
    _acc: Any
    _x: dict[str, Any] | None

    def __init__(self, data: object = (), *, requires_grad: bool = False) -> None:
        # torch.Tensor(data) builds a tensor of the default float dtype; engine.tensor() is the
        # usual factory.
        arr = np.array(data.numpy() if isinstance(data, Tensor) else data,
                       dtype=_dtype.DEFAULT_FLOAT)
        _init(self, arr, requires_grad)

    @staticmethod
    def _make_subclass(cls: type, data: Tensor, require_grad: bool = False) -> Tensor:
        """A `cls` instance sharing `data`'s storage, as a fresh leaf (how Parameter is built)."""
        t = _new(cls)
        _init(t, data._storage(), require_grad)
        return t

    # ---- storage -------------------------------------------------------------------------
    def _storage(self) -> np.ndarray:
        data = self._data
        if type(data) is not np.ndarray:
            data = self._data = np.asarray(data)
        return data

    def _bump_version(self) -> None:
        vc = self._vc
        if vc is None:
            vc = version_counter(self)
        vc.v += 1
        WRITES[0] = next(SEQUENCE)
        if vc.owner is not None:  # a counter lent to a node: errors name the last writer
            vc.owner = weakref.ref(self)

    @property
    def _version(self) -> int:
        return 0 if self._vc is None else self._vc.v

    # ---- flags ---------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self._grad_fn is not None:
            if not value:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach()."
                )
            return
        if value and self._data.dtype.kind not in "fc":
            raise RuntimeError(
                "only Tensors of floating point dtype can require gradients"
            )
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set requires_grad in place and return self."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def grad_fn(self) -> GradFn | None:
        return self._grad_fn

    @property
    def output_nr(self) -> int:
        return self._output_nr

    @property
    def grad(self) -> Tensor | None:
        if self._grad_fn is not None and not self.retains_grad:
            warnings.warn(NON_LEAF_GRAD_WARNING, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError("assigned grad has data of a different size")
            if value.dtype is not self.dtype:
                raise RuntimeError("assigned grad has data of a different type")
        self._grad = value

    @grad.deleter
    def grad(self) -> None:
        self._grad = None

    @property
    def retains_grad(self) -> bool:
        return bool(self._x and self._x.get("retains_grad"))

    # ---- shape and type ------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @overload
    def size(self, dim: None = None) -> Size: ...
    @overload
    def size(self, dim: int) -> int: ...
    def size(self, dim: int | None = None) -> Size | int:
        """The shape, or the length of one dimension."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype.to_engine_dtype(self._data.dtype)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    def nelement(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def is_floating_point(self) -> bool:
        """Whether the dtype is a floating-point one."""
        return self._data.dtype.kind == "f"

    @property
    def device(self) -> _device.device:
        return _device.CPU

    is_cuda = False
    is_sparse = False
    is_quantized = False
    is_meta = False

    # ---- leaving the graph ---------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        # .data shares storage but not the version counter: writes through it go unnoticed
        # by autograd, exactly as in torch.
        return _wrap(self._storage())

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._storage()

    def detach(self) -> Tensor:
        """A new leaf sharing storage and version counter, with no history."""
        t = _wrap(self._storage())
        t._vc = version_counter(self)
        return t

    def detach_(self) -> Tensor:
        """Make this tensor a leaf that does not require grad, in place."""
        self._grad_fn = None
        self._requires_grad = False
        self._output_nr = 0
        return self

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return self._data.item() if self._data.ndim == 0 else self._data.reshape(()).item()

    def tolist(self) -> Any:
        """The values as (nested) Python lists of numbers."""
        return self._data.tolist()

    def numpy(self) -> np.ndarray:
        """The values as an ndarray sharing storage."""
        if self._requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
        return self._storage()

    # NumPy operands defer to the tensor, as with torch: np.float64(2) * t and ndarray + t
    # are the tensor's reflected ops (a Tensor, with torch's promotion), not NumPy's.
    __array_priority__ = 1000

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                "Boolean value of Tensor with more than one value is ambiguous"
            )
        return bool(self.item())

    __hash__ = object.__hash__

    def __iter__(self) -> Iterator[Tensor]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __reduce_ex__(self, protocol: int) -> Any:
        return (_rebuild, (np.array(self._data), self._requires_grad))

    # ---- gradients -----------------------------------------------------------------------
    # backward() is installed by engine/_api.py from engine/autograd/_grad.py, which imports
    # this module (the loop needs tensors; tensors need not know the loop).

    def retain_grad(self) -> None:
        """Keep .grad for this non-leaf tensor after backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is None:
            return  # leaves keep their grad anyway
        x = self._x = self._x or {}
        if x.get("retains_grad"):
            return
        x["retains_grad"] = True
        self._grad_fn._retain(self._output_nr, weakref.ref(self))

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> _HookHandle:
        """Call hook(grad) when this tensor's gradient is computed; it may return a new one."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_fn is not None:
            return self._grad_fn._add_tensor_hook(self._output_nr, hook)
        x = self._x = self._x or {}
        return _HookHandle(x.setdefault("hooks", []), hook)

    # ---- printing ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)


class _HookHandle:
    """Returned by register_hook; .remove() unregisters the hook."""

    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook: Callable) -> None:
        hooks.append(hook)
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        """Unregister the hook."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _init(t: Tensor, data: Any, requires_grad: bool) -> None:
    t._data = data
    t._requires_grad = False
    t._grad_fn = None
    t._output_nr = 0
    t._grad = None
    t._vc = None
    t._acc = None
    t._x = None
    if requires_grad:
        t.requires_grad = True


def _wrap(data: Any, grad_fn: Any = None) -> Tensor:
    """A new tensor over `data` (no copy): the fast path every op result goes through; a leaf,
    or the output of `grad_fn` (which then requires grad)."""
    t = _new(Tensor)
    t._data = data
    t._requires_grad = grad_fn is not None
    t._grad_fn = grad_fn
    t._output_nr = 0
    t._grad = None
    t._vc = None
    t._acc = None
    t._x = None
    return t


def _rebuild(data: np.ndarray, requires_grad: bool) -> Tensor:
    t = _wrap(data)
    t._requires_grad = requires_grad
    return t


def _wrap_dim(dim: int, ndim: int) -> int:
    """A dimension index in [0, ndim), accepting negatives, with torch's error."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return dim % n if ndim else 0
