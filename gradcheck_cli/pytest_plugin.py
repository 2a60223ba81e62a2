"""pytest plugin: gradcheck batch files (gradcheck*.toml by default) become test items.

One item per case and point, with ids built from the file and the case's name (and point),
so that `-k`, `-x`, `--junitxml` and pytest-xdist (which needs every worker to collect the
same ids in the same order) work as for ordinary tests. Only real batch files are collected
(a top-level `case` list and nothing foreign): a `gradcheck_config.json` or a saved report
that matches a pattern is left alone. Callable cases run in a worker process with a time
limit, as in `gradcheck check`: user code that exits, crashes or hangs fails its item and
the session goes on. Loaded through the `pytest11` entry point; nothing heavy is imported
until a matching file is collected.

Options (`[tool.pytest.ini_options]`):
    gradcheck_files = ["gradcheck*.toml", "gradcheck*.yaml"]  file patterns (YAML/JSON opt-in)
    gradcheck_allow_python = true                 let `fn = "pkg.mod:func"` cases import code
    gradcheck_path = ["src"]                      import path for those cases (ini-relative)
    gradcheck_timeout = 300                       seconds per callable case (a case's own wins)
and `--gradcheck-allow-python` (or GRADCHECK_ALLOW_PYTHON=1) on the command line.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from gradcheck_cli.results import Outcome
    from gradcheck_cli.runner import Runner

# TOML only by default: YAML and JSON files named gradcheck* are too often something else.
DEFAULT_PATTERNS = ["gradcheck*.toml"]
_RUNNER = pytest.StashKey["Runner"]()
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
    parser.addini(
        "gradcheck_timeout",
        type="string",
        default="300",
        help="time limit in seconds of each fn case (a case's own 'timeout' key wins)",
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
    """A GradcheckFile for a batch file whose name matches a gradcheck_files pattern."""
    patterns = parent.config.getini("gradcheck_files")
    if not any(fnmatch(file_path.name, pattern) for pattern in patterns):
        return None
    from gradcheck_cli.schema import BatchFileError, is_batch_document, read_document

    try:
        doc, _ = read_document(os.path.relpath(file_path))
    except BatchFileError as exc:
        # Named like a batch file but unreadable: say so, but do not fail someone's session
        # over a file that may be anything.
        warnings.warn(pytest.PytestWarning(f"gradcheck: not collected: {exc}"), stacklevel=1)
        return None
    if not is_batch_document(doc):
        return None
    return GradcheckFile.from_parent(parent, path=file_path)


def _runner(config: pytest.Config) -> Runner:
    """The session's runner: one worker, reused by every callable case, ended at exit."""
    if _RUNNER not in config.stash:
        from gradcheck_cli.runner import Runner, RunOptions

        text = config.getini("gradcheck_timeout")
        try:
            timeout = float(text)
        except ValueError:
            timeout = math.nan
        if not (math.isfinite(timeout) and timeout > 0):
            raise pytest.UsageError(f"gradcheck_timeout = {text!r}: need seconds > 0")
        config.stash[_RUNNER] = Runner(RunOptions(jobs=1, timeout=timeout))
    return config.stash[_RUNNER]


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the workers (and whatever the user's code started in them)."""
    runner = config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()
        del config.stash[_RUNNER]


class BatchFileProblem(Exception):
    """The batch file cannot be used at all; reported as a one-line collection error."""


class GradcheckFile(pytest.File):
    """A batch file: its cases, one item per case and point."""

    def collect(self) -> Iterator[GradcheckItem]:
        """Load and validate the file; invalid cases still become (failing) items."""
        from gradcheck_cli.batch import split_points
        from gradcheck_cli.schema import BatchFileError, iter_items, load_file

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
            from gradcheck_cli.report import printable

            return printable(str(excinfo.value))
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
        from gradcheck_cli.runner import run_item
        from gradcheck_cli.schema import CallableCase

        if isinstance(self.case, CallableCase):
            outcome = _runner(self.config).run_isolated(self.batch_path, self.case)
        else:
            outcome = run_item(self.batch_path, self.case)
        for result in outcome.results:
            self.user_properties.append(("status", result.status))
        if any(r.status != "pass" for r in outcome.results):
            raise GradcheckFailure(outcome)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """The CLI's table for this case, as plain text."""
        from gradcheck_cli.report import printable

        if isinstance(excinfo.value, GradcheckFailure):
            from gradcheck_cli.render import to_plain_table

            outcome = excinfo.value.outcome
            # The first line is what `-r` summaries show: the verdict, then the table.
            first = next((r.message for r in outcome.results if r.message), "") or ""
            table = to_plain_table([outcome], width=TABLE_WIDTH).rstrip()
            head = printable(first.splitlines()[0]) if first else "gradient check failed"
            return f"{head}\n\n{table}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the case lives, for pytest's headers."""
        return self.path, None, f"gradcheck: {self.name}"
