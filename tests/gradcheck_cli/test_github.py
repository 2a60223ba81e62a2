"""--format github: workflow commands that parse back as the runner reads them, the summary."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from gradcheck_cli.github import GithubReport, annotation, summary_markdown
from gradcheck_cli.render import BatchTable, make_console
from gradcheck_cli.results import Outcome, Tally

sys.path.insert(0, str(Path(__file__).parent))
from test_report import make_result  # noqa: E402

COMMAND = re.compile(r"^::(?P<command>[a-z]+)(?: (?P<properties>[^:]*))?::(?P<message>.*)$")


def unescape(text: str) -> str:
    """The runner's decoding of workflow command values (the reverse of our escaping)."""
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def parse(line: str) -> tuple[str, dict[str, str], str]:
    """(command, properties, message) of one workflow command line, as the runner splits it."""
    m = COMMAND.match(line)
    assert m, line
    properties = {}
    for part in (m["properties"] or "").split(","):
        key, _, value = part.partition("=")
        properties[key] = unescape(value)
    return m["command"], properties, unescape(m["message"])


def test_an_annotation_is_one_line_that_parses_back_whole() -> None:
    nasty = "d/dx: autograd 9, expected 8 (100% off)\nsecond line, with: colons"
    result = make_result("fail", name="weird, name: 50%", auto=9.0, message=nasty)
    result.line = 12
    line = annotation("tests/cases, v2.toml", result)
    assert "\n" not in line and "\r" not in line
    command, properties, message = parse(line)
    assert command == "error"
    assert properties == {
        "file": "tests/cases, v2.toml",
        "line": "12",
        "title": "gradcheck FAIL: weird, name: 50% at x=3",
    }
    assert message.splitlines()[:2] == nasty.splitlines()
    assert "d/dx: autograd 9, symbolic 8 (2*x + 2), numeric 8" in message


def test_without_a_known_line_the_annotation_names_the_file_only() -> None:
    _, properties, _ = parse(annotation("c.toml", make_result("error", message="bad")))
    assert set(properties) == {"file", "title"}


def test_the_report_logs_the_table_then_annotates_each_failure(tmp_path: Path) -> None:
    buffer = io.StringIO()
    table = BatchTable(make_console(False, file=buffer))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    report = GithubReport(table, buffer, str(summary))
    wrong = make_result("fail", name="wrong", auto=9.0, message="autograd disagrees")
    report.add(Outcome("seed.toml", [make_result(), wrong], 0.1))
    report.finish()
    report.write_summary("1 passed, 1 failed in 0.10s")
    lines = buffer.getvalue().splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert len(commands) == 1 and parse(commands[0])[1]["file"] == "seed.toml"
    assert lines.index(commands[0]) > max(i for i, t in enumerate(lines) if "✗ FAIL" in t)
    assert report.tally == Tally(total=2, passed=1, failed=1)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### ❌ gradcheck: 1 passed, 1 failed in 0.10s\n")
    assert "| FAIL | seed.toml | wrong | x=3 | autograd disagrees |" in text


def test_the_summary_escapes_markdown_and_html() -> None:
    result = make_result("fail", name="a|b <script>", message="x | y\nmore")
    result.line = 4
    text = summary_markdown([("c.toml", result)], Tally(1, 0, 1, 0), "0 passed, 1 failed")
    row = text.splitlines()[-1]
    assert row == "| FAIL | c.toml:4 | a\\|b &lt;script&gt; | x=3 | x \\| y |"
    green = summary_markdown([], Tally(2, 2, 0, 0), "2 passed in 0.01s")
    assert green == "### ✅ gradcheck: 2 passed in 0.01s\n\n"
