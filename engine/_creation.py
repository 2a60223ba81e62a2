"""Tensor factories with torch's names, defaults and keywords, and the random generator.

Every factory takes torch's `dtype=`, `device=` and `requires_grad=`; the only device is the
CPU (engine/_device.py gives torch's error for others).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine import _device, _dtype
from engine.tensor import Tensor, _wrap

_Shape = int | Sequence[int]  # zeros(2, 3) or zeros((2, 3))


class RandomSource:
    """Where random numbers come from: NumPy's PCG64, seeded by `manual_seed`.

    Every random factory and in-place sampler draws through one of these five methods, so a
    test can put another source in its place (tests/real_programs draws torch's numbers).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    @functools.cached_property
    def rng(self) -> np.random.Generator:
        # Made on the first draw: numpy.random costs ~15 ms to import, and most runs never
        # draw (a Generator seeded with None takes its entropy then, which is as random).
        return np.random.default_rng(self.seed)

    def uniform(self, shape: tuple[int, ...], dtype: np.dtype, lo: float, hi: float) -> Any:
        return (self.rng.random(shape) * (hi - lo) + lo).astype(dtype)

    def normal(self, shape: tuple[int, ...], dtype: np.dtype, mean: float, std: float) -> Any:
        return (self.rng.standard_normal(shape) * std + mean).astype(dtype)

    def integers(self, lo: int, hi: int, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.rng.integers(lo, hi, size=shape).astype(dtype)

    def permutation(self, n: int, dtype: np.dtype) -> Any:
        return self.rng.permutation(n).astype(dtype)

    def bernoulli(self, shape: tuple[int, ...], dtype: np.dtype, p: float) -> Any:
        return (self.rng.random(shape) < p).astype(dtype)


source = RandomSource()


def manual_seed(seed: int) -> RandomSource:
    """Seed the generator behind rand, randn, randint, randperm, init and dropout."""
    global source
    source = type(source)(int(seed))
    return source


def seed() -> int:
    """Seed the generator from the operating system; return the seed."""
    s = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(s)
    return s


def _infer_dtype(data: Any) -> np.dtype:
    # torch: Python floats become the default float dtype, ints int64, bools bool; an ndarray
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


def _finish(arr: np.ndarray, requires_grad: bool, device: Any = None) -> Tensor:
    _device.check(device)
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


def tensor(data: object, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of `data`."""
    if isinstance(data, Tensor):
        data = data._data
    elif isinstance(data, list | tuple):
        data = _flatten_tensors(data)
    np_dtype = _dtype.to_numpy_dtype(dtype) if dtype is not None else _infer_dtype(data)
    return _finish(np.array(data, dtype=np_dtype), requires_grad, device)


def as_tensor(data: object, dtype: Any = None, device: Any = None) -> Tensor:
    """`data` as a tensor, sharing memory with an ndarray of the same dtype."""
    _device.check(device)
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    same = dtype is None or getattr(data, "dtype", None) == _dtype.to_numpy_dtype(dtype)
    if isinstance(data, np.ndarray) and same:
        return _wrap(data)
    return tensor(data, dtype=dtype)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing `arr`'s memory."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    return _wrap(arr)


def _size(size: Sequence[Any]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = size[0]
    return tuple(int(s) for s in size)


def _dt(dtype: Any, default: Any = None) -> np.dtype:
    if dtype is not None:
        return _dtype.to_numpy_dtype(dtype)
    return np.dtype(_dtype.DEFAULT_FLOAT if default is None else default)


def zeros(*size: _Shape, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          **kwargs: Any) -> Tensor:
    """A tensor of zeros."""
    return _finish(np.zeros(_size(size), dtype=_dt(dtype)), requires_grad, device)


def ones(*size: _Shape, dtype: Any = None, device: Any = None, requires_grad: bool = False,
         **kwargs: Any) -> Tensor:
    """A tensor of ones."""
    return _finish(np.ones(_size(size), dtype=_dt(dtype)), requires_grad, device)


def empty(*size: _Shape, dtype: Any = None, device: Any = None, requires_grad: bool = False,
          **kwargs: Any) -> Tensor:
    """An uninitialised tensor (zeros here, so that programs stay deterministic)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size: Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """A tensor filled with `fill_value` (dtype inferred from it, as in torch)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    arr = np.full(_size((size,)), fill_value, dtype=_dt(dtype, _infer_dtype(fill_value)))
    return _finish(arr, requires_grad, device)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """The identity matrix."""
    return _finish(np.eye(n, m, dtype=_dt(dtype)), requires_grad, device)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None,
           requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """Evenly spaced values in [start, end); int64 unless a bound or step is a float."""
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if step == 0:
        raise RuntimeError("step must be nonzero")
    default = _infer_dtype([start, end, step])
    if default.kind == "f":
        # torch counts ceil((end - start) / step) values computed as start + i * step
        n = int(np.ceil((end - start) / step))
        arr = (start + np.arange(max(n, 0), dtype=np.float64) * step).astype(_dt(dtype, default))
    else:
        arr = np.arange(start, end, step, dtype=_dt(dtype, default))
    return _finish(arr, requires_grad, device)


def linspace(start: Any, end: Any, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """`steps` evenly spaced values from start to end inclusive."""
    return _finish(np.linspace(float(start), float(end), int(steps)).astype(_dt(dtype)),
                   requires_grad, device)


def logspace(start: Any, end: Any, steps: int, base: float = 10.0, *, dtype: Any = None,
             device: Any = None, requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """`steps` values from base**start to base**end, evenly spaced in the exponent."""
    return _finish(np.logspace(float(start), float(end), int(steps), base=base).astype(_dt(dtype)),
                   requires_grad, device)


def rand(*size: _Shape, generator: Any = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """Uniform samples in [0, 1)."""
    _device.check(device)
    return _finish(source.uniform(_size(size), _dt(dtype), 0.0, 1.0), requires_grad)


def randn(*size: _Shape, generator: Any = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """Standard normal samples."""
    _device.check(device)
    return _finish(source.normal(_size(size), _dt(dtype), 0.0, 1.0), requires_grad)


def randint(low: int, high: Any = None, size: Any = None, *, generator: Any = None,
            dtype: Any = None, device: Any = None, requires_grad: bool = False,
            **kwargs: Any) -> Tensor:
    """Integers uniform in [low, high): randint(high, size) or randint(low, high, size)."""
    if size is None:
        if not isinstance(high, tuple | list):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    _device.check(device)
    return _finish(source.integers(int(low), int(high), _size((size,)), _dt(dtype, np.int64)),
                   requires_grad)


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: Any = None,
             requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """A random permutation of 0..n-1."""
    _device.check(device)
    return _finish(source.permutation(int(n), _dt(dtype, np.int64)), requires_grad)


def normal(mean: Any, std: Any = 1.0, size: Any = None, *, generator: Any = None,
           dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """Normal samples: normal(mean, std, size) with numbers, or elementwise with tensors."""
    _device.check(device)
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        m = mean._data if isinstance(mean, Tensor) else mean
        s = std._data if isinstance(std, Tensor) else std
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        like = mean if isinstance(mean, Tensor) else std
        z = source.normal(shape, like._data.dtype, 0.0, 1.0)
        return _finish(np.asarray(z * s + m, dtype=like._data.dtype), requires_grad)
    return _finish(source.normal(_size((size,)), _dt(dtype), float(mean), float(std)),
                   requires_grad)


def _like(fill: Any, name: str) -> Any:
    def fn(t: Tensor, *, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           **kwargs: Any) -> Tensor:
        np_dtype = _dt(dtype, t._data.dtype)
        _device.check(device)
        return _finish(np.asarray(fill(np.shape(t._data), np_dtype), dtype=np_dtype),
                       requires_grad)

    fn.__name__ = name
    fn.__doc__ = f"{name.split('_')[0].capitalize()} with the shape (and dtype) of `t`."
    return fn


zeros_like = _like(lambda shape, dt: np.zeros(shape, dt), "zeros_like")
ones_like = _like(lambda shape, dt: np.ones(shape, dt), "ones_like")
empty_like = _like(lambda shape, dt: np.zeros(shape, dt), "empty_like")
rand_like = _like(lambda shape, dt: source.uniform(shape, dt, 0.0, 1.0), "rand_like")
randn_like = _like(lambda shape, dt: source.normal(shape, dt, 0.0, 1.0), "randn_like")


def full_like(t: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False, **kwargs: Any) -> Tensor:
    """A tensor like `t` filled with `fill_value`."""
    return _finish(np.full(np.shape(t._data), fill_value, dtype=_dt(dtype, t._data.dtype)),
                   requires_grad, device)


def randint_like(t: Tensor, low: int, high: int | None = None, *, dtype: Any = None,
                 device: Any = None, requires_grad: bool = False) -> Tensor:
    """Random integers in [low, high) with the shape (and dtype) of `t`."""
    if high is None:
        low, high = 0, low
    _device.check(device)
    dt = _dt(dtype, t._data.dtype)
    return _finish(source.integers(int(low), int(high), np.shape(t._data), dt), requires_grad)


# ---- the legacy typed constructors: engine.FloatTensor([1, 2]), engine.LongTensor(2, 3) ------
class _TensorTypeMeta(type):
    _engine_dtype: Any

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls._engine_dtype


def _tensor_type(dt: Any) -> type:
    def __new__(cls: type, *args: Any, **kwargs: Any) -> Tensor:  # noqa: N807
        if kwargs.pop("device", None) not in (None, "cpu"):
            raise AssertionError(_device.NO_CUDA)
        if len(args) == 1 and not isinstance(args[0], int | np.integer):
            return tensor(args[0], dtype=dt)  # data
        return zeros(*args, dtype=dt)  # sizes (torch leaves them uninitialised)

    return _TensorTypeMeta(dt._tensor_type, (), {
        "__new__": __new__, "_engine_dtype": dt,
        "__doc__": f"Legacy constructor of {dt.name} tensors: from data, or from sizes.",
    })


FloatTensor = _tensor_type(_dtype.float32)
DoubleTensor = _tensor_type(_dtype.float64)
HalfTensor = _tensor_type(_dtype.float16)
LongTensor = _tensor_type(_dtype.int64)
IntTensor = _tensor_type(_dtype.int32)
ShortTensor = _tensor_type(_dtype.int16)
CharTensor = _tensor_type(_dtype.int8)
ByteTensor = _tensor_type(_dtype.uint8)
BoolTensor = _tensor_type(_dtype.bool_)
