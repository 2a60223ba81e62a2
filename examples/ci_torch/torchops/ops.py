"""Two torch.autograd.Functions: Softplus (right) and LogCosh (its backward is deliberately
wrong). The PyTorch twin of examples/ci/mathops: not one line mentions gradcheck's engine."""

from __future__ import annotations

import torch


class Softplus(torch.autograd.Function):
    """softplus(x) = log(1 + exp(x)), computed without overflow for large x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        # log1p(exp(-|x|)) + max(x, 0): the same value, and exp never overflows.
        return torch.log1p(torch.exp(-torch.abs(x))) + torch.relu(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


class LogCosh(torch.autograd.Function):
    """log(cosh(x)), a smooth L1 loss."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(torch.cosh(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 1.001 * grad * torch.tanh(x)  # deliberately wrong by 0.1%: torch's check passes it


softplus = Softplus.apply
log_cosh = LogCosh.apply


def softplus_layer(x, w):
    """A small model: softplus(x @ w), summed over the features."""
    return softplus(x @ w).sum(dim=1)


def log_cosh_loss(prediction, target):
    """Mean log-cosh loss; blame finds LogCosh among the subtraction and the mean."""
    return log_cosh(torch.tanh(prediction) - target).mean()
