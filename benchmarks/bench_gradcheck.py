"""Our gradcheck against torch.autograd.gradcheck on the same catalogue of custom Functions.

Run: python benchmarks/bench_gradcheck.py

The catalogue (tests/engine/autograd/test_gradcheck.py, `make_catalogue`) holds custom
Functions with correct and deliberately wrong backwards, written against PyTorch's names, so
that ours runs it on `engine` and torch's on `torch`.  Both checkers are called with their
defaults (eps=1e-6, atol=1e-5, rtol=1e-3) in full and fast mode, in float64 and float32.
Cases marked "2nd" are judged by gradgradcheck.  Then: fast-mode gradcheck with 1,000 inputs.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import engine
from engine.autograd import gradcheck, gradgradcheck

ROOT = Path(__file__).resolve().parent.parent


def _catalogue_module():
    path = ROOT / "tests" / "engine" / "autograd" / "test_gradcheck.py"
    spec = importlib.util.spec_from_file_location("gradcheck_catalogue", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def _flagged(gc, ggc, case, dtype, fast: bool) -> bool:
    func, args = case.build(dtype)
    fn = ggc if case.second_order else gc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return not fn(func, args, raise_exception=False, fast_mode=fast)
        except Exception:  # noqa: BLE001 - torch raises on some wrong backwards; that is a flag
            return True


def _rates(results: list[tuple[bool, bool]]) -> tuple[str, str]:
    wrong = [f for w, f in results if w]
    right = [f for w, f in results if not w]
    return f"{sum(wrong)}/{len(wrong)}", f"{sum(right)}/{len(right)}"


def main() -> int:
    import torch

    cat = _catalogue_module()
    ours = cat.make_catalogue(engine)
    theirs = cat.make_catalogue(torch)
    dtypes = [
        ("float64", engine.float64, torch.float64),
        ("float32", engine.float32, torch.float32),
    ]
    mark = {
        (True, True): "caught",
        (True, False): "MISSED",
        (False, True): "FALSE",
        (False, False): "ok",
    }
    header = (
        f"{'case':<30} {'wrong':>5} {'dtype':>7} | {'ours':>7} {'ours fast':>9}"
        f" | {'torch':>7} {'torch fast':>10}"
    )
    print(header)
    print("-" * len(header))
    summary: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    superset = True
    for name, e_dtype, t_dtype in dtypes:
        for a, b in zip(ours, theirs, strict=True):
            row = []
            for label, gc, ggc, case, dtype in (
                ("ours", gradcheck, gradgradcheck, a, e_dtype),
                ("torch", torch.autograd.gradcheck, torch.autograd.gradgradcheck, b, t_dtype),
            ):
                for fast in (False, True):
                    flagged = _flagged(gc, ggc, case, dtype, fast)
                    key = (f"{label}{' fast' if fast else ''}", name)
                    summary.setdefault(key, []).append((case.wrong, flagged))
                    row.append(flagged)
            if a.wrong and (row[2] and not row[0] or row[3] and not row[1]):
                superset = False
            tag = f"{a.name}{' (2nd)' if a.second_order else ''}"
            cells = [mark[(a.wrong, f)] for f in row]
            print(
                f"{tag:<30} {'yes' if a.wrong else 'no':>5} {name:>7} | {cells[0]:>7} {cells[1]:>9}"
                f" | {cells[2]:>7} {cells[3]:>10}"
            )
    print()
    print(f"{'checker':<12} {'dtype':>7} {'detected (wrong flagged)':>26} {'false alarms':>14}")
    for (label, name), results in summary.items():
        det, fa = _rates(results)
        print(f"{label:<12} {name:>7} {det:>26} {fa:>14}")
    print(f"ours flags every wrong case torch flags (same mode and dtype): {superset}")

    # Fast mode on 1,000 inputs.
    print()
    x_np = np.linspace(-2, 2, 1000)
    timings = []
    for label, lib, gc in (("ours", engine, gradcheck), ("torch", torch, torch.autograd.gradcheck)):
        for dtype_name in ("float64", "float32"):
            dtype = getattr(lib, dtype_name)
            x = lib.tensor(x_np, dtype=dtype, requires_grad=True)

            def f(a, lib=lib):
                return (lib.sin(a) * a).sum() + lib.tanh(a * a).mean()

            best = np.inf
            ok = None
            for _ in range(3):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ok = gc(f, (x,), fast_mode=True, raise_exception=False)
                best = min(best, time.perf_counter() - start)
            timings.append((label, dtype_name, best, ok))
    print(f"{'fast_mode, 1,000 inputs':<24} {'dtype':>7} {'best of 3':>10} {'verdict':>8}")
    for label, dtype_name, best, ok in timings:
        print(f"{label:<24} {dtype_name:>7} {1e3 * best:>8.1f}ms {'pass' if ok else 'FAIL':>8}")
    ours_ok = all(
        not any(f for w, f in results if not w)
        for (lab, _), results in summary.items()
        if lab.startswith("ours")
    )
    fast_ok = all(best < 1.0 and ok for lab, _, best, ok in timings if lab == "ours")
    return 0 if (ours_ok and superset and fast_ok) else 1


if __name__ == "__main__":
    sys.exit(main())
