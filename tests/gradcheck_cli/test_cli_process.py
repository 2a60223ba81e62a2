"""The installed console script and `python -m`, in real processes; startup stays light."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradcheck_cli import __version__

HEAVY = ("sympy", "numpy", "engine", "rich", "mpmath", "yaml")


def clean_env() -> dict[str, str]:
    """The environment without colour switches, at a pinned width."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return {**env, "COLUMNS": "100"}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["grad", "--help"]])
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    probe = (
        "import sys\n"
        "from gradcheck_cli.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


def test_installed_console_script_runs_the_seed_example() -> None:
    script = shutil.which("gradcheck")
    assert script is not None, "the gradcheck console script is not installed (pip install -e .)"
    done = subprocess.run(
        [script, "grad", "x*x + 2*x + 1", "--at", "x=3", "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    gradient = json.loads(done.stdout)["cases"][0]["gradient"]
    for source in ("autograd", "symbolic", "numeric"):
        assert abs(gradient[source]["x"] - 8.0) < 1e-9
    version = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert version.stdout == f"gradcheck {__version__}\n"


def test_python_dash_m_and_plain_output_to_a_pipe() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "grad", "x**2", "--at", "x=1.5"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("x**2  at x=1.5  =  2.25\n")
    assert "\x1b[" not in done.stdout  # a pipe gets plain text


def test_bad_input_exit_code_and_message_in_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "grad", "x +", "--at", "x=1"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("Error: expression, column")
    assert "Traceback" not in done.stderr


def test_parallel_check_exits_cleanly() -> None:
    # Nothing on stderr: a pool shut down without waiting once made CPython's exit hook print
    # "Exception ignored in: <module 'threading'>" (intermittently, so this guards, not proves).
    examples = Path(__file__).parents[2] / "examples" / "batch"
    done = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "check", str(examples / "seed.toml"), "-j", "2"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[-1].startswith("8 passed in ")


# What a one-shot `grad` must not import: SymPy's tensors and groups (which its first sum
# would pull in, see gradcheck_cli/sympy_startup.py), simplify's physics, the batch files'
# TOML reader, the suggestions' difflib, the graph printer; and Rich for --json.
NOT_NEEDED = ("sympy.combinatorics", "sympy.physics", "tomllib", "difflib", "gradcheck_cli.trace")


@pytest.mark.parametrize("extra", [["--json"], []], ids=["json", "terminal"])
def test_one_shot_grad_imports_only_what_its_output_needs(extra: list[str]) -> None:
    # The benchmark expression: a sum, a product, a quotient and two functions.
    args = ["grad", "-m*g*x/(k*T) + log(1 + exp(a*b))", "--at", "m=1,g=2,x=3,k=1,T=2,a=1,b=2"]
    probe = (
        "import sys\n"
        "from gradcheck_cli.cli import main\n"
        f"try:\n    main({[*args, *extra]!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {(*NOT_NEEDED, 'rich')!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=clean_env()
    )
    assert "PASS" in done.stdout or '"status": "pass"' in done.stdout, done.stderr
    assert done.stdout.splitlines()[-1] == ("[]" if extra else "['rich']")
