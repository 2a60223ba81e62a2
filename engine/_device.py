"""Devices: `engine.device`, and the CPU-only answers of `cuda`, `backends` and `accelerator`.

Every engine tensor lives on the CPU. Naming another device is allowed where torch allows it
(`engine.device("cuda")`), and using it fails with torch's error for a CPU-only build.
"""

from __future__ import annotations

import types
from typing import Any

_TYPES = (
    "cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
    "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone",
)
NO_CUDA = "Torch not compiled with CUDA enabled"


class device:  # noqa: N801 - torch's name
    """A device: `device("cpu")`, `device("cuda:0")`, `device("cuda", 1)`."""

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if isinstance(type, int) and not isinstance(type, bool):
            raise RuntimeError("Cannot access accelerator device when none is available.")
        if not isinstance(type, str):
            raise TypeError(f"device() received an invalid combination of arguments: {type!r}")
        kind, _, nr = type.partition(":")
        if kind not in _TYPES:
            raise RuntimeError(
                f"Expected one of {', '.join(_TYPES)} device type at start of device string: "
                f"{type}"
            )
        if nr:
            if not nr.isdigit() or index is not None:
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(nr)
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"attribute '{name}' of 'torch.device' objects is not writable")

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self) -> Any:
        return (device, (self.type, self.index))


CPU = device("cpu")
_default = [CPU]


def check(dev: Any) -> device:
    """The CPU device, when `dev` (None, a string, a device, an index) names it; else torch's
    error for a device this build does not have."""
    if dev is None:
        dev = _default[0]
    d = dev if isinstance(dev, device) else device(dev)
    if d.type == "cpu":
        return CPU
    if d.type == "cuda":
        raise AssertionError(NO_CUDA)
    raise NotImplementedError(
        f"Could not run 'aten::empty.memory_format' with arguments from the "
        f"'{d.type.upper()}' backend: engine runs on the CPU only."
    )


def set_default_device(dev: Any) -> None:
    """Set the device that factories use when given none (only the CPU can be used)."""
    _default[0] = CPU if dev is None else dev if isinstance(dev, device) else device(dev)


def get_default_device() -> device:
    """The device factories use when given none."""
    return _default[0]


def _false(*args: Any, **kwargs: Any) -> bool:
    return False


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def _no_cuda(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(NO_CUDA)


# torch.cuda on a CPU-only build: queries answer "none", seeding is a no-op, using it fails.
cuda = types.SimpleNamespace(
    is_available=_false, device_count=_zero, is_initialized=_false,
    manual_seed=_nothing, manual_seed_all=_nothing, seed=_nothing, seed_all=_nothing,
    synchronize=_no_cuda, current_device=_no_cuda, get_device_name=_no_cuda,
    set_device=_no_cuda, empty_cache=_nothing,
)
backends = types.SimpleNamespace(
    mps=types.SimpleNamespace(is_available=_false, is_built=_false),
    cuda=types.SimpleNamespace(is_built=_false),
    cudnn=types.SimpleNamespace(is_available=_false, enabled=True, deterministic=False,
                                benchmark=False),
)
accelerator = types.SimpleNamespace(
    is_available=_false, device_count=_zero, current_accelerator=_nothing,
)
