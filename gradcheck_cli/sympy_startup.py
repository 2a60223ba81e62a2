"""What SymPy would import on first use that no formula of ours needs.

SymPy's ``Add.flatten`` (every evaluated sum, even ``x**(1 + 1)`` inside ``x*x``) starts with
``from sympy.tensor.tensor import TensExpr, TensAdd``, only to ask whether a term is a tensor
expression. That module imports all of ``sympy.combinatorics``, whose ``polyhedron`` builds
the symmetry groups of the Platonic solids at import: 25-40 ms of a one-shot ``grad``, which
builds no tensor and needs no group.

``defer_tensor_module`` puts a stand-in for ``sympy.tensor.tensor`` in ``sys.modules``. Until
the real module is imported, no tensor expression can exist, so its ``TensExpr`` and
``TensAdd`` are classes nothing is an instance of, and ``isinstance`` answers what the real
classes would. Any other name, and those two once the real module is loaded, come from the
real module, loaded on first use: code that uses SymPy's tensors gets them, and sees the
real module in ``sys.modules`` from then on. Dunder names (``__file__``...) never load it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["TENSOR_MODULE", "defer_tensor_module"]

TENSOR_MODULE = "sympy.tensor.tensor"
_ASKED = ("TensExpr", "TensAdd")  # what Add.flatten imports from it


class _NoTensor:
    """A class no object is an instance of: a tensor type before tensors can exist."""

    def __init__(self) -> None:
        raise TypeError(f"{TENSOR_MODULE} is not loaded")


class _DeferredTensorModule(types.ModuleType):
    """sympy.tensor.tensor until first real use (see the module docstring)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__all__":  # __all__: `import *` is a use
            # Tools that walk sys.modules ask for __file__ and the like; loading the real
            # module then would change sys.modules under their loop.
            raise AttributeError(name)
        loaded = sys.modules.get(TENSOR_MODULE)
        if name in _ASKED and (loaded is None or loaded is self):
            return _NoTensor
        if loaded is self:
            del sys.modules[TENSOR_MODULE]
        real = importlib.import_module(TENSOR_MODULE)
        if name == "__all__" and not hasattr(real, name):
            # The real module has none: `import *` takes its public names, so give those.
            return [key for key in vars(real) if not key.startswith("_")]
        return getattr(real, name)


def defer_tensor_module() -> None:
    """Install the stand-in unless the real module (or the stand-in) is already there."""
    if TENSOR_MODULE in sys.modules:
        return
    import sympy.tensor  # the package itself is light and already imported by `import sympy`

    stand_in = _DeferredTensorModule(TENSOR_MODULE, __doc__)
    sys.modules[TENSOR_MODULE] = stand_in
    sympy.tensor.tensor = stand_in  # type: ignore[attr-defined]
