"""The MLP step's machine work, counted: instructions and cache misses under cachegrind.

Wall-clock ratios of a 2.5 ms step move by several percent between runs on a shared
machine, which is the size of what is left between the engine and hand-written NumPy. The
counts of valgrind's cachegrind do not move: it runs the same step (bench_engine.py's
`mlp_step_lib` / `mlp_step_numpy`) 5 and 25 times in a fresh interpreter and reports the
difference per step, so start-up and imports cancel. Caches simulated: 32 KiB L1 (I and D)
and, as the last level, the 1 MiB L2 of one core here (what the BLAS calls evict).

    python benchmarks/bench_cachegrind.py            # engine and NumPy
    python benchmarks/bench_cachegrind.py --tree DIR # the engine of another checkout
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEP = """
import os, sys
os.environ["OPENBLAS_NUM_THREADS"] = "1"
sys.path[:0] = [sys.argv[1], sys.argv[2]]
sys.modules["torch"] = None  # bench_engine's optional reference: slow under valgrind
import engine
from bench_engine import mlp_data, mlp_step_lib, mlp_step_numpy
step = (mlp_step_lib(engine, mlp_data()) if sys.argv[3] == "engine"
        else mlp_step_numpy(mlp_data()))
for _ in range(int(sys.argv[4])):
    step()
"""

CACHES = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64"]
FIELDS = {"I refs": "instructions", "D1 misses": "L1 data misses", "LL misses": "L2 misses"}


def counts(tree: Path, which: str, steps: int) -> dict[str, int]:
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=yes", *CACHES,
         "--cachegrind-out-file=/dev/null", sys.executable, "-c", STEP, str(tree), str(HERE),
         which, str(steps)],
        capture_output=True, text=True, check=True,
    ).stderr
    found = {}
    for key, name in FIELDS.items():
        m = re.search(key.replace(" ", r"\s+") + r":\s+([\d,]+)", out)
        if m is None:
            raise SystemExit(f"cachegrind printed no '{key}' line:\n{out}")
        found[name] = int(m.group(1).replace(",", ""))
    return found


def per_step(tree: Path, which: str) -> dict[str, float]:
    few, many = counts(tree, which, 5), counts(tree, which, 25)
    return {k: (many[k] - few[k]) / 20 for k in few}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent,
                        help="the checkout whose engine is counted (default: this one)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    engine, numpy = per_step(args.tree, "engine"), per_step(args.tree, "numpy")
    print(f"MLP 784-256-10 step, per step ({args.tree}):")
    print(f"{'':18} {'engine':>12} {'NumPy':>12} {'engine/NumPy':>13}")
    for k in engine:
        print(f"{k:18} {engine[k]:12,.0f} {numpy[k]:12,.0f} {engine[k] / numpy[k]:12.3f}x")


if __name__ == "__main__":
    main()
