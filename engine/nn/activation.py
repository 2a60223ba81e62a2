"""Activation modules: thin wrappers over engine.nn.functional."""

from __future__ import annotations

from engine import Tensor
from engine.nn import functional as F
from engine.nn.module import Module

__all__ = [
    "ELU", "GELU", "LeakyReLU", "LogSigmoid", "LogSoftmax", "ReLU", "SiLU", "Sigmoid",
    "Softmax", "Softplus", "Softsign", "Tanh",
]


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


class GELU(Module):
    """Apply gelu elementwise (``approximate='tanh'`` for its tanh form)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        """Return gelu(input)."""
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        """Show the approximation."""
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """Apply x * sigmoid(x) elementwise."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """Return silu(input)."""
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        """Show the in-place flag."""
        return "inplace=True" if self.inplace else ""


class ELU(Module):
    """Apply elu elementwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        """Return elu(input, alpha)."""
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        """Show alpha."""
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class LeakyReLU(Module):
    """Apply leaky relu elementwise."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        """Return leaky_relu(input, negative_slope)."""
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        """Show the slope."""
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Softsign(Module):
    """Apply x / (1 + |x|) elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        """Return softsign(input)."""
        return F.softsign(input)


class LogSigmoid(Module):
    """Apply log(sigmoid(x)) elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        """Return logsigmoid(input)."""
        return F.logsigmoid(input)


class Softplus(Module):
    """Apply log(1 + exp(beta x)) / beta elementwise."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        """Return softplus(input)."""
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        """Show beta and the threshold."""
        return f"beta={self.beta}, threshold={self.threshold}"
