"""GitHub Actions: the log, an annotation per failed case, and a Markdown job summary.

`gradcheck check --format github` prints the usual table (the log), then one workflow command
per failed or errored case (`::error file=...,line=...,title=...::message`), which GitHub
shows on the pull request at the case's line of the batch file, and appends a summary to the
file named by $GITHUB_STEP_SUMMARY. Workflow commands are one line each: their values are
escaped as the runner expects (`%`, CR and LF in the message; also `:` and `,` in properties).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from gradcheck_cli.report import detail_lines, fmt_point
from gradcheck_cli.results import Tally

if TYPE_CHECKING:
    from gradcheck_cli.results import CaseResult, Outcome

STATUS_WORD = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}
SUMMARY_ROWS = 50  # failures listed in the job summary; the rest are counted


def escape_data(text: str) -> str:
    """A workflow command's message: '%', CR and LF escaped so that it stays one line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: also ':' and ',', which separate properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def where(result: CaseResult) -> str:
    """The point or the inputs of a result, for a title or a table cell."""
    return fmt_point(result.point) or getattr(result, "shapes", "")


def annotation(path: str, result: CaseResult) -> str:
    """`::error file=...,line=...,title=...::message` for a failed or errored result."""
    properties = [f"file={escape_property(path)}"]
    line = getattr(result, "line", None)
    if line:
        properties.append(f"line={int(line)}")
    title = f"gradcheck {STATUS_WORD[result.status]}: {result.name}"
    if where(result):
        title += f" at {where(result)}"
    properties.append(f"title={escape_property(title)}")
    message = "\n".join(detail_lines(result)) or STATUS_WORD[result.status]
    return f"::error {','.join(properties)}::{escape_data(message)}"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: HTML escaped, pipes escaped, lines joined by <br>."""
    return "<br>".join(html.escape(line).replace("|", "\\|") for line in text.splitlines())


def summary_markdown(
    failures: Sequence[tuple[str, CaseResult]], tally: Tally, headline: str
) -> str:
    """The job summary: the verdict, then a table of the failed and errored cases."""
    mark = "✅" if tally.failed == 0 and tally.errors == 0 else "❌"
    lines = [f"### {mark} gradcheck: {html.escape(headline)}", ""]
    if failures:
        lines += ["| status | file | case | point | why |", "| --- | --- | --- | --- | --- |"]
        for path, result in failures[:SUMMARY_ROWS]:
            line = getattr(result, "line", None)
            place = f"{path}:{line}" if line else path
            why = (result.message or "").splitlines()[0] if result.message else ""
            cells = [STATUS_WORD[result.status], place, result.name, where(result), why]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if len(failures) > SUMMARY_ROWS:
            lines += ["", f"… and {len(failures) - SUMMARY_ROWS} more (see the log)."]
    return "\n".join(lines) + "\n"


class GithubReport:
    """The table for the log, then annotations on stdout and the job summary (finish)."""

    def __init__(self, table: Any, stream: IO[str], summary_path: str | None) -> None:
        self.table = table  # render.BatchTable: the log
        self.stream = stream
        self.summary_path = summary_path
        self.failures: list[tuple[str, CaseResult]] = []

    @property
    def tally(self) -> Tally:
        """The counts, kept by the table."""
        return self.table.tally

    @property
    def console(self) -> Any:
        """The table's console: the summary line goes there too."""
        return self.table.console

    def add(self, outcome: Outcome) -> None:
        """Log the case, remember it if it did not pass."""
        self.table.add(outcome)
        self.failures += [(outcome.path, r) for r in outcome.results if r.status != "pass"]

    def finish(self) -> None:
        """The rest of the table, then one annotation per failure."""
        self.table.finish()
        self.stream.flush()
        for path, result in self.failures:
            self.stream.write(annotation(path, result) + "\n")
        self.stream.flush()

    def write_summary(self, headline: str) -> None:
        """Append the Markdown summary to $GITHUB_STEP_SUMMARY, when the runner sets it."""
        if not self.summary_path:
            return
        with open(self.summary_path, "a", encoding="utf-8") as summary:
            summary.write(summary_markdown(self.failures, self.tally, headline))
