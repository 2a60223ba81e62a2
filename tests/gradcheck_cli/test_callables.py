"""Callable cases (fn = "pkg.mod:func"): the gate, inputs, user errors, blame, trace."""

from __future__ import annotations

import inspect
import json
import os
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import engine
from engine.autograd import Function
from engine.testing import check_callable
from gradcheck_cli.callables import engine_inputs as make_inputs
from gradcheck_cli.cli import main
from gradcheck_cli.runner import run_item
from gradcheck_cli.schema import CallableCase, CaseProblem, iter_items, load_file

CI = Path(__file__).parents[2] / "examples" / "ci"
BATCH = str(CI / "gradcheck.toml")
ENV = {"COLUMNS": "100", "NO_COLOR": None, "FORCE_COLOR": None, "GRADCHECK_ALLOW_PYTHON": None}


@pytest.fixture(autouse=True)
def forget_user_code() -> object:
    """Undo what running users' code does to this process: --path entries, their modules."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name in list(sys.modules):
        if name.split(".")[0] == "mathops" or name.startswith(("userpkg_", "gatepkg_")):
            del sys.modules[name]


def run(*args: str, env: dict | None = None) -> Result:
    """Invoke `gradcheck ARGS` at a pinned width with the gate closed unless asked."""
    return CliRunner().invoke(main, list(args), env={**ENV, **(env or {})})


def no_traceback(result: Result) -> None:
    """User errors are one-line messages, never Python tracebacks."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def log_cosh_backward_line() -> str:
    """'examples/ci/mathops/ops.py:32' as blame reports it (relative to the cwd)."""
    sys.path.insert(0, str(CI))
    try:
        from mathops.ops import LogCosh
    finally:
        sys.path.remove(str(CI))
    path = os.path.relpath(inspect.getsourcefile(LogCosh.backward))
    return f"{path}:{inspect.getsourcelines(LogCosh.backward)[1]}"


def write_package(root: Path, name: str, source: str) -> Path:
    """A one-module package `name` under root, holding `source`."""
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "ops.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return pkg / "ops.py"


def write_batch(root: Path, cases: str) -> str:
    path = root / "gradcheck_cases.toml"
    path.write_text(textwrap.dedent(cases), encoding="utf-8")
    return str(path)


def rows(path: str, *args: str, env: dict | None = None) -> tuple[int, list[dict]]:
    """Exit code and JSON rows of `gradcheck check PATH --format json ARGS`."""
    result = run("check", path, "--format", "json", *args, env=env)
    no_traceback(result)
    return result.exit_code, json.loads(result.output)["cases"]


# ----------------------------------------------------------------------------- the gate


def test_without_the_gate_fn_cases_are_error_rows_and_nothing_is_imported(tmp_path: Path) -> None:
    write_package(tmp_path, "gatepkg_never", "raise SystemExit('imported!')\n")
    path = write_batch(
        tmp_path,
        """
        [[case]]
        fn = "gatepkg_never.ops:f"
        inputs = [{ shape = [2] }]

        [[case]]
        expr = "x*x"
        at = { x = 3.0 }
        """,
    )
    code, cases = rows(path, "--path", str(tmp_path))
    assert code == 1
    assert [c["status"] for c in cases] == ["error", "pass"]
    assert "--allow-python (or GRADCHECK_ALLOW_PYTHON=1)" in cases[0]["message"]
    assert "gatepkg_never" not in sys.modules


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_gate_opens_with_the_flag_or_the_environment(how: str) -> None:
    args = ["--allow-python"] if how == "flag" else []
    env = {"GRADCHECK_ALLOW_PYTHON": "1"} if how == "env" else None
    code, cases = rows(BATCH, "--path", str(CI), *args, env=env)
    assert code == 1
    assert {c["name"]: c["status"] for c in cases} == {
        "softplus": "pass",
        "softplus_layer": "pass",
        "softplus_float32": "pass",
        "log_cosh": "fail",
        "log_cosh_loss": "fail",
    }


# ---------------------------------------------------------------- the example package


def test_example_table_blames_log_cosh_backward_with_file_and_line() -> None:
    result = run("check", BATCH, "--allow-python", "--path", str(CI))
    no_traceback(result)
    assert result.exit_code == 1
    where = log_cosh_backward_line()
    assert f"blame: LogCosh.backward at {where}: off by a factor of 2" in " ".join(
        result.output.split()
    )
    assert "3 passed, 2 failed" in result.output
    assert "x[5,3] w[3,2]" in result.output  # the point column shows the inputs


def test_example_table_lays_the_worst_elements_out_as_a_table() -> None:
    # The mismatch travels from the worker as data; the terminal draws it as a Rich table
    # (a rule under its header), not as the preformatted lines the reports keep.
    result = run("check", BATCH, "--allow-python", "--path", str(CI), "-q")
    no_traceback(result)
    assert "output, input" in result.output and "scale of the Jacobian" in result.output
    assert "─" * 20 in result.output
    assert "(estimate: the numeric error estimate" not in result.output


def test_example_json_carries_the_worst_elements_as_rows() -> None:
    _, cases = rows(BATCH, "--allow-python", "--path", str(CI))
    by_name = {c["name"]: c for c in cases}
    assert by_name["softplus"]["mismatch"] is None
    mismatch = by_name["log_cosh"]["mismatch"]
    assert (mismatch["output"], mismatch["input"], mismatch["size"]) == (0, 0, 16)
    assert mismatch["differing"] == len(mismatch["worst"]) == 4
    for row in mismatch["worst"]:  # LogCosh.backward is twice the truth, element by element
        assert row["analytic"] == pytest.approx(2 * row["numeric"], rel=1e-6)
        assert row["error"] == pytest.approx(abs(row["analytic"] - row["numeric"]))


def test_example_json_and_junit_carry_blame() -> None:
    _, cases = rows(BATCH, "--allow-python", "--path", str(CI))
    [loss] = [c for c in cases if c["name"] == "log_cosh_loss"]
    assert loss["blame"]["class"] == "LogCosh"
    assert loss["blame"]["node"] == "LogCoshBackward"
    assert loss["blame"]["location"] == log_cosh_backward_line()
    assert loss["blame"]["hint"] == "off by a factor of 2"
    assert loss["inputs"][1] == "target: float64[6] in [-1, 1) (no grad)"
    assert loss["value"] == pytest.approx(0.2230796077)
    result = run("check", BATCH, "--allow-python", "--path", str(CI), "--format", "junit")
    suite = ET.fromstring(result.output).find("testsuite")
    failures = {
        case.get("name"): case.find("failure")
        for case in suite.findall("testcase")
        if case.find("failure") is not None
    }
    assert set(failures) == {"log_cosh", "log_cosh_loss"}
    assert "LogCosh.backward" in failures["log_cosh"].get("message")
    details = suite.find("testcase[@name='log_cosh']/system-out").text
    assert details.startswith("fn: mathops.ops:log_cosh\n")


def test_parallel_workers_import_from_the_path_too() -> None:
    code, cases = rows(BATCH, "--allow-python", "--path", str(CI), "--jobs", "2")
    assert code == 1
    assert [c["status"] for c in cases] == ["pass", "pass", "pass", "fail", "fail"]


# -------------------------------------------------------------------- user code errors


@pytest.mark.parametrize(
    ("source", "raised"),
    [
        (
            """
            def f(x):
                return x * undefined_name
            """,
            "NameError: name 'undefined_name' is not defined (raised at {file}:3 in forward)",
        ),
        (
            """
            from engine.autograd import Function

            class Bad(Function):
                @staticmethod
                def forward(ctx, x):
                    return x * 2

                @staticmethod
                def backward(ctx, g):
                    raise ValueError("no backward today")

            def f(x):
                return Bad.apply(x)
            """,
            "ValueError: no backward today (raised at {file}:11 in backward)",
        ),
        (
            """
            import math
            VALUE = 1 / 0
            def f(x):
                return x
            """,
            "ZeroDivisionError: division by zero (raised at {file}:3 importing {pkg}.ops)",
        ),
        (
            """
            def f(x)
                return x
            """,
            "SyntaxError: expected ':' (raised at {file}:2 importing {pkg}.ops)",
        ),
    ],
    ids=["forward", "backward", "import", "syntax"],
)
def test_exceptions_in_user_code_are_error_rows_with_file_and_line(
    tmp_path: Path, source: str, raised: str, request: pytest.FixtureRequest
) -> None:
    pkg = f"userpkg_{request.node.callspec.id}"
    module = write_package(tmp_path, pkg, source)
    path = write_batch(tmp_path, f'[[case]]\nfn = "{pkg}.ops:f"\ninputs = [{{ shape = [3] }}]\n')
    code, [case] = rows(path, "--allow-python", "--path", str(tmp_path))
    assert code == 1 and case["status"] == "error"
    relative = os.path.relpath(module)
    file = str(module) if relative.startswith("..") else relative  # as tracebacks show it
    assert case["message"].endswith(raised.format(file=file, pkg=pkg)), case["message"]


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (
            "nosuchpkg_xyz.ops:f",
            "cannot import 'nosuchpkg_xyz.ops': no module named 'nosuchpkg_xyz'",
        ),
        ("mathops.ops:nothing", "'mathops.ops' has no attribute 'nothing'"),
        ("mathops.ops:engine.float64", "mathops.ops:engine.float64 is dtype, not a function"),
    ],
)
def test_import_problems_name_what_is_missing(tmp_path: Path, fn: str, message: str) -> None:
    path = write_batch(tmp_path, f'[[case]]\nfn = "{fn}"\ninputs = [{{ shape = [3] }}]\n')
    code, [case] = rows(path, "--allow-python", "--path", str(CI))
    assert (code, case["status"]) == (1, "error")
    assert message in case["message"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("fn = \"os.system('ls')\"\ninputs = [{ shape = [2] }]", "'fn' must look like"),
        ('fn = "os:path"', "missing key 'inputs'"),
        ('fn = "m:f"\ninputs = []', "'inputs' must be a non-empty list of tables"),
        ('fn = "m:f"\ninputs = [{ shape = [2], values = [1, 2] }]', "exactly one of 'shape'"),
        ('fn = "m:f"\ninputs = [{ shape = [0] }]', "'inputs[0].shape[0]' must be between 1 and"),
        ('fn = "m:f"\ninputs = [{ shap = [2] }]', "unknown key 'shap' (did you mean 'shape'?)"),
        ('fn = "m:f"\ninputs = [{ values = [[1, 2], [3]] }]', "is not rectangular"),
        ('fn = "m:f"\ninputs = [{ shape = [2], low = 1, high = 1 }]', "need low < high"),
        ('fn = "m:f"\ninputs = [{ shape = [2], requires_grad = false }]', "no input requires grad"),
        ('fn = "m:f"\nexpr = "x"\ninputs = [{ shape = [2] }]', "either 'expr' or 'fn'"),
        ('fn = "m:f"\nat = { x = 1 }\ninputs = [{ shape = [2] }]', "belongs to expression cases"),
        ('fn = "m:f"\nseed = -1\ninputs = [{ shape = [2] }]', "'seed' must be between 0 and"),
        ('fn = "m:f"\nfast = 1\ninputs = [{ shape = [2] }]', "'fast' must be true or false"),
        ('fnn = "m:f"\nat = { x = 1 }', "unknown key 'fnn' (did you mean 'fn'?)"),
        ("inputs = [{ shape = [2] }]", "it belongs to Python callable cases: add fn ="),
    ],
)
def test_invalid_callable_cases_are_problems_naming_the_key(
    tmp_path: Path, case: str, message: str
) -> None:
    path = write_batch(tmp_path, "[[case]]\n" + case + "\n")
    [(_, item)] = list(iter_items([load_file(path)], allow_python=True))
    assert isinstance(item, CaseProblem)
    assert message in item.message
    assert item.message.startswith(f"{path}: case 1: ")


def test_inputs_are_seeded_values_or_ranges(tmp_path: Path) -> None:
    path = write_batch(
        tmp_path,
        """
        [defaults]
        dtype = "float32"

        [[case]]
        fn = "m:f"
        seed = 3
        inputs = [
            { shape = [200], low = 2.0, high = 5.0 },
            { values = [[1, 2], [3, 4]], dtype = "float64", requires_grad = false },
        ]
        """,
    )
    [(_, case)] = list(iter_items([load_file(path)], allow_python=True))
    assert isinstance(case, CallableCase)
    a, b = make_inputs(case.inputs, case.seed)
    again, _ = make_inputs(case.inputs, case.seed)
    assert a.dtype == engine.float32 and a.requires_grad and a.shape == (200,)
    assert 2.0 <= a.min().item() and a.max().item() < 5.0
    assert (a.detach().numpy() == again.detach().numpy()).all()
    assert b.dtype == engine.float64 and not b.requires_grad and b.tolist() == [[1, 2], [3, 4]]


# ------------------------------------------------------------------------------ blame


def _unary(name: str, forward, backward) -> type:
    """A one-input custom Function class built from two functions."""
    return type(
        name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)}
    )


def _save(f):
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return f(x)

    return forward


def _g(rule):
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return rule(x, g)

    return backward


Cube = _unary("Cube", _save(lambda x: x * x * x), _g(lambda x, g: 3 * g * x * x))
WRONG_SQUARE = {
    "sign": lambda x, g: -2 * g * x,
    "factor 2": lambda x, g: 4 * g * x,
    "factor 1.0001": lambda x, g: 2.0002 * g * x,
    "forgotten chain-rule factor": lambda x, g: 2 * x,
    "negative inputs only": lambda x, g: engine.where(x < 0, 3 * g * x, 2 * g * x),
    "one element": lambda x, g: (
        2 * g * x * engine.tensor([1.0, 1.0, 1.0, 1.25], dtype=engine.float64)
    ),
    "missing broadcast reduction": lambda x, g: (
        2 * g * x + engine.zeros(4, 4, dtype=engine.float64)
    ),
}


@pytest.mark.parametrize("kind", list(WRONG_SQUARE))
def test_blame_names_the_wrong_function_among_right_ones(kind: str) -> None:
    square = _unary("Square", _save(lambda x: x * x), _g(WRONG_SQUARE[kind]))

    def model(x, w):
        h = Cube.apply(x * w)  # a right custom op before ...
        return (square.apply(h).sin() * 2.0).sum()  # ... a wrong one, engine ops after

    engine.manual_seed(1)
    x = engine.randn(4, dtype=engine.float64, requires_grad=True)
    w = engine.tensor([0.5, -1.5, 1.0, 2.0], dtype=engine.float64, requires_grad=True)
    result = check_callable(model, (x, w), name=kind)
    assert result.status == "fail", result.message
    assert result.blame is not None, result.notes
    assert (result.blame["class"], result.blame["node"]) == ("Square", "SquareBackward")
    assert result.blame["location"].startswith(os.path.relpath(__file__) + ":")
    assert result.message.startswith("blame: Square.backward at ")


def test_right_functions_pass_and_blame_is_not_run() -> None:
    square = _unary("Square", _save(lambda x: x * x), _g(lambda x, g: 2 * g * x))
    x = engine.tensor([0.3, -1.2, 2.0], dtype=engine.float64, requires_grad=True)
    result = check_callable(lambda x: Cube.apply(square.apply(x)).sum(), (x,), name="ok", order=2)
    assert (result.status, result.message, result.blame) == ("pass", None, None)


def test_order_2_catches_a_backward_that_is_not_differentiable() -> None:
    def detached(x, g):
        # Right values, but computed outside the graph: second derivatives are lost.
        return g * engine.tensor(2 * x.detach().numpy(), dtype=engine.float64)

    square = _unary("DetachedSquare", _save(lambda x: x * x), _g(detached))
    x = engine.tensor([0.3, -1.2, 2.0], dtype=engine.float64, requires_grad=True)
    first = check_callable(square.apply, (x,), name="once", order=1)
    second = check_callable(square.apply, (x,), name="twice", order=2)
    assert first.status == "pass"
    assert second.status == "fail"
    assert any(note.startswith("gradgradcheck:") for note in second.notes)


def test_run_item_wraps_a_callable_case(tmp_path: Path) -> None:
    path = write_batch(
        tmp_path,
        '[[case]]\nname = "sp"\nfn = "mathops:softplus"\ninputs = [{ values = [0.5] }]\n',
    )
    [(file, case)] = list(iter_items([load_file(path)], allow_python=True, paths=[str(CI)]))
    outcome = run_item(file, case)
    [result] = outcome.results
    assert (result.status, result.name, result.expr) == ("pass", "sp", "mathops:softplus")
    assert result.value == pytest.approx(0.9740769841801067)


# ------------------------------------------------------------------------------ trace


def test_trace_marks_the_blamed_node_of_a_case() -> None:
    ref = f"{BATCH}::log_cosh_loss"
    result = run("trace", ref, "--allow-python", "--path", str(CI), "--no-color")
    no_traceback(result)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("#3 Mean = 0.22308")
    [marked] = [line for line in lines if "✗" in line]
    assert "LogCosh [6]   LogCoshBackward   ✗ LogCosh.backward at" in marked
    mermaid = run("trace", ref, "--allow-python", "--path", str(CI), "--format", "mermaid")
    assert "    style n2 fill:#ffcdd2,stroke:#c62828,stroke-width:2px" in mermaid.output
    data = json.loads(run("trace", ref, "--allow-python", "--path", str(CI), "--json").output)
    assert [n.get("blame") is not None for n in data["nodes"]] == [False, False, True, False]
    assert data["blame"].endswith("off by a factor of 2")


def test_trace_of_a_sound_case_marks_nothing() -> None:
    result = run("trace", f"{BATCH}::softplus_layer", "--allow-python", "--path", str(CI))
    assert result.exit_code == 0 and "✗" not in result.output
    assert "Softplus [5, 2]   SoftplusBackward" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([f"{BATCH}::log_cosh"], "run with --allow-python (or GRADCHECK_ALLOW_PYTHON=1) to trace"),
        ([f"{BATCH}::log_cosj", "--allow-python"], "no case 'log_cosj' (did you mean 'log_cosh'?)"),
        ([f"{BATCH}::log_cosh", "--at", "x=1"], "--at goes with an expression"),
        (["missing.toml::x"], "missing.toml: no such file"),
    ],
)
def test_trace_case_errors_exit_2(args: list[str], message: str) -> None:
    result = run("trace", *args, "--path", str(CI))
    no_traceback(result)
    assert result.exit_code == 2
    assert message in result.output


def test_trace_case_by_pytest_id_works_for_expression_cases_too() -> None:
    seed = Path(__file__).parents[2] / "examples" / "batch" / "seed.toml"
    by_name = run("trace", f"{seed}::quadratic", "--no-color")  # its only point
    by_id = run("trace", f"{seed}::quadratic[x=3]", "--no-color")
    assert by_name.exit_code == by_id.exit_code == 0, by_name.output
    assert by_name.output == by_id.output
    assert by_name.output.startswith("#6 x*x + 2*x + 1 = 16") and "✗" not in by_name.output
    second = run("trace", f"{seed}::zeroing gradients[x=-1.5]", "--no-color")
    assert second.exit_code == 0 and "x = -1.5   leaf" in second.output
    ambiguous = run("trace", f"{seed}::zeroing gradients")
    assert ambiguous.exit_code == 2 and "zeroing gradients[x=3]" in ambiguous.output


def test_an_expression_trace_marks_an_engine_op_whose_rule_is_wrong() -> None:
    from engine._ops import OPS

    row = OPS["sin"]
    right = row.rules
    # A wrong derivative in the op table itself, which is what a trace of an expression can
    # catch: the frozen row is patched in place (every recorded node refers to it).
    object.__setattr__(row, "rules", (lambda g, x: -g * x.cos(),))
    try:
        result = run("trace", "exp(x) * sin(x*y)", "--at", "x=0.5,y=2", "--no-color")
        mermaid = run("trace", "exp(x) * sin(x*y)", "--at", "x=0.5,y=2", "--format", "mermaid")
    finally:
        object.__setattr__(row, "rules", right)
    assert result.exit_code == 0
    [marked] = [line for line in result.output.splitlines() if "✗" in line]
    assert "sin(x*y) = " in marked and "SinBackward0" in marked
    assert "✗ SinBackward0: off by a sign" in marked
    assert "fill:#ffcdd2" in mermaid.output
    clean = run("trace", "exp(x) * sin(x*y)", "--at", "x=0.5,y=2", "--no-color")
    assert "✗" not in clean.output
