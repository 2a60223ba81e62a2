"""JSON report (CONTRACT §2) and JUnit XML, from hand-built results."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET

from gradcheck_cli.checks import CaseResult
from gradcheck_cli.report import (
    JsonReport,
    JUnitReport,
    Tally,
    detail_lines,
    dumps_report,
    to_entry,
    to_finite_json,
    to_report,
)
from gradcheck_cli.results import Outcome

CONTRACT_KEYS = [
    "name",
    "expr",
    "point",
    "status",
    "value",
    "derivative",
    "gradient",
    "error",
    "message",
]


def make_result(
    status: str = "pass",
    name: str = "quadratic",
    auto: float = 8.0,
    hessian: dict | None = None,
    message: str | None = None,
) -> CaseResult:
    """A result for x*x + 2*x + 1 at x=3 with a chosen autograd value."""
    return CaseResult(
        name=name,
        expr="x*x + 2*x + 1",
        point={"x": 3.0},
        status=status,
        value=16.0,
        derivative={"x": "2*x + 2"},
        gradient={"autograd": {"x": auto}, "symbolic": {"x": 8.0}, "numeric": {"x": 8.0}},
        error={"autograd_vs_symbolic": abs(auto - 8.0), "numeric_vs_symbolic": 1.2e-11},
        message=message,
        hessian=hessian,
        numeric_error={"x": 1e-12},
        notes=[],
        location="cases.toml: case 1 (quadratic)",
    )


def test_entry_has_exactly_the_contract_keys_in_order() -> None:
    entry = to_entry(make_result())
    assert list(entry) == CONTRACT_KEYS
    assert entry["gradient"] == {
        "autograd": {"x": 8.0},
        "symbolic": {"x": 8.0},
        "numeric": {"x": 8.0},
    }
    assert entry["message"] is None


def test_hessian_appears_only_for_second_order() -> None:
    hessian = {src: {"x": {"x": 2.0}} for src in ("autograd", "symbolic", "numeric")}
    assert "hessian" not in to_entry(make_result())
    entry = to_entry(make_result(hessian=hessian))
    assert entry["hessian"]["symbolic"] == {"x": {"x": 2.0}}
    assert set(entry) == set(CONTRACT_KEYS) | {"hessian"}


def test_non_finite_numbers_become_strings_and_the_file_stays_json() -> None:
    result = make_result(status="error", auto=math.nan, message="log(x) is undefined here")
    result.value = -math.inf
    result.gradient["numeric"]["x"] = math.inf
    text = dumps_report([result])
    data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    case = data["cases"][0]
    assert case["value"] == "-inf"
    assert case["gradient"]["autograd"]["x"] == "nan"
    assert case["gradient"]["numeric"]["x"] == "inf"
    assert case["error"]["autograd_vs_symbolic"] == "nan"


def test_to_finite_json_keeps_structure_and_order() -> None:
    value = {"b": [1, 2.5, float("nan"), None, True], "a": {"z": (float("-inf"),)}}
    assert to_finite_json(value) == {"b": [1, 2.5, "nan", None, True], "a": {"z": ["-inf"]}}
    assert list(to_finite_json(value)) == ["b", "a"]


def test_summary_counts_by_status() -> None:
    results = [make_result(), make_result("fail", auto=9.0), make_result("error"), make_result()]
    report = to_report(results)
    assert report["version"] == 1
    assert report["summary"] == {"total": 4, "passed": 2, "failed": 1, "errors": 1}
    assert [c["status"] for c in report["cases"]] == ["pass", "fail", "error", "pass"]


def test_streamed_json_is_identical_to_the_whole_report() -> None:
    results = [make_result(), make_result("fail", name="b", auto=9.0)]
    stream = io.StringIO()
    writer = JsonReport(stream)
    writer.add(Outcome("a.toml", results[:1], 0.1))
    writer.add(Outcome("a.toml", results[1:], 0.1))
    writer.finish()
    assert stream.getvalue() == dumps_report(results) + "\n"
    assert writer.tally == Tally(total=2, passed=1, failed=1, errors=0)


def test_empty_streamed_json_is_valid() -> None:
    stream = io.StringIO()
    JsonReport(stream).finish()
    assert json.loads(stream.getvalue()) == {
        "version": 1,
        "summary": {"total": 0, "passed": 0, "failed": 0, "errors": 0},
        "cases": [],
    }


def test_detail_lines_give_message_and_numbers() -> None:
    lines = detail_lines(make_result("fail", auto=9.0, message="autograd disagrees with SymPy"))
    assert lines[0] == "autograd disagrees with SymPy"
    assert lines[1] == "d/dx: autograd 9, symbolic 8 (2*x + 2), numeric 8"
    assert lines[2] == "errors: autograd_vs_symbolic 1.0e+00, numeric_vs_symbolic 1.2e-11"


def junit(outcomes: list[Outcome]) -> ET.Element:
    """Write outcomes as JUnit and parse the text back."""
    stream = io.StringIO()
    writer = JUnitReport(stream)
    for outcome in outcomes:
        writer.add(outcome)
    writer.finish()
    assert stream.getvalue().startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(stream.getvalue())


def test_junit_one_suite_per_file_one_case_per_point() -> None:
    root = junit(
        [
            Outcome("examples/batch/seed.toml", [make_result(), make_result()], 0.2),
            Outcome(
                "examples/batch/seed.toml", [make_result("fail", "wrong", 9.0, message="m")], 0.1
            ),
            Outcome("ml.yaml", [make_result("error", "bad", message="seed: case 3: bad key")], 0.0),
        ]
    )
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["examples/batch/seed.toml", "ml.yaml"]
    assert [(s.get("tests"), s.get("failures"), s.get("errors")) for s in suites] == [
        ("3", "1", "0"),
        ("1", "0", "1"),
    ]
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == ["quadratic [x=3]", "quadratic [x=3]", "wrong [x=3]"]
    assert cases[0].get("classname") == "examples.batch.seed"
    assert float(cases[0].get("time")) == 0.1  # the case's time shared among its points
    assert cases[0].find("failure") is None
    failure = cases[2].find("failure")
    assert failure.get("message") == "m"
    assert "d/dx: autograd 9, symbolic 8 (2*x + 2), numeric 8" in failure.text
    error = suites[1].find("testcase").find("error")
    assert error.get("message") == "seed: case 3: bad key"
    assert "location: cases.toml: case 1 (quadratic)" in error.text


def test_junit_escapes_names_and_drops_control_characters() -> None:
    nasty = 'a "quoted" <name> & \x07bell\nnewline'
    root = junit([Outcome('we"ird<&>.toml', [make_result("fail", nasty, message=nasty)], 0.0)])
    case = root.find("testsuite/testcase")
    assert case.get("name").startswith('a "quoted" <name> & ?bell\nnewline')
    assert case.find("failure").get("message") == 'a "quoted" <name> & ?bell\nnewline'
    assert root.find("testsuite").get("name") == 'we"ird<&>.toml'


def test_junit_with_no_results_is_valid() -> None:
    root = junit([])
    assert root.get("tests") == "0"
    assert root.findall("testsuite") == []
