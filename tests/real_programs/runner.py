"""Run PyTorch programs as `python program.py` would: under torch, or under engine as torch.

    python tests/real_programs/runner.py MODE PROGRAM...

MODE is `torch` (the real thing), `engine` (`import torch` gives engine, with engine's own
random numbers) or `engine-torch-random` (the same, but every random number engine draws comes
from torch's generator, so that programs that draw random weights print torch's numbers).
Prints one JSON object: for each program, what it printed and the error that ended it, if any.
Each program runs in a fresh namespace with the random seed and the default dtype reset, in a
scratch directory (programs may save files).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
import tempfile
import traceback

ALIASES = {
    "torch": "engine",
    "torch.nn": "engine.nn",
    "torch.nn.functional": "engine.nn.functional",
    "torch.nn.init": "engine.nn.init",
    "torch.nn.utils": "engine.nn.utils",
    "torch.optim": "engine.optim",
    "torch.optim.lr_scheduler": "engine.optim.lr_scheduler",
    "torch.autograd": "engine.autograd",
    "torch.autograd.functional": "engine.autograd.functional",
    "torch.linalg": "engine._linalg",
    "torch.autograd.function": "engine.autograd.function",
}


def torch_random_source(real):  # noqa: ANN001, ANN201 - real is the torch module
    """An engine RandomSource whose numbers are torch's, draw for draw."""
    import numpy as np

    dtypes = {np.dtype(np.float32): real.float32, np.dtype(np.float64): real.float64,
              np.dtype(np.float16): real.float16, np.dtype(np.int64): real.int64,
              np.dtype(np.int32): real.int32, np.dtype(np.bool_): real.bool}

    class TorchSource:
        def __init__(self, seed=None):  # noqa: ANN001
            if seed is not None:
                real.default_generator.manual_seed(seed)  # (C: torch.random is Python)

        def uniform(self, shape, dtype, lo, hi):  # noqa: ANN001, ANN201
            return real.empty(shape, dtype=dtypes[dtype]).uniform_(lo, hi).numpy()

        def normal(self, shape, dtype, mean, std):  # noqa: ANN001, ANN201
            return real.empty(shape, dtype=dtypes[dtype]).normal_(mean, std).numpy()

        def integers(self, lo, hi, shape, dtype):  # noqa: ANN001, ANN201
            return real.randint(lo, hi, shape, dtype=dtypes[dtype]).numpy()

        def permutation(self, n, dtype):  # noqa: ANN001, ANN201
            return real.randperm(n, dtype=dtypes[dtype]).numpy()

        def bernoulli(self, shape, dtype, p):  # noqa: ANN001, ANN201
            return real.empty(shape, dtype=dtypes[dtype]).bernoulli_(p).numpy()

    return TorchSource


def _engine_import(real_import):  # noqa: ANN001, ANN202
    """An __import__ under which `torch` and its submodules are engine's.

    Only the programs see it (their own builtins), so the real torch, when it is loaded to
    draw random numbers, keeps its own modules.
    """
    import importlib

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002, ANN001, ANN202, N807
        if level == 0 and (name == "torch" or name.startswith("torch.")):
            module = importlib.import_module(ALIASES[name])
            return module if fromlist else importlib.import_module("engine")
        return real_import(name, globals, locals, fromlist, level)

    return __import__


def _setup(mode: str):  # noqa: ANN202
    """Load the library the programs get as `torch`; return (builtins for them, a reset)."""
    import builtins

    if mode == "torch":
        import torch

        torch.set_num_threads(1)  # the machine's other jobs make threads slower, not faster

        def reset() -> None:
            torch.manual_seed(0)
            torch.set_default_dtype(torch.float32)

        return builtins, reset
    import engine
    from engine import _creation

    if mode == "engine-torch-random":
        import torch as real

        real.set_num_threads(1)
        _creation.source = torch_random_source(real)()
    program_builtins = dict(vars(builtins))
    program_builtins["__import__"] = _engine_import(builtins.__import__)

    def reset_engine() -> None:
        engine.manual_seed(0)
        engine.set_default_dtype(engine.float32)

    return program_builtins, reset_engine


def run(mode: str, programs: list[str]) -> dict[str, dict[str, str | None]]:
    """Run each program; collect its output and error."""
    program_builtins, reset = _setup(mode)
    results = {}
    for path in programs:
        path = os.path.abspath(path)
        out = io.StringIO()
        error = None
        reset()
        with tempfile.TemporaryDirectory() as scratch:
            cwd = os.getcwd()
            os.chdir(scratch)
            try:
                with contextlib.redirect_stdout(out):
                    runpy.run_path(path, {"__builtins__": program_builtins},
                                   run_name="__main__")
            except BaseException:  # noqa: BLE001 - the program's failure is the result
                error = traceback.format_exc(limit=-3)
            finally:
                os.chdir(cwd)
        results[os.path.basename(path)] = {"stdout": out.getvalue(), "error": error}
    return results


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2:])))
