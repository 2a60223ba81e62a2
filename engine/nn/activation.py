"""Activation modules: thin wrappers over engine.nn.functional."""

from __future__ import annotations

from engine import Tensor
from engine.nn import functional as F
from engine.nn.module import Module

__all__ = ["LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]


class ReLU(Module):
    """Apply max(0, x) elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        """Return relu(input)."""
        return F.relu(input)


class Tanh(Module):
    """Apply tanh elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        """Return tanh(input)."""
        return F.tanh(input)


class Sigmoid(Module):
    """Apply the logistic sigmoid elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        """Return sigmoid(input)."""
        return F.sigmoid(input)


class Softmax(Module):
    """Apply softmax along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """Return softmax(input, dim)."""
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        """Show the dimension."""
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Apply log-softmax along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """Return log_softmax(input, dim)."""
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        """Show the dimension."""
        return f"dim={self.dim}"
