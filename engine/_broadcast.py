"""The only un-broadcasting code: sum a gradient back to the shape of the input it is for."""

from __future__ import annotations

from engine.tensor import Tensor


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum `g` over the dimensions that broadcasting added or stretched to reach `shape`."""
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    if lead or g.shape != tuple(shape):
        g = g.reshape(shape)
    return g
