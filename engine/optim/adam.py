"""``Adam`` and ``AdamW`` with bias correction, L2 or decoupled weight decay, and AMSGrad."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import engine
from engine import Tensor
from engine.optim.optimizer import Optimizer, _new_buffer, _storage

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam: steps of lr * m_hat / (sqrt(v_hat) + eps) from running gradient moments."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _update(
        self, param: Tensor, value: np.ndarray, grad: np.ndarray, group: dict[str, Any]
    ) -> None:
        # PyTorch's _single_tensor_adam, operation for operation.
        state = self.state[param]
        if not state:
            # ``step`` is a float32 scalar tensor, as in PyTorch's state_dict.
            state["step"] = engine.tensor(0.0)
            state["exp_avg"] = _new_buffer(param)
            state["exp_avg_sq"] = _new_buffer(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _new_buffer(param)
        step_t = _storage(state["step"])
        step_t += 1
        step = float(step_t)
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]

        # Results go into reused work arrays (``out=``) so a step allocates nothing.
        g, w0, w1 = self._work_arrays(param, value, grad)
        if group["maximize"]:
            g = np.negative(g, out=w0)
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                value *= 1 - lr * weight_decay
            else:
                g = np.add(g, np.multiply(value, weight_decay, out=w1), out=w0)

        exp_avg = _storage(state["exp_avg"])
        exp_avg_sq = _storage(state["exp_avg_sq"])
        # lerp(m, g, 1 - beta1) in PyTorch's form for weights below 0.5: m + w * (g - m).
        diff = np.subtract(g, exp_avg, out=w1)
        diff *= 1 - beta1
        exp_avg += diff
        # addcmul: v * beta2 + ((1 - beta2) * g) * g
        exp_avg_sq *= beta2
        square = np.multiply(g, 1 - beta2, out=w1)
        square *= g
        exp_avg_sq += square

        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        second = exp_avg_sq
        if group["amsgrad"]:
            second = _storage(state["max_exp_avg_sq"])
            np.maximum(second, exp_avg_sq, out=second)
        if step_size == 0:
            return  # lr 0 (a schedule's end): the moments moved, the parameter does not
        # PyTorch's capturable form: the step size is folded into the denominator, which
        # saves a full pass over the parameter against lr / bc1 * m / (sqrt(v) / bc2 + eps).
        denom = np.sqrt(second, out=w1)
        denom /= bias_correction2_sqrt * -step_size
        denom += eps / -step_size
        value += np.divide(exp_avg, denom, out=denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (``p *= 1 - lr * weight_decay`` before the step)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
