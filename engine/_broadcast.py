"""The only un-broadcasting code: sum a gradient back to the shape of the input it is for."""

from __future__ import annotations

from engine.tensor import Tensor


def sum_to(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum `g` over the dimensions that broadcasting added or stretched to reach `shape`."""
    gshape = g._data.shape
    lead = len(gshape) - len(shape)
    stretched = tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1
    )
    if not stretched:  # only leading dimensions were added (a bias): one sum
        return g.sum(dim=tuple(range(lead))) if lead else g
    g = g.sum(dim=tuple(range(lead)) + stretched, keepdim=True)
    return g.reshape(shape) if lead else g
