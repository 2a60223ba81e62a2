"""Engine benchmarks: a 100k-op scalar graph, a 784-256-10 MLP step, a 1M-op chain, and
training steps of a small conv net and of a transformer block (issue 15).

Each workload runs on the engine, on PyTorch (CPU, when installed) and on hand-written
NumPy/Python doing the same forward and backward, in one process; the figure is the best
of several repeats, and the ratios are what benchmarks/README.md records.

    python benchmarks/bench_engine.py [--quick]
    python benchmarks/bench_engine.py --paired 150   # MLP only: engine/NumPy step ratios
    python benchmarks/bench_engine.py --opcodes      # MLP only: Python opcodes per step
    python benchmarks/bench_engine.py --only conv,transformer   # some workloads only

On a noisy machine the best-of ratio moves by +-5% between runs; --paired times an engine
step and then a NumPy step, N times, and reports the median and quartiles of the ratios.
--opcodes counts the Python opcodes one step runs (sys.settrace): the interpreter's share of
the step, without the noise. The conv net and transformer steps always run paired: an
engine step, then a torch step, N times, and the median of the N ratios is their figure.
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
    # Two readings: with a full collection before every step (what `paired` does to keep
    # the collector out of the timings: it walks every object, torch's included, and leaves
    # the caches cold), and back to back with the collector frozen, as a training loop runs.
    for label, collect in (("a collection before each step", True),
                           ("back to back, heap frozen", False)):
        if not collect:
            gc.collect()
            gc.freeze()
        best_e, best_n, ratios = paired(engine_step, numpy_step, n, collect=collect)
        ratios.sort()
        q = [ratios[int(f * (n - 1))] for f in (0.25, 0.5, 0.75)]
        print(f"MLP step, engine / NumPy over {n} pairs, {label}: median {q[1]:.3f}x "
              f"(quartiles {q[0]:.3f}-{q[2]:.3f}x), best-of {best_e / best_n:.3f}x; "
              f"target <= 1.05x")
    gc.unfreeze()


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
    opcodes, calls = count_opcodes(lambda: scalar_graph(engine, 2000))
    print(f"scalar graph of 2,000 ops, engine: {opcodes} Python opcodes in {calls} Python calls")


# ---- models: a conv net and a transformer block, one training step each ----------------------
def conv_net(lib):
    """Conv2d 1->8->16 (3x3, padding 1), ReLU and 2x2 max pooling after each, then Linear."""
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )


def transformer_block(lib, d: int = 64, heads: int = 4):
    """A pre-norm block: LayerNorm, 4-head causal self-attention, LayerNorm, GELU MLP."""
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, heads, d // heads).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / (d // heads) ** 0.5)
            mask = lib.tril(lib.ones(t, t)) == 0
            att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
            y = (att @ v).transpose(1, 2).reshape(b, t, d)
            x = x + self.proj(y)
            return x + self.mlp(self.ln2(x))

    return Block()


def model_step(lib, build, x_data, y_data, loss_name):
    """One training step (forward, loss, backward, optimizer) of `build(lib)`, same weights."""
    lib.manual_seed(0)
    model = build(lib)
    if lib is not torch and torch is not None:  # the engine starts from torch's weights
        torch.manual_seed(0)
        ref = build(torch)
        model.load_state_dict({k: engine.tensor(v.detach().numpy().copy())
                               for k, v in ref.state_dict().items()})
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3) if loss_name == "mse" else \
        lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = lib.tensor(x_data), lib.tensor(y_data)
    loss_fn = lib.nn.MSELoss() if loss_name == "mse" else lib.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def model_rows(quick: bool) -> list:
    rng = np.random.default_rng(0)
    images = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    tokens = rng.standard_normal((16, 32, 64)).astype(np.float32)
    targets = rng.standard_normal((16, 32, 64)).astype(np.float32)
    steps = 5 if quick else 30
    rows = []
    for name, build, xd, yd, loss in (
        ("conv net step, batch 64 28x28", conv_net, images, labels, "ce"),
        ("transformer block step, 16x32x64", transformer_block, tokens, targets, "mse"),
    ):
        e_step = model_step(engine, build, xd, yd, loss)
        t_step = model_step(torch, build, xd, yd, loss) if torch else None
        if t_step is not None:  # the same first loss: the same computation
            le, lt = float(e_step()), float(t_step())
            assert abs(le - lt) < 1e-4 * (1 + abs(lt)), (name, le, lt)
        if t_step is None:
            rows.append((name, best_of(e_step, steps), None, None, "vs torch"))
            continue
        te, tt, ratios = paired(e_step, t_step, steps)
        q1, q3 = np.percentile(ratios, [25, 75])
        rows.append((name, te, tt, None,
                     f"paired median {np.median(ratios):.2f}x (quartiles {q1:.2f}-{q3:.2f}x)"))
    return rows


def paired(a: Callable[[], object], b: Callable[[], object], n: int, collect: bool = True
           ) -> tuple:
    """a then b, n times (on a shared machine both see the same load): the best of each and
    the ratio a/b of every pair; with `collect`, a full collection before each call."""
    ta, tb, ratios = [], [], []
    for _ in range(n):
        times = []
        for fn in (a, b):
            if collect:
                gc.collect()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        ta.append(times[0])
        tb.append(times[1])
        ratios.append(times[0] / times[1])
    return min(ta), min(tb), ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--paired", type=int, metavar="N", help="only the MLP, N paired steps")
    parser.add_argument("--opcodes", action="store_true", help="only the MLP, opcodes per step")
    parser.add_argument("--only", default="scalar,mlp,chain,conv,transformer",
                        help="comma-separated workloads: scalar, mlp, chain, conv, transformer")
    args = parser.parse_args()
    only = set(args.only.split(","))
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

    if "scalar" in only:
        t_python = best_of(lambda: scalar_graph_python(n_scalar), repeats)
        target = "<= 0.70x torch"
        if torch:  # engine and torch alternating: both see the same load
            t_engine, t_torch, ratios = paired(lambda: scalar_graph(engine, n_scalar),
                                               lambda: scalar_graph(torch, n_scalar), repeats)
            target += f"; paired median {np.median(ratios):.2f}x"
        else:
            t_engine, t_torch = best_of(lambda: scalar_graph(engine, n_scalar), repeats), None
        rows.append((f"scalar graph, {n_scalar:,} ops", t_engine, t_torch, t_python, target))

    if "mlp" in only:
        data = mlp_data()
        steps = 10 if args.quick else 30
        t_engine = best_of(mlp_step_lib(engine, data), steps)
        t_numpy = best_of(mlp_step_numpy(data), steps)
        t_torch = best_of(mlp_step_lib(torch, data), steps) if torch else None
        rows.append(("MLP 784-256-10 step, batch 256", t_engine, t_torch, t_numpy,
                     "<= 1.10x numpy"))
    if only & {"conv", "transformer"}:
        rows += [r for r in model_rows(args.quick)
                 if ("conv" in only and r[0].startswith("conv"))
                 or ("transformer" in only and r[0].startswith("transformer"))]

    print(f"{'workload':34} {'engine':>10} {'torch':>10} {'numpy':>10} "
          f"{'vs torch':>9} {'vs numpy':>9}  target")
    for name, te, tt, tn, target in rows:
        vt = f"{te / tt:.2f}x" if tt else "-"
        vn = f"{te / tn:8.2f}x" if tn else "        -"
        tn_ms = f"{tn * 1e3:8.1f}ms" if tn else "         -"
        print(f"{name:34} {te * 1e3:8.1f}ms {tt * 1e3 if tt else float('nan'):8.1f}ms "
              f"{tn_ms} {vt:>9} {vn}  {target}")

    if "chain" not in only:
        return
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
