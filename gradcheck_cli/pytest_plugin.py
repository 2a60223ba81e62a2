"""pytest plugin: batch files named gradcheck*.toml|yaml|yml|json become test items.

One item per case and point, with ids built from the file and the case's name (and point),
so that `-k`, `-x`, `--junitxml` and pytest-xdist (which needs every worker to collect the
same ids in the same order) work as for ordinary tests. Loaded through the `pytest11` entry
point; nothing heavy is imported until a matching file is collected.

Options (`[tool.pytest.ini_options]`):
    gradcheck_files = ["gradcheck*.toml", ...]   file name patterns to collect
    gradcheck_allow_python = true                 let `fn = "pkg.mod:func"` cases import code
    gradcheck_path = ["src"]                      import path for those cases (ini-relative)
and `--gradcheck-allow-python` (or GRADCHECK_ALLOW_PYTHON=1) on the command line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gradcheck_cli.batch import Outcome

DEFAULT_PATTERNS = ["gradcheck*.toml", "gradcheck*.yaml", "gradcheck*.yml", "gradcheck*.json"]
TABLE_WIDTH = 100  # pytest's reports are logs: a fixed width keeps them identical everywhere


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ini options and the command-line gate."""
    parser.addini(
        "gradcheck_files",
        type="args",
        default=DEFAULT_PATTERNS,
        help="glob patterns of gradcheck batch files to collect as tests",
    )
    parser.addini(
        "gradcheck_allow_python",
        type="bool",
        default=False,
        help="let batch cases with fn = 'pkg.mod:func' import and run Python code",
    )
    parser.addini(
        "gradcheck_path",
        type="paths",
        default=[],
        help="directories added to the import path of fn cases (relative to the ini file)",
    )
    group = parser.getgroup("gradcheck")
    group.addoption(
        "--gradcheck-allow-python",
        action="store_true",
        default=False,
        help="let gradcheck 'fn' cases import and run Python code (also GRADCHECK_ALLOW_PYTHON=1)",
    )


def _allow_python(config: pytest.Config) -> bool:
    env = os.environ.get("GRADCHECK_ALLOW_PYTHON", "").strip().lower()
    return (
        bool(config.getoption("gradcheck_allow_python"))
        or bool(config.getini("gradcheck_allow_python"))
        or env in ("1", "true", "yes", "on")
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A GradcheckFile for every file whose name matches a gradcheck_files pattern."""
    patterns = parent.config.getini("gradcheck_files")
    if any(fnmatch(file_path.name, pattern) for pattern in patterns):
        return GradcheckFile.from_parent(parent, path=file_path)
    return None


class BatchFileProblem(Exception):
    """The batch file cannot be used at all; reported as a one-line collection error."""


class GradcheckFile(pytest.File):
    """A batch file: its cases, one item per case and point."""

    def collect(self) -> Iterator[GradcheckItem]:
        """Load and validate the file; invalid cases still become (failing) items."""
        from gradcheck_cli.batch import BatchFileError, iter_items, load_file, split_points

        try:
            # Relative to the invocation directory, as `gradcheck check` would print it.
            loaded = load_file(os.path.relpath(self.path))
        except BatchFileError as exc:
            raise BatchFileProblem(str(exc)) from None
        config = self.config
        paths = [str(p) for p in config.getini("gradcheck_path")]
        items = iter_items([loaded], allow_python=_allow_python(config), paths=paths)
        for name, path, run in split_points(items):
            yield GradcheckItem.from_parent(self, name=name, case=run, batch_path=path)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        """A bad file is one line, like `gradcheck check` says it, not a traceback."""
        if isinstance(excinfo.value, BatchFileProblem):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class GradcheckFailure(Exception):
    """A case that failed or could not run; carries its outcome for the report."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.results[0].message if outcome.results else "")
        self.outcome = outcome


class GradcheckItem(pytest.Item):
    """One case at one point of a batch file."""

    def __init__(self, *, case: Any, batch_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.batch_path = batch_path
        self.user_properties.append(("expr", str(getattr(case, "expr", ""))))

    def runtest(self) -> None:
        """Run the case as `gradcheck check` would; raise unless every row passes."""
        from gradcheck_cli.batch import run_item

        outcome = run_item(self.batch_path, self.case)
        for result in outcome.results:
            self.user_properties.append(("status", result.status))
        if any(r.status != "pass" for r in outcome.results):
            raise GradcheckFailure(outcome)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """The CLI's table for this case, as plain text."""
        if isinstance(excinfo.value, GradcheckFailure):
            from gradcheck_cli.render import to_plain_table

            outcome = excinfo.value.outcome
            # The first line is what `-r` summaries show: the verdict, then the table.
            first = next((r.message for r in outcome.results if r.message), "") or ""
            table = to_plain_table([outcome], width=TABLE_WIDTH).rstrip()
            return f"{first.splitlines()[0] if first else 'gradient check failed'}\n\n{table}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the case lives, for pytest's headers."""
        return self.path, None, f"gradcheck: {self.name}"
