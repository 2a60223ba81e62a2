"""JUnit XML, the report CI systems render: built with xml.etree, one testsuite per file.

Each case at each point is a `testcase` named as pytest names the plugin's items, so that a
project can move between `gradcheck check --junit` and `pytest --junitxml` without losing its
test history: `classname` is the batch file's path with '/' as '.', `name` is the case id
(`quadratic[x=3]`, see `case_id`). Cases that did not run (`--fail-fast`, an interrupt) are
`skipped`, not left out. Every testcase carries its details in `system-out`. Validated in the
tests against the JUnit schema that Jenkins' xUnit plugin (and pytest's own tests) use.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

from gradcheck_cli.report import case_id, detail_lines, fmt, fmt_point, printable
from gradcheck_cli.results import Tally

if TYPE_CHECKING:
    from gradcheck_cli.results import CaseResult, Outcome

# XML 1.0 cannot carry most control characters, even escaped; CI parsers reject the file.
# Lone surrogates (JSON's "\ud800") cannot be written as UTF-8 at all, and bidi overrides
# would reorder what a CI page shows.
_XML_INVALID = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)
FAILURE_TYPE = {"fail": ("failure", "GradientMismatch"), "error": ("error", "Error")}


def xml_safe(text: str) -> str:
    """User text as a CI page may show it: control characters escaped as in the terminal
    (line breaks kept), and what XML 1.0 forbids as '?'."""
    return _XML_INVALID.sub("?", "\n".join(map(printable, text.split("\n"))))


def classname(path: str) -> str:
    """'examples/ci/gradcheck.toml' -> 'examples.ci.gradcheck.toml', as pytest's junitxml."""
    return path.replace("\\", "/").strip("/").replace("/", ".") or "gradcheck"


def case_text(result: CaseResult) -> str:
    """What a case checked and found, for `system-out`: the expression, point and numbers."""
    inputs = getattr(result, "inputs", None)
    head = [f"fn: {result.expr}"] if inputs is not None else [f"expr: {result.expr}"]
    if result.point:
        head.append(f"point: {fmt_point(result.point)}")
    head.append(f"status: {result.status}")
    if result.value is not None:
        head.append(f"value: {fmt(result.value)}")
    lines = head + detail_lines(result)
    if result.location:
        lines.append(f"location: {result.location}")
    return "\n".join(lines)


@dataclass
class _Suite:
    """One batch file's testsuite while it fills."""

    element: ET.Element
    tally: Tally = field(default_factory=Tally)
    skipped: int = 0
    seconds: float = 0.0
    ids: set[str] = field(default_factory=set)


class JUnitReport:
    """Collects results into JUnit XML; `finish` writes the document."""

    def __init__(
        self, stream: IO[str], *, started: datetime | None = None, hostname: str | None = None
    ) -> None:
        self.stream = stream
        self.tally = Tally()
        self.skipped = 0
        self._started = (started or datetime.now(UTC)).astimezone()
        self._hostname = hostname or socket.gethostname()
        self._suites: dict[str, _Suite] = {}
        self._seconds = 0.0

    def _suite(self, path: str) -> _Suite:
        if path not in self._suites:
            element = ET.Element(
                "testsuite",
                name=xml_safe(path),
                timestamp=self._started.isoformat(timespec="seconds"),
                hostname=xml_safe(self._hostname),
                file=xml_safe(path),
            )
            self._suites[path] = _Suite(element)
        return self._suites[path]

    def _testcase(self, suite: _Suite, path: str, result: CaseResult, seconds: float) -> ET.Element:
        name = case_id(result.name or result.expr, result.point)
        if name in suite.ids:  # unique within the class, as split_points makes the plugin's
            number = re.search(r": case (\d+)", result.location)
            name = f"{name} (case {number[1] if number else len(suite.ids) + 1})"
        suite.ids.add(name)
        attributes = {
            "classname": xml_safe(classname(path)),
            "name": xml_safe(name),
            "file": xml_safe(path),
            "time": f"{seconds:.6f}",
        }
        line = getattr(result, "line", None)
        if line:
            attributes["line"] = str(line)
        return ET.SubElement(suite.element, "testcase", attributes)

    def add(self, outcome: Outcome) -> None:
        """Append the results of one case, one testcase per point."""
        suite = self._suite(outcome.path)
        share = outcome.seconds / max(len(outcome.results), 1)
        for result in outcome.results:
            self.tally.add(result.status)
            suite.tally.add(result.status)
            case = self._testcase(suite, outcome.path, result, share)
            if result.status in FAILURE_TYPE:
                tag, kind = FAILURE_TYPE[result.status]
                message = (result.message or tag).splitlines()[0]
                problem = ET.SubElement(case, tag, message=xml_safe(message), type=kind)
                problem.text = xml_safe("\n".join(detail_lines(result)))
            ET.SubElement(case, "system-out").text = xml_safe(case_text(result))
        suite.seconds += outcome.seconds
        self._seconds += outcome.seconds

    def skip(self, path: str, result: CaseResult, reason: str) -> None:
        """A case that did not run (--fail-fast, an interrupt): a `skipped` testcase."""
        suite = self._suite(path)
        case = self._testcase(suite, path, result, 0.0)
        ET.SubElement(case, "skipped", message=xml_safe(reason))
        ET.SubElement(case, "system-out").text = xml_safe(case_text(result))
        suite.skipped += 1
        self.skipped += 1

    def finish(self) -> None:
        """Write the XML document to the stream."""
        root = ET.Element("testsuites", name="gradcheck")
        for suite in self._suites.values():
            t = suite.tally
            suite.element.attrib.update(_counts(t, suite.skipped, suite.seconds))
            root.append(suite.element)
        totals = _counts(self.tally, self.skipped, self._seconds)
        del totals["skipped"]  # not an attribute of testsuites in the schema
        root.attrib.update(totals)
        ET.indent(root)
        self.stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        self.stream.write(ET.tostring(root, encoding="unicode"))
        self.stream.write("\n")


def _counts(tally: Tally, skipped: int, seconds: float) -> dict[str, str]:
    """The count attributes of a testsuite (tests counts the skipped ones too)."""
    return {
        "tests": str(tally.total + skipped),
        "failures": str(tally.failed),
        "errors": str(tally.errors),
        "skipped": str(skipped),
        "time": f"{seconds:.6f}",
    }
