"""PyTorch: torch.Tensor inputs, the analytic side from torch's own autograd."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch.autograd.gradcheck import GradcheckError as _TorchError

from engine.autograd.frameworks._engine import EngineAdapter
from engine.autograd.gradcheck import GradcheckError


class TorchAdapter(EngineAdapter):
    """torch has the names engine copies: only the module and the conversions differ."""

    name = "torch"

    @property
    def error_type(self) -> type[RuntimeError]:
        return TorchGradcheckError

    @property
    def lib(self) -> ModuleType:
        return torch

    def own_check(self, name: str, args: tuple, kwargs: dict[str, Any]) -> bool:
        """torch.autograd.gradcheck or gradgradcheck itself, for the checks only torch has
        (batched gradients through vmap, forward-mode AD, masked tensors)."""
        return getattr(torch.autograd, name)(*args, **kwargs)

    def to_numpy(self, obj: Any) -> np.ndarray:
        t = obj.detach()
        if t.dtype == torch.bfloat16:
            raise TypeError("gradcheck: bfloat16 has no NumPy dtype; check in float32")
        if t.is_complex():
            raise TypeError("gradcheck: complex inputs and outputs are not supported")
        return t.cpu().numpy()

    def dtype_of(self, obj: Any) -> np.dtype:
        # Without copying the values to NumPy: the checker asks this often.
        return np.dtype(str(obj.dtype).removeprefix("torch."))

    def from_numpy(self, values: np.ndarray, requires_grad: bool = False) -> Any:
        t = torch.from_numpy(np.array(values, copy=True))
        return t.requires_grad_(True) if requires_grad else t


class TorchGradcheckError(GradcheckError, _TorchError):
    """Ours, and also torch's: `except torch.autograd.gradcheck.GradcheckError` still works."""
