"""dtypes with torch's names, over NumPy dtypes, and torch's type-promotion rules."""

from __future__ import annotations

import builtins

import numpy as np


class dtype:  # noqa: N801 - torch's name
    """A tensor element type: `engine.float32`, `engine.int64`, ..."""

    __slots__ = ("name", "numpy", "is_floating_point", "itemsize", "_tensor_type")

    def __init__(self, name: str, numpy_dtype: np.dtype, tensor_type: str) -> None:
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.is_floating_point = self.numpy.kind == "f"
        self.itemsize = self.numpy.itemsize
        self._tensor_type = tensor_type

    def __repr__(self) -> str:
        return f"engine.{self.name}"

    def __reduce__(self) -> str:
        return self.name  # pickles as the module attribute, so identity survives processes


float16 = dtype("float16", np.float16, "HalfTensor")
float32 = dtype("float32", np.float32, "FloatTensor")
float64 = dtype("float64", np.float64, "DoubleTensor")
int8 = dtype("int8", np.int8, "CharTensor")
uint8 = dtype("uint8", np.uint8, "ByteTensor")
int16 = dtype("int16", np.int16, "ShortTensor")
int32 = dtype("int32", np.int32, "IntTensor")
int64 = dtype("int64", np.int64, "LongTensor")
bool_ = dtype("bool", np.bool_, "BoolTensor")
half, float, double = float16, float32, float64  # noqa: A001 - torch's aliases
short, int, long = int16, int32, int64  # noqa: A001

_ALL = (float16, float32, float64, int8, uint8, int16, int32, int64, bool_)
_BY_NUMPY = {d.numpy: d for d in _ALL}
# Rebound by set_default_dtype: read it as _dtype.DEFAULT_FLOAT, never import the name.
DEFAULT_FLOAT = np.dtype(np.float32)


def set_default_dtype(d: dtype) -> None:
    """Set the dtype of Python floats and of float factories: float32 (torch's) or float64."""
    global DEFAULT_FLOAT
    if not isinstance(d, dtype) or d.numpy.kind != "f":
        raise TypeError("only floating-point types are supported as the default type")
    DEFAULT_FLOAT = d.numpy


def get_default_dtype() -> dtype:
    """The default floating dtype: float32 unless set_default_dtype changed it."""
    return _BY_NUMPY[DEFAULT_FLOAT]


def to_engine_dtype(np_dtype: np.dtype) -> dtype:
    """The engine dtype of a NumPy dtype."""
    try:
        return _BY_NUMPY[np_dtype]
    except KeyError:
        raise TypeError(f"engine has no dtype for NumPy {np_dtype}") from None


def to_numpy_dtype(d: object) -> np.dtype:
    """Accept `engine.float64`, a NumPy dtype or a Python type; return the NumPy dtype."""
    if isinstance(d, dtype):
        return d.numpy
    if d is builtins.float:
        return np.dtype(np.float64)  # torch.tensor(..., dtype=float) is float64
    if d is builtins.int:
        return np.dtype(np.int64)
    if d is builtins.bool:
        return np.dtype(np.bool_)
    np_dtype = np.dtype(d)
    to_engine_dtype(np_dtype)
    return np_dtype



def promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """torch.promote_types: a float beats any int or bool (int64 + float32 is float32)."""
    if a is b or a == b:
        return a
    a_float, b_float = a.kind == "f", b.kind == "f"
    if a_float != b_float:
        return a if a_float else b
    if a.kind == "b" or b.kind == "b":
        return b if a.kind == "b" else a
    return np.promote_types(a, b)


def _category(d: np.dtype) -> int:
    return 2 if d.kind == "f" else 0 if d.kind == "b" else 1


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    # torch's combine_categories: a lower-priority operand only matters when it is of a
    # higher category (float over int over bool).
    if higher is None:
        return lower
    if lower is None:
        return higher
    if _category(higher) >= _category(lower):
        return higher if higher.kind != "b" or lower.kind == "b" else promote_types(higher, lower)
    return promote_types(higher, lower)


def scalar_dtype(value: object) -> np.dtype:
    """The dtype torch gives a Python number taking part in an op."""
    if isinstance(value, bool):
        return np.dtype(np.bool_)
    if isinstance(value, builtins.int):
        return np.dtype(np.int64)
    return DEFAULT_FLOAT


def result_type(*operands: tuple[np.dtype, int] | object) -> np.dtype:
    """torch.result_type over (dtype, ndim) pairs of tensors and plain Python numbers.

    Dimensioned tensors take priority over zero-dim tensors, which take priority over
    Python numbers, unless the lower-priority operand is of a higher category.
    """
    dim = zero = wrapped = None
    for op in operands:
        if isinstance(op, tuple):
            d, ndim = op
            if ndim:
                dim = d if dim is None else promote_types(dim, d)
            else:
                zero = d if zero is None else promote_types(zero, d)
        else:
            d = scalar_dtype(op)
            wrapped = d if wrapped is None else promote_types(wrapped, d)
    return _combine(dim, _combine(zero, wrapped))
