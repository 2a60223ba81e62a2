"""Batch files as untrusted input: special files, sizes, huge and deep values, odd strings.

Every one is exit 2 with a one-line message (the file is unusable) or an error row naming
file, case and key (the case is), never a traceback, a hang or exit 3.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck_cli.cli import main

ENV = {"COLUMNS": "100", "NO_COLOR": None, "FORCE_COLOR": None, "GRADCHECK_ALLOW_PYTHON": None}
EXAMPLES = Path(__file__).parents[2] / "examples" / "batch"


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=ENV)
    assert "Traceback" not in result.output
    assert result.exit_code != 3, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def rows(path: Path, *args: str) -> tuple[int, list[dict]]:
    result = run("check", str(path), "--format", "json", *args)
    return result.exit_code, json.loads(result.output)["cases"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------- special files


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "zero.toml")
    os.symlink("/dev/urandom", tmp_path / "random.json")
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "folder.toml").mkdir()
    for name, kind in [
        ("zero.toml", "a character device"),
        ("random.json", "a character device"),
        ("fifo.yaml", "a FIFO (named pipe)"),  # opening it must not wait for a writer
        ("folder.toml", "a directory"),
    ]:
        result = run("check", str(tmp_path / name))
        assert result.exit_code == 2
        assert f"{tmp_path / name}: is {kind}, not a batch file" in result.output


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as file:
        file.truncate(65 * 2**20)  # sparse: nothing to read, and nothing is
    result = run("check", str(path))
    assert result.exit_code == 2
    assert f"{path}: 65 MB is too large (the limit is 64 MB)" in result.output


def test_an_output_that_is_an_input_a_device_or_a_fifo_is_refused_before_running(
    tmp_path: Path,
) -> None:
    batch = write(tmp_path, "c.json", '{"case": [{"expr": "x*x", "at": {"x": 1}}]}')
    before = batch.read_text()
    result = run("check", str(batch), "--format", "json", "-o", str(batch))
    assert result.exit_code == 2 and "is the batch file" in result.output
    assert batch.read_text() == before
    os.mkfifo(tmp_path / "out.fifo")
    for output, kind in [("/dev/full", "a character device"), (tmp_path / "out.fifo", "a FIFO")]:
        result = run("check", str(batch), "-o", str(output))
        assert result.exit_code == 2 and f"is {kind}" in result.output
    assert run("check", str(batch), "-o", str(tmp_path)).exit_code == 2  # a directory


def test_output_is_replaced_whole_and_keeps_its_mode(tmp_path: Path) -> None:
    batch = write(tmp_path, "c.toml", '[[case]]\nexpr = "x*x"\nat = { x = 1 }\n')
    report = write(tmp_path, "report.json", "old\n")
    report.chmod(0o640)
    result = run("check", str(batch), "--format", "json", "-o", str(report))
    assert result.exit_code == 0
    assert json.loads(report.read_text())["summary"]["passed"] == 1
    assert report.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# ------------------------------------------------------------------ huge and deep values


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (f"at = {{ x = {'9' * 400} }}", "'at.x' is out of range (an integer of 400 digits)"),
        (
            f"at = {{ x = 1 }}\nexpect = {{ x = -{'9' * 400} }}",
            "'expect.x' is out of range (an integer of 400 digits)",
        ),
        (f"at = {{ x = 1 }}\natol = {'9' * 400}", "'atol' is out of range"),
        (f"at = {{ x = 1 }}\norder = {'9' * 400}", "'order' must be 1 or 2, not an integer of"),
        ("at = { x = 1 }\natol = nan", "'atol' must be a finite number, not nan"),
        ("at = { x = 1 }\nrtol = inf", "'rtol' must be a finite number, not inf"),
        ("at = { x = 1e999 }", "'at.x' must be a finite number, not inf"),
        ("at = { x = " + "[" * 40 + "1" + "]" * 40 + " }", "nested more than 32 levels deep"),
    ],
    ids=["point", "expect", "atol", "order", "nan-atol", "inf-rtol", "inf-point", "deep"],
)
def test_a_bad_number_is_an_error_row_naming_file_case_and_key(
    tmp_path: Path, case: str, message: str
) -> None:
    path = write(tmp_path, "c.toml", f'[[case]]\nexpr = "x*x"\n{case}\n')
    code, [row] = rows(path)
    assert code == 1
    assert row["status"] == "error"
    assert row["message"].startswith(f"{path}: case 1: ")
    assert message in row["message"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("shape.toml", f'[[case]]\nfn = "m:f"\ninputs = [{{ shape = [{"9" * 5000}] }}]\n'),
        ("order.json", f'{{"case": [{{"expr": "x", "at": {{"x": 1}}, "order": {"7" * 5000}}}]}}'),
        ("deep.json", '{"case": [{"expr": "x", "at": {"x": ' + "[" * 100_000 + "]" * 100_000),
        ("deep.toml", '[[case]]\nexpr = "x"\nat = { x = ' + "[" * 100_000 + "]" * 100_000),
        ("deep.yaml", "case:\n- expr: x\n  at: {x: " + "[" * 100_000 + "]" * 100_000 + "}\n"),
    ],
)
def test_values_no_parser_can_hold_are_a_one_line_file_error(
    tmp_path: Path, name: str, text: str
) -> None:
    result = run("check", str(write(tmp_path, name, text)))
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith(f"Error: {tmp_path / name}: invalid ")


def test_defaults_and_options_are_bounded(tmp_path: Path) -> None:
    path = write(tmp_path, "c.toml", f"[defaults]\natol = {'1' * 400}\n[[case]]\nexpr = 'x'\n")
    result = run("check", str(path))
    assert result.exit_code == 2 and "[defaults]: 'atol' is out of range" in result.output
    ok = EXAMPLES / "seed.toml"
    for option in (["--jobs", "9" * 20], ["--timeout", "nan"], ["--timeout", "0"]):
        result = run("check", str(ok), *option)
        assert result.exit_code == 2 and option[0] in result.output
    for option in ("--atol", "--rtol"):
        result = run("grad", "x*x", "--at", "x=1", option, "nan")
        assert result.exit_code == 2
        assert f"Invalid value for '{option}': 'nan' is not a finite number" in result.output


# ------------------------------------------------------------------------ strings shown


def test_control_characters_in_names_are_shown_escaped_everywhere(tmp_path: Path) -> None:
    # A FAIL row that tries to erase itself and print a PASS in its place.
    name = "\x1b[2K\r\x1b[32m✓ PASS\x1b[0m fake \u202e"
    path = write(
        tmp_path,
        "c.json",
        json.dumps({"case": [{"name": name, "expr": "x*x", "at": {"x": 1}, "expect": {"x": 5}}]}),
    )
    for form in ("table", "json", "junit"):
        result = run("check", str(path), "--format", form, "--no-color")
        assert result.exit_code == 1
        assert "\x1b" not in result.output and "\r" not in result.output
        assert "\u202e" not in result.output
    table = run("check", str(path)).output
    assert "\\x1b[2K\\r\\x1b[32m✓ PASS\\x1b[0m fake \\u202e" in table


def test_a_lone_surrogate_in_a_name_is_escaped_not_a_crash(tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.json", '{"case": [{"name": "bad \\ud800", "expr": "x", "at": {"x": 1}}]}'
    )
    table = run("check", str(path))
    assert table.exit_code == 0 and "bad \\ud800" in table.output
    report = tmp_path / "report.xml"
    assert run("check", str(path), "--format", "junit", "-o", str(report)).exit_code == 0
    [case] = ET.parse(report).getroot().iter("testcase")
    assert case.get("name").startswith("bad ?")


# ---------------------------------------------------------------------- property test

SEEDS = [EXAMPLES / name for name in ("seed.toml", "seed.json", "seed.yaml", "fails.toml")]
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace", "repeat"]),
        st.floats(0, 1),
        st.sampled_from(
            [
                "9" * 400,
                "nan",
                "[",
                "]",
                "{",
                "}",
                '"',
                "\n",
                "=",
                ",",
                "-",
                "1e999",
                "\x1b",
                "\ud800",
                "[[case]]",
                "case",
                "expr",
                "order = 2",
                "::",
                "\\",
                "\x00",
                "-1",
            ]
        ),
    ),  # fmt: skip
    min_size=1,
    max_size=4,
)


def mutate(text: str, mutations: list[tuple[str, float, str]]) -> str:
    for kind, where, piece in mutations:
        at = int(where * len(text))
        if kind == "delete":
            text = text[:at] + text[at + len(piece) :]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "replace":
            text = text[:at] + piece + text[at + 1 :]
        else:
            text = text[:at] + text[at : at + 40] * 3 + text[at:]
    return text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.sampled_from(SEEDS), mutations=MUTATIONS, form=st.sampled_from(["json", "junit"]))
def test_mutated_batch_files_give_0_1_or_2_and_a_valid_report(
    tmp_path: Path, seed: Path, mutations: list, form: str
) -> None:
    text = mutate(seed.read_text(encoding="utf-8"), mutations)
    path = tmp_path / f"mutated{seed.suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = run("check", str(path), "--format", form)
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 2:
        assert result.output.startswith("Error: ") or "Usage:" in result.output
    elif form == "json":
        report = json.loads(result.output)
        assert report["summary"]["total"] == len(report["cases"])
    else:
        ET.fromstring(result.output)
