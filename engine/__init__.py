"""engine: a reverse-mode autograd engine on NumPy with PyTorch's names.

Code written for `torch` runs under `import engine as torch` for everything in
CONTRACT §1, with the same numbers, flags and kinds of errors.
"""

import warnings as _warnings
from importlib import metadata as _metadata

from engine import _api
from engine._api import (
    add,
    all,
    allclose,
    amax,
    any,
    argmax,
    argmin,
    cat,
    clamp,
    clone,
    div,
    eq,
    equal,
    expand,
    flatten,
    ge,
    gt,
    isfinite,
    isnan,
    le,
    logical_and,
    logical_not,
    logical_or,
    lt,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    ne,
    permute,
    pow,
    prod,
    reshape,
    squeeze,
    stack,
    sub,
    sum,
    t,
    transpose,
    unsqueeze,
    where,
)
from engine._creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from engine._dtype import (
    bool_ as bool,
)
from engine._dtype import (
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    half,
    int8,
    int16,
    int32,
    int64,
    long,
    short,
    uint8,
)
from engine._dtype import (
    int as int,
)
from engine._ops import (
    abs,
    acos,
    asin,
    atan,
    cos,
    cosh,
    exp,
    log,
    log1p,
    neg,
    reciprocal,
    relu,
    sigmoid,
    sign,
    sin,
    sinh,
    sqrt,
    tan,
    tanh,
)
from engine.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from engine.tensor import Size, Tensor

_api.install()

# NumPy warns on overflow, log(0), 0/0...; torch returns inf/nan silently. The filter is
# scoped to warnings raised from engine's own modules, so user code keeps NumPy's default.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"engine(\.|$)")

from engine import autograd  # noqa: E402


def __getattr__(name: str) -> object:
    # engine.nn and engine.optim load on first use: the core imports faster without them.
    if name in ("nn", "optim"):
        import importlib

        return importlib.import_module(f"engine.{name}")
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

try:
    # One source for the version: the installed distribution's metadata (pyproject.toml).
    __version__ = _metadata.version("gradcheck")
except _metadata.PackageNotFoundError:  # a source tree put on sys.path, never installed
    __version__ = "0+unknown"

__all__ = [
    "abs",
    "acos",
    "add",
    "all",
    "allclose",
    "amax",
    "any",
    "arange",
    "argmax",
    "argmin",
    "as_tensor",
    "asin",
    "atan",
    "autograd",
    "bool",
    "cat",
    "clamp",
    "clone",
    "cos",
    "cosh",
    "div",
    "double",
    "dtype",
    "empty",
    "empty_like",
    "enable_grad",
    "eq",
    "equal",
    "exp",
    "expand",
    "eye",
    "flatten",
    "float",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "ge",
    "get_default_dtype",
    "gt",
    "half",
    "int",
    "int16",
    "int32",
    "int64",
    "int8",
    "is_grad_enabled",
    "is_tensor",
    "isfinite",
    "isnan",
    "le",
    "linspace",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "long",
    "lt",
    "manual_seed",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "ne",
    "neg",
    "nn",
    "no_grad",
    "numel",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "pow",
    "prod",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "reciprocal",
    "relu",
    "reshape",
    "set_grad_enabled",
    "short",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "Size",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "t",
    "tan",
    "tanh",
    "tensor",
    "Tensor",
    "transpose",
    "uint8",
    "unsqueeze",
    "where",
    "zeros",
    "zeros_like",
]


def get_default_dtype() -> dtype:
    """The default floating dtype: float32, as in torch."""
    return float32


def is_tensor(obj: object) -> bool:
    """Whether obj is an engine Tensor."""
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:  # noqa: A002 - torch's name
    """The number of elements of t."""
    return input.numel()
