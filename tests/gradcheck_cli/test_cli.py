"""The command line through CliRunner: every command, option and exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gradcheck_cli import __version__
from gradcheck_cli.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples" / "batch"
SEED = str(EXAMPLES / "seed.toml")
FAILS = str(EXAMPLES / "fails.toml")
ENV = {"COLUMNS": "100", "NO_COLOR": None, "FORCE_COLOR": None}
REPORT_KEYS = {"name", "expr", "point", "status", "value", "derivative", "gradient", "error"}


def run(*args: str, env: dict | None = None) -> Result:
    """Invoke `gradcheck ARGS` with a pinned width and no colour settings inherited."""
    return CliRunner().invoke(main, list(args), env={**ENV, **(env or {})})


def no_traceback(result: Result) -> None:
    """User errors are one-line messages, never Python tracebacks."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_version_and_help() -> None:
    for flag in ("--version", "-V"):
        result = run(flag)
        assert (result.exit_code, result.output) == (0, f"gradcheck {__version__}\n")
    result = run("--help")
    assert result.exit_code == 0
    for command in ("grad", "trace", "check"):
        assert command in result.output
    for command in ("grad", "trace", "check"):
        assert run(command, "--help").exit_code == 0


def test_grad_passes_and_prints_the_three_way_table() -> None:
    result = run("grad", "x*x + 2*x + 1", "--at", "x=3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "x*x + 2*x + 1  at x=3  =  16"
    row = next(line for line in lines if line.startswith("x "))
    assert row.split()[:5] == ["x", "8", "2*x", "+", "2"]
    assert lines[-1].startswith("✓ PASS  autograd, SymPy and finite differences agree")


def test_grad_json_is_the_contract_report() -> None:
    result = run("grad", "x*x + 2*x + 1", "--at", "x=3", "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["version"] == 1
    assert report["summary"] == {"total": 1, "passed": 1, "failed": 0, "errors": 0}
    [case] = report["cases"]
    assert REPORT_KEYS | {"message"} == set(case)
    assert case["point"] == {"x": 3.0} and case["value"] == 16.0
    assert case["derivative"] == {"x": "2*x + 2"}
    for source in ("autograd", "symbolic", "numeric"):
        assert case["gradient"][source]["x"] == pytest.approx(8.0, abs=1e-9)


def test_grad_merges_repeated_and_comma_separated_points() -> None:
    one = json.loads(run("grad", "x*y", "--at", "x=3,y=2", "--json").output)
    two = json.loads(run("grad", "x*y", "--at", "x=3", "--at", "y=2", "--json").output)
    assert one == two
    assert one["cases"][0]["gradient"]["autograd"] == {"x": 2.0, "y": 3.0}


def test_grad_order_two_adds_the_hessian() -> None:
    result = run("grad", "x**3 + x*y", "--at", "x=2,y=1", "--order", "2", "--json")
    case = json.loads(result.output)["cases"][0]
    assert set(case["hessian"]) == {"autograd", "symbolic", "numeric"}
    assert case["hessian"]["symbolic"] == {"x": {"x": 12.0, "y": 1.0}, "y": {"x": 1.0, "y": 0.0}}
    text = run("grad", "x**3 + x*y", "--at", "x=2,y=1", "--order", "2").output
    assert "Hessian" in text and "x,y" in text


def test_grad_tolerances_and_dtype_reach_the_checker() -> None:
    result = run("grad", "sin(x)", "--at", "x=1", "--dtype", "float32", "--json")
    case = json.loads(result.output)["cases"][0]
    assert case["status"] == "pass"
    assert case["gradient"]["autograd"]["x"] == pytest.approx(0.5403023, rel=1e-6)
    assert case["gradient"]["autograd"]["x"] != case["gradient"]["symbolic"]["x"]  # float32
    # A zero tolerance turns float32 round-off into a reported mismatch (exit 1).
    strict = run(
        "grad", "sin(x)", "--at", "x=1", "--dtype", "float32", "--atol", "0", "--rtol", "0"
    )
    assert strict.exit_code == 1
    assert "✗ FAIL" in strict.output


def test_grad_graph_and_steps() -> None:
    result = run("grad", "sin(x)", "--at", "x=1", "--graph", "--steps")
    assert result.exit_code == 0
    assert "leaf · grad 0.540302" in result.output
    assert "SinBackward0" in result.output
    assert "finite-difference error |numeric − SymPy| for d/dx at x=1" in result.output
    assert "▲ the checker's step h = 6.1e-06" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x +* 2", "--at", "x=1"], "Error: expression, column 4: unexpected '*'"),
        (["2x", "--at", "x=1"], "Error: expression, column 2: missing operator: did you mean 2*x?"),
        (["sinn(x)", "--at", "x=1"], "did you mean sin?"),
        (["x + y", "--at", "x=1"], "Error: no value for y: add --at y=1"),
        (["x", "--at", "x=1,z=2"], "Error: --at z: z is not in the expression (it uses x)"),
        (["x", "--at", "x"], "'x' is not NAME=VALUE (for example x=3)"),
        (["x", "--at", "x=abc"], "'abc' is not a number (in 'x=abc')"),
        (["x", "--at", "x=inf"], "x must be a finite number, not inf"),
        (["x", "--at", "1x=2"], "'1x' is not a variable name"),
        (["x", "--at", "x=1", "--at", "x=2"], "x is given twice (1 and 2)"),
        (["x", "--at", "x=1", "--order", "3"], "Invalid value for '--order'"),
        (["x", "--at", "x=1", "--dtype", "float16"], "Invalid value for '--dtype'"),
        (["x", "--at", "x=1", "--atol", "-1"], "Invalid value for '--atol'"),
        (["x", "--at", "x=1", "--frobnicate"], "No such option '--frobnicate'"),
    ],
)
def test_grad_bad_input_exits_2_with_one_line_saying_what_and_where(
    args: list[str], message: str
) -> None:
    result = run("grad", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    no_traceback(result)


def test_parse_errors_show_a_caret_under_the_column() -> None:
    result = run("grad", "x +* 2", "--at", "x=1")
    assert result.stderr.splitlines()[1:] == ["  x +* 2", "     ^"]


def test_a_domain_error_is_bad_input() -> None:
    result = run("grad", "log(x)", "--at", "x=-1")
    assert result.exit_code == 2
    assert "! ERROR" in result.output and "log" in result.output
    no_traceback(result)


def test_trace_tree_mermaid_dot_and_json() -> None:
    tree = run("trace", "(a + b) * (a * b)", "--at", "a=2,b=3")
    assert tree.exit_code == 0
    assert tree.output.splitlines()[0] == "#4 (a + b)*(a*b) = 30   MulBackward0 · grad 1"
    assert "#0 a = 2   leaf · grad 21" in tree.output
    assert "#1 b = 3   leaf · grad 16" in tree.output
    assert "↑ see #0 above" in tree.output
    mermaid = run("trace", "x*x + 2*x + 1", "--at", "x=3", "--format", "mermaid").output
    assert mermaid.startswith("graph TD\n") and 'n0["x = 3<br/>leaf · grad 8"]' in mermaid
    dot = run("trace", "x*x + 2*x + 1", "--at", "x=3", "--format", "dot").output
    assert dot.startswith("digraph gradcheck {") and dot.rstrip().endswith("}")
    data = json.loads(run("trace", "x*x", "--at", "x=3", "--json").output)
    assert [n["label"] for n in data["nodes"]] == ["x", "x*x"]
    assert data["nodes"][0]["grad"] == 6.0


def test_trace_bad_input() -> None:
    result = run("trace", "x*", "--at", "x=1")
    assert result.exit_code == 2 and "Error: expression, column" in result.output
    assert run("trace", "x", "--at", "x=1", "--format", "svg").exit_code == 2


def test_check_table_passes_on_the_seed_examples() -> None:
    result = run("check", SEED)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == SEED
    assert lines[-1].startswith("8 passed in ")
    assert sum(line.startswith("✓ PASS") for line in lines) == 8


def test_check_failure_shows_what_failed_and_exits_1() -> None:
    result = run("check", FAILS, env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "✗ FAIL   cube, wrong expectation" in result.output
    assert "d/dx: autograd 12 but expected 6\n" in result.output
    assert result.output.splitlines()[-1].startswith("1 passed, 1 failed in ")


def test_check_json_report_matches_the_contract() -> None:
    result = run("check", SEED, FAILS, "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["summary"] == {"total": 10, "passed": 9, "failed": 1, "errors": 0}
    for case in report["cases"]:
        assert REPORT_KEYS <= set(case) <= REPORT_KEYS | {"message", "hessian"}
        assert case["status"] in {"pass", "fail", "error"}
        assert set(case["gradient"]) == {"autograd", "symbolic", "numeric"}
    order2 = [c for c in report["cases"] if c["name"] == "quadratic, second order"]
    assert order2[0]["hessian"]["symbolic"] == {"x": {"x": 2.0}}
    assert [c["point"] for c in report["cases"] if c["name"] == "zeroing gradients"] == [
        {"x": 3.0},
        {"x": -1.5},
    ]


def test_check_junit_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    result = run("check", SEED, FAILS, "--format", "junit", "--output", str(out))
    assert result.exit_code == 1
    assert f"junit report written to {out}" in result.output
    root = ET.parse(out).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == [SEED, FAILS]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("10", "1", "0")
    [failure] = root.iter("failure")
    assert "expected 6" in failure.get("message")


def test_check_jobs_give_the_same_report() -> None:
    serial = run("check", SEED, "--format", "json")
    parallel = run("check", SEED, "--format", "json", "--jobs", "2")
    assert parallel.exit_code == serial.exit_code == 0
    assert json.loads(parallel.output) == json.loads(serial.output)


def test_check_fail_fast_stops_at_the_first_failure() -> None:
    result = run("check", FAILS, SEED, "--fail-fast")
    assert result.exit_code == 1
    assert "stopped by --fail-fast, 8 of 9 cases not run" in result.output
    assert "cube, right expectation" not in result.output


def test_check_shards_split_the_cases() -> None:
    names = []
    for k in (1, 2, 3):
        report = json.loads(
            run("check", SEED, FAILS, "--format", "json", "--shard", f"{k}/3").output
        )
        names.append([(c["name"], tuple(c["point"].items())) for c in report["cases"]])
    everything = json.loads(run("check", SEED, FAILS, "--format", "json").output)["cases"]
    assert sorted(n for part in names for n in part) == sorted(
        (c["name"], tuple(c["point"].items())) for c in everything
    )
    assert "shard 2/3" in run("check", SEED, "--shard", "2/3").output


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "a/b", "2"])
def test_check_bad_shard(spec: str) -> None:
    result = run("check", SEED, "--shard", spec)
    assert result.exit_code == 2 and "Invalid value for '--shard'" in result.output


def test_check_unusable_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults]\natoll = 1\n")
    result = run("check", SEED, str(bad))
    assert result.exit_code == 2
    assert (
        result.output == f"Error: {bad}: [defaults]: unknown key 'atoll' (did you mean 'atol'?)\n"
    )
    missing = run("check", str(tmp_path / "missing.yaml"))
    assert missing.exit_code == 2 and "missing.yaml: no such file" in missing.output
    no_traceback(missing)
    assert run("check").exit_code == 2


def test_check_bad_case_is_an_error_row_and_the_rest_run(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "case:\n"
        "  - {name: ok, expr: x*x, at: {x: 3}}\n"
        "  - {name: typo, expr: x, at: {x: 1}, expct: {x: 1}}\n"
        "  - {name: unparsable, expr: 'x +', at: {x: 1}}\n"
        "  - {name: domain, expr: 'log(x)', at: {x: -1}}\n"
    )
    report = json.loads(run("check", str(path), "--format", "json").output)
    assert [c["status"] for c in report["cases"]] == ["pass", "error", "error", "error"]
    assert report["cases"][1]["message"] == (
        f"{path}: case 2 (typo): unknown key 'expct' (did you mean 'expect'?)"
    )
    table = run("check", str(path))
    assert table.exit_code == 1
    assert table.output.splitlines()[-1].startswith("1 passed, 3 errors in ")


def test_check_output_to_an_unwritable_place(tmp_path: Path) -> None:
    result = run("check", SEED, "--output", str(tmp_path / "no" / "such" / "dir.json"))
    assert result.exit_code == 2 and "cannot write" in result.output


def test_colour_follows_no_color_and_the_flag() -> None:
    forced = {"FORCE_COLOR": "1"}
    assert "\x1b[" in run("grad", "x", "--at", "x=1", env=forced).output
    assert "\x1b[" not in run("grad", "x", "--at", "x=1", env={**forced, "NO_COLOR": "1"}).output
    assert "\x1b[" not in run("--no-color", "grad", "x", "--at", "x=1", env=forced).output
    assert "\x1b[" not in run("grad", "x", "--at", "x=1", "--no-color", env=forced).output
    assert "\x1b[" not in run("grad", "x", "--at", "x=1").output  # not a terminal


def test_internal_errors_are_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(case: object) -> list:
        raise RuntimeError("boom")

    monkeypatch.setattr("gradcheck_cli.checks.run_case", broken)
    result = run("grad", "x", "--at", "x=1")
    assert result.exit_code == 3
    assert result.output == (
        "Error: internal error: RuntimeError: boom (run with --debug for the traceback)\n"
    )
    debug = run("--debug", "grad", "x", "--at", "x=1")
    assert isinstance(debug.exception, RuntimeError)


def test_debug_shows_the_traceback_of_a_user_error_too() -> None:
    result = run("grad", "x +", "--at", "x=1", "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "ExprError" in result.stderr


def test_a_kink_passes_with_notes_and_says_the_numeric_estimate_differs() -> None:
    result = run("grad", "relu(x)", "--at", "x=0", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "note: not differentiable here" in result.output
    assert "✓ PASS  autograd and SymPy agree; the finite-difference estimate does not" in (
        result.output
    )


def test_check_table_to_a_file_keeps_stdout_short(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    result = run("check", FAILS, "--output", str(out))
    assert result.exit_code == 1
    assert result.output.startswith("1 passed, 1 failed in ")
    text = out.read_text()
    assert text.startswith(f"{FAILS}\nstatus ")
    assert "✗ FAIL" in text and text.splitlines()[-1].startswith("1 passed, 1 failed in ")


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir()))
def test_every_example_batch_passes_except_the_deliberate_failure(name: str) -> None:
    result = run("check", str(EXAMPLES / name), "--format", "json")
    summary = json.loads(result.output)["summary"]
    if name == "fails.toml":
        assert (result.exit_code, summary["failed"], summary["passed"]) == (1, 1, 1)
    else:
        assert result.exit_code == 0, result.output
        assert summary["total"] == summary["passed"] > 0


# ------------------------------------------------- expressions people paste (issue 14)


@pytest.mark.parametrize(
    "args",
    [
        ["grad", "-m*g*x/(k*T)", "--at", "m=1,g=9.8,x=2,k=1.5,T=3"],
        ["grad", "--at", "m=1,g=9.8,x=2,k=1.5,T=3", "-m*g*x/(k*T)"],
        ["grad", "--at=m=1,g=9.8,x=2,k=1.5,T=3", "-m*g*x/(k*T)", "--json"],
        ["trace", "-m*g*x/(k*T)", "--at", "m=1,g=9.8,x=2,k=1.5,T=3"],
    ],
)
def test_an_expression_may_start_with_a_minus(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


def test_an_unknown_long_option_is_still_an_error() -> None:
    result = CliRunner().invoke(main, ["grad", "x", "--at", "x=1", "--bogus"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_unicode_names_work_in_the_expression_and_in_at() -> None:
    result = CliRunner().invoke(main, ["grad", "α*x₁**2", "--at", "α=2,x₁=3", "--json"])
    assert result.exit_code == 0, result.output
    case = json.loads(result.output)["cases"][0]
    assert case["gradient"]["autograd"] == {"α": 9.0, "x₁": 12.0}


def test_a_superscript_is_a_power_in_both_places() -> None:
    result = CliRunner().invoke(main, ["grad", "x²", "--at", "x=3", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["cases"][0]["gradient"]["symbolic"] == {"x": 6.0}
    result = CliRunner().invoke(main, ["grad", "x²", "--at", "x²=3"])
    assert result.exit_code == 2 and "x² means x**..., give --at x=..." in result.output


def test_only_the_process_own_command_line_skips_the_last_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The console script (args from sys.argv) freezes the heap as it leaves, so shutdown does
    # not walk it; a caller that passes args (CliRunner, an embedding program) keeps its GC.
    import gc

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    assert run("--version").exit_code == 0
    assert frozen == []
    monkeypatch.setattr("sys.argv", ["gradcheck", "--version"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert (stop.value.code, frozen) == (0, [True])
    monkeypatch.setattr("sys.argv", ["gradcheck", "grad", "x +", "--at", "x=1"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert (stop.value.code, frozen) == (2, [True, True])
