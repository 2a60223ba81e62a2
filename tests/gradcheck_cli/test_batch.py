"""Batch files: loading, validation messages, sharding, serial and parallel runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck_cli.batch import shard, shard_size
from gradcheck_cli.runner import Runner, RunOptions
from gradcheck_cli.schema import BatchFileError, Case, CaseProblem, iter_items, load_file

EXAMPLES = Path(__file__).parents[2] / "examples" / "batch"


def items_of(path: Path) -> list[tuple[str, Case | CaseProblem]]:
    """Every (file, item) of one file."""
    return list(iter_items([load_file(path)]))


def run_items(items: list, jobs: int = 1, debug: bool = False) -> Iterator:
    """Outcomes of the items, run as `gradcheck check` runs them."""
    with Runner(RunOptions(jobs=jobs, debug=debug)) as runner:
        yield from runner.run(items)


def write(tmp_path: Path, name: str, text: str) -> Path:
    """A batch file in the test's directory."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def only_problem(tmp_path: Path, case_text: str) -> str:
    """The message of the single (invalid) case in a TOML file."""
    [(_, item)] = items_of(write(tmp_path, "c.toml", case_text))
    assert isinstance(item, CaseProblem), item
    return item.message


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_the_three_formats_carry_the_same_cases(suffix: str) -> None:
    def strip(items: list) -> list:
        return [dataclasses.replace(case, location="") for _, case in items]

    toml = items_of(EXAMPLES / "seed.toml")
    other = items_of(EXAMPLES / f"seed.{suffix}")
    assert all(isinstance(case, Case) for _, case in toml)
    assert strip(other) == strip(toml)


def test_cases_take_defaults_and_their_own_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.toml",
        """
[defaults]
atol = 1e-6
order = 2
[[case]]
expr = "x**2"
at = { x = 3 }
[[case]]
name = "own"
expr = "x*y"
points = [{ x = 1, y = 2 }, { x = -1, y = 0.5 }]
rtol = 0.5
order = 1
dtype = "float32"
expect = { x = 2 }
""",
    )
    (_, first), (_, second) = items_of(path)
    assert first == Case("x**2", ({"x": 3.0},), atol=1e-6, order=2, location=f"{path}: case 1")
    assert second == Case(
        "x*y",
        ({"x": 1.0, "y": 2.0}, {"x": -1.0, "y": 0.5}),
        name="own",
        expect={"x": 2.0},
        atol=1e-6,
        rtol=0.5,
        order=1,
        dtype="float32",
        location=f"{path}: case 2 (own)",
    )


def test_a_misspelt_case_key_names_file_case_and_key_with_a_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.toml",
        """
[[case]]
expr = "x"
at = { x = 1 }
[[case]]
name = "typo"
expr = "x*x"
at = { x = 3 }
expct = { x = 6 }
""",
    )
    (_, good), (_, bad) = items_of(path)
    assert isinstance(good, Case)
    assert bad == CaseProblem(
        "typo",
        "x*x",
        f"{path}: case 2 (typo)",
        f"{path}: case 2 (typo): unknown key 'expct' (did you mean 'expect'?)",
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("at = { x = 1 }", "missing key 'expr'"),
        ("expr = 3\nat = { x = 1 }", "'expr' must be a string, not 3"),
        ('expr = "x"', "missing key 'at' (or 'points')"),
        (
            'expr = "x"\nat = { x = 1 }\npoints = [{ x = 2 }]',
            "give either 'at' or 'points', not both",
        ),
        ('expr = "x"\nat = { x = "one" }', "'at.x' must be a number, not the string 'one'"),
        ('expr = "x"\nat = { x = true }', "'at.x' must be a number, not True"),
        ('expr = "x"\nat = 3', "'at' must be a table of variable = number, not 3"),
        ('expr = "x"\npoints = []', "'points' must be a non-empty list of tables, not a list"),
        ('expr = "x"\npoints = [{ x = 1 }, 2]', "'points[1]' must be a table of variable = number"),
        ('expr = "x"\nat = { x = 1 }\norder = 3', "'order' must be 1 or 2, not 3"),
        ('expr = "x"\nat = { x = 1 }\ndtype = "float16"', "'dtype' must be float32 or float64"),
        ('expr = "x"\nat = { x = 1 }\natol = -1', "'atol' must be a finite number >= 0, not -1"),
        ('expr = "x"\nat = { x = 1 }\nname = 7', "'name' must be a string, not 7"),
        ('expr = "x"\nat = { x = 1 }\nexpect = { x = "8" }', "'expect.x' must be a number"),
    ],
)
def test_invalid_case_values(tmp_path: Path, case: str, message: str) -> None:
    assert message in only_problem(tmp_path, "[[case]]\n" + case + "\n")


def test_problem_rows_still_name_the_case(tmp_path: Path) -> None:
    text = '[[case]]\nexpr = "x"\nat = { x = 1 }\norder = 3\n'
    [(_, item)] = items_of(write(tmp_path, "c.toml", text))
    assert (item.name, item.expr) == ("x", "x")
    assert item.message.startswith(f"{tmp_path / 'c.toml'}: case 1: ")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "a.toml",
            '[[cases]]\nexpr = "x"\n',
            "unknown top-level key 'cases' (did you mean 'case'?)",
        ),
        (
            "a.toml",
            "[defaults]\natoll = 1\n",
            "[defaults]: unknown key 'atoll' (did you mean 'atol'?)",
        ),
        (
            "a.toml",
            "[defaults]\nexpr = 'x'\n",
            "[defaults]: unknown key 'expr' (it can only be set per case)",
        ),
        ("a.toml", "[defaults]\norder = 5\n", "[defaults]: 'order' must be 1 or 2, not 5"),
        ("a.toml", "[[case]\n", "invalid TOML"),
        ("a.toml", "", "no cases"),
        ("a.json", '{"case": [}', "invalid JSON at line 1, column 11"),
        ("a.json", "[1, 2]", "the top level must be a table with 'case' entries, not a list"),
        ("a.yaml", "case: [\n", "invalid YAML at line 2"),
        ("a.yaml", "case: 3\n", "'case' must be a list of tables, not 3"),
        ("a.txt", "", "unknown file type '.txt'"),
    ],
)
def test_unusable_files_raise_with_file_and_reason(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(BatchFileError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(BatchFileError, match="no such file"):
        load_file(tmp_path / "absent.toml")
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(BatchFileError, match="is a directory"):
        load_file(tmp_path / "dir.toml")


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path: Path) -> None:
    # YAML 1.1 reads 1e-6 as a string; authors mean a number.
    path = write(tmp_path, "a.yaml", "defaults: {atol: 1e-6}\ncase:\n  - {expr: x, at: {x: 2e0}}\n")
    [(_, case)] = items_of(path)
    assert (case.atol, case.points) == (1e-6, ({"x": 2.0},))


def test_a_single_case_table_is_accepted(tmp_path: Path) -> None:
    [(_, case)] = items_of(write(tmp_path, "a.toml", '[case]\nexpr = "x"\nat = { x = 1 }\n'))
    assert case.expr == "x"


@given(total=st.integers(0, 60), n=st.integers(1, 9))
def test_shards_cover_every_case_exactly_once(total: int, n: int) -> None:
    cases = list(range(total))
    parts = [list(shard(cases, k, n)) for k in range(1, n + 1)]
    assert sorted(x for part in parts for x in part) == cases
    assert [len(p) for p in parts] == [shard_size(total, k, n) for k in range(1, n + 1)]
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    assert parts == [list(shard(cases, k, n)) for k in range(1, n + 1)]  # deterministic


def test_parallel_runs_give_the_serial_results_in_order() -> None:
    items = items_of(EXAMPLES / "seed.toml") + items_of(EXAMPLES / "fails.toml")
    serial = list(run_items(items, jobs=1))
    parallel = list(run_items(items, jobs=2))
    assert [o.path for o in parallel] == [o.path for o in serial]
    assert [[r.status for r in o.results] for o in parallel] == [
        [r.status for r in o.results] for o in serial
    ]
    assert [[r.gradient for r in o.results] for o in parallel] == [
        [r.gradient for r in o.results] for o in serial
    ]


def test_problems_become_error_rows_and_checker_bugs_do_not_sink_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        "c.toml",
        '[[case]]\nexpr = "x"\nat = { x = 1 }\n[[case]]\nexpr = "x"\nat = { x = 1 }\nordr = 2\n',
    )
    outcomes = list(run_items(items_of(path)))
    assert [o.results[0].status for o in outcomes] == ["pass", "error"]
    assert "did you mean 'order'" in outcomes[1].results[0].message

    def broken(case: Case) -> list:
        raise ZeroDivisionError("checker bug")

    monkeypatch.setattr("gradcheck_cli.checks.run_case", broken)
    [outcome, _] = list(run_items(items_of(path)))
    assert outcome.results[0].status == "error"
    assert (
        outcome.results[0].message
        == f"{path}: case 1: internal error: ZeroDivisionError: checker bug"
    )
    with pytest.raises(ZeroDivisionError):
        list(run_items(items_of(path), debug=True))


def test_stopping_early_leaves_the_rest_unrun() -> None:
    items = items_of(EXAMPLES / "seed.toml") * 20
    outcomes = run_items(items, jobs=2)
    first = next(outcomes)
    outcomes.close()  # what --fail-fast does
    assert first.results[0].name == "quadratic"
