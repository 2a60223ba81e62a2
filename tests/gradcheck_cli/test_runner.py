"""The runner: user code that exits, raises, crashes, hangs or floods output is an error row."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gradcheck_cli.cli import main
from gradcheck_cli.runner import Runner, RunOptions
from gradcheck_cli.schema import iter_items, load_file

ENV = {"COLUMNS": "100", "NO_COLOR": None, "FORCE_COLOR": None, "GRADCHECK_ALLOW_PYTHON": None}
GOOD = "def good(x):\n    return (x * x).sum()\n"
# name -> (the body of the user's module, what the error row must say; {file} is its path)
HOSTILE = {
    "sys_exit": (
        "import sys\ndef f(x):\n    sys.exit(0)\n",
        "SystemExit: 0 (raised at {file}:3): the case's code may not end the run",
    ),
    "keyboard_interrupt": (
        "def f(x):\n    raise KeyboardInterrupt\n",
        "KeyboardInterrupt (raised at {file}:2): the case's code may not end the run",
    ),
    "base_exception": (
        "class Quit(BaseException):\n    pass\ndef f(x):\n    raise Quit('bye')\n",
        "Quit: bye (raised at {file}:4): the case's code may not end the run",
    ),
    "os_exit": (
        "import os\ndef f(x):\n    os._exit(0)\n",
        "the case did not finish: its code ended the worker process with exit code 0",
    ),
    "endless_loop": (
        # one line: the timeout's stack dump may land on the `while` or on its body
        "def f(x):\n    while True: pass\n",
        "timed out after 1 s at {file}:2 in f (the case's time limit",
    ),
    "endless_import": (
        "import time\nwhile True: time.sleep(0.01)\ndef f(x):\n    return x\n",
        "timed out after 1 s at {file}:2 in <module>",
    ),
    "segfault": (
        "import ctypes\ndef f(x):\n    ctypes.string_at(0)\n",
        "the case did not finish: its worker process was killed by SIGSEGV at {file}:3 in f",
    ),
    "out_of_memory": (
        "def f(x):\n    return bytearray(2**36)\n",
        "MemoryError (raised at {file}:2 in forward)",
    ),
}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV)


def hostile_batch(tmp_path: Path, names: list[str]) -> Path:
    """A package with a module per hostile behaviour and a batch: good, hostile..., good."""
    pkg = tmp_path / "userpkg_hostile"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(GOOD)
    case = '[[case]]\nname = "{}"\nfn = "userpkg_hostile.{}"\ninputs = [{{ shape = [2] }}]'
    # The good cases carry their own generous limit: the tests' --timeout 1 is for the hostile
    # ones, and a good case on a loaded machine must not become a timeout.
    good = case + "\ntimeout = 120"
    cases = [good.format("first", "good:good")]
    for name in names:
        (pkg / f"{name}.py").write_text(HOSTILE[name][0])
        cases.append(case.format(name, f"{name}:f"))
    cases.append(good.format("last", "good:good"))
    path = tmp_path / "gradcheck_hostile.toml"
    path.write_text("\n\n".join(cases) + "\n")
    return path


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_every_way_user_code_ends_is_an_error_row_and_the_run_goes_on(
    tmp_path: Path, jobs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    names = list(HOSTILE)
    path = hostile_batch(tmp_path, names)
    result = run(
        "check", str(path), "--format", "json", "--allow-python", "--path", str(tmp_path),
        "--timeout", "1", "--max-memory", "2048", "--jobs", jobs,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    rows = {row["name"]: row for row in report["cases"]}
    assert list(rows) == ["first", *names, "last"]
    assert rows["first"]["status"] == rows["last"]["status"] == "pass"
    for name in names:
        row = rows[name]
        expected = HOSTILE[name][1].format(file=f"userpkg_hostile/{name}.py")
        assert row["status"] == "error", name
        assert expected in row["message"], (name, row["message"])
        assert row["message"].startswith(f"{path}: case "), row["message"]
    assert report["summary"] == {
        "total": len(names) + 2, "passed": 2, "failed": 0, "errors": len(names),
    }  # fmt: skip


def test_megabytes_of_user_output_are_captured_and_trimmed(tmp_path: Path) -> None:
    pkg = tmp_path / "userpkg_chatty"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ops.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            calls = []
            def f(x):
                if not calls:  # the check calls f many times: talk once
                    print("hello from forward")
                    sys.stdout.write("x" * 3_000_000)
                    os.write(2, b"raw stderr\\n")
                    print("the end", file=sys.stderr)
                calls.append(1)
                return (x * x).sum()
            """
        )
    )
    path = tmp_path / "c.toml"
    path.write_text('[[case]]\nfn = "userpkg_chatty.ops:f"\ninputs = [{ shape = [2] }]\n')
    result = run("check", str(path), "--format", "json", "--allow-python", "--path", str(tmp_path))
    assert result.exit_code == 0, result.output[:2000]
    assert len(result.output) < 20_000  # the report, not the user's 3 MB
    [row] = json.loads(result.output)["cases"]
    assert row["status"] == "pass"
    output = row["output"]
    assert output.startswith("hello from forward\nxxx")
    assert "bytes not shown ...]" in output and output.endswith("raw stderr\nthe end\n")
    assert len(output) < 4000


def test_the_runner_keeps_order_and_reuses_its_worker(tmp_path: Path) -> None:
    path = hostile_batch(tmp_path, ["os_exit"])
    items = list(iter_items([load_file(path)], allow_python=True, paths=[str(tmp_path)]))
    with Runner(RunOptions(jobs=1, timeout=10)) as runner:
        outcomes = list(runner.run(items * 2))
        # The worker that died was replaced; the replacement is idle and reused.
        assert len(runner._idle) == 1 and not runner._busy
    statuses = [o.results[0].status for o in outcomes]
    assert statuses == ["pass", "error", "pass"] * 2


STATE = """
import os, sys
import numpy as np
import engine

PIDS = PIDS_FILE

def mutate(x):
    np.tanh = lambda v: v
    np.seterr(under="raise")
    engine.set_default_dtype(engine.float64)
    engine.set_grad_enabled(False)
    engine.set_grad_enabled(True)
    sys.path.insert(0, "/nonexistent-gradcheck-path")
    os.environ["GRADCHECK_MUTATED"] = "1"
    os.chdir("/")
    return (x * x).sum()

def observe(x):
    with open(PIDS, "a") as out:
        out.write(f"{os.getpid()}\\n")
    leaks = [
        what
        for what, leaked in [
            ("numpy.tanh", not isinstance(np.tanh, np.ufunc)),
            ("numpy.seterr", np.geterr()["under"] == "raise"),
            ("default dtype", engine.get_default_dtype() != engine.float32),
            ("sys.path", "/nonexistent-gradcheck-path" in sys.path),
            ("environ", "GRADCHECK_MUTATED" in os.environ),
            ("cwd", os.getcwd() == "/"),
        ]
        if leaked
    ]
    assert not leaks, f"state left by another case: {leaks}"
    return (x * x).sum()
"""


def test_a_case_that_changes_global_state_cannot_change_the_next_cases_verdict(
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "userpkg_state"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    pids = tmp_path / "pids.txt"
    (pkg / "ops.py").write_text(STATE.replace("PIDS_FILE", repr(str(pids))))
    case = '[[case]]\nname = "{0}"\nfn = "userpkg_state.ops:{0}"\ninputs = [{{ shape = [3] }}]\n'
    path = tmp_path / "state.toml"
    path.write_text("\n".join(map(case.format, ["observe", "mutate", "observe"])))
    items = list(iter_items([load_file(path)], allow_python=True, paths=[str(tmp_path)]))
    with Runner(RunOptions(jobs=1, timeout=120)) as runner:
        outcomes = list(runner.run(items))
    messages = [o.results[0].message for o in outcomes]
    assert [o.results[0].status for o in outcomes] == ["pass", "pass", "pass"], messages
    # One worker ran both observers: the state was put back, not left behind with a worker.
    assert len(set(pids.read_text().split())) == 1


def test_engine_testing_imports_nothing_of_the_command_line() -> None:
    probe = (
        "import sys\nimport engine.testing\n"
        "heavy = ('gradcheck_cli', 'sympy', 'rich', 'click', 'mpmath', 'yaml')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


# ------------------------------------------------------------------------------ signals

SLOW = """
import os, subprocess, time
def f(x):
    child = subprocess.Popen(["sleep", "60"])
    with open(os.environ["GRADCHECK_TEST_PIDS"], "a") as out:
        out.write(f"{os.getpid()} {child.pid}\\n")
    time.sleep(60)
    return (x * x).sum()
"""


def _gone(pid: int) -> bool:
    """True once a process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _marked(marker: str) -> list[int]:
    """Live processes whose environment holds `marker`: the run, its forkserver, every worker
    (forked ones and forkserver ones alike) and what user code started."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as env:
                if marker.encode() in env.read().split(b"\0") and not _gone(int(entry)):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def _signalled_run(
    tmp_path: Path, jobs: int, sig: int, *output: str, expressions: int = 1
) -> tuple[int, str, str]:
    """Start a batch of expression cases and slow callables, signal it once the callables run;
    (code, out, err)."""
    import os
    import time

    pkg = tmp_path / "userpkg_slow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ops.py").write_text(SLOW)
    case = '[[case]]\nname = "slow {}"\nfn = "userpkg_slow.ops:f"\ninputs = [{{ shape = [2] }}]\n'
    batch = tmp_path / "gradcheck_slow.toml"
    exprs = '[[case]]\nexpr = "x*x"\nat = { x = 1 }\n\n' * expressions
    batch.write_text(exprs + "\n".join(map(case.format, range(4))))
    pids = tmp_path / "pids.txt"
    env = {**os.environ, "GRADCHECK_TEST_PIDS": str(pids), "NO_COLOR": "1"}
    marker = f"GRADCHECK_TEST_PIDS={pids}"
    argv = [sys.executable, "-m", "gradcheck_cli", "check", str(batch), "--format", "json"]
    argv += ["--allow-python", "--path", str(tmp_path), "--jobs", str(jobs), *output]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pids.exists() and len(pids.read_text().splitlines()) >= jobs:
            break
        time.sleep(0.05)
    if expressions > 1:  # the run, its forkserver, a forked worker, per job one worker and child
        assert len(_marked(marker)) >= 3 + 2 * jobs
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    started = [int(pid) for line in pids.read_text().splitlines() for pid in line.split()]
    assert len(started) == 2 * jobs  # each worker and the child its user code started
    deadline = time.monotonic() + 10
    while not all(map(_gone, started)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in started if not _gone(pid)] == []  # no orphans
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _marked(marker) == []  # the forkserver and the expression workers too
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_ends_every_worker_keeps_the_old_report_and_exits_128_plus_it(
    tmp_path: Path, jobs: int, sig: str, code: int
) -> None:
    import signal

    report = tmp_path / "report.json"
    report.write_text('{"the": "previous report"}\n')
    returncode, out, err = _signalled_run(tmp_path, jobs, getattr(signal, sig), "-o", str(report))
    assert returncode == code, err
    assert report.read_text() == '{"the": "previous report"}\n'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report")) == []
    assert f"interrupted by {sig}: 4 of 5 cases not run (slow 0, slow 1, slow 2, slow 3)" in err
    assert f"{report} left as it was" in err and "Traceback" not in err


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_ends_the_forked_expression_workers_too(
    tmp_path: Path, sig: str, code: int
) -> None:
    import signal

    # 40 expression cases: chunks run in the parent and on a forked worker, which is idle in
    # the pool when the signal comes during the callables.
    returncode, out, err = _signalled_run(tmp_path, 2, getattr(signal, sig), expressions=40)
    assert returncode == code, err
    report = json.loads(out)
    assert report["summary"] == {"total": 44, "passed": 40, "failed": 0, "errors": 4}


def test_an_interrupted_report_on_stdout_is_valid_and_names_the_cases_not_run(
    tmp_path: Path,
) -> None:
    import signal

    returncode, out, err = _signalled_run(tmp_path, 2, signal.SIGTERM)
    assert returncode == 143, err
    report = json.loads(out)
    assert report["summary"] == {"total": 5, "passed": 1, "failed": 0, "errors": 4}
    messages = [row["message"] for row in report["cases"][1:]]
    assert all(m.endswith("not run: the run was interrupted by SIGTERM") for m in messages)


def test_trace_of_a_case_runs_its_code_in_a_worker_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = hostile_batch(tmp_path, ["os_exit", "endless_loop"])
    for name, message in [
        ("os_exit", "its code ended the worker process with exit code 0"),
        ("endless_loop", "timed out after 1 s at userpkg_hostile/endless_loop.py:2 in f"),
    ]:
        result = run(
            "trace", f"{path}::{name}", "--allow-python", "--path", str(tmp_path), "--timeout", "1"
        )
        assert result.exit_code == 2
        assert message in result.output and "Traceback" not in result.output
    good = run("trace", f"{path}::first", "--allow-python", "--path", str(tmp_path))
    assert good.exit_code == 0 and "leaf" in good.output
