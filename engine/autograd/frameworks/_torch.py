"""PyTorch: torch.Tensor inputs, the analytic side from torch's own autograd."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch.autograd.gradcheck import GradcheckError as _TorchError

from engine.autograd.frameworks._engine import EngineAdapter
from engine.autograd.gradcheck import GradcheckError

_DTYPES = {
    torch.float64: np.dtype(np.float64),
    torch.float32: np.dtype(np.float32),
    torch.float16: np.dtype(np.float16),
}


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

    # The checker converts every output of every evaluation: the common dtypes are looked
    # up, not re-derived (bfloat16 has no NumPy dtype; complex is not supported).
    def is_array(self, obj: Any) -> bool:
        return isinstance(obj, torch.Tensor)

    def to_numpy(self, obj: Any) -> np.ndarray:
        t = obj.detach()
        if t.dtype not in _DTYPES:
            if t.dtype == torch.bfloat16:
                raise TypeError("gradcheck: bfloat16 has no NumPy dtype; check in float32")
            if t.is_complex():
                raise TypeError("gradcheck: complex inputs and outputs are not supported")
        return t.numpy() if t.is_cpu else t.cpu().numpy()

    def dtype_of(self, obj: Any) -> np.dtype:
        # Without copying the values to NumPy: the checker asks this often.
        dtype = _DTYPES.get(obj.dtype)
        return dtype if dtype is not None else np.dtype(str(obj.dtype).removeprefix("torch."))

    def is_floating(self, obj: Any) -> bool:
        return isinstance(obj, torch.Tensor) and obj.is_floating_point()

    def from_numpy(self, values: np.ndarray, requires_grad: bool = False) -> Any:
        t = torch.from_numpy(np.array(values, copy=True))
        return t.requires_grad_(True) if requires_grad else t


class TorchGradcheckError(GradcheckError, _TorchError):
    """Ours, and also torch's: `except torch.autograd.gradcheck.GradcheckError` still works."""
