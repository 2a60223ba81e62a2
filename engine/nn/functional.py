"""Functional forms of the layers and losses in engine.nn, written in differentiable engine ops."""

from __future__ import annotations

import warnings

import numpy as np

import engine
from engine import Tensor, _ops

__all__ = [
    "cross_entropy",
    "elu",
    "gelu",
    "leaky_relu",
    "logsigmoid",
    "silu",
    "softsign",
    "linear",
    "log_softmax",
    "mse_loss",
    "nll_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

_REDUCTIONS = ("none", "mean", "sum")


def relu(input: Tensor) -> Tensor:
    """Apply max(0, x) elementwise."""
    return input.relu()


def tanh(input: Tensor) -> Tensor:
    """Apply the hyperbolic tangent elementwise."""
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    """Apply 1 / (1 + exp(-x)) elementwise."""
    return input.sigmoid()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF (``approximate='tanh'``: its tanh form)."""
    return _ops.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    return _maybe_inplace(input, _ops.silu(input), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha * (exp(x) - 1)."""
    return _maybe_inplace(input, _ops.elu(input, alpha), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, else negative_slope * x."""
    return _maybe_inplace(input, _ops.leaky_relu(input, negative_slope), inplace)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return _ops.softsign(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), without overflow."""
    return _ops.logsigmoid(input)


def _maybe_inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    # inplace=True writes the result into the input, with torch's in-place rules (copy_).
    return input.copy_(out) if inplace else out


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Compute ``input @ weight.T + bias``."""
    out = input @ weight.T
    return out if bias is None else out + bias


def _implicit_dim(ndim: int) -> int:
    # PyTorch's legacy rule for softmax without dim, kept for parity.
    warnings.warn(
        "Implicit dimension choice for softmax has been deprecated. "
        "Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _shifted(input: Tensor, dim: int) -> Tensor:
    # Subtracting the row maximum keeps exp() from overflowing (logits of 1000 stay finite).
    # The shift is a constant: softmax does not depend on it, so it needs no gradient, and
    # keeping it out of the graph leaves first and second derivatives exact.
    shift = input.detach().max(dim=dim, keepdim=True).values
    return input - shift


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """Compute log(softmax(x)) along ``dim`` stably, as ``z - log(sum(exp(z)))``."""
    if dim is None:
        dim = _implicit_dim(input.ndim)
    if input.ndim == 0:
        return input - input.detach()
    z = _shifted(input, dim)
    return z - z.exp().sum(dim=dim, keepdim=True).log()


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """Compute exp(x) / sum(exp(x)) along ``dim`` stably."""
    if dim is None:
        dim = _implicit_dim(input.ndim)
    if input.ndim == 0:
        return (input - input.detach()).exp()
    e = _shifted(input, dim).exp()
    return e / e.sum(dim=dim, keepdim=True)


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or summed) squared error between ``input`` and ``target``."""
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=2,
        )
    diff = input - target
    return _reduce(diff * diff, reduction)


def _to_numpy(t: Tensor) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _class_coefficients(
    target: np.ndarray,
    num_classes: int,
    weight: np.ndarray | None,
    ignore_index: int,
    label_smoothing: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-(sample, class) factors on -log p, and each sample's share of the mean's divisor."""
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    bad = safe[(safe < 0) | (safe >= num_classes)]
    if bad.size:
        raise IndexError(f"Target {int(bad[0])} is out of bounds.")
    class_weight = np.ones(num_classes) if weight is None else weight
    sample_weight = class_weight[safe] * valid
    coef = np.zeros((target.shape[0], num_classes))
    coef[np.arange(target.shape[0]), safe] = (1.0 - label_smoothing) * sample_weight
    # PyTorch's label smoothing adds eps/C of the weighted uniform cross-entropy per sample.
    coef += (label_smoothing / num_classes) * valid[:, None] * class_weight[None, :]
    return coef, sample_weight


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input``."""
    return _indexed_loss(input, target, weight, ignore_index, reduction, 0.0)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits ``input`` (class dim 1, or 0 unbatched) and ``target``."""
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, dim=class_dim)
    if tuple(target.shape) == tuple(input.shape) and target.dtype.is_floating_point:
        return _probability_loss(logp, target, weight, reduction, label_smoothing, class_dim)
    return _indexed_loss(logp, target, weight, ignore_index, reduction, label_smoothing)


def _probability_loss(
    logp: Tensor,
    target: Tensor,
    weight: Tensor | None,
    reduction: str,
    label_smoothing: float,
    class_dim: int,
) -> Tensor:
    num_classes = logp.shape[class_dim]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
    terms = logp * target
    if weight is not None:
        shape = [1] * logp.ndim
        shape[class_dim] = num_classes
        terms = terms * weight.reshape(shape)
    loss = -terms.sum(dim=class_dim)
    return _reduce(loss, reduction)


def _indexed_loss(
    logp: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> Tensor:
    _check_reduction(reduction)
    if target.dtype.is_floating_point:
        raise RuntimeError(
            "expected scalar type Long but found " + str(target.dtype).rsplit(".", 1)[-1]
        )
    unbatched = logp.ndim == 1
    if unbatched:
        if target.ndim != 0:
            raise ValueError(
                f"Expected input batch_size ({1}) to match target batch_size ({target.shape[0]})."
            )
        logp = logp.unsqueeze(0)
        target = target.reshape(1)
    elif logp.ndim > 2:
        # (N, C, d1, ...) -> (N * d1 * ..., C): the class dimension goes last, then rows.
        order = [0, *range(2, logp.ndim), 1]
        logp = logp.permute(*order).reshape(-1, logp.shape[1])
    if logp.shape[0] != int(np.prod(target.shape)):
        raise ValueError(
            f"Expected input batch_size ({logp.shape[0]}) to match target batch_size "
            f"({target.shape[0] if target.ndim else 1})."
        )
    num_classes = logp.shape[1]
    w = None if weight is None else _to_numpy(weight).astype(np.float64)
    coef, sample_weight = _class_coefficients(
        _to_numpy(target).reshape(-1).astype(np.int64),
        num_classes,
        w,
        ignore_index,
        label_smoothing,
    )
    # Picking -log p[target] as a product with a constant one-hot matrix keeps the loss a
    # plain mul + sum, differentiable to any order, with weights and ignored rows folded in.
    per_sample = -(logp * engine.tensor(coef, dtype=logp.dtype)).sum(dim=1)
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.sum() / float(sample_weight.sum())
    if unbatched:
        return per_sample.reshape(())
    return per_sample.reshape(tuple(target.shape))
