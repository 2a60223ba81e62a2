"""Machine reports: the JSON report of CONTRACT §2, the text helpers every report shares.

JUnit XML is junit.py, GitHub's annotations and job summary github.py; the terminal is
render.py. `ReportFile` writes any of them to --output (or --junit) whole or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from typing import IO, Any

from gradcheck_cli.results import CaseResult, Outcome, Tally

REPORT_VERSION = 1
SOURCES = ("autograd", "symbolic", "numeric")
# What user text may not bring to a terminal: C0 and C1 controls (ESC, CR, CSI), bidi
# overrides that reorder what is shown, and lone surrogates, which cannot be printed.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """User text made safe to show: control, bidi and surrogate characters as escapes."""
    return _UNPRINTABLE.sub(lambda match: _escape(match.group()), text)


def to_finite_json(value: Any) -> Any:
    """Copy a result structure into JSON-safe types; non-finite floats become strings."""
    # An explicit stack, not recursion: Hessians nest and user data may be deep.
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, dict):
            copy: Any = {}
            for k, v in item.items():
                copy[str(k)] = None
                stack.append((v, copy, str(k)))
        elif isinstance(item, list | tuple):
            copy = [None] * len(item)
            stack.extend((v, copy, i) for i, v in enumerate(item))
        elif isinstance(item, bool) or item is None or isinstance(item, str | int):
            copy = item
        else:
            copy = _float_or_string(item)
        parent[key] = copy
    return root[0]


def _float_or_string(value: Any) -> Any:
    """A float, or 'nan'/'inf'/'-inf' so that the file stays valid JSON."""
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return number


def to_entry(result: CaseResult) -> dict[str, Any]:
    """One `cases[]` entry of the JSON report, keys in the contract's order."""
    entry: dict[str, Any] = {
        "name": result.name,
        "expr": result.expr,
        "point": result.point,
        "status": result.status,
        "value": result.value,
        "derivative": result.derivative,
        "gradient": result.gradient,
        "error": result.error,
        "message": result.message,
    }
    if result.hessian is not None:
        entry["hessian"] = result.hessian
    # Callable cases (fn = "pkg.mod:func") add what they ran on and, on failure, the node
    # that blame found; expression entries keep exactly the contract's keys.
    inputs = getattr(result, "inputs", None)
    if inputs is not None:
        entry["inputs"] = inputs
        entry["blame"] = getattr(result, "blame", None)
        entry["output"] = getattr(result, "output", "")
        mismatch = getattr(result, "mismatch", None)
        # The failing Jacobian block as data (its worst elements as rows), not only as text.
        entry["mismatch"] = None if mismatch is None else dataclasses.asdict(mismatch)
    return to_finite_json(entry)


def to_report(results: list[CaseResult]) -> dict[str, Any]:
    """The whole JSON report for a list of results (used by `grad --json`)."""
    tally = Tally()
    for result in results:
        tally.add(result.status)
    return {
        "version": REPORT_VERSION,
        "summary": tally.as_dict(),
        "cases": [to_entry(r) for r in results],
    }


def dumps_report(results: list[CaseResult]) -> str:
    """The JSON report as text, formatted exactly as JsonReport streams it."""
    return json.dumps(to_report(results), indent=2, allow_nan=False)


def fmt(value: float | None) -> str:
    """A number as reports show it: 10 significant digits, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.10g}"


def fmt_error(value: float | None) -> str:
    """An error magnitude in short scientific notation ('0' when exact)."""
    if value is None or isinstance(value, str):
        return fmt(value)
    return "0" if value == 0 else f"{value:.1e}"


def case_id(name: str, point: dict[str, float]) -> str:
    """'quadratic[x=3]': a case at one point, as pytest's ids, `trace FILE::CASE` and JUnit
    name it (control characters escaped: ids reach terminals)."""
    base = printable(name).replace("::", ":")
    return f"{base}[{fmt_point(point)}]" if point else base


def fmt_point(point: dict[str, float]) -> str:
    """'x=3, y=2' for a point."""
    return ", ".join(f"{name}={fmt(value)}" for name, value in point.items())


def detail_lines(result: CaseResult) -> list[str]:
    """Plain-text explanation of a failed or errored result: message, then the numbers."""
    lines = [result.message] if result.message else []
    inputs = getattr(result, "inputs", None)
    if inputs:
        lines.append("inputs: " + "; ".join(inputs))
    for name in result.gradient.get("autograd", {}) or result.point:
        parts = []
        for source in SOURCES:
            value = result.gradient.get(source, {}).get(name)
            if value is not None:
                text = fmt(value)
                if source == "symbolic" and name in result.derivative:
                    text += f" ({result.derivative[name]})"
                parts.append(f"{source} {text}")
        if parts:
            lines.append(f"d/d{name}: " + ", ".join(parts))
    if result.error:
        lines.append(
            "errors: "
            + ", ".join(f"{key} {fmt_error(value)}" for key, value in result.error.items())
        )
    lines.extend(result.notes)
    output = getattr(result, "output", "")
    if output:
        # Indented: shown as printed, line by line, never re-wrapped.
        lines.append("output of the case's code (stdout and stderr, trimmed):")
        lines.extend("  " + line for line in output.splitlines())
    return lines


class JsonReport:
    """Collects results into the JSON report; `finish` writes it with one json.dump."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tally = Tally()
        self._entries: list[dict[str, Any]] = []

    def add(self, outcome: Outcome) -> None:
        """Append the results of one case."""
        for result in outcome.results:
            self.tally.add(result.status)
            self._entries.append(to_entry(result))

    def finish(self) -> None:
        """Write the report to the stream: the same text as `dumps_report`."""
        report = {"version": REPORT_VERSION, "summary": self.tally.as_dict(), "cases": []}
        report["cases"] = self._entries
        json.dump(report, self.stream, indent=2, allow_nan=False)
        self.stream.write("\n")


class Tee:
    """One run, several reports (--format X with --junit PATH): each gets every outcome.

    `lines` maps a file to where its cases start; each result gets its `line` on the way,
    for the reports that point at the case (GitHub annotations, JUnit).
    """

    def __init__(self, writers: list[Any], lines: dict[str, tuple[int, ...]]) -> None:
        self.writers = writers
        self.lines = lines

    @property
    def tally(self) -> Tally:
        """The counts of the main report."""
        return self.writers[0].tally

    def _located(self, outcome: Outcome) -> Outcome:
        starts = self.lines.get(outcome.path, ())
        for result in outcome.results:
            number = case_number(outcome.path, result.location)
            if number is not None and 0 < number <= len(starts):
                result.line = starts[number - 1]
        return outcome

    def add(self, outcome: Outcome) -> None:
        """Every report gets the outcome."""
        outcome = self._located(outcome)
        for writer in self.writers:
            writer.add(outcome)

    def not_run(self, outcome: Outcome, reason: str, as_error: bool) -> None:
        """A case that did not run: `skipped` where a report has that (JUnit); elsewhere an
        error row if `as_error`, else nothing (the summary line counts it)."""
        outcome = self._located(outcome)
        for writer in self.writers:
            if hasattr(writer, "skip"):
                for result in outcome.results:
                    writer.skip(outcome.path, result, reason)
            elif as_error:
                writer.add(outcome)

    def finish(self) -> None:
        """Every report writes what it collected."""
        for writer in self.writers:
            writer.finish()


def case_number(path: str, location: str) -> int | None:
    """N of a location 'file: case N (name)' (see schema.location_of), or None."""
    head = f"{path}: case "
    if not location.startswith(head):
        return None
    digits = location[len(head) :].partition(" ")[0]
    return int(digits) if digits.isdigit() else None


class ReportFile:
    """A report written beside its target and renamed into place (os.replace) when complete.

    Until `commit`, the previous report is untouched: an interrupt, a crash or a concurrent
    run never leaves a truncated file, and `discard` removes the partial one.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        folder = os.path.dirname(os.path.abspath(target))
        fd, self.temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
        )
        self.stream: IO[str] = os.fdopen(fd, "w", encoding="utf-8")

    def commit(self) -> None:
        """Flush to disk and rename over the target; OSError (disk full) leaves it as it was."""
        try:
            self.stream.flush()
            os.fsync(self.stream.fileno())
            self.stream.close()
            try:
                mode = os.stat(self.target).st_mode & 0o777
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.chmod(self.temporary, mode)
            os.replace(self.temporary, self.target)
        except OSError:
            self.discard()
            raise

    def discard(self) -> None:
        """Forget the partial report."""
        try:
            self.stream.close()
        except OSError:
            pass
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass
