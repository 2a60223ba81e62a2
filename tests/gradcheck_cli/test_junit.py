"""JUnit XML: valid against the published schema, counts, skipped cases, ids, details."""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gradcheck_cli.junit import JUnitReport, classname
from gradcheck_cli.report import case_id
from gradcheck_cli.results import Outcome

sys.path.insert(0, str(Path(__file__).parent))
from test_report import make_result  # noqa: E402

etree = pytest.importorskip("lxml.etree")
# The JUnit schema of Jenkins' xUnit plugin (the one pytest checks its own junitxml with).
SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "junit-10.xsd")))


def assert_valid(text: str) -> ET.Element:
    """The document is well-formed and valid against the schema; returns its root."""
    document = etree.fromstring(text.encode("utf-8"))
    assert SCHEMA.validate(document), SCHEMA.error_log
    return ET.fromstring(text)


def write(outcomes: list[Outcome], skipped: list[tuple[str, str]] = ()) -> str:
    """JUnit text for outcomes, and for (file, name) cases that did not run."""
    stream = io.StringIO()
    started = datetime(2026, 12, 3, 17, 0, 5, tzinfo=UTC)
    report = JUnitReport(stream, started=started, hostname="ci-runner-7")
    for outcome in outcomes:
        report.add(outcome)
    for path, name in skipped:
        report.skip(path, make_result(name=name), "not run: stopped by --fail-fast")
    report.finish()
    return stream.getvalue()


def test_a_mixed_run_is_valid_junit_with_counts_timestamp_and_hostname() -> None:
    wrong = make_result("fail", name="wrong", auto=9.0, message="d/dx: autograd 9\nmore")
    bad = make_result("error", name="bad key", message="cases.toml: case 3: unknown key")
    text = write(
        [Outcome("examples/batch/seed.toml", [make_result(), wrong], 0.5)],
        skipped=[("examples/batch/seed.toml", "later"), ("other.yaml", "never")],
    )
    root = assert_valid(text)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
    assert root.attrib == {
        "name": "gradcheck",
        "tests": "4",
        "failures": "1",
        "errors": "0",
        "time": "0.500000",
    }
    seed, other = root.findall("testsuite")
    assert seed.get("tests") == "3" and seed.get("skipped") == "1"
    assert other.get("tests") == "1" and other.get("skipped") == "1"
    stamp = datetime.fromisoformat(seed.get("timestamp"))
    assert stamp == datetime(2026, 12, 3, 17, 0, 5, tzinfo=UTC) and stamp.tzinfo is not None
    assert seed.get("hostname") == "ci-runner-7"
    cases = seed.findall("testcase")
    assert [c.get("name") for c in cases] == ["quadratic[x=3]", "wrong[x=3]", "later[x=3]"]
    assert {c.get("classname") for c in cases} == {"examples.batch.seed.toml"}
    failure = cases[1].find("failure")
    assert failure.get("message") == "d/dx: autograd 9"  # the first line; the rest below
    assert failure.get("type") == "GradientMismatch" and "more" in failure.text
    assert cases[2].find("skipped").get("message") == "not run: stopped by --fail-fast"
    bad_text = write([Outcome("c.toml", [bad], 0.0)])
    assert assert_valid(bad_text).find("testsuite/testcase/error").get("type") == "Error"


def test_every_case_carries_its_details_in_system_out() -> None:
    root = assert_valid(write([Outcome("seed.toml", [make_result()], 0.1)]))
    out = root.find("testsuite/testcase/system-out").text
    head = ["expr: x*x + 2*x + 1", "point: x=3", "status: pass", "value: 16"]
    assert out.splitlines()[:4] == head
    assert "d/dx: autograd 8, symbolic 8 (2*x + 2), numeric 8" in out
    assert "location: cases.toml: case 1 (quadratic)" in out


def test_names_are_escaped_and_forbidden_characters_dropped() -> None:
    nasty = 'a<b>&"c"\x00\x1b[31m'
    text = write([Outcome('we"ird<&>.toml', [make_result("fail", nasty, message=nasty)], 0.0)])
    case = assert_valid(text).find("testsuite/testcase")
    assert case.get("name") == 'a<b>&"c"\\x00\\x1b[31m[x=3]'  # the id, as pytest shows it
    assert case.find("failure").get("message") == 'a<b>&"c"\\x00\\x1b[31m'
    assert case.get("classname") == 'we"ird<&>.toml'


def test_the_same_id_twice_in_a_file_stays_unique() -> None:
    first, second = make_result(), make_result()
    second.location = "seed.toml: case 7 (quadratic)"
    root = assert_valid(write([Outcome("seed.toml", [first, second], 0.0)]))
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == ["quadratic[x=3]", "quadratic[x=3] (case 7)"]


def test_an_empty_run_is_valid() -> None:
    root = assert_valid(write([]))
    assert root.get("tests") == "0" and root.findall("testsuite") == []


def test_ids_follow_pytest() -> None:
    assert classname("examples/ci/gradcheck.toml") == "examples.ci.gradcheck.toml"
    assert case_id("a::b", {"x": 3.0}) == "a:b[x=3]"
    assert case_id("log_cosh", {}) == "log_cosh"
    assert case_id("bad\x1bname", {}) == "bad\\x1bname"
