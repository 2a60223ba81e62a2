"""Loss modules over engine.nn.functional, with torch's constructor arguments."""

from __future__ import annotations

from typing import Any

from engine import Tensor
from engine.nn import functional as F
from engine.nn.module import Module

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "L1Loss", "MSELoss",
    "NLLLoss", "SmoothL1Loss",
]


class MSELoss(Module):
    """Mean squared error; ``reduction`` is 'mean', 'sum' or 'none'."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Return mse_loss(input, target)."""
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(Module):
    """Cross-entropy on logits, with class indices or class probabilities as targets."""

    def __init__(
        self,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        # A buffer, as in PyTorch, so class weights travel with state_dict.
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Return cross_entropy(input, target)."""
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(Module):
    """Negative log-likelihood on log-probabilities with class-index targets."""

    def __init__(
        self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Return nll_loss(input, target)."""
        return F.nll_loss(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class _PairLoss(Module):
    """A loss of (input, target) with a ``reduction``; subclasses name the functional form."""

    _fn: Any
    _extra: tuple[str, ...] = ()

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 **options: Any) -> None:
        super().__init__()
        self.reduction = reduction
        for name, value in options.items():
            setattr(self, name, value)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Return the loss."""
        options = {name: getattr(self, name) for name in self._extra}
        return type(self)._fn(input, target, reduction=self.reduction, **options)


class L1Loss(_PairLoss):
    """Mean absolute error."""

    _fn = staticmethod(F.l1_loss)


class SmoothL1Loss(_PairLoss):
    """Quadratic below ``beta``, linear above."""

    _fn = staticmethod(F.smooth_l1_loss)
    _extra = ("beta",)

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction, beta=beta)


class HuberLoss(_PairLoss):
    """Quadratic below ``delta``, delta-scaled linear above."""

    _fn = staticmethod(F.huber_loss)
    _extra = ("delta",)

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(None, None, reduction, delta=delta)


class BCELoss(_PairLoss):
    """Binary cross-entropy on probabilities."""

    _fn = staticmethod(F.binary_cross_entropy)
    _extra = ("weight",)

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class BCEWithLogitsLoss(_PairLoss):
    """Binary cross-entropy on logits (a sigmoid folded in, stably)."""

    _fn = staticmethod(F.binary_cross_entropy_with_logits)
    _extra = ("weight", "pos_weight")

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 reduce: Any = None, reduction: str = "mean",
                 pos_weight: Tensor | None = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
