"""Benchmark the `gradcheck` command line: startup, batch throughput, memory on a huge batch.

1. Startup: wall time of `gradcheck --help` and `gradcheck --version` (the installed console
   script) against `python -c pass`; targets < 0.25 s and within 3x.
2. Throughput: cases per second of `gradcheck check FILE --format json` with --jobs 1 and 2,
   on a generated file of ML-flavoured expressions at varied points.
3. Memory: 10,000 cases in one file; resident memory of the whole process tree sampled while
   it runs. Flat means the last sample is close to the one taken a quarter of the way in.

    python benchmarks/bench_cli.py [--repeat 15] [--cases 2000] [--big 10000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPRESSIONS = (
    "x*x + 2*x + 1",
    "(a + b) * (a * b)",
    "sin(x)*exp(-y**2)",
    "log(1 + exp(a*b))",
    "tanh(w*x + b)",
    "sigmoid(z)",
    "(w*x + b - y)**2",
    "softplus(z) - relu(z)",
)
VARIABLES = {
    "x*x + 2*x + 1": "x",
    "(a + b) * (a * b)": "ab",
    "sin(x)*exp(-y**2)": "xy",
    "log(1 + exp(a*b))": "ab",
    "tanh(w*x + b)": "wxb",
    "sigmoid(z)": "z",
    "(w*x + b - y)**2": "wxby",
    "softplus(z) - relu(z)": "z",
}


def wall(argv: list[str], repeat: int) -> float:
    """Median wall time of a command, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_batch(path: Path, count: int, seed: int = 0) -> None:
    """A TOML batch of `count` cases cycling through EXPRESSIONS at random points."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write("[defaults]\natol = 1e-6\nrtol = 1e-5\n")
        for i in range(count):
            expr = EXPRESSIONS[i % len(EXPRESSIONS)]
            # Points away from relu's kink at 0 keep every case a plain pass.
            point = ", ".join(
                f"{v} = {rng.choice((-1, 1)) * rng.uniform(0.1, 2.0):.6f}" for v in VARIABLES[expr]
            )
            out.write(f'\n[[case]]\nname = "case {i}"\nexpr = "{expr}"\nat = {{ {point} }}\n')


def children_cpu() -> float:
    """CPU seconds used so far by finished child processes (and the workers they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_check(script: str, path: Path, jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of `gradcheck check PATH --format json` with `jobs` processes."""
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [script, "check", str(path), "--format", "json", "--jobs", str(jobs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"check failed ({done.returncode}): {done.stderr}")
    return time.perf_counter() - start, children_cpu() - cpu


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB (Linux /proc)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        stack.extend(int(c) for c in children)
    return total / 1024


def memory_profile(script: str, path: Path, jobs: int) -> tuple[float, list[tuple[float, float]]]:
    """Run a big check, sampling the tree's RSS; return seconds and (elapsed, MB) samples."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as sink:
        process = subprocess.Popen(
            [script, "check", str(path), "--format", "json", "--jobs", str(jobs)], stdout=sink
        )
        samples = []
        while process.poll() is None:
            samples.append((time.perf_counter() - start, tree_rss_mb(process.pid)))
            time.sleep(0.25)
        if process.returncode != 0:
            raise SystemExit(f"big check failed with exit code {process.returncode}")
    return time.perf_counter() - start, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--big", type=int, default=10_000)
    args = parser.parse_args()
    script = shutil.which("gradcheck")
    if script is None:
        raise SystemExit("gradcheck is not installed: pip install -e .")

    # Wall times on a shared machine depend on what else runs: say how busy it was.
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)")
    print("startup (median of", args.repeat, "runs)")
    base = wall([sys.executable, "-c", "pass"], args.repeat)
    print(f"  python -c pass        {base * 1000:7.1f} ms")
    for flag in ("--help", "--version"):
        took = wall([script, flag], args.repeat)
        verdict = "ok" if took < 0.25 and took < 3 * base else "SLOW"
        print(f"  gradcheck {flag:<11} {took * 1000:7.1f} ms  {took / base:4.2f}x  [{verdict}]")

    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "throughput.toml"
        write_batch(small, args.cases)
        print(f"throughput ({args.cases} cases, {len(EXPRESSIONS)} expressions, json report)")
        rates = {}
        for jobs in (1, 2):
            took, cpu = run_check(script, small, jobs)
            rates[jobs] = args.cases / took
            print(
                f"  --jobs {jobs}   {took:6.2f} s wall   {rates[jobs]:7.1f} cases/s"
                f"   ({cpu:5.2f} CPU s in all processes)"
            )
        print(f"  speed-up with 2 jobs: {rates[2] / rates[1]:.2f}x")

        if not args.big:
            return
        big = Path(tmp) / "big.toml"
        write_batch(big, args.big, seed=1)
        size_mb = big.stat().st_size / 1e6
        print(f"memory ({args.big} cases in one {size_mb:.1f} MB file, --jobs 2)")
        took, samples = memory_profile(script, big, 2)
        print(f"  {took:6.1f} s   {args.big / took:7.1f} cases/s")
        # Samples at fractions of the run; the very end is left out (workers exiting).
        marks = [(f, rss_at(samples, f * took)) for f in (0.25, 0.5, 0.75, 0.95)]
        growth = marks[-1][1] / marks[0][1]
        shown = ", ".join(f"{int(f * 100)}% {mb:.0f} MB" for f, mb in marks)
        verdict = "flat" if growth < 1.2 else "GROWS"
        print(f"  RSS of the process tree: {shown}; growth {growth:.2f}x  [{verdict}]")


def rss_at(samples: list[tuple[float, float]], when: float) -> float:
    """The RSS sample nearest to a time."""
    return min(samples, key=lambda sample: abs(sample[0] - when))[1]


if __name__ == "__main__":
    main()
