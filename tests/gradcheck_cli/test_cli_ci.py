"""`check` in CI: --format github, --junit beside any format, -q/-v, stdin, `-o -`, conflicts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gradcheck_cli.cli import main
from gradcheck_cli.schema import case_lines

sys.path.insert(0, str(Path(__file__).parent))
from test_github import parse  # noqa: E402
from test_junit import assert_valid  # noqa: E402

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).parents[2] / "examples" / "batch"
SEED = str(EXAMPLES / "seed.toml")
FAILS = str(EXAMPLES / "fails.toml")
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "FORCE_COLOR": None, "GITHUB_STEP_SUMMARY": None}

TOML = """\
[defaults]
atol = 1e-6

[[case]]
name = "right"
expr = "x**2"
at = { x = 3.0 }

# a comment between cases
[[case]]
name = "wrong"
expr = "x**3"
at = { x = 2.0 }
expect = { x = 6.0 }

[[case]]
name = "later"
expr = "sin(x)"
points = [{ x = 0.5 }, { x = 1.5 }]
"""
YAML = """\
case:
  - name: right
    expr: x**2
    at: {x: 3.0}
  - name: wrong
    expr: x**3
    at: {x: 2.0}
    expect: {x: 6.0}
  - name: later
    expr: sin(x)
    points: [{x: 0.5}, {x: 1.5}]
"""
JSON = """\
{"case": [
  {"name": "right", "expr": "x**2", "at": {"x": 3.0}},

  {"name": "wrong", "expr": "x**3", "at": {"x": 2.0},
   "expect": {"x": 6.0}},
  {"name": "later", "expr": "sin(x)", "points": [{"x": 0.5}, {"x": 1.5}]}
]}
"""
# The line of each case (1-based) in the texts above.
LINES = {"toml": (4, 10, 16), "yaml": (2, 5, 9), "json": (2, 4, 6)}
TEXTS = {"toml": TOML, "yaml": YAML, "json": JSON}


def run(*args: str, env: dict | None = None, input: str | None = None) -> Result:
    """`gradcheck ARGS` through CliRunner, plain, at a pinned width."""
    return CliRunner().invoke(main, list(args), env={**ENV, **(env or {})}, input=input)


@pytest.fixture
def batch(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The three-case batch in the format the test is parametrised with."""
    kind = getattr(request, "param", "toml")
    path = tmp_path / f"gradcheck_cases.{kind}"
    path.write_text(TEXTS[kind], encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["toml", "yaml", "json"])
def test_case_lines_point_at_each_case(kind: str) -> None:
    assert case_lines(TEXTS[kind], kind, 3) == LINES[kind]
    assert case_lines(TEXTS[kind], kind, 4) == ()  # not what the loader found: say nothing


@pytest.mark.parametrize("batch", ["toml", "yaml", "json"], indirect=True)
def test_github_format_logs_annotates_the_case_line_and_writes_the_summary(
    batch: Path, tmp_path: Path
) -> None:
    summary = tmp_path / "step-summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    result = run("check", str(batch), "--format", "github", env=env)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(batch) and lines[1].split()[:2] == ["status", "case"]  # the log
    [command] = [line for line in lines if line.startswith("::")]
    name, properties, message = parse(command)
    kind = batch.suffix[1:]
    expected = ("error", str(batch), str(LINES[kind][1]))
    assert (name, properties["file"], properties["line"]) == expected
    assert properties["title"] == "gradcheck FAIL: wrong at x=2"
    assert "d/dx: autograd 12 but expected 6" in message.splitlines()[0]
    assert lines[-1].startswith("3 passed, 1 failed in ")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("### ❌ gradcheck: 3 passed, 1 failed in ")
    assert f"| FAIL | {batch}:{LINES[kind][1]} | wrong | x=2 |" in text


def test_a_green_github_run_has_no_annotation_and_a_green_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = run("check", SEED, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 0
    assert not [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert summary.read_text(encoding="utf-8").startswith("### ✅ gradcheck: 8 passed in ")
    # Outside Actions (no GITHUB_STEP_SUMMARY) there is simply no summary file.
    assert run("check", SEED, "--format", "github").exit_code == 0


@pytest.mark.parametrize("form", ["table", "json", "github"])
def test_junit_beside_any_format_is_valid_and_skips_what_fail_fast_left(
    form: str, batch: Path, tmp_path: Path
) -> None:
    junit = tmp_path / "report.xml"
    result = run("check", str(batch), "--format", form, "--junit", str(junit), "-x")
    assert result.exit_code == 1, result.output
    if form == "json":
        assert json.loads(result.stdout)["summary"]["total"] == 2  # stdout: the report only
        assert f"junit report written to {junit}" in result.stderr
    else:
        assert f"junit report written to {junit}" in result.stdout.splitlines()[-1]
    root = assert_valid(junit.read_text(encoding="utf-8"))
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == [
        "right[x=3]",
        "wrong[x=2]",
        "later[x=0.5]",
        "later[x=1.5]",
    ]
    assert [c.find("skipped") is not None for c in cases] == [False, False, True, True]
    assert cases[2].find("skipped").get("message") == "not run: stopped by --fail-fast"
    assert cases[1].get("line") == "10" and cases[1].find("failure") is not None
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "2")
    assert all(c.find("system-out") is not None for c in cases)


def test_the_same_ids_from_the_cli_and_from_pytest(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "seed.toml", pytester.path / "gradcheck_seed.toml")
    (pytester.path / "gradcheck_cases.toml").write_text(TOML, encoding="utf-8")
    plugin = () if _plugin_installed() else ("-p", "gradcheck_cli.pytest_plugin")
    pytester.runpytest_subprocess(*plugin, "-p", "no:cacheprovider", "--junitxml=pytest.xml")
    os.chdir(pytester.path)
    run("check", "gradcheck_seed.toml", "gradcheck_cases.toml", "--junit", "cli.xml")

    def ids(name: str) -> list[tuple[str, str]]:
        root = assert_valid((pytester.path / name).read_text(encoding="utf-8"))
        return sorted((c.get("classname"), c.get("name")) for c in root.iter("testcase"))

    from_cli = ids("cli.xml")
    assert from_cli == ids("pytest.xml")
    assert ("gradcheck_cases.toml", "later[x=1.5]") in from_cli
    assert ("gradcheck_seed.toml", "zeroing gradients[x=-1.5]") in from_cli


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value == "gradcheck_cli.pytest_plugin" for ep in entry_points(group="pytest11"))


def test_quiet_shows_only_the_misses_and_verbose_the_numbers_of_passes_too() -> None:
    quiet = run("check", SEED, FAILS, "-q")
    assert quiet.exit_code == 1
    assert "✓ PASS" not in quiet.output and "seed.toml" not in quiet.output
    assert "✗ FAIL   cube, wrong expectation" in quiet.output
    assert quiet.output.splitlines()[-1].startswith("9 passed, 1 failed in ")
    green = run("check", SEED, "--quiet")
    assert green.exit_code == 0 and len(green.output.splitlines()) == 1  # the count only
    verbose = run("check", SEED, "-v")
    assert verbose.exit_code == 0
    assert "✓ PASS  quadratic  x=3" in verbose.output  # each case explained under the table
    assert "d/dx: autograd 8, symbolic 8 (2*x + 2), numeric 8" in verbose.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-q", "-v"), "--quiet and --verbose contradict each other"),
        (("--json", "--format", "junit"), "--json and --format junit ask for two different"),
        (("--format", "github", "-o", "out.txt"), "--format github writes to the job's log"),
        (("--json", "-q"), "--quiet shapes the table"),
        (("--junit", "same.xml", "-o", "same.xml"), "give each report its own file"),
    ],
)
def test_options_that_contradict_each_other_are_refused(
    args: tuple[str, ...], message: str
) -> None:
    result = run("check", SEED, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not Path("out.txt").exists() and not Path("same.xml").exists()


def test_json_flag_and_format_json_are_the_same_report() -> None:
    flag, option = run("check", SEED, "--json"), run("check", SEED, "--format", "json")
    assert flag.exit_code == option.exit_code == 0
    assert json.loads(flag.stdout)["cases"] == json.loads(option.stdout)["cases"]


@pytest.mark.parametrize(
    "command", [("grad", "x*x + 2*x + 1", "--at", "x=3"), ("trace", "x*x", "--at", "x=3")]
)
def test_grad_and_trace_take_json_as_a_flag_and_as_a_format(command: tuple[str, ...]) -> None:
    flag, option = run(*command, "--json"), run(*command, "--format", "json")
    assert flag.exit_code == option.exit_code == 0
    assert json.loads(flag.stdout) == json.loads(option.stdout)
    assert json.loads(run(*command, "--json", "--format", "json").stdout) == json.loads(
        flag.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trace", "x*x", "--at", "x=3", "--json", "--format", "dot"),
         "--json and --format dot ask for two different"),
        (("grad", "x*x", "--at", "x=3", "--json", "--format", "table"),
         "--json and --format table ask for two different"),
        (("grad", "x*x", "--at", "x=3", "--format", "json", "--graph"),
         "--graph adds to the tables"),
        (("grad", "x*x", "--at", "x=3", "--json", "--steps"), "--steps adds to the tables"),
    ],
)
def test_grad_and_trace_refuse_contradicting_formats(args: tuple[str, ...], message: str
                                                     ) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_output_dash_is_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("check", SEED, "--format", "junit", "-o", "-")
    assert result.exit_code == 0
    assert ET.fromstring(result.stdout).get("tests") == "8"
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("kind", ["toml", "yaml", "json"])
def test_a_batch_from_stdin(kind: str) -> None:
    result = run("check", "-", "--json", input=TEXTS[kind])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["summary"] == {"total": 4, "passed": 3, "failed": 1, "errors": 0}
    assert report["cases"][1]["message"].startswith("<stdin>: case 2 (wrong): ")


def test_stdin_errors_name_stdin_and_dash_is_read_once() -> None:
    bad = run("check", "-", input="[[case]]\nexpr = 'x'\nat = { x = 1.0 ")
    assert bad.exit_code == 2 and bad.output.startswith("Error: <stdin>: invalid YAML")
    twice = run("check", "-", "-", input=TOML)
    assert twice.exit_code == 2 and "can be read once" in twice.output


def test_the_console_script_reads_stdin_and_annotates(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "GITHUB_STEP_SUMMARY")}
    done = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "check", "-", "--format", "github"],
        input=textwrap.dedent(TOML),
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "NO_COLOR": "1"},
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    [command] = [line for line in done.stdout.splitlines() if line.startswith("::error ")]
    assert parse(command)[1] == {
        "file": "<stdin>",
        "line": "10",
        "title": "gradcheck FAIL: wrong at x=2",
    }


# ------------------------------------------------------------ PyYAML is optional


@pytest.fixture
def without_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import yaml` fails, as in an install without the gradcheck[yaml] extra."""
    monkeypatch.setitem(sys.modules, "yaml", None)


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_yaml_batch_without_pyyaml_is_one_line_naming_the_extra(
    without_pyyaml: None, source: str
) -> None:
    if source == "file":
        result = run("check", str(EXAMPLES / "seed.yaml"))
    else:
        result = run("check", "-", input=TEXTS["yaml"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert "reading YAML needs PyYAML: pip install 'gradcheck[yaml]'" in line


def test_toml_and_json_batches_need_no_pyyaml(without_pyyaml: None) -> None:
    for name in ("seed.toml", "seed.json"):
        result = run("check", str(EXAMPLES / name), "-q")
        assert result.exit_code == 0, result.output


def test_the_library_runs_on_numpy_alone() -> None:
    # The lean install README describes (`pip install --no-deps gradcheck numpy`): engine,
    # nn, optim, gradcheck and assert_gradcheck import nothing of SymPy, Click, Rich or PyYAML.
    script = textwrap.dedent('''
        import importlib.abc, sys

        BLOCKED = {"sympy", "mpmath", "click", "rich", "yaml"}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is not installed")

        sys.meta_path.insert(0, Block())
        import engine
        from engine import nn, optim
        from engine.autograd import gradcheck, gradgradcheck
        from engine.testing import assert_gradcheck

        x = engine.randn(3, dtype=engine.float64, requires_grad=True)
        assert gradcheck(lambda t: (t.sin() * t).sum(), (x,))
        assert gradgradcheck(lambda t: t.exp().sum(), (x,))
        assert_gradcheck(lambda t: t.tanh(), x)
        model = nn.Linear(3, 1)
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        model(engine.randn(2, 3)).sum().backward()
        optimizer.step()
        print(sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED))
    ''')
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
