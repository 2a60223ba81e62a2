"""Benchmark the expression language (issue 14): one-shot latency, order-2 scaling, batches.

one-shot: ``gradcheck grad EXPR --at ...`` as a fresh process (terminal and --json), against
the import floor ``python -c "import numpy, sympy, mpmath"``, median of --runs; also against
that floor with the heap frozen before exit (``gc.freeze()``, as ``gradcheck`` does), whose
ratio counts only the work beyond the imports.

one-shot also runs ``gradcheck grad 'x*x' --at x=3`` (with and without --json).

order 2: run_case with order = 2 (parse, exact tape with its Hessian, engine Hessian by
double backward, the numeric witness) for n = 1, 10, 30, 60 variables on flat products
x0*x1*...*x(n-1) and flat sums sin(x0) + ... + sin(x(n-1)); time per Hessian entry (n**2)
should stay flat.  References in the same run: torch.autograd.functional.hessian (CPU) and a
hand-written NumPy Hessian of the same function.  flat2000: order 1 on x1*...*x2000 and on
sin(x1) + ... + sin(x2000), with the JSON row.

batch: ``gradcheck check FILE --jobs 1 --format json`` over 300 cases of textbook formulas
(mechanics, thermodynamics, statistics, ML losses), cases per CPU-second of the child
process.  --before PATH runs the same file with another checkout first on the path (the
code before the change), so both figures come from one run.

    python benchmarks/bench_expr.py [--runs 7] [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gradcheck_cli import checks
from gradcheck_cli.checks import Case, run_case

ROOT = Path(__file__).resolve().parents[1]
# `python -m` and `-c` put the working directory first on sys.path: run from the checkout,
# "before" would import this tree's gradcheck_cli instead of the one on its PYTHONPATH.
NEUTRAL_CWD = tempfile.gettempdir()
ONE_SHOT = ("-m*g*x/(k*T) + log(1 + exp(a*b))", "m=1,g=9.8,x=2,k=1.5,T=3,a=0.5,b=-1")

# Textbook formulas in the language every version understands (for the before/after run).
FORMULAS = [
    ("0.5*m*v**2", "m v"),
    ("m*g*h", "m g h"),
    ("-G*M*m/r", "G M m r"),
    ("k*q1*q2/r**2", "k q1 q2 r"),
    ("sqrt(2*g*h)", "g h"),
    ("2*pi*sqrt(L/g)", "L g"),
    ("exp(-U/(k*T))", "U k T"),
    ("1/(exp(U/(k*T)) - 1)", "U k T"),
    ("n*R*T/V", "n R T V"),
    ("exp(-(x - mu)**2/(2*s**2))/(s*sqrt(2*pi))", "x mu s"),
    ("log(1 + exp(-y*w*x))", "y w x"),
    ("-(y*log(p) + (1 - y)*log(1 - p))", "y p"),
    ("(a*x + b - y)**2", "a x b y"),
    ("A*sin(w*t + phi)*exp(-g*t)", "A w t phi g"),
    ("tanh(w1*x + b1)*w2 + b2", "w1 x b1 w2 b2"),
    ("sigmoid(w*x + b)", "w x b"),
    ("softplus(a*x) - relu(x - c)", "a x c"),
    ("atan(y/x)", "y x"),
    ("sqrt(x**2 + y**2 + z**2)", "x y z"),
    ("log(x, 10)*c", "x c"),
    ("v0*t - 0.5*g*t**2", "v0 t g"),
    ("m*c**2/sqrt(1 - v**2/c**2)", "m c v"),
    ("sigma*T**4", "sigma T"),
    ("P0*exp(-M*g*h/(R*T))", "P0 M g h R T"),
    ("1/(1 + (x/a)**2)", "x a"),
    ("x**a*(1 - x)**b", "x a b"),
    ("cosh(x/a)*a", "x a"),
    ("max(x, y) + min(x, y)", "x y"),
    ("abs(x - y)/(1 + abs(x))", "x y"),
    ("asin(x/r)*r", "x r"),
]
SAFE = {"p": 0.3, "v": 0.4, "c": 1.7, "x": 0.35, "r": 1.9, "s": 0.8, "T": 1.3, "a": 1.2}


def textbook_cases(count: int = 300) -> list[dict]:
    """count cases cycling through FORMULAS, each at its own in-domain point."""
    rng = np.random.default_rng(0)
    cases = []
    for i in range(count):
        expr, names = FORMULAS[i % len(FORMULAS)]
        point = {
            v: round(SAFE.get(v, 0.5) * float(rng.uniform(0.8, 1.2)), 6) for v in names.split()
        }
        cases.append({"name": f"f{i}", "expr": expr, "at": point})
    return cases


def cpu_and_wall(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one run of cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL, cwd=NEUTRAL_CWD)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return cpu, elapsed


def one_shot(runs: int, env: dict[str, str], before: str | None) -> None:
    """Medians over interleaved runs (floor, after, before...), so load hits all alike; CPU
    time is the steadier figure on a shared machine."""
    # The expression starts with '-': the code before the change needs '--' in front of it.
    cli = [sys.executable, "-m", "gradcheck_cli", "grad", "--at", ONE_SHOT[1], "--", ONE_SHOT[0]]
    as_json = [*cli[:-2], "--json", *cli[-2:]]
    square = [sys.executable, "-m", "gradcheck_cli", "grad", "x*x", "--at", "x=3"]
    # `gradcheck` freezes the heap as it exits (no collector walk at shutdown); the second
    # floor does the same, so that ratio is of the work beyond the imports alone.
    commands = {"floor": ([sys.executable, "-c", "import numpy, sympy, mpmath"], env),
                "floor, frozen": ([sys.executable, "-c",
                                   "import numpy, sympy, mpmath, gc; gc.freeze()"], env),
                "grad": (cli, env), "grad --json": (as_json, env),
                "grad x*x": (square, env), "grad x*x --json": ([*square, "--json"], env)}
    if before:
        old = {**env, "PYTHONPATH": before}
        commands.update({"before: grad": (cli, old), "before: grad --json": (as_json, old),
                         "before: grad x*x": (square, old),
                         "before: grad x*x --json": ([*square, "--json"], old)})
    for cmd, run_env in commands.values():
        cpu_and_wall(cmd, run_env)  # warm-up: writes the bytecode
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
    for _ in range(runs):
        for label, (cmd, run_env) in commands.items():
            samples[label].append(cpu_and_wall(cmd, run_env))
    cpu = {k: statistics.median(c for c, _ in v) for k, v in samples.items()}
    wall = {k: statistics.median(w for _, w in v) for k, v in samples.items()}
    print(f"one-shot (median of {runs} interleaved runs): CPU s (x floor, x frozen floor), "
          "wall s (x floor, x frozen floor)")
    for label in commands:
        c, w = cpu[label], wall[label]
        print(f"  {label:24} {c:6.3f} ({c / cpu['floor']:.2f}x, {c / cpu['floor, frozen']:.2f}x)"
              f"  {w:6.3f} ({w / wall['floor']:.2f}x, {w / wall['floor, frozen']:.2f}x)")


def _torch_hessian(kind: str, x: np.ndarray) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    xt = torch.tensor(x, dtype=torch.float64)

    def f(v):  # noqa: ANN001, ANN202
        return v.prod() if kind == "product" else v.sin().sum()

    start = time.process_time()
    torch.autograd.functional.hessian(f, xt)
    return time.process_time() - start


def _numpy_hessian(kind: str, x: np.ndarray) -> float:
    start = time.process_time()
    if kind == "product":
        p = np.prod(x)
        h = p / np.outer(x, x)
        np.fill_diagonal(h, 0.0)
    else:
        h = np.diag(-np.sin(x))
    assert h.shape == (x.size, x.size)
    return time.process_time() - start


def order_two() -> None:
    print("order 2 (run_case, CPU time; per entry = time / n**2):")
    print(f"{'n':>4} {'kind':8} {'run_case':>10} {'per entry':>10} {'torch':>9} {'numpy':>9}")
    run_case(Case("sin(x)*y", ({"x": 0.3, "y": 0.5},), order=2))  # warm the function rules
    for kind in ("product", "sum"):
        for n in (1, 10, 30, 60):
            names = [f"x{i}" for i in range(n)]
            text = "*".join(names) if kind == "product" else " + ".join(f"sin({v})" for v in names)
            x = 0.9 + 0.2 * np.arange(n) / max(1, n)
            point = dict(zip(names, map(float, x), strict=True))
            checks.prepare.cache_clear()
            start = time.process_time()
            [r] = run_case(Case(text, (point,), order=2))
            t = time.process_time() - start
            assert r.status == "pass", r.message
            th = _torch_hessian(kind, x)
            tn = _numpy_hessian(kind, x)
            shown = "-" if th is None else f"{th * 1e3:.2f}ms"
            print(f"{n:>4} {kind:8} {t:9.3f}s {t / n**2 * 1e3:8.2f}ms {shown:>9} "
                  f"{tn * 1e3:7.3f}ms")


def flat_2000() -> None:
    """Order 1 on a flat product and a flat sum of 2000 variables, the JSON row included."""
    from gradcheck_cli.report import dumps_report

    print("order 1, 2000 variables (run_case and the JSON row, CPU time):")
    names = [f"x{i}" for i in range(1, 2001)]
    for kind, text in (("product", "*".join(names)),
                       ("sum", " + ".join(f"sin({v})" for v in names))):
        # Factors near 1 keep the product finite; the sum's points are spread out.
        point = {v: 1.0 - 1e-4 * (i % 7) if kind == "product" else 0.5 + (i % 100) / 200
                 for i, v in enumerate(names)}
        checks.prepare.cache_clear()
        start = time.process_time()
        [r] = run_case(Case(text, (point,)))
        dumps_report([r])
        t = time.process_time() - start
        assert r.status == "pass", r.message
        print(f"  {kind:8} {t:7.2f}s")


def batch(env: dict[str, str], before: str | None, runs: int = 3) -> None:
    """Median CPU of `check` over interleaved runs, after one warm-up run per tree: the
    bytecode cache starts empty, and the first run would also compile SymPy (seconds)."""
    cases = textbook_cases()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "textbook.json"
        path.write_text(json.dumps({"case": cases}))
        trees = {"after": env}
        if before:
            trees = {"before": {**env, "PYTHONPATH": before}, **trees}
        cmd = [sys.executable, "-m", "gradcheck_cli", "check", str(path), "--jobs", "1",
               "--format", "json"]
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
        for i in range(runs + 1):
            for label, run_env in trees.items():
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu0 = usage.ru_utime + usage.ru_stime
                start = time.perf_counter()
                out = subprocess.run(cmd, env=run_env, capture_output=True, text=True,
                                     check=False, cwd=NEUTRAL_CWD)
                elapsed = time.perf_counter() - start
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                summary = json.loads(out.stdout)["summary"]
                assert summary["passed"] == len(cases), summary
                if i:  # run 0 is the warm-up
                    samples[label].append((usage.ru_utime + usage.ru_stime - cpu0, elapsed))
        for label, got in samples.items():
            cpu = statistics.median(c for c, _ in got)
            wall = statistics.median(w for _, w in got)
            print(f"batch {label}: {len(cases)} cases, all passed, median of {runs}: "
                  f"{cpu:.2f} CPU-s, {wall:.2f} s wall: {len(cases) / cpu:.1f} cases per "
                  "CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", help="PYTHONPATH of the code before the change")
    parser.add_argument("--only", choices=["one-shot", "order2", "flat2000", "batch"])
    args = parser.parse_args()
    # Bytecode as an installed package has it (this machine sets PYTHONDONTWRITEBYTECODE,
    # which would recompile our modules on every start), cached outside the tree.
    cache = tempfile.mkdtemp(prefix="gradcheck-pyc-")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "PYTHONPYCACHEPREFIX": cache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.only in (None, "one-shot"):
        one_shot(args.runs, env, args.before)
    if args.only in (None, "order2"):
        order_two()
    if args.only in (None, "flat2000"):
        flat_2000()
    if args.only in (None, "batch"):
        batch(env, args.before, min(args.runs, 5))


if __name__ == "__main__":
    main()
