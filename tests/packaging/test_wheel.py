"""The package installs like one: a wheel with full metadata, run from outside the repository."""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import engine
import gradcheck_cli

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# What a source distribution of the project holds: the wheel is built from a copy of it, so
# that the build leaves nothing in the work tree (build/, *.egg-info) and cannot see tests/.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "engine", "gradcheck_cli")


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; it must succeed. Returns stdout."""
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def outside_env() -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH pointing into this repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FORCE_COLOR")}
    env["NO_COLOR"] = "1"
    return env


def test_the_version_has_one_source_the_distribution_metadata() -> None:
    assert engine.__version__ == gradcheck_cli.__version__ == PYPROJECT["project"]["version"]
    for package in ("engine", "gradcheck_cli"):
        assert (ROOT / package / "py.typed").is_file()
        source = (ROOT / package / "__init__.py").read_text(encoding="utf-8")
        assert PYPROJECT["project"]["version"] not in source


def test_the_metadata_is_complete() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"  # an SPDX expression (PEP 639), not a table
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert project["authors"] and all(a.get("name") for a in project["authors"])
    assert {"Homepage", "Repository", "Issues"} <= set(project["urls"])
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers and "Framework :: Pytest" in classifiers
    # PEP 639: a licence expression and License :: classifiers must not be mixed.
    assert not [c for c in classifiers if c.startswith("License ::")]
    minor = int(project["requires-python"].removeprefix(">=3."))
    supported = [c for c in classifiers if c.startswith("Programming Language :: Python :: 3.")]
    assert supported[0] == f"Programming Language :: Python :: 3.{minor}"


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_runs_from_outside_the_repository(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input")
    # Offline: the build backend is the one installed here (setuptools, as pyproject asks).
    build = ("wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index")
    run(*pip, *build, "-w", tmp_path / "dist", source, cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("gradcheck-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"gradcheck-{engine.__version__}.dist-info"
        metadata = email.parser.Parser().parsestr(
            archive.read(f"{dist_info}/METADATA").decode("utf-8")
        )
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode("utf-8")
    assert {"engine/py.typed", "engine/_tensor_methods.pyi", "gradcheck_cli/py.typed",
            f"{dist_info}/licenses/LICENSE"} <= names
    assert {name.split("/")[0] for name in names} == {"engine", "gradcheck_cli", dist_info}
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Version"] == engine.__version__
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert any(url.startswith("Repository, https://") for url in metadata.get_all("Project-URL"))
    assert "gradcheck = gradcheck_cli.cli:main" in entry_points
    assert "gradcheck = gradcheck_cli.pytest_plugin" in entry_points

    # A fresh venv: the wheel is its only copy of gradcheck. The dependencies (NumPy, SymPy,
    # Click, Rich, PyYAML) come from this interpreter's site-packages, so the test runs offline.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    install = ("install", "-q", "--no-index", "--no-deps", "--ignore-installed")
    run(*pip, "--python", python, *install, wheel, cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = outside_env()
    where = run(
        python,
        "-c",
        "import engine, gradcheck_cli; print(engine.__file__); print(gradcheck_cli.__file__);"
        " print(engine.__version__)",
        cwd=outside,
        env=env,
    ).splitlines()
    site = str(venv.resolve())
    assert where[0].startswith(site) and where[1].startswith(site), where
    assert where[2] == engine.__version__

    gradcheck = venv / "bin" / "gradcheck"
    out = run(gradcheck, "grad", "x*x + 2*x + 1", "--at", "x=3", cwd=outside, env=env)
    assert out.startswith("x*x + 2*x + 1  at x=3  =  16\n")
    assert "✓ PASS" in out
    version = run(gradcheck, "--version", cwd=outside, env=env)
    assert version == f"gradcheck {engine.__version__}\n"

    # The pytest plugin comes with the wheel: a batch file in a user's project is collected.
    shutil.copy(ROOT / "examples" / "batch" / "seed.toml", outside / "gradcheck_seed.toml")
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=outside, env=env)
    assert "8 passed" in out
