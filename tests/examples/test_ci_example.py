"""examples/ci works when copied: the pre-commit hook and the GitHub workflow, validated and run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gradcheck_cli.cli import main

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = PYPROJECT["project"]["urls"]["Repository"]
WORKFLOW = CI / ".github" / "workflows" / "gradcheck.yml"
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
PRE_COMMIT_CONFIG = CI / ".pre-commit-config.yaml"


def load(path: Path) -> object:
    """A YAML file, parsed safely."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_gradcheck(argv: list[str], monkeypatch: pytest.MonkeyPatch, cwd: Path = CI, **env: str):
    """`gradcheck ARGV` from the example's directory, as a shell there would run it."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("GRADCHECK_ALLOW_PYTHON", raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    assert argv[0] == "gradcheck", argv
    return CliRunner().invoke(main, argv[1:], env={"NO_COLOR": "1", **env})


@pytest.fixture(autouse=True)
def fresh_mathops() -> Iterator[None]:
    """Each run imports the example's mathops anew and leaves no trace for later tests.

    (`--path` puts its directories on sys.path for good, as the command line should.)
    """

    def take() -> dict[str, object]:
        return {m: sys.modules.pop(m) for m in list(sys.modules) if m.split(".")[0] == "mathops"}

    before, path = take(), list(sys.path)
    yield
    take()
    sys.modules.update(before)
    sys.path[:] = path


# --- pre-commit ---------------------------------------------------------------------------


def test_the_hook_manifest_installs_gradcheck_itself_and_runs_its_console_script() -> None:
    [hook] = load(MANIFEST)
    assert hook["id"] == "gradcheck"
    # `language: python`: pre-commit pip-installs this repository into the hook's own
    # environment, so the hook does not depend on what the user's environment has.
    assert hook["language"] == "python"
    command = shlex.split(hook["entry"])
    assert command[:2] == ["gradcheck", "check"]
    assert command[0] in PYPROJECT["project"]["scripts"]
    files = re.compile(hook["files"])
    for name in ("gradcheck.toml", "tests/gradcheck_ops.yaml", "gradcheck.yml", "gradcheck.json"):
        assert files.search(name), name
    for name in ("pyproject.toml", "gradcheck/ops.py", "notgradcheck.toml", "gradcheck.txt"):
        assert not files.search(name), name


def test_the_example_config_uses_this_repository_and_the_manifests_hook() -> None:
    [repo] = load(PRE_COMMIT_CONFIG)["repos"]
    assert repo["repo"] == REPOSITORY
    assert repo["rev"]
    [hook] = repo["hooks"]
    [provided] = load(MANIFEST)
    assert hook["id"] == provided["id"]
    files = re.compile(hook["files"])
    assert files.search("gradcheck.toml") and files.search("mathops/ops.py")
    assert not files.search("README.md")
    assert hook["pass_filenames"] is False
    for path in hook["args"]:  # the files the args name exist next to the config
        if not path.startswith("-") and "." in path:
            assert (CI / path).exists(), path


def test_the_hook_as_configured_blames_the_wrong_backward(monkeypatch) -> None:
    [provided] = load(MANIFEST)
    [hook] = load(PRE_COMMIT_CONFIG)["repos"][0]["hooks"]
    result = run_gradcheck(shlex.split(provided["entry"]) + hook["args"], monkeypatch)
    assert result.exit_code == 1, result.output  # the example fails on purpose
    assert "blame: LogCosh.backward at mathops/ops.py:" in result.output
    assert re.search(r"^3 passed, 2 failed in ", result.output, re.MULTILINE)


def test_the_hook_with_its_default_arguments_checks_the_changed_batch_files(monkeypatch) -> None:
    [provided] = load(MANIFEST)
    batch = ROOT / "examples" / "batch" / "seed.toml"
    result = run_gradcheck(shlex.split(provided["entry"]) + [str(batch)], monkeypatch)
    assert result.exit_code == 0, result.output
    assert re.search(r"^8 passed in ", result.output, re.MULTILINE)


@pytest.mark.skipif(shutil.which("pre-commit") is None, reason="pre-commit is not installed")
@pytest.mark.parametrize(
    ("command", "path"),
    [("validate-manifest", MANIFEST), ("validate-config", PRE_COMMIT_CONFIG)],
)
def test_pre_commit_accepts_the_files(command: str, path: Path) -> None:
    done = subprocess.run(
        ["pre-commit", command, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the GitHub workflow ------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
ACTION = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+@v\d+$")


def workflow() -> dict:
    """The example workflow; PyYAML reads the key `on` as True (YAML 1.1), GitHub as 'on'."""
    data = load(WORKFLOW)
    data["on"] = data.pop(True)
    return data


def expand(text: str, matrix: dict[str, object]) -> str:
    """Substitute `${{ matrix.KEY }}`; any other expression is not expected in a command."""

    def value(m: re.Match[str]) -> str:
        kind, _, key = m[1].partition(".")
        assert kind == "matrix" and key in matrix, f"unexpected expression {m[0]} in {text!r}"
        return str(matrix[key])

    return EXPRESSION.sub(value, text)


def test_the_workflow_is_least_privilege_cached_and_installs_from_the_repository() -> None:
    data = workflow()
    assert set(data["on"]) == {"push", "pull_request"}
    assert data["permissions"] == {"contents": "read"}
    spec = data["env"]["GRADCHECK"]
    assert re.fullmatch(rf"gradcheck @ git\+{re.escape(REPOSITORY)}@[\w.-]+", spec), spec
    for name, job in data["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] > 0, name
        matrix = job.get("strategy", {}).get("matrix", {})
        steps = job["steps"]
        assert steps[0]["uses"].startswith("actions/checkout@"), name
        for step in steps:
            if "uses" in step:
                assert ACTION.match(step["uses"]), step["uses"]  # a released major version
            for m in EXPRESSION.finditer(yaml.safe_dump(step)):
                kind, _, key = m[1].partition(".")
                assert m[1] == "always()" or (kind == "matrix" and key in matrix), m[0]
        [python] = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
        assert python["with"]["cache"] == "pip"
        for path in python["with"]["cache-dependency-path"].split():
            assert (CI / path).is_file(), path  # the cache key hashes files that exist
        installs = [s["run"] for s in steps if "pip install" in s.get("run", "")]
        assert installs and all('"$GRADCHECK"' in line for line in installs), installs
        for upload in [s for s in steps if s.get("uses", "").startswith("actions/upload-art")]:
            assert upload["if"] == "always()"  # the report matters most when the check fails
            assert upload["with"]["if-no-files-found"] == "error"


def test_every_shard_runs_its_cases_and_writes_the_report_it_uploads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = workflow()["jobs"]["gradcheck"]
    shards = job["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1))
    project = tmp_path / "project"
    shutil.copytree(CI, project, ignore=shutil.ignore_patterns("__pycache__"))
    seen: list[str] = []
    for shard in shards:
        matrix = {"shard": shard}
        codes = []
        for step in job["steps"]:
            command = expand(step.get("run", ""), matrix)
            if not command.startswith("gradcheck "):
                continue
            assert f"--shard {shard}/{len(shards)}" in command
            env = step.get("env", {})
            result = run_gradcheck(shlex.split(command), monkeypatch, project, **env)
            codes.append(result.exit_code)
            seen += re.findall(r"^[✓✗!] \w+ +(\w+)", result.output, re.MULTILINE)
        # Shard 1 holds log_cosh_loss, shard 2 log_cosh: both fail on purpose.
        assert codes and set(codes) == {1}, codes
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/upload-artifact@"):
                report = project / expand(step["with"]["path"], matrix)
                assert "LogCosh.backward" in report.read_text(encoding="utf-8")
    cases = re.findall(r'^name = "(\w+)"', (CI / "gradcheck.toml").read_text(), re.MULTILINE)
    assert sorted(set(seen)) == sorted(cases)  # the shards together run every case


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not installed")
def test_actionlint_accepts_the_workflow() -> None:
    done = subprocess.run(
        ["actionlint", "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
