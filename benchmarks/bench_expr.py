"""Benchmark the expression pipeline end to end against the naive SymPy path.

core: for one expression and one point, parse (whitelist), exact gradient compiled onto the
CSE tape (reverse mode over our AST; each function's derivative is SymPy's, built once per
process, so the warm-up call pays it), then at the point the domain check, the engine's
autograd, the exact gradient values (mpmath, 40 digits) and the numeric estimate.  run_case:
the same plus verdicts and the display formulas (SymPy's ``diff`` of the whole expression and
its printer), i.e. what ``gradcheck grad`` pays.  naive: ``sympy.parse_expr`` + ``diff`` +
``lambdify`` at every point (on our own benchmark strings only: parse_expr evaluates its
input).  Each iteration uses a fresh constant so that no path is served from a cache.  Also
reported: the cost of each extra point, and of importing SymPy.

    python benchmarks/bench_expr.py [--repeat 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import sympy
from sympy.parsing.sympy_parser import parse_expr

from gradcheck_cli import checks
from gradcheck_cli.checks import Case, numeric_derivatives, run_case, scalar_function
from gradcheck_cli.expr import parse
from gradcheck_cli.lower import to_engine
from gradcheck_cli.symbolic import analyze_point, compile_derivatives, differentiate

# A typical expression (well under 200 characters); {c} varies per iteration.
TEMPLATE = "log(1 + exp(a*b)) + sin(a)*cos(b)^2 - sqrt(a^2 + b^2 + {c}) + tanh(a - 2*b)/(1 + a^2)"
POINT = {"a": 0.7, "b": -1.3}
Points = tuple[dict[str, float], ...]


def core(text: str, points: Points) -> None:
    """The issue's pipeline: parse, exact gradient, compile, then engine/exact/numeric."""
    e = parse(text)
    compiled = compile_derivatives(differentiate(e))
    f = scalar_function(e)
    for point in points:
        assert analyze_point(e, point).error is None
        compiled.evaluate(point, "exact")
        with np.errstate(all="ignore"):
            to_engine(e, point, retain_grad=False).backward()
        x = np.array([point[v] for v in e.variables])
        numeric_derivatives(f, x, complex_safe=e.smooth)


def full(text: str, points: Points) -> None:
    """What `gradcheck grad` pays: run_case, verdicts and display formulas included."""
    results = run_case(Case(text, points))
    assert all(r.status == "pass" for r in results), results[0].message


def naive(text: str, points: Points) -> None:
    """parse_expr + diff + lambdify, from scratch at every point."""
    for point in points:
        expr = parse_expr(text.replace("^", "**"))
        symbols = sorted(expr.free_symbols, key=lambda s: s.name)
        grads = [sympy.diff(expr, s) for s in symbols]
        fn = sympy.lambdify(symbols, [expr, *grads], modules="math")
        fn(*(point[s.name] for s in symbols))


def medians_ms(
    paths: dict[str, Callable[[str, Points], None]], repeat: int, points: Points, offset: int
) -> dict[str, float]:
    """Median wall time in ms per path over fresh expressions, the paths interleaved so
    that a busy machine slows them alike."""
    times: dict[str, list[float]] = {k: [] for k in paths}
    for i in range(repeat):
        for j, (k, fn) in enumerate(paths.items()):
            text = TEMPLATE.format(c=offset + 1000 * j + i)
            checks.prepare.cache_clear()
            start = time.perf_counter()
            fn(text, points)
            times[k].append(time.perf_counter() - start)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def import_cost(module: str, runs: int = 5) -> float:
    """Median wall time in ms of ``python -c 'import <module>'`` minus ``python -c pass``."""

    def wall(code: str) -> float:
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    return 1e3 * (wall(f"import {module}") - wall("pass"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    one = (POINT,)
    rng = np.random.default_rng(0)
    many = tuple({"a": float(a), "b": float(b)} for a, b in rng.uniform(-2, 2, size=(20, 2)))
    paths = {"core": core, "run_case": full, "naive": naive}

    # Warm every path once (first-call import and SymPy assumption-cache costs).
    for fn in paths.values():
        fn(TEMPLATE.format(c=1), one)

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"expression ({len(TEMPLATE.format(c=2))} chars): {TEMPLATE.format(c=2)}")
    reps = max(5, args.repeat // 4)
    one_ms = medians_ms(paths, args.repeat, one, 10_000)
    many_ms = medians_ms(paths, reps, many, 50_000)
    n = len(many)
    for k in ("core", "run_case"):
        per = (many_ms[k] - one_ms[k]) / (n - 1)
        per_naive = (many_ms["naive"] - one_ms["naive"]) / (n - 1)
        print(
            f"{k:9}: one point {one_ms[k]:6.2f} ms (naive {one_ms['naive']:6.2f} ms, "
            f"{one_ms['naive'] / one_ms[k]:4.1f}x)   {n} points {many_ms[k]:6.2f} ms "
            f"(naive {many_ms['naive']:6.2f} ms, {many_ms['naive'] / many_ms[k]:4.1f}x)   "
            f"per extra point {per:5.2f} ms (naive {per_naive:5.2f} ms, {per_naive / per:4.1f}x)"
        )
    print("targets: one point < 20 ms; >= 5x the naive path per point")
    print(
        f"import sympy: {import_cost('sympy'):.0f} ms   "
        f"import gradcheck_cli.expr: {import_cost('gradcheck_cli.expr'):.0f} ms   "
        f"import gradcheck_cli.checks: {import_cost('gradcheck_cli.checks'):.0f} ms"
    )


if __name__ == "__main__":
    main()
