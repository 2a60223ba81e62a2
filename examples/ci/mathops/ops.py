"""Two custom Functions: Softplus (right) and LogCosh (its backward is deliberately wrong)."""

from __future__ import annotations

import engine
from engine.autograd import Function


class Softplus(Function):
    """softplus(x) = log(1 + exp(x)), computed without overflow for large x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        # log1p(exp(-|x|)) + max(x, 0): the same value, and exp never overflows.
        return engine.log1p(engine.exp(-engine.abs(x))) + engine.relu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * engine.sigmoid(x)


class LogCosh(Function):
    """log(cosh(x)), a smooth L1 loss."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return engine.log(engine.cosh(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * grad * engine.tanh(x)  # deliberately wrong: d/dx log(cosh(x)) = tanh(x)


def softplus(x):
    """Elementwise softplus."""
    return Softplus.apply(x)


def log_cosh(x):
    """Elementwise log-cosh."""
    return LogCosh.apply(x)


def softplus_layer(x, w):
    """A small model: softplus(x @ w), summed over the features."""
    return softplus(x @ w).sum(dim=1)


def log_cosh_loss(prediction, target):
    """Mean log-cosh loss; blame finds LogCosh among the subtraction and the mean."""
    return log_cosh(prediction - target).mean()
