"""`Variable`: torch's deprecated wrapper, which today returns a plain tensor."""

from __future__ import annotations

from typing import Any

from engine.tensor import Tensor


class _VariableMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor)  # isinstance(t, Variable) holds for every tensor


class Variable(metaclass=_VariableMeta):
    """`Variable(t, requires_grad=False)`: t itself (with the flag set), as torch returns."""

    def __new__(cls, data: Tensor, requires_grad: bool = False, volatile: bool = False) -> Any:
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if requires_grad:
            data.requires_grad_(True)
        return data
