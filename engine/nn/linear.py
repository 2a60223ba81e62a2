"""``Linear``: y = x W^T + b, initialised the way PyTorch does."""

from __future__ import annotations

import math

import engine
from engine import Tensor
from engine.nn import functional as F
from engine.nn import init
from engine.nn.module import Module
from engine.nn.parameter import Parameter

__all__ = ["Identity", "Linear"]


class Linear(Module):
    """Affine layer ``x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, dtype: object = None
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(engine.zeros(out_features, in_features, dtype=dtype))
        if bias:
            self.bias = Parameter(engine.zeros(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh weights: kaiming_uniform_(a=sqrt(5)), bias U(-1/sqrt(fan_in), ...)."""
        # a = sqrt(5) makes the weight bound 1/sqrt(fan_in), the same as the bias: PyTorch's
        # long-standing default, kept so models start from the same distribution.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        """Apply the affine map to the last dimension of ``input``."""
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        """Describe the layer's shape."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module):
    """Return the input unchanged (a placeholder layer)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        """Return ``input``."""
        return input
