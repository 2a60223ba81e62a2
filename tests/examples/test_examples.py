"""Every example script runs and prints what the seed tutorial shows."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEED_SCRIPTS = sorted(p.name for p in EXAMPLES.glob("seed_*.py"))


def run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run an example in a fresh interpreter; return its stdout (it must exit 0, quietly)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout


def test_there_is_one_script_per_seed_section():
    assert [name[:6] for name in SEED_SCRIPTS] == [f"seed_{i}" for i in range(1, 8)]


def test_seed_1_gradient_of_the_quadratic_is_8():
    assert run("seed_1_autodiff.py").splitlines() == [
        "y = tensor(16., grad_fn=<AddBackward0>)",
        "dy/dx = tensor(8.)",
        "by hand, 2x + 2 = 8.0",
    ]


def test_seed_2_prints_the_graph_and_the_two_gradients():
    assert run("seed_2_graph.py").splitlines() == [
        "x = 3",
        "x * x = 9",
        "2 * x = 6",
        "9 + 6 = 15",
        "15 + 1 = 16",
        "graph of y, output first:",
        "AddBackward0",
        "  AddBackward0",
        "    MulBackward0",
        "      AccumulateGrad",
        "      AccumulateGrad",
        "    MulBackward0",
        "      AccumulateGrad",
        "e = tensor(30., grad_fn=<MulBackward0>)",
        "de/da = tensor(21.)",
        "de/db = tensor(16.)",
    ]


def test_seed_3_only_tracked_tensors_get_gradients():
    assert run("seed_3_requires_grad.py").splitlines() == [
        "output = tensor(11., grad_fn=<SumBackward0>)",
        "weights.requires_grad = True",
        "inputs.requires_grad = False",
        "weights.grad = tensor([3., 4.])",
        "inputs.grad = None",
    ]


def test_seed_4_leaf_and_retained_gradients():
    assert run("seed_4_leaf_tensors.py").splitlines() == [
        "x.is_leaf = True",
        "y.is_leaf = False",
        "x.grad = tensor(6.)",
        "y.grad = tensor(3.)",
        "without retain_grad(), v.retains_grad = False",
        "w.grad = tensor(6.)",
    ]


def test_seed_5_chain_rule():
    assert run("seed_5_backprop.py").splitlines() == [
        "h = tensor(3., grad_fn=<AddBackward0>)",
        "y = tensor(9., grad_fn=<MulBackward0>)",
        "dy/dh = tensor(6.)",
        "dy/dx = tensor(6.)",
    ]


def test_seed_6_accumulation_trap_zeroing_and_the_training_loop():
    lines = run("seed_6_zero_grad.py").splitlines()
    assert lines[:7] == [
        "The problem:",
        "after y1 = 2x: tensor(2.)",
        "after y2 = 3x: tensor(5.)",
        "The solution:",
        "after y1 = 2x: tensor(2.)",
        "after zero_() and y2 = 3x: tensor(3.)",
        "In neural network training: fit y = 2x + 1",
    ]
    # Oracle: gradient descent on mean squared error for y = 2x + 1, from w = b = 0.
    x = np.array([0.0, 1.0, 2.0, 3.0])
    t = 2 * x + 1
    w = b = 0.0
    expected = {}
    for step in range(1, 51):
        err = w * x + b - t
        expected[step] = float(np.mean(err**2))
        w, b = w - 0.1 * np.mean(2 * err * x), b - 0.1 * np.mean(2 * err)
    printed = {
        int(m[1]): float(m[2])
        for m in (re.fullmatch(r"step +(\d+): loss = ([\d.]+)", line) for line in lines[7:12])
        if m
    }
    assert sorted(printed) == [1, 2, 3, 10, 50]
    for step, loss in printed.items():
        assert loss == pytest.approx(expected[step], rel=1e-4, abs=2e-6), step
    m = re.fullmatch(r"learned weight = ([\d.]+), bias = ([\d.]+)", lines[12])
    assert (
        m
        and float(m[1]) == pytest.approx(w, abs=1e-3)
        and float(m[2]) == pytest.approx(b, abs=1e-3)
    )


def test_seed_7_four_mini_batches_of_8_match_one_batch_of_32():
    lines = run("seed_7_accumulation.py").splitlines()
    full = next(line for line in lines if line.startswith("one batch of 32"))
    accumulated = next(line for line in lines if line.startswith("4 x 8 accumulated, bias"))
    assert full.split("=")[1] == accumulated.split("=")[1]
    assert "4 x 8 accumulated, unscaled: equals 4 x the full batch: True" in lines
    assert "4 x 8 accumulated, loss scaled by 1/4: same as one batch of 32: True" in lines
    assert sum(line.startswith("mini-batch ") for line in lines) == 4
    m = re.fullmatch(r"loss on all 32 before the update: ([\d.]+), after: ([\d.]+)", lines[-1])
    assert m and float(m[2]) < float(m[1])


def test_train_iris_reaches_95_percent_in_plain_text_when_not_a_terminal():
    out = run("train_iris.py")
    assert "\x1b" not in out  # no colour or cursor codes in a pipe
    m = re.search(r"final training accuracy: ([\d.]+)% \((\d+)/150\)", out)
    assert m and float(m[1]) >= 95.0
    assert "training loss per epoch:" in out and " epoch 1 " in out
    assert re.search(r"epoch +60/60 +loss [\d.]+ +accuracy", out)
    # Deterministic under engine.manual_seed: a second run prints the same numbers.
    strip_time = re.compile(r"trained .* s\n")
    assert strip_time.sub("", run("train_iris.py")) == strip_time.sub("", out)


def test_train_iris_draws_a_live_bar_on_a_terminal_and_honours_no_color():
    coloured = run("train_iris.py", "--epochs", "3", env={"FORCE_COLOR": "1"})
    assert re.search(r"\x1b\[[0-9;]*3\dm", coloured)  # a foreground colour
    assert "training" in coloured
    plain = run("train_iris.py", "--epochs", "3", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert not re.search(r"\x1b\[[0-9;]*(3\d|38;)", plain)
