"""Batch files -> cases with file:case locations; deterministic sharding; parallel runs."""

from __future__ import annotations

import difflib
import gc
import json
import math
import time
import tomllib
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradcheck_cli.callables import CallableCase
    from gradcheck_cli.checks import Case, CaseResult

TOP_KEYS = ("defaults", "case")
DEFAULT_KEYS = ("atol", "rtol", "order", "dtype")
CASE_KEYS = ("name", "expr", "at", "points", "expect", "atol", "rtol", "order", "dtype")
DTYPES = ("float32", "float64")
ORDERS = (1, 2)
SUFFIXES = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}

# Cases per task sent to a worker: big enough to amortise pickling, small enough that
# --fail-fast stops soon and results stream out steadily.
CHUNK = 8
# Cases read ahead, before a parallel run forks, to prepare their expressions once.
WARM_AHEAD = 256


class BatchFileError(Exception):
    """A batch file that cannot be used at all (unreadable, unparsable, bad top-level key)."""


class CaseInvalid(ValueError):
    """A case whose keys or values are wrong; it becomes an `error` row."""


@dataclass(frozen=True)
class CaseProblem:
    """A case that failed validation, carried to the report as an error row."""

    name: str
    expr: str
    location: str
    message: str


Item = tuple[str, "Case | CallableCase | CaseProblem"]


@dataclass(frozen=True)
class BatchFile:
    """One loaded batch file: its path, validated defaults and raw case tables."""

    path: str
    defaults: dict[str, Any]
    raw_cases: tuple[Any, ...]
    lenient_numbers: bool

    def __len__(self) -> int:
        return len(self.raw_cases)


@dataclass(frozen=True)
class Outcome:
    """What one case produced: its file, one result per point, and the seconds it took."""

    path: str
    results: list[CaseResult]
    seconds: float


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'X'?)' for a close match, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _parse_document(path: Path, text: str, kind: str) -> Any:
    """Parse file text with the safe loader for its format; errors name the line."""
    if kind == "toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BatchFileError(f"{path}: invalid TOML: {exc}") from None
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise BatchFileError(
                f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    import yaml  # only `check` on YAML files pays for PyYAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BatchFileError(f"{path}: invalid YAML{where}: {problem}") from None


def load_file(path: str | Path) -> BatchFile:
    """Read and check the top level of one batch file; raise BatchFileError if unusable."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BatchFileError(
            f"{path}: unknown file type '{path.suffix}' (use .toml, .yaml, .yml or .json)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BatchFileError(f"{path}: is a directory, not a batch file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchFileError(f"{path}: cannot read: {exc}") from None
    doc = _parse_document(path, text, kind)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise BatchFileError(
            f"{path}: the top level must be a table with 'case' entries, not {_kind(doc)}"
        )
    for key in doc:
        if key not in TOP_KEYS:
            raise BatchFileError(
                f"{path}: unknown top-level key '{key}'{suggest(str(key), TOP_KEYS)}"
            )
    lenient = kind == "yaml"
    defaults = _check_defaults(path, doc.get("defaults", {}), lenient)
    cases = doc.get("case", [])
    if isinstance(cases, dict):
        cases = [cases]  # a single `[case]` table instead of `[[case]]`
    if not isinstance(cases, list):
        raise BatchFileError(f"{path}: 'case' must be a list of tables, not {_kind(cases)}")
    if not cases:
        raise BatchFileError(f"{path}: no cases (add a [[case]] table with an 'expr')")
    return BatchFile(str(path), defaults, tuple(cases), lenient)


def _check_defaults(path: Path, raw: Any, lenient: bool) -> dict[str, Any]:
    """Validate the [defaults] table; any problem makes the whole file unusable."""
    if not isinstance(raw, dict):
        raise BatchFileError(f"{path}: 'defaults' must be a table, not {_kind(raw)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in DEFAULT_KEYS:
            hint = suggest(str(key), DEFAULT_KEYS)
            if not hint and key in CASE_KEYS:
                hint = " (it can only be set per case)"
            raise BatchFileError(f"{path}: [defaults]: unknown key '{key}'{hint}")
        try:
            out[key] = _check_setting(key, value, lenient)
        except CaseInvalid as exc:
            raise BatchFileError(f"{path}: [defaults]: {exc}") from None
    return out


def _kind(value: Any) -> str:
    """Name a parsed value's type the way a batch-file author would."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "empty"
    return repr(value)


def _number(key: str, value: Any, lenient: bool) -> float:
    """A float from a batch value; bools are refused, YAML's '1e-6' strings accepted."""
    if isinstance(value, bool):
        raise CaseInvalid(f"'{key}' must be a number, not {value!r}")
    if isinstance(value, int | float):
        return float(value)
    # PyYAML follows YAML 1.1, where `1e-6` (no dot) is a string: accept what float() reads.
    if lenient and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise CaseInvalid(f"'{key}' must be a number, not {_kind(value)}")


def _check_setting(key: str, value: Any, lenient: bool) -> Any:
    """Validate one of the keys that [defaults] and cases share."""
    if key in ("atol", "rtol"):
        number = _number(key, value, lenient)
        if not number >= 0 or math.isinf(number):
            raise CaseInvalid(f"'{key}' must be a finite number >= 0, not {value!r}")
        return number
    if key == "order":
        if isinstance(value, bool) or value not in ORDERS:
            raise CaseInvalid(f"'order' must be 1 or 2, not {value!r}")
        return int(value)
    if key == "dtype":
        if value not in DTYPES:
            hint = suggest(str(value), DTYPES)
            raise CaseInvalid(f"'dtype' must be float32 or float64, not {value!r}{hint}")
        return value
    raise AssertionError(key)


def _point(key: str, value: Any, lenient: bool) -> dict[str, float]:
    """Validate a {variable: number} table."""
    if not isinstance(value, dict):
        raise CaseInvalid(f"'{key}' must be a table of variable = number, not {_kind(value)}")
    if not value:
        raise CaseInvalid(f"'{key}' is empty")
    point: dict[str, float] = {}
    for name, number in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise CaseInvalid(f"'{key}': {name!r} is not a variable name")
        point[name] = _number(f"{key}.{name}", number, lenient)
    return point


def to_case(
    raw: Any,
    defaults: dict[str, Any],
    location: str,
    lenient: bool,
    *,
    allow_python: bool = False,
    paths: tuple[str, ...] = (),
) -> Case | CallableCase:
    """Validate one raw case table and build a Case; raise CaseInvalid naming the key.

    A table with 'fn' instead of 'expr' names a Python callable (see callables.py); whether
    its code may be imported is decided here, when the case is built, so that worker
    processes need no other state.
    """
    from gradcheck_cli.checks import Case

    if not isinstance(raw, dict):
        raise CaseInvalid(f"a case must be a table, not {_kind(raw)}")
    if "fn" in raw:
        if "expr" in raw:
            raise CaseInvalid("give either 'expr' or 'fn', not both")
        from gradcheck_cli.callables import to_callable_case

        return to_callable_case(
            raw, defaults, location, lenient, allow_python=allow_python, paths=paths
        )
    for key in raw:
        if key not in CASE_KEYS:
            if key in ("inputs", "seed", "fast"):
                hint = ' (it belongs to Python callable cases: add fn = "pkg.module:function")'
            else:
                hint = suggest(str(key), (*CASE_KEYS, "fn"))
            raise CaseInvalid(f"unknown key '{key}'{hint}")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise CaseInvalid(f"'name' must be a string, not {_kind(name)}")
    expr = raw.get("expr")
    if expr is None:
        raise CaseInvalid("missing key 'expr' (or 'fn' for a Python callable)")
    if not isinstance(expr, str):
        raise CaseInvalid(f"'expr' must be a string, not {_kind(expr)}")
    if "at" in raw and "points" in raw:
        raise CaseInvalid("give either 'at' or 'points', not both")
    if "at" in raw:
        points = (_point("at", raw["at"], lenient),)
    elif "points" in raw:
        listed = raw["points"]
        if not isinstance(listed, list) or not listed:
            raise CaseInvalid(f"'points' must be a non-empty list of tables, not {_kind(listed)}")
        points = tuple(_point(f"points[{i}]", p, lenient) for i, p in enumerate(listed))
    else:
        raise CaseInvalid("missing key 'at' (or 'points')")
    expect = _point("expect", raw["expect"], lenient) if "expect" in raw else None
    settings = dict(defaults)
    for key in DEFAULT_KEYS:
        if key in raw:
            settings[key] = _check_setting(key, raw[key], lenient)
    return Case(
        expr=expr,
        points=points,
        name=name,
        expect=expect,
        location=location,
        **settings,
    )


def _describe(raw: Any, index: int) -> tuple[str, str]:
    """Best-effort name and expression of a raw case, for its error row."""
    fields = raw if isinstance(raw, dict) else {}
    expr = fields.get("expr") if isinstance(fields.get("expr"), str) else ""
    if not expr and isinstance(fields.get("fn"), str):
        expr = fields["fn"]
    name = fields.get("name") if isinstance(fields.get("name"), str) else ""
    return name or expr or f"case {index}", expr


def location_of(path: str, index: int, raw: Any) -> str:
    """'file: case N (name)' with N counted from 1, as error messages show it."""
    fields = raw if isinstance(raw, dict) else {}
    name = fields.get("name") if isinstance(fields.get("name"), str) else None
    return f"{path}: case {index}" + (f" ({name})" if name else "")


def iter_items(
    files: Iterable[BatchFile], *, allow_python: bool = False, paths: Iterable[str] = ()
) -> Iterator[Item]:
    """Every (file, case) of every file in order; invalid cases become CaseProblem items.

    allow_python lets 'fn' cases import their code; paths go first on the import path.
    """
    dirs = tuple(paths)
    for batch in files:
        for index, raw in enumerate(batch.raw_cases, start=1):
            location = location_of(batch.path, index, raw)
            try:
                yield (
                    batch.path,
                    to_case(
                        raw,
                        batch.defaults,
                        location,
                        batch.lenient_numbers,
                        allow_python=allow_python,
                        paths=dirs,
                    ),
                )
            except CaseInvalid as exc:
                name, expr = _describe(raw, index)
                yield batch.path, CaseProblem(name, expr, location, f"{location}: {exc}")


def split_points(items: Iterable[Item]) -> Iterator[tuple[str, str, Any]]:
    """(id, file, runnable) per case and point: the ids pytest shows and `trace` accepts.

    An expression case yields 'name[x=3]' per point (a one-point Case); a callable case
    or an invalid one yields its name. Repeated ids get ' (case N)' appended, so that ids
    are unique and the same in every process (pytest-xdist collects in each worker).
    """
    import dataclasses

    from gradcheck_cli.checks import Case
    from gradcheck_cli.report import fmt_point

    seen: Counter[str] = Counter()
    for index, (path, item) in enumerate(items, start=1):
        base = (item.name or item.expr or f"case {index}").replace("::", ":")
        if isinstance(item, Case) and item.points:
            runs = [
                (f"{base}[{fmt_point(p)}]", dataclasses.replace(item, points=(p,)))
                for p in item.points
            ]
        else:
            runs = [(base, item)]
        for name, run in runs:
            seen[name] += 1
            yield (name if seen[name] == 1 else f"{name} (case {index})"), path, run


def shard(items: Iterable[Any], k: int, n: int) -> Iterator[Any]:
    """Keep item i (counted from 0 across all files) when i mod n == k - 1."""
    for i, item in enumerate(items):
        if i % n == k - 1:
            yield item


def shard_size(total: int, k: int, n: int) -> int:
    """How many of `total` items shard k of n keeps."""
    return len(range(k - 1, total, n))


def error_result(
    name: str, expr: str, message: str, location: str, point: dict[str, float] | None = None
) -> CaseResult:
    """An `error` row for a case that could not be run."""
    from gradcheck_cli.checks import CaseResult

    return CaseResult(
        name=name,
        expr=expr,
        point=point or {},
        status="error",
        value=None,
        derivative={},
        gradient={"autograd": {}, "symbolic": {}, "numeric": {}},
        error={},
        message=message,
        hessian=None,
        numeric_error={},
        notes=[],
        location=location,
    )


def run_item(path: str, item: Case | CallableCase | CaseProblem, debug: bool = False) -> Outcome:
    """Run one case (or turn a CaseProblem into its error row), timing it."""
    start = time.perf_counter()
    if isinstance(item, CaseProblem):
        results = [error_result(item.name, item.expr, item.message, item.location)]
    else:
        from gradcheck_cli.callables import CallableCase, run_callable_case
        from gradcheck_cli.checks import run_case

        try:
            results = run_callable_case(item) if isinstance(item, CallableCase) else run_case(item)
        except Exception as exc:  # a bug in the checker must not sink the other cases
            if debug:
                raise
            name = item.name or item.expr
            message = f"{item.location}: internal error: {type(exc).__name__}: {exc}"
            results = [error_result(name, item.expr, message, item.location)]
    return Outcome(path, results, time.perf_counter() - start)


def _run_chunk(items: list[Item], debug: bool) -> list[Outcome]:
    """Worker entry point: run a few cases in a child process."""
    return [run_item(path, item, debug) for path, item in items]


def _warm(items: list[Item]) -> None:
    """Prepare, in this process, each (expression, order) that several of the items share."""
    from gradcheck_cli.checks import Case, prepare

    counts = Counter((c.expr, c.order) for _, c in items if isinstance(c, Case))
    # An expression used once is prepared by the one worker that runs it, in parallel.
    for expr, order in (key for key, count in counts.items() if count > 1):
        try:
            prepare(expr, order)
        except Exception:  # the case reports its own error when it runs
            pass


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Group an iterable into lists of `size` without materialising it."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_items(items: Iterable[Item], jobs: int = 1, debug: bool = False) -> Iterator[Outcome]:
    """Run items in order, in `jobs` processes; stop early when the caller stops iterating."""
    if jobs <= 1:
        for path, item in items:
            yield run_item(path, item, debug)
        return
    from concurrent.futures import Future, ProcessPoolExecutor

    # Prepare (parse, differentiate, compile) the shared expressions of the first cases here,
    # before the fork: every worker inherits them, and SymPy's import, instead of redoing them.
    iterator = iter(items)
    head = list(islice(iterator, WARM_AHEAD))
    _warm(head)
    # Frozen objects are skipped by the collector, so workers do not copy every page of the
    # inherited heap just to walk it (the pre-fork recipe of gc.freeze's documentation).
    gc.freeze()
    pool = ProcessPoolExecutor(max_workers=jobs)
    # A bounded window of chunks in flight keeps memory flat however long the batch is,
    # and yielding from its head keeps the output in file order.
    window: deque[Future[list[Outcome]]] = deque()
    try:
        for chunk in _chunks(chain(head, iterator), CHUNK):
            window.append(pool.submit(_run_chunk, chunk, debug))
            if len(window) >= 4 * jobs:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()
    finally:
        # Waiting only lets the chunks already running finish (--fail-fast stops soon);
        # not waiting makes CPython's exit hook write to the pool's closed wake-up pipe.
        pool.shutdown(wait=True, cancel_futures=True)
