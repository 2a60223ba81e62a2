"""``Optimizer``: parameter groups, per-parameter state, zero_grad and state_dict."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

import numpy as np

import engine
from engine import Tensor

__all__ = ["Optimizer", "required"]

_Loss = TypeVar("_Loss")


class _RequiredParameter:
    """Marks a hyperparameter that every group must be given."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _storage(t: Tensor) -> np.ndarray:
    """The NumPy array behind ``t``: optimizers update it in place, outside the graph."""
    # The engine's own accessor: t.detach().numpy() gives the same array but builds a
    # throwaway Tensor per call, a visible cost in a step over many small parameters.
    return t._storage()


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of params + hyperparameters) and ``state``."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        # Keyed by the parameter tensor itself, as in PyTorch (``optimizer.state[p]``).
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        # Work arrays per parameter, reused by every step so that updates run in place with
        # ``out=`` and allocate nothing. Not state: there is nothing in them to save.
        self._work: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__module__}.{type(params).__name__}"
            )
        param_groups = list(params)
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError(
                    "all optimizer params should be with/without names. "
                    "Some param names are missing"
                )
            group["param_names"] = names
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is "
                    f"{type(param).__module__}.{type(param).__name__}"
                )
            if not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing & {id(p) for p in params}:
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradient of every parameter: to ``None`` by default, else to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    @overload
    def step(self, closure: None = None) -> None: ...
    @overload
    def step(self, closure: Callable[[], _Loss]) -> _Loss: ...
    def step(self, closure: Callable[[], _Loss] | None = None) -> _Loss | None:
        """Update every parameter that has a gradient; return ``closure()``'s loss if given."""
        loss = None
        if closure is not None:
            with engine.enable_grad():
                loss = closure()
        with engine.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, _storage(p), _storage(p.grad), group)
                        # As torch's in-place update does: a graph that saved p before the
                        # step must refuse to backpropagate through the changed values.
                        p._bump_version()
        return loss

    def _update(
        self,
        param: Tensor,
        value: np.ndarray,
        grad: np.ndarray,
        group: dict[str, Any],
    ) -> None:
        # Subclasses update ``value`` (the parameter's array) in place from ``grad``.
        raise NotImplementedError

    def _work_arrays(
        self, param: Tensor, value: np.ndarray, grad: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The gradient in ``value``'s memory layout, and two scratch arrays like ``value``.

        The first scratch array holds the gradient when it had to be re-laid out.
        """
        work = self._work.get(id(param))
        if work is None or work[0].shape != value.shape or work[0].dtype != value.dtype:
            work = self._work[id(param)] = (np.empty_like(value), np.empty_like(value))
        if grad.flags.c_contiguous == value.flags.c_contiguous:
            return grad, work[0], work[1]
        # A transposed gradient (e.g. a Linear weight's) makes every elementwise op with the
        # parameter stride across memory, ~10x slower; one copy first is cheaper.
        np.copyto(work[0], grad)
        return work[0], work[0], work[1]

    def state_dict(self) -> dict[str, Any]:
        """Return {'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and per-parameter state saved by ``state_dict``."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for ours, saved in zip(self.param_groups, saved_groups, strict=True):
            if len(ours["params"]) != len(saved["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    "of optimizer's group"
                )
        id_map = {
            saved_id: p
            for ours, saved in zip(self.param_groups, saved_groups, strict=True)
            for saved_id, p in zip(saved["params"], ours["params"], strict=True)
        }
        self.state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                param = id_map[key]
                self.state[param] = {k: _copy_state(v, param) for k, v in value.items()}
        self.param_groups = [
            {
                **copy.deepcopy({k: v for k, v in saved.items() if k != "params"}),
                "params": ours["params"],
            }
            for ours, saved in zip(self.param_groups, saved_groups, strict=True)
        ]

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._work = {}


def _new_buffer(param: Tensor, init: np.ndarray | None = None) -> Tensor:
    """A state tensor shaped and typed like ``param``: zeros, or a copy of ``init``."""
    buf = engine.zeros_like(param.detach())
    if init is not None:
        _storage(buf)[...] = init
    return buf


def _copy_state(value: Any, param: Tensor) -> Any:
    # Saved buffers are copied so the loaded optimizer never aliases the checkpoint; like
    # PyTorch, buffers take the parameter's dtype while the scalar ``step`` keeps its own.
    if isinstance(value, Tensor):
        dtype = value.dtype if value.ndim == 0 else param.dtype
        return engine.tensor(np.array(_storage(value), copy=True), dtype=dtype)
    return copy.deepcopy(value)
