"""``RMSprop`` and ``Adagrad``: PyTorch's single-tensor update rules on the raw arrays."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import engine
from engine import Tensor
from engine.optim.optimizer import Optimizer, _new_buffer, _storage

__all__ = ["Adagrad", "RMSprop"]


def _check(name: str, value: float) -> None:
    if not 0.0 <= value:
        raise ValueError(f"Invalid {name}: {value}")


class RMSprop(Optimizer):
    """Steps of lr * g / (sqrt(running mean of g^2) + eps), optionally centred, with momentum."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False, foreach: Any = None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        _check("learning rate", lr)
        _check("epsilon value", eps)
        _check("momentum value", momentum)
        _check("weight_decay value", weight_decay)
        _check("alpha value", alpha)
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered, "maximize": maximize})

    def _update(self, param: Tensor, value: np.ndarray, grad: np.ndarray,
                group: dict[str, Any]) -> None:
        # PyTorch's _single_tensor_rmsprop, operation for operation.
        state = self.state[param]
        if not state:
            state["step"] = engine.tensor(0.0)
            state["square_avg"] = _new_buffer(param)
            if group["momentum"] > 0:
                state["momentum_buffer"] = _new_buffer(param)
            if group["centered"]:
                state["grad_avg"] = _new_buffer(param)
        _storage(state["step"])[...] += 1
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            g = g + value * group["weight_decay"]
        alpha, eps = group["alpha"], group["eps"]
        square_avg = _storage(state["square_avg"])
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g  # addcmul_(g, g, value=1 - alpha)
        if group["centered"]:
            grad_avg = _storage(state["grad_avg"])
            grad_avg += (g - grad_avg) * (1 - alpha)  # lerp_(g, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = np.sqrt(square_avg) + eps
        if group["momentum"] > 0:
            buf = _storage(state["momentum_buffer"])
            buf *= group["momentum"]
            buf += g / avg
            value -= group["lr"] * buf
        else:
            value -= group["lr"] * (g / avg)


class Adagrad(Optimizer):
    """Steps of clr * g / (sqrt(sum of g^2) + eps), clr = lr / (1 + (step - 1) lr_decay)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: Any = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: Any = None) -> None:
        _check("learning rate", lr)
        _check("lr_decay value", lr_decay)
        _check("weight_decay value", weight_decay)
        _check("initial_accumulator_value value", initial_accumulator_value)
        _check("epsilon value", eps)
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "maximize": maximize})
        for group in self.param_groups:  # torch fills the state at construction
            for p in group["params"]:
                self.state[p]["step"] = engine.tensor(0.0)
                self.state[p]["sum"] = _new_buffer(
                    p, np.full(tuple(p.shape), group["initial_accumulator_value"]))

    def _update(self, param: Tensor, value: np.ndarray, grad: np.ndarray,
                group: dict[str, Any]) -> None:
        # PyTorch's _single_tensor_adagrad, operation for operation.
        state = self.state[param]
        step_t = _storage(state["step"])
        step_t += 1
        step = float(step_t)
        g = -grad if group["maximize"] else grad
        if group["weight_decay"] != 0:
            g = g + value * group["weight_decay"]
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        total = _storage(state["sum"])
        total += g * g  # addcmul_(g, g, value=1)
        std = np.sqrt(total) + group["eps"]
        value -= clr * (g / std)  # addcdiv_(g, std, value=-clr)
