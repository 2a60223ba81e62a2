"""Benchmark one training step (zero_grad, forward, cross-entropy, backward, optimizer step).

Two workloads: the Iris MLP of examples/train_iris.py (4-16-16-3, mini-batch 16) and a
784-256-10 MLP at batch 256, each with SGD (momentum 0.9) and with Adam. The engine is timed
against PyTorch on the CPU (same weights, same data) and against a hand-written NumPy
implementation of the same step, all in one run; the engine's optimizer step is also timed on
its own to report its share of the step (target: under 10% for the larger MLP).

BLAS and PyTorch run single-threaded unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say
otherwise: on a small shared machine, multi-threaded BLAS spinning against other processes
makes timings swing by 40x, and one thread compares the three implementations like for like.

    python benchmarks/bench_train.py [--seconds 1.0]
    OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 python benchmarks/bench_train.py
"""

from __future__ import annotations

import os

# Must be set before NumPy (and its BLAS) is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import engine  # noqa: E402
from engine import nn  # noqa: E402

THREADS = int(os.environ["OMP_NUM_THREADS"])


@dataclass(frozen=True)
class Workload:
    """A network (layer widths) and the mini-batch size it trains on."""

    name: str
    widths: tuple[int, ...]
    batch: int


WORKLOADS = (
    Workload("Iris MLP 4-16-16-3, batch 16", (4, 16, 16, 3), 16),
    Workload("MLP 784-256-10, batch 256", (784, 256, 10), 256),
)
OPTIMIZERS = ("sgd", "adam")
LR = {"sgd": 0.01, "adam": 1e-3}


def make_data(w: Workload, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 inputs and integer labels of the workload's shape."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(w.batch, w.widths[0])).astype(np.float32)
    return x, rng.integers(0, w.widths[-1], size=w.batch)


def make_weights(w: Workload) -> list[np.ndarray]:
    """Initial (weight, bias, weight, bias, ...) arrays from the engine's default Linear init."""
    engine.manual_seed(0)
    layers = [nn.Linear(a, b) for a, b in zip(w.widths[:-1], w.widths[1:], strict=True)]
    return [np.array(p.detach().numpy()) for layer in layers for p in layer.parameters()]


def mlp(module_ns, widths: tuple[int, ...]):
    """A Sequential of Linear layers with ReLU in between, from ``engine.nn`` or ``torch.nn``."""
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(module_ns.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(module_ns.ReLU())
    return module_ns.Sequential(*layers)


# ---------------------------------------------------------------------------- the three steps
class FrameworkStep:
    """A framework's training step (engine, or torch on the CPU) with the same weights and
    data; it also clocks the optimizer step inside it."""

    def __init__(self, lib: Any, w: Workload, opt_name: str) -> None:
        self.model = mlp(lib.nn, w.widths)
        with lib.no_grad():
            for p, value in zip(self.model.parameters(), make_weights(w), strict=True):
                p.copy_(lib.from_numpy(value))
        self.x, self.y = (lib.from_numpy(a) for a in make_data(w))
        self.criterion = lib.nn.CrossEntropyLoss()
        self.optimizer = (
            lib.optim.SGD(self.model.parameters(), lr=LR["sgd"], momentum=0.9)
            if opt_name == "sgd"
            else lib.optim.Adam(self.model.parameters(), lr=LR["adam"])
        )
        self.step_seconds: list[float] = []
        self.optimizer_seconds: list[float] = []

    def __call__(self) -> None:
        t0 = time.perf_counter()
        self.optimizer.zero_grad()
        self.criterion(self.model(self.x), self.y).backward()
        t1 = time.perf_counter()
        # Timed in place, right after backward: the optimizer's share as training sees it,
        # with the caches as the forward and backward passes leave them.
        self.optimizer.step()
        t2 = time.perf_counter()
        self.step_seconds.append(t2 - t0)
        self.optimizer_seconds.append(t2 - t1)

    def optimizer_share(self) -> float:
        """Median optimizer time over median step time: robust to preempted calls."""
        return statistics.median(self.optimizer_seconds) / statistics.median(self.step_seconds)


def numpy_step(w: Workload, opt_name: str) -> Callable[[], None]:
    """The same step written by hand in NumPy: forward, backward and update, no framework."""
    params = make_weights(w)
    x, y = make_data(w)
    onehot = np.eye(w.widths[-1], dtype=np.float32)[y]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]
    b1, b2, eps = 0.9, 0.999, 1e-8

    def step() -> None:
        # forward
        acts = [x]
        h = x
        n_layers = len(params) // 2
        for i in range(n_layers):
            h = h @ params[2 * i].T + params[2 * i + 1]
            if i < n_layers - 1:
                h = np.maximum(h, 0)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        # backward of mean cross-entropy
        g = (p - onehot) / x.shape[0]
        grads: list[np.ndarray] = [np.empty(0)] * len(params)
        for i in reversed(range(n_layers)):
            grads[2 * i] = g.T @ acts[i]
            grads[2 * i + 1] = g.sum(axis=0)
            if i:
                g = (g @ params[2 * i]) * (acts[i] > 0)
        # update
        t[0] += 1
        for k, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if opt_name == "sgd":
                m[k] = grad.copy() if t[0] == 1 else m[k] * 0.9 + grad
                param -= LR["sgd"] * m[k]
            else:
                m[k] += (1 - b1) * (grad - m[k])
                v[k] = v[k] * b2 + (1 - b2) * grad * grad
                denom = np.sqrt(v[k]) / np.sqrt(1 - b2 ** t[0]) + eps
                param -= (LR["adam"] / (1 - b1 ** t[0])) * m[k] / denom

    return step


# ---------------------------------------------------------------------------- timing
def time_interleaved(fns: dict[str, Callable[[], None]], seconds: float) -> dict[str, float]:
    """Seconds per call of each function: the best of many rounds, taken in turn.

    Rounds alternate between the functions so that load from other processes hits them all
    alike, and the minimum over rounds is the figure least disturbed by that load.
    """
    calls = {}
    for name, fn in fns.items():
        fn()  # warm-up
        t0 = time.perf_counter()
        fn()
        once = time.perf_counter() - t0
        calls[name] = max(1, int(0.02 / max(once, 1e-7)))  # ~20 ms per round
    best = dict.fromkeys(fns, float("inf"))
    deadline = time.perf_counter() + seconds * len(fns)
    rounds = 0
    while time.perf_counter() < deadline or rounds < 5:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / calls[name])
        rounds += 1
    return best


def main(argv: list[str] | None = None) -> int:
    """Time every workload and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing budget per cell")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(THREADS)
        torch_version = torch.__version__
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_version, torch_threads = None, 0
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__} "
        f"(BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}), "
        f"PyTorch {torch_version or 'not installed'} ({torch_threads} threads)"
    )
    header = (
        f"{'workload':<30} {'opt':<5} {'engine ms':>10} {'torch ms':>9} {'numpy ms':>9} "
        f"{'vs torch':>9} {'vs numpy':>9} {'opt share':>10} {'torch share':>11}"
    )
    print(header)
    print("-" * len(header))
    for w in WORKLOADS:
        for opt_name in OPTIMIZERS:
            step = FrameworkStep(engine, w, opt_name)
            fns = {"engine": step, "numpy": numpy_step(w, opt_name)}
            if torch_version:
                fns["torch"] = torch_run = FrameworkStep(torch, w, opt_name)
            times = time_interleaved(fns, args.seconds)
            t_engine, t_numpy, t_torch = times["engine"], times["numpy"], times.get("torch", 0.0)
            opt_share = step.optimizer_share()
            torch_share = f"{torch_run.optimizer_share():12.1%}" if torch_version else f"{'-':>12}"
            vs_torch = f"{t_engine / t_torch:8.2f}x" if t_torch else f"{'-':>9}"
            print(
                f"{w.name:<30} {opt_name:<5} {t_engine * 1e3:10.3f} "
                f"{t_torch * 1e3 if t_torch else float('nan'):9.3f} {t_numpy * 1e3:9.3f} "
                f"{vs_torch} {t_engine / t_numpy:8.2f}x {opt_share:9.1%}{torch_share}"
            )
    print("vs torch / vs numpy: engine time divided by theirs (lower is better);")
    print("opt share: the engine's optimizer.step() as a fraction of its whole step (medians")
    print("over every timed step); torch share: the same for PyTorch's optimizer.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
