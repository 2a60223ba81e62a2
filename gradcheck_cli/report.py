"""Machine reports: the JSON report of CONTRACT §2 and JUnit XML, both written as results stream."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from typing import IO, Any

from gradcheck_cli.results import CaseResult, Outcome, Tally

REPORT_VERSION = 1
SOURCES = ("autograd", "symbolic", "numeric")
# XML 1.0 cannot carry most control characters, even escaped; CI parsers reject the file.
# Lone surrogates (JSON's "\ud800") cannot be written as UTF-8 at all, and bidi overrides
# would reorder what a CI page shows.
_XML_INVALID = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)
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
    """Streams results into the JSON report; text identical to `dumps_report`."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tally = Tally()
        # Entries go to a temporary file so that memory stays flat on huge batches while
        # `summary`, which needs every result, can still come first as in the contract.
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._count = 0

    def add(self, outcome: Outcome) -> None:
        """Append the results of one case."""
        for result in outcome.results:
            self.tally.add(result.status)
            text = json.dumps(to_entry(result), indent=2, allow_nan=False)
            if self._count:
                self._spool.write(",\n")
            self._spool.write("\n".join("    " + line for line in text.splitlines()))
            self._count += 1

    def finish(self) -> None:
        """Write the report to the stream."""
        head = json.dumps(
            {"version": REPORT_VERSION, "summary": self.tally.as_dict(), "cases": []}, indent=2
        )
        if not self._count:
            self.stream.write(head + "\n")
        else:
            self.stream.write(head[: -len("[]\n}")] + "[\n")
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, self.stream)
            self.stream.write("\n  ]\n}\n")
        self._spool.close()


def _xml_text(text: str) -> str:
    """Escape text for an XML element body."""
    text = _XML_INVALID.sub("?", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(text: str) -> str:
    """Escape text for a double-quoted XML attribute (newlines kept as character refs)."""
    return (
        _xml_text(text)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )


def _classname(path: str) -> str:
    """Jenkins groups test cases by dotted class name: 'examples/batch/seed.toml' -> dotted."""
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return stem.replace("\\", "/").strip("/").replace("/", ".") or "gradcheck"


def _testcase(path: str, result: CaseResult, seconds: float) -> str:
    """One <testcase> element for one case at one point."""
    name = result.name + (f" [{fmt_point(result.point)}]" if result.point else "")
    head = (
        f'    <testcase classname="{_xml_attr(_classname(path))}" name="{_xml_attr(name)}"'
        f' file="{_xml_attr(path)}" time="{seconds:.6f}"'
    )
    if result.status == "pass":
        return head + " />\n"
    tag, kind = ("failure", "GradientMismatch") if result.status == "fail" else ("error", "Error")
    message = result.message or ("gradient mismatch" if tag == "failure" else "error")
    if getattr(result, "inputs", None) is not None:
        body = f"fn: {result.expr}"  # detail_lines lists the inputs
    else:
        body = "\n".join([f"expr: {result.expr}", f"point: {fmt_point(result.point)}"])
    body += "\n" + "\n".join(detail_lines(result))
    if result.location:
        body += f"\nlocation: {result.location}"
    return (
        head
        + ">\n"
        + f'      <{tag} message="{_xml_attr(message)}" type="{kind}">'
        + _xml_text(body)
        + f"</{tag}>\n"
        + "    </testcase>\n"
    )


class JUnitReport:
    """Streams results into JUnit XML: one testsuite per file, one testcase per point."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tally = Tally()
        self._seconds = 0.0
        self._suites = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._cases = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._path: str | None = None
        self._suite_tally = Tally()
        self._suite_seconds = 0.0

    def add(self, outcome: Outcome) -> None:
        """Append the results of one case."""
        if outcome.path != self._path:
            self._close_suite()
            self._path = outcome.path
        share = outcome.seconds / max(len(outcome.results), 1)
        for result in outcome.results:
            self.tally.add(result.status)
            self._suite_tally.add(result.status)
            self._cases.write(_testcase(outcome.path, result, share))
        self._seconds += outcome.seconds
        self._suite_seconds += outcome.seconds

    def _close_suite(self) -> None:
        """Write the suite collected so far (its counts head the element, so it is spooled)."""
        if self._path is None:
            return
        t = self._suite_tally
        self._suites.write(
            f'  <testsuite name="{_xml_attr(self._path)}" tests="{t.total}"'
            f' failures="{t.failed}" errors="{t.errors}" skipped="0"'
            f' time="{self._suite_seconds:.6f}" file="{_xml_attr(self._path)}">\n'
        )
        self._cases.seek(0)
        shutil.copyfileobj(self._cases, self._suites)
        self._suites.write("  </testsuite>\n")
        self._cases.seek(0)
        self._cases.truncate()
        self._suite_tally = Tally()
        self._suite_seconds = 0.0

    def finish(self) -> None:
        """Write the XML document to the stream."""
        self._close_suite()
        t = self.tally
        self.stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        self.stream.write(
            f'<testsuites name="gradcheck" tests="{t.total}" failures="{t.failed}"'
            f' errors="{t.errors}" time="{self._seconds:.6f}">\n'
        )
        self._suites.seek(0)
        shutil.copyfileobj(self._suites, self.stream)
        self.stream.write("</testsuites>\n")
        self._suites.close()
        self._cases.close()


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
