"""Our gradcheck against torch.autograd.gradcheck on the same catalogue of custom Functions.

Run: python benchmarks/bench_gradcheck.py [--rounds 5] [--sizes 10,100,1000] [--skip-catalogue]

The catalogue (tests/engine/autograd/test_gradcheck.py, `make_catalogue`) holds custom
Functions with correct and deliberately wrong backwards, written against PyTorch's names, so
that ours runs it on `engine` and torch's on `torch`.  Both checkers are called with their
defaults (eps=1e-6, atol=1e-5, rtol=1e-3) in full and fast mode, in float64 and float32.
Cases marked "2nd" are judged by gradgradcheck.  Then: fast-mode gradcheck with 1,000 inputs.

Then the checker's cost (issue 16): functions of n inputs, elementwise (sin(x) e^(x/2)), dense
(tanh(W x), n outputs) and a dense reduction (sum tanh(W x)^2, one output), checked by ours on
engine, by ours on the torch function (the drop-in), and by torch.autograd.gradcheck, default
and fast mode, float64.  Each round runs the checks back to back and records ours/torch per
mode; the figures are the median time and the median of the per-round ratios.  Times are the
process's CPU time (everything runs on one thread): with five other jobs on the two cores,
wall-clock times of one check varied 5x.  Evaluations per input coordinate count every call
of the function (forward for the outputs, re-runs and numeric evaluations), for both.
"batched" is ours on engine with batched=True (the functions broadcast over a leading
dimension): its time, its ratio to torch's and its calls per input coordinate (a call may
evaluate many points).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

# One BLAS thread (set before NumPy loads it): the machine's cores are shared, and a dense
# function's matrix products on two contended threads ran several times slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import engine  # noqa: E402
from engine.autograd import gradcheck, gradgradcheck  # noqa: E402

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


def catalogue() -> bool:
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
    return ours_ok and superset and fast_ok


_KINDS = ("elementwise", "dense", "reduction")


def _function(lib, kind: str, n: int, calls: list[int], batched: bool = False):
    """The benchmark function of n inputs for lib (engine or torch), counting its calls.

    batched: written to broadcast over a leading dimension, so that batched=True may stack
    points (a @ w.T is W x for one point, and a row of W x per row of a stack).
    """
    W = np.random.default_rng(7).standard_normal((n, n)) / np.sqrt(n)
    w = lib.tensor(W, dtype=lib.float64)

    def f(a):
        calls[0] += 1
        if kind == "elementwise":
            return lib.sin(a) * lib.exp(0.5 * a)
        if batched:
            y = lib.tanh(a @ w.T)
            return y if kind == "dense" else (y * y).sum(dim=-1)
        y = lib.tanh(w @ a)
        return y if kind == "dense" else (y * y).sum()

    return f


def _timed(gc, f, x, fast: bool, calls: list[int]) -> tuple[float, bool, int]:
    calls[0] = 0
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = gc(f, (x,), fast_mode=fast, raise_exception=False)
    return time.process_time() - start, bool(ok), calls[0]


def _batched(*args, **kwargs) -> bool:
    """Ours, told that the function evaluates a stack of points in one call."""
    return gradcheck(*args, batched=True, **kwargs)


def cost(sizes: list[int], rounds: int) -> bool:
    """Time and evaluations of ours against torch's, per round, medians printed.

    Ours runs twice: on the engine function, and (as a drop-in) on the very torch function
    torch's checker gets, so that the second ratio compares the checkers alone.
    """
    import torch

    print(
        f"{'function':<12} {'n':>5} {'mode':>7} | {'ours':>9} {'on torch':>9} {'torch':>9}"
        f" | {'ratio':>6} {'(min-max)':>11} {'on torch':>8} | {'evals/coord ours':>16}"
        f" {'torch':>6} | {'batched':>9} {'ratio':>6} {'calls/c':>7} | verdicts"
    )
    met = True
    for kind in _KINDS:
        for n in sizes:
            x_np = np.random.default_rng(n).uniform(-1, 1, n)
            ours_calls, torch_calls = [0], [0]
            ours_f = _function(engine, kind, n, ours_calls)
            batched_f = _function(engine, kind, n, ours_calls, batched=True)
            torch_f = _function(torch, kind, n, torch_calls)
            x_ours = engine.tensor(x_np, dtype=engine.float64, requires_grad=True)
            x_torch = torch.tensor(x_np, dtype=torch.float64, requires_grad=True)
            checks = {
                "ours": (gradcheck, ours_f, x_ours, ours_calls),
                "on torch": (gradcheck, torch_f, x_torch, torch_calls),
                "torch": (torch.autograd.gradcheck, torch_f, x_torch, torch_calls),
                "batched": (_batched, batched_f, x_ours, ours_calls),
            }
            for fast in (False, True):
                times = {k: [] for k in checks}
                ratios = {"ours": [], "on torch": [], "batched": []}
                evals, verdicts = {}, []
                for _ in range(rounds):
                    for label, (gc, f, x, calls) in checks.items():
                        elapsed, ok, count = _timed(gc, f, x, fast, calls)
                        times[label].append(elapsed)
                        evals[label] = count / n
                        verdicts.append(ok)
                    for label in ratios:
                        ratios[label].append(times[label][-1] / times["torch"][-1])
                ratio = statistics.median(ratios["ours"])
                on_torch = statistics.median(ratios["on torch"])
                target = 3.0 if fast else 1.5
                met &= ratio <= target and all(verdicts)
                mode = "fast" if fast else "default"
                spread = f"{min(ratios['ours']):.2f}-{max(ratios['ours']):.2f}"
                t_ours, t_on, t_torch, t_b = (1e3 * statistics.median(times[k]) for k in checks)
                batched = statistics.median(ratios["batched"])
                print(
                    f"{kind:<12} {n:>5} {mode:>7} | {t_ours:>7.1f}ms {t_on:>7.1f}ms"
                    f" {t_torch:>7.1f}ms | {ratio:>5.2f}x {spread:>11} {on_torch:>7.2f}x |"
                    f" {evals['ours']:>16.2f} {evals['torch']:>6.2f} |"
                    f" {t_b:>7.1f}ms {batched:>5.2f}x {evals['batched']:>7.3f} |"
                    f" {'all pass' if all(verdicts) else 'FAIL'}"
                )
    print(f"targets (default <= 1.5x, fast <= 3x torch, every verdict pass): {met}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--skip-catalogue", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    # Warm up: the first drop-in check on torch tensors imports the adapter.
    probe = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    gradcheck(torch.sin, (probe,))
    ok = True if args.skip_catalogue else catalogue()
    print()
    ok &= cost([int(v) for v in args.sizes.split(",")], args.rounds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
