"""Tensor factories with torch's names and default dtypes, and the global random generator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine import _dtype
from engine.tensor import Tensor, _wrap

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the generator behind rand, randn, randint and randperm."""
    global _rng
    _rng = np.random.default_rng(int(seed))
    return _rng


def _infer_dtype(data: Any) -> np.dtype:
    # torch: Python floats become the default float32, ints int64, bools bool; an ndarray
    # keeps its dtype.
    if isinstance(data, np.ndarray | np.generic):
        return data.dtype
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return _dtype.DEFAULT_FLOAT
    if arr.dtype.kind in "iu":
        return np.dtype(np.int64)
    if arr.dtype.kind == "b":
        return np.dtype(np.bool_)
    raise TypeError(f"Could not infer dtype of {type(data).__name__}")


def _finish(arr: np.ndarray, requires_grad: bool) -> Tensor:
    # 0-d values live as NumPy scalars (see engine/tensor.py): ten times cheaper arithmetic.
    t = _wrap(arr[()] if arr.ndim == 0 else arr)
    if requires_grad:
        t.requires_grad = True
    return t


def _flatten_tensors(data: Any) -> Any:
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, list | tuple):
        return [_flatten_tensors(d) for d in data]
    return data


def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of `data`."""
    if isinstance(data, Tensor):
        data = data._data
    elif isinstance(data, list | tuple):
        data = _flatten_tensors(data)
    np_dtype = _dtype.to_numpy_dtype(dtype) if dtype is not None else _infer_dtype(data)
    return _finish(np.array(data, dtype=np_dtype), requires_grad)


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """`data` as a tensor, sharing memory with an ndarray of the same dtype."""
    if isinstance(data, Tensor) and dtype is None:
        return data
    same = dtype is None or data.dtype == _dtype.to_numpy_dtype(dtype)
    if isinstance(data, np.ndarray) and same:
        return _wrap(data)
    return tensor(data, dtype=dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing `arr`'s memory."""
    return _wrap(arr)


def _size(size: Sequence[Any]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = size[0]
    return tuple(int(s) for s in size)


def _dt(dtype: Any, default: Any = _dtype.DEFAULT_FLOAT) -> np.dtype:
    return _dtype.to_numpy_dtype(dtype) if dtype is not None else np.dtype(default)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return _finish(np.zeros(_size(size), dtype=_dt(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _finish(np.ones(_size(size), dtype=_dt(dtype)), requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (zeros here)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(size: Sequence[int], fill_value: Any, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor filled with `fill_value` (dtype inferred from it, as in torch)."""
    return _finish(np.full(_size((size,)), fill_value, dtype=_dt(dtype, _infer_dtype(fill_value))),
                   requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The identity matrix."""
    return _finish(np.eye(n, m, dtype=_dt(dtype)), requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in [start, end); int64 unless a bound or step is a float."""
    if end is None:
        start, end = 0, start
    default = _infer_dtype([start, end, step])
    return _finish(np.arange(start, end, step, dtype=_dt(dtype, default)), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None,
             requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive."""
    return _finish(np.linspace(start, end, steps, dtype=_dt(dtype)), requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _finish(_rng.random(_size(size)).astype(_dt(dtype)), requires_grad)


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    return _finish(_rng.standard_normal(_size(size)).astype(_dt(dtype)), requires_grad)


def randint(
    low: int, high: int | None = None, size: Sequence[int] = (), dtype: Any = None
) -> Tensor:
    """Integers uniform in [low, high)."""
    if high is None:
        low, high = 0, low
    return _wrap(_rng.integers(low, high, size=tuple(size)).astype(_dt(dtype, np.int64)))


def randperm(n: int, dtype: Any = None) -> Tensor:
    """A random permutation of 0..n-1."""
    return _wrap(_rng.permutation(n).astype(_dt(dtype, np.int64)))


def _like(fill: Any) -> Any:
    def fn(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        np_dtype = _dt(dtype, t._data.dtype)
        data = fill(np.shape(t._data), np_dtype)
        return _finish(np.asarray(data, dtype=np_dtype), requires_grad)

    return fn


zeros_like = _like(lambda shape, dt: np.zeros(shape, dt))
ones_like = _like(lambda shape, dt: np.ones(shape, dt))
empty_like = zeros_like
rand_like = _like(lambda shape, dt: _rng.random(shape))
randn_like = _like(lambda shape, dt: _rng.standard_normal(shape))


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor like `t` filled with `fill_value`."""
    return _finish(np.full(np.shape(t._data), fill_value, dtype=_dt(dtype, t._data.dtype)),
                   requires_grad)
