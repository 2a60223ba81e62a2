"""The only un-broadcasting code: sum a gradient back to the shape of the input it is for."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.tensor import Tensor


def _broadcast_dims(gshape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, tuple]:
    """How many leading dimensions broadcasting added to `shape`, and which it stretched."""
    lead = len(gshape) - len(shape)
    return lead, tuple(lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum `g` over the dimensions that broadcasting added or stretched to reach `shape`."""
    lead, stretched = _broadcast_dims(g._data.shape, shape)
    if not stretched:  # only leading dimensions were added (a bias): one sum
        return g.sum(dim=tuple(range(lead))) if lead else g
    g = g.sum(dim=tuple(range(lead)) + stretched, keepdim=True)
    return g.reshape(shape) if lead else g


def sum_to_array(g: Any, shape: tuple[int, ...]) -> Any:
    """`sum_to` on a NumPy array (the backward's plain-array path), with the same sums."""
    gshape = g.shape if type(g) is np.ndarray else np.shape(g)
    lead = len(gshape) - len(shape)
    if lead and gshape[lead:] == shape:  # only leading dimensions were added (a bias)
        return np.add.reduce(g, axis=0 if lead == 1 else tuple(range(lead)))
    lead, stretched = _broadcast_dims(gshape, shape)
    # np.add.reduce is what np.sum runs for arrays, without its Python wrapper.
    if not stretched:
        return np.add.reduce(g, axis=tuple(range(lead))) if lead else g
    g = np.add.reduce(g, axis=tuple(range(lead)) + stretched, keepdims=True)
    return np.reshape(g, shape) if lead else g
