"""The pytest plugin, run through pytester on the example package and on small batch files."""

from __future__ import annotations

import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

# In-process runs drop the modules they import afterwards; NumPy cannot be imported twice in
# one process, so everything the plugin needs is imported here, once, outside the runs.
import engine  # noqa: F401
import gradcheck_cli.callables  # noqa: F401
import gradcheck_cli.render  # noqa: F401

pytest_plugins = ["pytester"]

CI = Path(__file__).parents[2] / "examples" / "ci"


def _plugin_args() -> tuple[str, ...]:
    """Load the plugin by module name, unless its pytest11 entry point already loads it."""
    from importlib.metadata import entry_points

    installed = any(
        ep.value == "gradcheck_cli.pytest_plugin" for ep in entry_points(group="pytest11")
    )
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    return () if installed and autoload else ("-p", "gradcheck_cli.pytest_plugin")


PLUGIN = _plugin_args()
INI = """
[pytest]
gradcheck_path = .
{extra}
"""


@pytest.fixture
def ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A copy of examples/ci (package and batch file) as the test project."""
    monkeypatch.delenv("GRADCHECK_ALLOW_PYTHON", raising=False)
    for name in [m for m in sys.modules if m.split(".")[0] == "mathops"]:
        monkeypatch.delitem(sys.modules, name)  # import this copy, not one loaded earlier
    monkeypatch.setenv("COLUMNS", "200")  # short test summaries are cut at the width
    shutil.copytree(CI / "mathops", pytester.path / "mathops")
    shutil.copy(CI / "gradcheck.toml", pytester.path / "gradcheck.toml")
    pytester.makeini(INI.format(extra="gradcheck_allow_python = true"))
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest with the plugin loaded (the pytest11 entry point does this once installed)."""
    return pytester.runpytest_inprocess(*PLUGIN, "-p", "no:cacheprovider", *args)


def test_the_example_runs_one_item_per_case_and_blames_log_cosh(ci: pytest.Pytester) -> None:
    result = run(ci, "-rf")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED gradcheck.toml::log_cosh - *blame: LogCosh.backward at mathops/ops.py:*: "
            "off by a factor of 2",
            "FAILED gradcheck.toml::log_cosh_loss - *blame: LogCosh.backward at mathops/ops.py:*",
        ]
    )
    # The failure shows the CLI's table, in plain text.
    result.stdout.fnmatch_lines(
        ["✗ FAIL   log_cosh_loss *prediction[[]6[]]*", "*hint: the analytic*"]
    )
    assert "\x1b[" not in result.stdout.str()


def test_ids_work_with_k_and_x(ci: pytest.Pytester) -> None:
    collected = run(ci, "--collect-only", "-q")
    collected.stdout.fnmatch_lines(
        [
            "gradcheck.toml::softplus",
            "gradcheck.toml::softplus_layer",
            "gradcheck.toml::softplus_float32",
            "gradcheck.toml::log_cosh",
            "gradcheck.toml::log_cosh_loss",
        ]
    )
    run(ci, "-k", "softplus").assert_outcomes(passed=3, deselected=2)
    run(ci, "-k", "log_cosh and not loss").assert_outcomes(failed=1, deselected=4)
    run(ci, "-x").assert_outcomes(passed=3, failed=1)


def test_junitxml_has_a_testcase_per_case(ci: pytest.Pytester) -> None:
    run(ci, "--junitxml=report.xml").assert_outcomes(passed=3, failed=2)
    root = ET.parse(ci.path / "report.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {
        "softplus",
        "softplus_layer",
        "softplus_float32",
        "log_cosh",
        "log_cosh_loss",
    }
    failure = cases["log_cosh"].find("failure")
    assert failure is not None and "LogCosh.backward" in failure.get("message")
    assert cases["softplus"].find("failure") is None


def test_the_gate_is_closed_by_default(ci: pytest.Pytester) -> None:
    ci.makeini(INI.format(extra=""))
    result = run(ci, "-rf")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(["*run with --allow-python (or GRADCHECK_ALLOW_PYTHON=1)*"])
    run(ci, "--gradcheck-allow-python").assert_outcomes(passed=3, failed=2)


def test_expression_cases_give_one_item_per_point(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngradcheck_files = gradcheck*.yaml\n")
    pytester.makefile(
        ".yaml",
        gradcheck_exprs="""
case:
  - name: square
    expr: x*x
    points: [{x: 3.0}, {x: -1.5}]
  - expr: sin(x)
    at: {x: 1.0}
    expect: {x: 0.5}
""",
    )
    result = run(pytester, "-v")
    result.stdout.fnmatch_lines(
        [
            "gradcheck_exprs.yaml::square[[]x=3[]] PASSED*",
            "gradcheck_exprs.yaml::square[[]x=-1.5[]] PASSED*",
            "gradcheck_exprs.yaml::sin(x)[[]x=1[]] FAILED*",
        ]
    )
    result.assert_outcomes(passed=2, failed=1)


def test_the_file_pattern_is_configurable(pytester: pytest.Pytester) -> None:
    text = '{"case": [{"expr": "x*x", "at": {"x": 2.0}}]}'
    pytester.makefile(".json", checks_mine=text, gradcheck_default=text)
    pytester.makefile(".toml", gradcheck_default='[[case]]\nexpr = "x"\nat = { x = 1 }\n')
    result = run(pytester, "--collect-only", "-q")  # TOML only by default
    result.stdout.fnmatch_lines(["gradcheck_default.toml::x[[]x=1[]]", "1 test collected*"])
    pytester.makeini("[pytest]\ngradcheck_files = checks_*.json\n")
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["checks_mine.json::x*x[[]x=2[]]"])
    assert "gradcheck_default" not in result.stdout.str()


def test_files_that_are_not_batch_files_are_left_alone(pytester: pytest.Pytester) -> None:
    # An unrelated config and a saved report beside real tests, under YAML/JSON patterns.
    pytester.makeini("[pytest]\ngradcheck_files = gradcheck*.toml gradcheck*.json\n")
    pytester.makefile(".json", gradcheck_config='{"jobs": 2, "paths": ["src"]}')
    pytester.makefile(
        ".json",
        **{"gradcheck-report": '{"version": 1, "summary": {"total": 0}, "cases": []}'},
    )
    pytester.makefile(".toml", gradcheck_cases="[[cases]]\nexpr = 'x'\n")  # no 'case' table
    pytester.makefile(".toml", gradcheck_broken="[[case]\n")  # not even TOML: a warning
    pytester.makepyfile(test_real="def test_one():\n    assert True\n")
    result = run(pytester, "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*gradcheck: not collected: gradcheck_broken.toml: invalid TOML*"])
    assert "Traceback" not in result.stdout.str()


def test_a_bad_defaults_table_is_a_one_line_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", gradcheck_bad="[defaults]\natoll = 1\n[[case]]\nexpr = 'x'\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*gradcheck_bad.toml: [[]defaults[]]: unknown key 'atoll' (did you mean 'atol'?)"]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_bad_case_fails_its_own_item_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # short test summaries are cut at the width
    pytester.makefile(
        ".toml",
        gradcheck_mixed='[[case]]\nexpr = "x*x"\nat = { x = 1 }\n\n'
        '[[case]]\nname = "typo"\nexpr = "x"\nat = { x = 1 }\nordr = 2\n',
    )
    result = run(pytester, "-rf")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED gradcheck_mixed.toml::typo - *did you mean 'order'*"])


def test_repeated_names_keep_ids_unique(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        gradcheck_twice='[[case]]\nexpr = "x"\nat = { x = 1 }\n\n'
        '[[case]]\nexpr = "x"\nat = { x = 1 }\n',
    )
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["gradcheck_twice.toml::x[[]x=1[]]", "gradcheck_twice.toml::x[[]x=1[]] (case 2)"]
    )


def test_user_code_that_exits_crashes_or_hangs_fails_its_item_and_the_session_goes_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("GRADCHECK_ALLOW_PYTHON", raising=False)
    pkg = pytester.mkpydir("userpkg_plugin")
    (pkg / "ops.py").write_text(
        "import os, sys\n"
        "def quits(x):\n    sys.exit(0)\n"
        "def interrupts(x):\n    raise KeyboardInterrupt\n"
        "def vanishes(x):\n    os._exit(1)\n"
        "def hangs(x):\n    while True: pass\n"  # one line: where the timeout lands
        "def good(x):\n    print('noise ' * 100000)\n    return (x * x).sum()\n"
    )
    case = '[[case]]\nname = "{0}"\nfn = "userpkg_plugin.ops:{0}"\ninputs = [{{ shape = [2] }}]\n'
    names = ["quits", "interrupts", "vanishes", "hangs", "good"]
    cases = [case.format(name) + ("timeout = 120\n" if name == "good" else "") for name in names]
    pytester.makefile(".toml", gradcheck_hostile="\n".join(cases))
    pytester.makeini(INI.format(extra="gradcheck_allow_python = true\ngradcheck_timeout = 1"))
    result = run(pytester, "-rf")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "FAILED gradcheck_hostile.toml::quits - *SystemExit: 0 (raised at *ops.py:3)*",
            "FAILED gradcheck_hostile.toml::interrupts - *KeyboardInterrupt (raised at *",
            "FAILED gradcheck_hostile.toml::vanishes - *exit code 1*",
            "FAILED gradcheck_hostile.toml::hangs - *timed out after 1 s at *ops.py:9*",
        ]
    )
    assert "noise noise" not in result.stdout.str()  # the passing case's print stays captured
