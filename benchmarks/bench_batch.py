"""Benchmark `gradcheck check` throughput: expression cases and callable (`fn`) cases.

1,000 expression cases (the workload of bench_cli.py) and 50 callable cases of the example
package examples/ci/mathops (all passing), each with --jobs 1 and 2, JSON report to a file.
Expression cases run in the parent (--jobs 1), or (--jobs N) the first chunk in the parent and
the others on forks of it; callable cases run in isolated worker processes, so the second
figure is what isolation costs per case. Each line also gives the CPU seconds of the run and
its forked workers (forkserver workers are not the run's children, so the callable lines
count the parent only).

    python benchmarks/bench_batch.py [--repeat 3] [--cases 1000] [--callables 50]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli import write_batch  # noqa: E402 - the expression workload is bench_cli's

EXAMPLES = Path(__file__).parents[1] / "examples" / "ci"
CALLABLES = (
    ("mathops.ops:Softplus", "[{ shape = [3, 4], low = -3.0, high = 3.0 }]"),
    ("mathops.ops:softplus_layer", "[{ shape = [5, 3] }, { shape = [3, 2] }]"),
    ("mathops:softplus", '[{ values = [-20.0, -1.5, 0.0, 0.5, 20.0], dtype = "float32" }]'),
)


def write_callables(path: Path, count: int) -> None:
    """A TOML batch of `count` passing callable cases cycling through CALLABLES."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            fn, inputs = CALLABLES[i % len(CALLABLES)]
            out.write(f'[[case]]\nname = "fn {i}"\nfn = "{fn}"\ninputs = {inputs}\nseed = {i}\n\n')


def run_check(
    script: str, path: Path, jobs: int, extra: list[str], repeat: int
) -> tuple[float, float]:
    """Median wall and CPU seconds of `gradcheck check PATH --format json -o FILE --jobs N`."""
    times, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        report = str(Path(tmp) / "report.json")
        argv = [script, "check", str(path), "--format", "json", "-o", report, "--jobs", str(jobs)]
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(argv + extra, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"check failed ({done.returncode}): {done.stderr}{done.stdout}")
    return statistics.median(times), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--callables", type=int, default=50)
    args = parser.parse_args()
    script = shutil.which("gradcheck")
    if script is None:
        raise SystemExit("gradcheck is not installed: pip install -e .")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)")
    with tempfile.TemporaryDirectory() as tmp:
        exprs = Path(tmp) / "exprs.toml"
        write_batch(exprs, args.cases)
        fns = Path(tmp) / "fns.toml"
        write_callables(fns, args.callables)
        gate = ["--allow-python", "--path", str(EXAMPLES)]
        for label, path, count, extra in (
            (f"{args.cases} expression cases", exprs, args.cases, []),
            (f"{args.callables} callable cases", fns, args.callables, gate),
        ):
            for jobs in (1, 2):
                took, cpu = run_check(script, path, jobs, extra, args.repeat)
                print(
                    f"{label:<24} --jobs {jobs}   {took:6.2f} s   {count / took:7.1f} cases/s"
                    f"   {took / count * 1000:6.1f} ms/case   {cpu:6.2f} CPU-s"
                )
        isolation(fns)


def isolation(path: Path) -> None:
    """What a worker costs per callable case: the same cases in this process and in one."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from gradcheck_cli.runner import Runner, RunOptions, run_item
        from gradcheck_cli.schema import iter_items, load_file
    except ImportError:  # the code before the runner existed
        return
    items = list(iter_items([load_file(path)], allow_python=True, paths=[str(EXAMPLES)]))
    for path_, item in items[:3]:
        run_item(path_, item)  # imports and caches warmed in both measurements
    start = time.perf_counter()
    for path_, item in items:
        run_item(path_, item)
    here = time.perf_counter() - start
    with Runner(RunOptions(jobs=1)) as runner:
        start = time.perf_counter()
        list(runner.run(items[:1]))
        startup = time.perf_counter() - start
        start = time.perf_counter()
        list(runner.run(items))
        isolated = time.perf_counter() - start
    n = len(items)
    print(
        f"isolation: {n} callable cases in this process {here / n * 1000:.1f} ms/case, "
        f"in a worker {isolated / n * 1000:.1f} ms/case "
        f"(+{(isolated - here) / n * 1000:.1f} ms/case; first worker ready in {startup:.2f} s)"
    )


if __name__ == "__main__":
    main()
