"""``SGD`` with momentum, dampening, Nesterov momentum and weight decay, as in PyTorch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from engine import Tensor
from engine.optim.optimizer import Optimizer, _new_buffer, _storage

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent: ``p -= lr * (momentum buffer or gradient)``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update(
        self, param: Tensor, value: np.ndarray, grad: np.ndarray, group: dict[str, Any]
    ) -> None:
        # PyTorch's _single_tensor_sgd, operation for operation, on the raw arrays; results
        # go into reused work arrays (``out=``) so a step allocates nothing.
        g, w0, w1 = self._work_arrays(param, value, grad)
        if group["maximize"]:
            g = np.negative(g, out=w0)
        weight_decay = group["weight_decay"]
        if weight_decay != 0:
            g = np.add(g, np.multiply(value, weight_decay, out=w1), out=w0)
        momentum = group["momentum"]
        if momentum != 0:
            state = self.state[param]
            buf = state.get("momentum_buffer")
            if buf is None:
                # The first step seeds the buffer with the gradient itself (no dampening).
                state["momentum_buffer"] = buf = _new_buffer(param, g)
                b = _storage(buf)
            else:
                b = _storage(buf)
                b *= momentum
                dampening = group["dampening"]
                b += g if dampening == 0 else np.multiply(g, 1 - dampening, out=w1)
            g = np.add(g, np.multiply(b, momentum, out=w1), out=w0) if group["nesterov"] else b
        value -= np.multiply(g, group["lr"], out=w1)
