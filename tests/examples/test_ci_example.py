"""examples/ci works when copied: the pre-commit hook and the GitHub workflow, validated and run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gradcheck_cli.cli import main

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = PYPROJECT["project"]["urls"]["Repository"]
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
PRE_COMMIT_CONFIG = CI / ".pre-commit-config.yaml"


def load(path: Path) -> object:
    """A YAML file, parsed safely."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_gradcheck(argv: list[str], monkeypatch: pytest.MonkeyPatch, **env: str):
    """`gradcheck ARGV` from the example's directory, as a shell there would run it."""
    monkeypatch.chdir(CI)
    for name in [m for m in sys.modules if m.split(".")[0] == "mathops"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delenv("GRADCHECK_ALLOW_PYTHON", raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    assert argv[0] == "gradcheck", argv
    return CliRunner().invoke(main, argv[1:], env={"NO_COLOR": "1", **env})


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
