"""Functional forms of the layers and losses in engine.nn, written in differentiable engine ops."""

from __future__ import annotations

import warnings

import numpy as np

import engine
from engine import Tensor, _api, _creation, _ops

__all__ = [
    "avg_pool2d",
    "batch_norm",
    "bilinear",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "dropout",
    "embedding",
    "huber_loss",
    "l1_loss",
    "layer_norm",
    "max_pool2d",
    "normalize",
    "one_hot",
    "pad",
    "smooth_l1_loss",
    "softmin",
    "softplus",
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
    """``input @ weight.T + bias``: one AddmmBackward0 node for a batch of rows, as in torch."""
    if bias is None:
        return input @ weight.t()
    if input.ndim == 2:
        return _api.addmm(bias, input, weight.t())
    # Other ranks fold into rows and back (ViewBackward0 over AddmmBackward0, as torch).
    lead = tuple(input.shape[:-1])
    rows = input.reshape(-1, input.shape[-1])
    return _api.addmm(bias, rows, weight.t()).view(*lead, weight.shape[0])


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None
             ) -> Tensor:
    """x1^T W_k x2 (+ b_k) for every output k."""
    out = ((input1.unsqueeze(-2).unsqueeze(-2) @ weight) @ input2.unsqueeze(-2).unsqueeze(-1))
    out = out.squeeze(-1).squeeze(-1)
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


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: object = None) -> Tensor:
    """log(softmax(x)) along ``dim``, stably: one LogSoftmaxBackward0 node."""
    if dim is None:
        dim = _implicit_dim(input.ndim)
    return _api.log_softmax(input, dim, dtype)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: object = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, stably: one SoftmaxBackward0 node."""
    if dim is None:
        dim = _implicit_dim(input.ndim)
    return _api.softmax(input, dim, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: object = None) -> Tensor:
    """softmax(-x) along ``dim``."""
    if dim is None:
        dim = _implicit_dim(input.ndim)
    return _api.softmax(-input, dim, dtype)


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
    if input.dtype != target.dtype:
        target = target.to(input.dtype)
    return _ops.call(_ops.OPS["mse_loss"], input, target, reduction)


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
    # -log p[target] as a product with a constant one-hot matrix (weights, smoothing and
    # ignored rows folded in): one NllLossBackward0 node, differentiable to any order.
    loss = _ops.call(_ops.OPS["nll_loss"], logp, coef.astype(logp._data.dtype),
                     float(sample_weight.sum()), reduction)
    if reduction != "none":
        return loss
    if unbatched:
        return loss.reshape(())
    if tuple(loss.shape) == tuple(target.shape):
        return loss  # (N,) rows: torch's NllLossBackward0 is the output's node
    return loss.reshape(tuple(target.shape))


# ---- losses --------------------------------------------------------------------------------------
def _warn_pair_shapes(input: Tensor, target: Tensor, reduction: str) -> None:
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )


def l1_loss(input: Tensor, target: Tensor, size_average: object = None, reduce: object = None,
            reduction: str = "mean") -> Tensor:
    """Mean (or summed) absolute error."""
    _warn_pair_shapes(input, target, reduction)
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average: object = None,
                   reduce: object = None, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta."""
    _warn_pair_shapes(input, target, reduction)
    if beta == 0:  # torch's l1_loss then, node for node
        return _reduce((input - target).abs(), reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    return _ops.call(_ops.OPS["smooth_l1_loss"], input, target, reduction, float(beta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta)."""
    _warn_pair_shapes(input, target, reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    if weight is None:
        return _ops.call(_ops.OPS["huber_loss"], input, target, reduction, float(delta))
    # torch weighs the unreduced loss and reduces that (MeanBackward0 is its node).
    loss = _ops.call(_ops.OPS["huber_loss"], input, target, "none", float(delta))
    return _reduce(loss * weight, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average: object = None, reduce: object = None,
                         reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)), each log clamped at -100 as torch does."""
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}) is deprecated. Please ensure they have the same size."
        )
    data = input.detach().numpy()
    if data.size and (data.min() < 0 or data.max() > 1):
        raise RuntimeError("all elements of input should be between 0 and 1")
    w = None
    if weight is not None:
        w = np.broadcast_to(np.asarray(weight.detach().numpy(), dtype=data.dtype), data.shape)
    return _ops.call(_ops.OPS["binary_cross_entropy"], input, target, w, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average: object = None,
                                     reduce: object = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE on logits, stably: (1 - t) x + l (log1p(exp(-|x|)) + max(-x, 0)), l = 1 + (pw-1) t."""
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({target.shape}) must be the same as input size ({input.shape})"
        )
    if target.dtype != input.dtype:
        target = target.to(input.dtype)

    def values(t: Tensor | None) -> np.ndarray | None:
        return None if t is None else np.asarray(t.detach().numpy(), dtype=input._data.dtype)

    return _ops.call(_ops.OPS["bce_with_logits"], input, target, values(weight),
                     values(pos_weight), reduction)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above `threshold` as torch."""
    bx = input * beta
    soft = ((-bx.abs()).exp().log1p() + bx.clamp(min=0)) / beta
    return engine.where(bx > threshold, input, soft)


# ---- layers' functional forms ------------------------------------------------------------------
def _tuple(v: object, n: int) -> tuple:
    return tuple(v) if isinstance(v, tuple | list) else (v,) * n


def _conv(input: Tensor, weight: Tensor, bias: Tensor | None, stride: object, padding: object,
          dilation: object, groups: int, nd: int) -> Tensor:
    unbatched = input.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != nd + 2:
        raise RuntimeError(
            f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to conv{nd}d, but got "
            f"input of size: {list(input.shape)}"
        )
    if input.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
            f"{list(input.shape)} to have {weight.shape[1] * groups} channels, but got "
            f"{input.shape[1]} channels instead"
        )
    stride, dilation = _tuple(stride, nd), _tuple(dilation, nd)
    if padding == "valid":
        padding = 0
    if padding == "same":
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, weight.shape[2:], strict=True))
    padding = _tuple(padding, nd)
    out = _ops.call(_ops.OPS["conv"], input, weight, bias, stride, padding, dilation, groups)
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) over (N, C, L) inputs."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: object = 1,
           padding: object = 0, dilation: object = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) over (N, C, H, W) inputs."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def max_pool2d(input: Tensor, kernel_size: object, stride: object = None, padding: object = 0,
               dilation: object = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The maximum of each window (the gradient goes to each window's first maximum)."""
    kernel = _tuple(kernel_size, 2)
    stride = kernel if stride is None or stride == [] else _tuple(stride, 2)
    if input.ndim not in (3, 4):
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    geometry = (kernel, stride, _tuple(padding, 2), _tuple(dilation, 2), bool(ceil_mode))
    out = _ops.call(_ops.OPS["max_pool"], input, *geometry)
    if not return_indices:
        return out
    return out, _ops.max_pool_indices(input, *geometry)


def avg_pool2d(input: Tensor, kernel_size: object, stride: object = None, padding: object = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: object = None) -> Tensor:
    """The mean of each window, as a convolution with a constant kernel per channel."""
    kernel = _tuple(kernel_size, 2)
    stride = kernel if stride is None else _tuple(stride, 2)
    c = input.shape[-3]
    k = engine.full((c, 1, *kernel), 1.0 / (kernel[0] * kernel[1]), dtype=input.dtype)
    return _conv(input, k, None, stride, padding, 1, c, 2)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
            ) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (training only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _maybe_inplace(input, input * 0.0, inplace)
    keep = _creation.source.bernoulli(tuple(input.shape), input._data.dtype, 1.0 - p)
    mask = engine.tensor(keep / (1.0 - p), dtype=input.dtype)
    return _maybe_inplace(input, input * mask, inplace)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` picked by the integer tensor `input`."""
    if input.dtype.is_floating_point:
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got torch.{input.dtype.name.capitalize()}Tensor instead"
        )
    idx = np.asarray(input.numpy(), dtype=np.int64)
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError("index out of range in self")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    return _ops.call(_ops.OPS["embedding"], weight, idx, padding_idx)


def layer_norm(input: Tensor, normalized_shape: object, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over the last dims, then * weight + bias."""
    shape = _tuple(normalized_shape, 1)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size{list(input.shape)}"
        )
    return _ops.call(_ops.OPS["layer_norm"], input, weight, bias, len(shape), eps)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) by batch statistics (training) or running ones (eval)."""
    dims = (0, *range(2, input.ndim))
    stats = None
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.shape}"
            )
        if running_mean is not None and running_var is not None:
            with engine.no_grad():  # running statistics use the unbiased variance, as torch
                x = input.detach()
                running_mean.mul_(1 - momentum).add_(x.mean(dim=dims) * momentum)
                running_var.mul_(1 - momentum).add_(x.var(dim=dims) * momentum)
    else:
        for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
            if stat is None:
                raise RuntimeError(f"{name} must be defined in evaluation mode")
        stats = (running_mean.detach().numpy(), running_var.detach().numpy())
    return _ops.call(_ops.OPS["batch_norm"], input, weight, bias, stats, eps)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along `dim`."""
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps).expand_as(input)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Integer classes as one-hot rows (int64)."""
    idx = np.asarray(tensor.numpy(), dtype=np.int64)
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise RuntimeError("Class values must be smaller than num_classes.")
    return engine.tensor(np.eye(n, dtype=np.int64)[idx])


def pad(input: Tensor, pad: object, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last dims by (left, right, top, bottom, ...) with a constant."""
    if mode != "constant":
        raise NotImplementedError(f"engine: pad mode {mode!r}")
    widths = list(pad)
    out = input
    for k in range(len(widths) // 2):
        d = input.ndim - 1 - k
        lo, hi = widths[2 * k], widths[2 * k + 1]
        parts = []
        if lo:
            parts.append(engine.full((*out.shape[:d], lo, *out.shape[d + 1:]), value,
                                     dtype=out.dtype))
        parts.append(out)
        if hi:
            parts.append(engine.full((*out.shape[:d], hi, *out.shape[d + 1:]), value,
                                     dtype=out.dtype))
        out = engine.cat(parts, dim=d) if len(parts) > 1 else out
    return out
