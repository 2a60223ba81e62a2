"""Accuracy of engine.autograd.numeric against mpmath, next to torch's central difference.

Run: python benchmarks/bench_numeric.py

Targets (issue 4), on smooth float64 functions including cancellation-prone expressions and
inputs of magnitude 1e8 and 1e-6: median relative error <= 1e-11, worst <= 1e-7.  Columns:
  richardson    numeric.gradient(..., complex_safe=False): real evaluations only, which is
                what gradcheck uses on engine functions
  auto          numeric.gradient(...): complex step when the probe finds f complex-safe
  torch 1e-6    torch.autograd.gradcheck.get_numerical_jacobian(eps=1e-6), torch's default
"""

from __future__ import annotations

import sys
import time
import warnings

import mpmath as mp
import numpy as np

from engine.autograd import numeric

mp.mp.dps = 50

# name, f(m, x) written once for numpy, torch and mpmath (m is the module), points.
CASES = [
    # ordinary
    ("sin(x)", lambda m, x: m.sin(x), [1.0, -2.5]),
    ("exp(x)", lambda m, x: m.exp(x), [0.5, 10.0]),
    ("log(x)", lambda m, x: m.log(x), [3.0]),
    ("tanh(x)", lambda m, x: m.tanh(x), [0.7]),
    ("atan(x)", lambda m, x: m.atan(x), [0.5]),
    ("1/(1+x^2)", lambda m, x: 1 / (1 + x**2), [0.3]),
    ("sin(x)exp(-x^2)", lambda m, x: m.sin(x) * m.exp(-(x**2)), [0.8]),
    ("log(1+exp(x))", lambda m, x: m.log(1 + m.exp(x)), [-2.0]),
    ("x^3 - 2x", lambda m, x: x**3 - 2 * x, [1.2]),
    ("sin(x) at 1e4", lambda m, x: m.sin(x), [1e4]),
    # |x| ~ 1e8
    ("log(x)", lambda m, x: m.log(x), [1e8]),
    ("sqrt(x)", lambda m, x: m.sqrt(x), [1e8]),
    ("x log(x)", lambda m, x: x * m.log(x), [1e8]),
    ("sin(x)", lambda m, x: m.sin(x), [1e8]),
    ("x^2", lambda m, x: x**2, [1e8]),
    ("1/x", lambda m, x: 1 / x, [1e8]),
    ("exp(-x/1e8)", lambda m, x: m.exp(-x / 1e8), [1e8]),
    ("atan(x/1e8)", lambda m, x: m.atan(x / 1e8), [1e8]),
    # |x| ~ 1e-6
    ("sin(x)", lambda m, x: m.sin(x), [1e-6]),
    ("log(x)", lambda m, x: m.log(x), [1e-6]),
    ("sqrt(x)", lambda m, x: m.sqrt(x), [1e-6]),
    ("exp(x)", lambda m, x: m.exp(x), [1e-6]),
    ("x^2 + x", lambda m, x: x**2 + x, [1e-6]),
    ("1/x", lambda m, x: 1 / x, [1e-6]),
    ("tanh(x)", lambda m, x: m.tanh(x), [-1e-6]),
    ("cos(x)", lambda m, x: m.cos(x), [1e-6]),
    # cancellation-prone, and a large output offset
    ("exp(x) - 1 - x", lambda m, x: m.exp(x) - 1 - x, [1e-3]),
    ("log(1+x) - x", lambda m, x: m.log(1 + x) - x, [1e-3]),
    ("sin(x) - x", lambda m, x: m.sin(x) - x, [1e-2]),
    ("(1-cos x)/x^2", lambda m, x: (1 - m.cos(x)) / x**2, [0.05]),
    ("sqrt(x+1)-sqrt(x)", lambda m, x: m.sqrt(x + 1) - m.sqrt(x), [1e4]),
    ("(x+1)^2 - x^2", lambda m, x: (x + 1) ** 2 - x**2, [1e4]),
    ("1e6 + sin(x)", lambda m, x: 1e6 + m.sin(x), [1.0]),
    ("1e3 + x^2", lambda m, x: 1e3 + x**2, [0.5]),
]


class _NumpyNames:
    """numpy with mpmath's / torch's spellings."""

    sin, cos, exp, log, tanh, sqrt = np.sin, np.cos, np.exp, np.log, np.tanh, np.sqrt
    atan = staticmethod(np.arctan)


def _torch_estimate(f, x: float) -> float:
    import torch
    from torch.autograd.gradcheck import get_numerical_jacobian

    t = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jac = get_numerical_jacobian(lambda inp: f(torch, inp[0]), (t,), eps=1e-6)
    return float(jac[0][0, 0])


def _first_estimates() -> list[tuple[float, bool]]:
    """numeric.staged_jacobian's first estimate alone (nothing refined): rel. error, honest."""

    def keep(value, error, floor):
        return np.zeros(value.shape, dtype=bool)

    out = []
    for _, f, points in CASES:
        for x in points:
            ref = float(mp.diff(lambda t, f=f: f(mp, t), mp.mpf(x)))
            res = numeric.staged_jacobian(lambda v, f=f: f(_NumpyNames, v[0]), [x], keep)
            value, error = res.value[0, 0], res.error[0, 0]
            out.append((abs(value - ref) / abs(ref), bool(abs(value - ref) <= 4 * error)))
    return out


def main() -> int:
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    rows = []
    for name, f, points in CASES:
        for x in points:
            ref = float(mp.diff(lambda t, f=f: f(mp, t), mp.mpf(x)))
            t0 = time.perf_counter()
            rich = numeric.gradient(lambda v, f=f: f(_NumpyNames, v[0]), [x], complex_safe=False)
            t_rich = time.perf_counter() - t0
            auto = numeric.gradient(lambda v, f=f: f(_NumpyNames, v[0]), [x])
            tor = _torch_estimate(f, x) if have_torch else float("nan")
            rel = [abs(v - ref) / abs(ref) for v in (rich.value[0], auto.value[0], tor)]
            honest = abs(rich.value[0] - ref) <= 4 * rich.error[0]
            rows.append(
                (
                    name,
                    x,
                    *rel,
                    rich.error[0] / abs(ref),
                    honest,
                    rich.evaluations,
                    auto.method,
                    t_rich,
                )
            )
    header = (
        f"{'function':<20} {'x':>8} {'richardson':>11} {'estimate':>9} {'ok':>3} {'evals':>5}"
        f" {'auto':>9} {'method':>12} {'torch 1e-6':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, x, r, a, t, est, honest, ev, method, _ in rows:
        print(
            f"{name:<20} {x:>8.0e} {r:>11.1e} {est:>9.1e} {'y' if honest else 'N':>3} {ev:>5d}"
            f" {a:>9.1e} {method:>12} {t:>11.1e}"
        )
    print("-" * len(header))
    cols = np.array([[r[2], r[3], r[4]] for r in rows])
    for label, fn in (("median", np.median), ("worst", np.max)):
        vals = fn(cols, axis=0)
        print(
            f"{label + ' rel. error':<29} {vals[0]:>11.1e} {'':>19} {vals[1]:>9.1e}"
            f" {'':>12} {vals[2]:>11.1e}"
        )
    honest = sum(r[6] for r in rows)
    print(f"error estimate bounds the actual error (|err| <= 4 x estimate): {honest}/{len(rows)}")
    first = _first_estimates()
    usable = [(rel, ok) for rel, ok in first if np.isfinite(rel)]
    print(
        f"first estimate (gradcheck's cheap stage, 4 evaluations): finite in {len(usable)}/"
        f"{len(first)}, median rel. error {np.median([r for r, _ in usable]):.1e}, honest "
        f"(|err| <= 4 x estimate) in {sum(ok for _, ok in usable)}/{len(usable)}"
    )
    print(f"mean time per richardson gradient: {1e3 * np.mean([r[-1] for r in rows]):.2f} ms")
    med, worst = np.median(cols[:, 0]), np.max(cols[:, 0])
    met = med <= 1e-11 and worst <= 1e-7
    print(f"targets (median <= 1e-11, worst <= 1e-7) for richardson: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
