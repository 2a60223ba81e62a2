"""Real PyTorch programs run unchanged under `import engine as torch`.

Every program in programs/ runs with `torch` resolving to engine and must finish without an
error. When torch is installed, each also runs under torch, and everything it prints must be
printed by engine too, numbers equal to printing precision (compare.py). Random numbers are
then torch's on both sides (runner.py's engine-torch-random mode), so programs that draw
random weights print the same numbers. Each mode runs all programs in one process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from output_compare import compare, tolerance

HERE = Path(__file__).parent
PROGRAMS = sorted((HERE / "programs").glob("*.py"))
HAS_TORCH = importlib.util.find_spec("torch") is not None
ROOT = HERE.parent.parent


def _run_all(mode: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH",
                                                                                 "")]))
    proc = subprocess.run(
        [sys.executable, str(HERE / "runner.py"), mode, *map(str, PROGRAMS)],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def engine_runs() -> dict:
    # With torch at hand, engine draws torch's random numbers so the outputs can be compared.
    return _run_all("engine-torch-random" if HAS_TORCH else "engine")


@pytest.fixture(scope="module")
def torch_runs() -> dict:
    pytest.importorskip("torch")
    return _run_all("torch")


def test_there_is_a_collection():
    assert len(PROGRAMS) >= 15


@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_runs_unchanged_under_engine(program, engine_runs):
    result = engine_runs[program]
    assert result["error"] is None, result["error"]
    assert result["stdout"].strip()


@pytest.mark.parametrize("program", [p.name for p in PROGRAMS])
def test_prints_torchs_numbers(program, engine_runs, torch_runs):
    assert torch_runs[program]["error"] is None, torch_runs[program]["error"]
    ours, theirs = engine_runs[program]["stdout"], torch_runs[program]["stdout"]
    rtol = tolerance((HERE / "programs" / program).read_text())
    problems = compare(ours, theirs, rtol=rtol)
    assert not problems, "\n".join(
        f"line {m.line}:\n  engine: {m.ours}\n  torch:  {m.theirs}" for m in problems[:5])


def test_the_comparison_catches_a_wrong_number_and_wrong_text():
    assert compare("loss 0.5000\n", "loss 0.5001\n") == []  # one unit of the last digit
    assert compare("loss 0.5000\n", "loss 0.5100\n")
    assert compare("tensor(1., dtype=engine.float64)", "tensor(1., dtype=torch.float64)") == []
    assert compare("<MulBackward0 object at 0x7f00>", "<AddBackward0 object at 0x7f11>")
    assert compare("a\n", "a\nb\n")
