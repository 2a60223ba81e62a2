"""Engine core benchmarks: a 100k-op scalar graph, a 784-256-10 MLP step, a 1M-op chain.

Each workload runs on the engine, on PyTorch (CPU, when installed) and on hand-written
NumPy/Python doing the same forward and backward, in one process; the figure is the best
of several repeats, and the ratios are what benchmarks/README.md records.

    python benchmarks/bench_engine.py [--quick]
    python benchmarks/bench_engine.py --paired 150   # MLP only: engine/NumPy step ratios
    python benchmarks/bench_engine.py --opcodes      # MLP only: Python opcodes per step

On a noisy machine the best-of ratio moves by +-5% between runs; --paired times an engine
step and then a NumPy step, N times, and reports the median and quartiles of the ratios.
--opcodes counts the Python opcodes one step runs (sys.settrace): the interpreter's share of
the step, without the noise.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

# One BLAS thread, as torch.set_num_threads(1) below: on 2 cores a second thread only adds
# contention noise to a comparison of the libraries' own overhead.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import engine  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the reference is optional
    torch = None


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---- scalar graph: y = y * x + 1, repeated -------------------------------------------------
def scalar_graph(lib, n_ops: int) -> None:
    x = lib.tensor(1.0000001, requires_grad=True)
    y = lib.tensor(0.5)
    for _ in range(n_ops // 2):
        y = y * x + 1
    y.backward()


def scalar_graph_python(n_ops: int) -> None:
    """The same graph by hand: record the forward values, then the reverse sweep."""
    x, y = 1.0000001, 0.5
    ys = []
    for _ in range(n_ops // 2):
        ys.append(y)
        y = y * x + 1
    gy, gx = 1.0, 0.0
    for y_prev in reversed(ys):
        gx += gy * y_prev
        gy *= x


# ---- MLP step ------------------------------------------------------------------------------
def mlp_data(batch: int = 256):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((batch, 784)).astype(np.float32),
        rng.standard_normal((batch, 10)).astype(np.float32),
        (rng.standard_normal((784, 256)) * 0.05).astype(np.float32),
        np.zeros(256, np.float32),
        (rng.standard_normal((256, 10)) * 0.05).astype(np.float32),
        np.zeros(10, np.float32),
    )


def mlp_step_lib(lib, data):
    x, y, *params = data
    x, y = lib.tensor(x), lib.tensor(y)
    w1, b1, w2, b2 = (lib.tensor(p, requires_grad=True) for p in params)

    def step():
        h = (x @ w1 + b1).tanh()
        loss = ((h @ w2 + b2 - y) ** 2).mean()
        loss.backward()
        with lib.no_grad():
            for p in (w1, b1, w2, b2):
                p -= 0.01 * p.grad
                p.grad = None

    return step


def mlp_step_numpy(data):
    x, y, w1, b1, w2, b2 = (a.copy() for a in data)

    def step():
        a = x @ w1 + b1
        h = np.tanh(a)
        out = h @ w2 + b2
        diff = out - y
        loss = (diff**2).mean()  # the loss the engine's step computes (and a trainer reports)
        g_out = 2.0 * diff / diff.size
        g_w2 = h.T @ g_out
        g_b2 = g_out.sum(0)
        g_h = g_out @ w2.T
        g_a = g_h * (1 - h * h)
        g_w1 = x.T @ g_a
        g_b1 = g_a.sum(0)
        for p, g in ((w1, g_w1), (b1, g_b1), (w2, g_w2), (b2, g_b2)):
            p -= 0.01 * g
        return loss

    return step


# ---- deep chain (in a subprocess, for a clean peak-memory reading) --------------------------
CHAIN = """
import sys, time, json
lib = __import__(sys.argv[1])
n = int(sys.argv[2])

def status(key):
    # VmHWM (peak) and VmRSS (now) of this process; unlike ru_maxrss, they start afresh
    # at exec, so the parent's memory does not leak into the reading.
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

x = lib.tensor([0.5, 1.0, 1.5, 2.0], requires_grad=True)
base = status("VmRSS")
t0 = time.perf_counter()
y = x
for _ in range(n // 2):
    y = y * 1.0000001 + 1e-9
t1 = time.perf_counter()
graph = status("VmRSS")
y.sum().backward()
t2 = time.perf_counter()
after_backward = status("VmRSS")
del y
released = status("VmRSS")
print(json.dumps({"forward": t1 - t0, "backward": t2 - t1, "graph_kb": graph - base,
                  "peak_kb": status("VmHWM") - base, "after_backward_kb": after_backward - base,
                  "after_del_kb": released - base, "grad": x.grad.tolist()}))
"""


def deep_chain(lib_name: str, n_ops: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHAIN, lib_name, str(n_ops)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def paired_mlp(n: int) -> None:
    """Engine step then NumPy step, n times: the distribution of their ratio."""
    data = mlp_data()
    engine_step, numpy_step = mlp_step_lib(engine, data), mlp_step_numpy(data)
    for _ in range(10):
        engine_step()
        numpy_step()
    ratios = []
    for _ in range(n):
        pair = []
        for step in (engine_step, numpy_step):
            gc.collect()
            t0 = time.perf_counter()
            step()
            pair.append(time.perf_counter() - t0)
        ratios.append(pair[0] / pair[1])
    ratios.sort()
    q = [ratios[int(f * (n - 1))] for f in (0.25, 0.5, 0.75)]
    print(f"MLP step, engine / NumPy over {n} pairs: median {q[1]:.3f}x "
          f"(quartiles {q[0]:.3f}-{q[2]:.3f}x); target <= 1.10x")


def count_opcodes(fn: Callable[[], object]) -> tuple[int, int]:
    """The Python opcodes and calls that one call of fn runs."""
    counts = {"opcodes": 0, "calls": 0}

    def local(frame, event, arg):
        if event == "opcode":
            counts["opcodes"] += 1
        return local

    def trace(frame, event, arg):
        counts["calls"] += 1
        frame.f_trace_opcodes = True
        return local

    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
    return counts["opcodes"], counts["calls"]


def opcodes_per_step() -> None:
    """The Python opcodes (and calls) of one engine step and one NumPy step."""
    data = mlp_data()
    for name, step in (("engine", mlp_step_lib(engine, data)), ("numpy", mlp_step_numpy(data))):
        step()  # warm: first-use paths (accumulators, stubs) are not the steady state
        opcodes, calls = count_opcodes(step)
        print(f"MLP step, {name}: {opcodes} Python opcodes in {calls} Python calls")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--paired", type=int, metavar="N", help="only the MLP, N paired steps")
    parser.add_argument("--opcodes", action="store_true", help="only the MLP, opcodes per step")
    args = parser.parse_args()
    if args.opcodes:
        opcodes_per_step()
        return
    if args.paired:
        paired_mlp(args.paired)
        return
    n_scalar = 20_000 if args.quick else 100_000
    n_chain = 100_000 if args.quick else 1_000_000
    repeats = 2 if args.quick else 5
    rows = []

    t_engine = best_of(lambda: scalar_graph(engine, n_scalar), repeats)
    t_python = best_of(lambda: scalar_graph_python(n_scalar), repeats)
    t_torch = best_of(lambda: scalar_graph(torch, n_scalar), repeats) if torch else None
    rows.append((f"scalar graph, {n_scalar:,} ops", t_engine, t_torch, t_python,
                 "<= 0.70x torch"))

    data = mlp_data()
    steps = 10 if args.quick else 30
    t_engine = best_of(mlp_step_lib(engine, data), steps)
    t_numpy = best_of(mlp_step_numpy(data), steps)
    t_torch = best_of(mlp_step_lib(torch, data), steps) if torch else None
    rows.append(("MLP 784-256-10 step, batch 256", t_engine, t_torch, t_numpy,
                 "<= 1.10x numpy"))

    print(f"{'workload':34} {'engine':>10} {'torch':>10} {'numpy':>10} "
          f"{'vs torch':>9} {'vs numpy':>9}  target")
    for name, te, tt, tn, target in rows:
        vt = f"{te / tt:.2f}x" if tt else "-"
        print(f"{name:34} {te * 1e3:8.1f}ms {tt * 1e3 if tt else float('nan'):8.1f}ms "
              f"{tn * 1e3:8.1f}ms {vt:>9} {te / tn:8.2f}x  {target}")

    print(f"\ndeep chain: {n_chain:,} elementwise ops on a 4-vector, forward + backward")
    for lib_name in ("engine", "torch") if torch else ("engine",):
        r = deep_chain(lib_name, n_chain)
        mib = {k: r[k] / 1024 for k in ("graph_kb", "peak_kb", "after_backward_kb",
                                         "after_del_kb")}
        print(f"  {lib_name:7} forward {r['forward']:6.2f}s  backward {r['backward']:6.2f}s  "
              f"graph {mib['graph_kb']:6.0f} MiB ({r['graph_kb'] * 1024 / n_chain:5.0f} B/op)  "
              f"peak {mib['peak_kb']:6.0f} MiB  after backward {mib['after_backward_kb']:6.0f} MiB"
              f"  after del {mib['after_del_kb']:5.0f} MiB  grad ok: "
              f"{np.allclose(r['grad'], r['grad'][0])}")


if __name__ == "__main__":
    main()
