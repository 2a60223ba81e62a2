"""``Parameter``: a leaf Tensor that a Module registers as learnable."""

from __future__ import annotations

from typing import Any

import engine
from engine import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A Tensor that is a learnable leaf: ``requires_grad=True`` and registered by Modules."""

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            data = engine.zeros(0)
        # Shares ``data``'s storage and starts a fresh leaf, dropping any history.
        return Tensor._make_subclass(cls, data, requires_grad)

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        # Everything happened in __new__; Tensor.__init__ would rebuild the storage.
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.detach().clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol: int) -> Any:
        return (_rebuild_parameter, (self.detach().clone(), self.requires_grad))


def _rebuild_parameter(data: Tensor, requires_grad: bool) -> Parameter:
    return Parameter(data, requires_grad)
