"""Our checker on PyTorch and JAX code against their own checkers, on one catalogue.

Run: python benchmarks/bench_frameworks.py [--jax] [--repeat N]

The catalogue (tests/engine/autograd/framework_catalogue.py) holds torch.autograd.Function
subclasses with correct and deliberately wrong backwards, one bug class at a time (sign,
factor, transposed matmul, missing broadcast reduction, one element, negative inputs only,
forgotten chain factor, wrong formula, wrong double backward, non-differentiable backward).
Each case is judged by engine.autograd.gradcheck (the drop-in: torch's autograd, our numeric
side and verdict) and by torch.autograd.gradcheck, both with their defaults, in float64 and
float32, default and fast mode; second-order cases by the gradgradchecks. A checker that
raises on a case flags it. Time: the sum over the catalogue of each checker's CPU time (the
process's, one torch thread: on a shared machine wall-clock varied several-fold run to run):
"time" sums each case's best of --repeat runs, "vs torch" is the ratio of those sums, and
"paired" is the median (and range) over the repeats of the ratio of the two checkers'
totals, each repeat running both checkers on a case before the next one (in alternating
order), so that both see the same load; the heap is frozen after the warm-up (gc.freeze),
so that a full collection, 35-165 ms, does not land on one case; --wall for wall-clock.
--jax adds the JAX port of the same cases, ours against jax.test_util.check_grads (its
defaults, modes=["rev"], order 1 or 2), with x64 on, and a plain JAX function with 2 inputs
and 200 outputs (ours takes its Jacobian by jax.jvp).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.autograd import gradcheck, gradgradcheck  # noqa: E402


def _catalogue_module():
    path = ROOT / "tests" / "engine" / "autograd" / "framework_catalogue.py"
    spec = importlib.util.spec_from_file_location("framework_catalogue", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def _judge(
    check: Callable[..., bool], case, dtype: str, clock: Callable[[], float] = time.process_time
) -> tuple[bool, float]:
    """(flagged, seconds) for one checker on one case."""
    func, args = case.build(dtype)
    start = clock()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            flagged = not check(func, args, case.second_order)
        except Exception:  # noqa: BLE001 - a checker raising on a wrong backward is a flag
            flagged = True
    return flagged, clock() - start


def _torch_checkers(fast: bool) -> dict[str, Callable]:
    import torch

    def ours(func, args, second):
        check = gradgradcheck if second else gradcheck
        return check(func, args, raise_exception=False, fast_mode=fast)

    def theirs(func, args, second):
        check = torch.autograd.gradgradcheck if second else torch.autograd.gradcheck
        return check(func, args, raise_exception=False, fast_mode=fast)

    return {"ours": ours, "torch": theirs}


def _jax_checkers(fast: bool) -> dict[str, Callable]:
    from jax.test_util import check_grads

    def ours(func, args, second):
        check = gradgradcheck if second else gradcheck
        return check(func, args, raise_exception=False, fast_mode=fast)

    def theirs(func, args, second):
        check_grads(func, args, order=2 if second else 1, modes=["rev"])
        return True

    return {"ours": ours, "jax": theirs}


def run(
    cases: list, checkers: Callable[[bool], dict], repeat: int, modes: tuple, clock: Callable
) -> dict:
    """results[(checker, dtype, mode)] = (list of (case, flagged), seconds, per-repeat totals).

    seconds: the sum over the cases of each case's best time over the repeats.  Within a
    repeat every checker judges a case before the next case is taken (in alternating order),
    so that the checkers compared see the same load; a repeat's totals give one paired ratio.
    """
    results: dict = {}
    for check in checkers(False).values():  # first calls pay for imports and caches: not timed
        for dtype in ("float64", "float32"):
            _judge(check, cases[0], dtype)
    # A full collection walks every object of torch, NumPy and the catalogue (35-165 ms seen,
    # landing on whichever checker runs then): frozen, the heap of imports is not walked.
    gc.collect()
    gc.freeze()
    for dtype in ("float64", "float32"):
        for mode in modes:
            named = list(checkers(mode == "fast").items())
            best = {name: [float("inf")] * len(cases) for name, _ in named}
            totals: dict[str, list[float]] = {name: [] for name, _ in named}
            flags: dict[str, list] = {}
            for r in range(repeat):
                flags = {name: [] for name, _ in named}
                total = dict.fromkeys(best, 0.0)
                for i, case in enumerate(cases):
                    for name, check in named if (r + i) % 2 == 0 else named[::-1]:
                        flagged, seconds = _judge(check, case, dtype, clock)
                        best[name][i] = min(best[name][i], seconds)
                        total[name] += seconds
                        flags[name].append((case, flagged))
                for name in totals:
                    totals[name].append(total[name])
            for name, _ in named:
                results[(name, dtype, mode)] = (flags[name], sum(best[name]), totals[name])
    return results


def report(title: str, results: dict, reference: str) -> bool:
    """Print the summary and per-class tables; True when ours meets the targets."""
    print(f"\n## {title}\n")
    header = (f"{'checker':<8} {'dtype':<8} {'mode':<8} {'bugs detected':>14} "
              f"{'false alarms':>13} {'time':>9} {'vs ' + reference:>10} {'paired':>20}")
    print(header)
    print("-" * len(header))
    ok = True
    for (name, dtype, mode), (flags, seconds, totals) in results.items():
        wrong = [f for c, f in flags if c.wrong]
        right = [f for c, f in flags if not c.wrong]
        _, ref, ref_totals = results[(reference, dtype, mode)]
        ratios = sorted(t / u for t, u in zip(totals, ref_totals, strict=True))
        paired = (f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"
                  if name != reference else "")
        print(f"{name:<8} {dtype:<8} {mode:<8} {sum(wrong):>6}/{len(wrong):<7} "
              f"{sum(right):>6}/{len(right):<6} {seconds:>8.2f}s {seconds / ref:>9.2f}x "
              f"{paired:>20}")
        if name != "ours":
            alarms = [c.name for c, f in flags if not c.wrong and f]
            if alarms and dtype == "float64":
                print(f"    false alarms: {', '.join(alarms)}")
        if name == "ours":
            theirs = dict(results[(reference, dtype, mode)][0])
            missed = [c.name for c, f in flags if c.wrong and not f and theirs[c]]
            alarms = [c.name for c, f in flags if not c.wrong and f]
            if missed or alarms or sum(wrong) < len(wrong):
                ok = False
                for label, names in (("missed (the reference caught)", missed),
                                     ("false alarms", alarms)):
                    if names:
                        print(f"    {label}: {', '.join(names)}")
    # Detection by bug class, default mode.
    kinds = sorted({c.kind for c, _ in next(iter(results.values()))[0] if c.wrong})
    print(f"\n{'bug class (default mode)':<30}" + "".join(
        f" {name + ' ' + dtype[-2:]:>11}" for name, dtype, mode in results if mode == "default"))
    for kind in kinds:
        cells = []
        for (_, _, mode), (flags, _, _) in results.items():
            if mode != "default":
                continue
            hits = [f for c, f in flags if c.kind == kind]
            cells.append(f"{sum(hits)}/{len(hits)}")
        print(f"{kind:<30}" + "".join(f" {cell:>11}" for cell in cells))
    return ok


def tall_jacobian(clock: Callable, repeat: int) -> None:
    """A plain JAX function of 2 inputs with 200 outputs, x64 on: the Jacobian has fewer
    columns than rows, so ours takes it by jax.jvp; best and median of 5 runs (after one)."""
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    def f(a: Any) -> Any:
        return jnp.sin(jnp.outer(jnp.arange(1.0, 101.0) / 50, a)).reshape(-1)

    checks = {
        "ours": lambda a: gradcheck(f, (a,)),
        "jax": lambda a: check_grads(f, (a,), order=1, modes=["rev"]),
    }
    print("\nplain JAX function, 2 inputs -> 200 outputs (x64 on):")
    with jax.enable_x64(True):
        a = jnp.asarray([0.3, -0.7])
        for name, check in checks.items():
            check(a)
            times = []
            for _ in range(max(5, repeat)):
                start = clock()
                check(a)
                times.append(clock() - start)
            times.sort()
            print(f"  {name:<5} best {1e3 * times[0]:7.1f} ms, median "
                  f"{1e3 * times[len(times) // 2]:7.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jax", action="store_true", help="also the JAX port, vs check_grads")
    parser.add_argument("--wall", action="store_true", help="wall-clock time, not CPU time")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.wall else time.process_time
    cat = _catalogue_module()
    import torch

    torch.set_num_threads(1)
    cases = cat.catalogue(cat.torch_ops())
    print(f"torch {torch.__version__}; {len(cases)} Functions "
          f"({sum(c.wrong for c in cases)} wrong, {sum(not c.wrong for c in cases)} right)")
    ok = report("PyTorch: engine.autograd.gradcheck vs torch.autograd.gradcheck",
                run(cases, _torch_checkers, args.repeat, ("default", "fast"), clock), "torch")
    if args.jax:
        import jax

        jax_cases = cat.catalogue(cat.jax_ops())
        print(f"\njax {jax.__version__}, x64 on (check_grads needs it for float64)")
        with jax.enable_x64(True):
            results = run(jax_cases, _jax_checkers, args.repeat, ("default",), clock)
        report("JAX: engine.autograd.gradcheck vs jax.test_util.check_grads", results, "jax")
        tall_jacobian(clock, args.repeat)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
