"""Batch files -> cases, each with its file:case location; bounded reading and parsing.

Only regular files are read, up to MAX_FILE_BYTES; the parsed document is walked with an
explicit stack under a depth and size budget, and every number is checked where it is read
(finite, in range), so that a bad value becomes an error row naming file, case and key,
and a bad file one line (exit 2); never an exception from deep inside a parser.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BatchFile",
    "BatchFileError",
    "CallableCase",
    "Case",
    "CaseInvalid",
    "CaseProblem",
    "InputSpec",
    "Item",
    "is_batch_document",
    "iter_items",
    "load_file",
    "read_document",
]

TOP_KEYS = ("defaults", "case")
DEFAULT_KEYS = ("atol", "rtol", "order", "dtype", "timeout")
CASE_KEYS = ("name", "expr", "at", "points", "expect", "atol", "rtol", "order", "dtype")
FN_KEYS = (
    "name", "fn", "inputs", "seed", "atol", "rtol", "order", "dtype", "fast", "timeout",
    "framework", "grad",
)
# Whose code a callable case is: engine, PyTorch, JAX, or NumPy with a hand-written `grad`.
FRAMEWORKS = ("engine", "torch", "jax", "numpy")
INPUT_KEYS = ("name", "shape", "values", "dtype", "low", "high", "requires_grad")
DTYPES = ("float32", "float64")
ORDERS = (1, 2)
SUFFIXES = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
STDIN = "-"  # FILE `-` reads the batch from standard input ...
STDIN_NAME = "<stdin>"  # ... and reports name it so

MAX_FILE_BYTES = 64 * 2**20
MAX_DEPTH = 32  # levels of nesting inside one case (a `values` array of 30 dimensions fits)
MAX_NODES = 1_000_000  # values inside one case: a YAML alias bomb stops here, not in memory
# The full check costs one backward per output element and a ladder of forwards per input
# element; past this many input elements a batch case should say `fast = true`.
MAX_ELEMENTS = 100_000
MAX_SEED = 2**63 - 1
MAX_TIMEOUT = 7 * 24 * 3600.0
# Limits of a run, checked where options are read (cli.py) and applied in runner.py.
DEFAULT_TIMEOUT = 300.0  # seconds per 'fn' case
DEFAULT_MEMORY_MB = 8192  # address space of a worker
MAX_JOBS = 256
# "pkg.mod:func" or "pkg.mod:Class.attr": names only, so that nothing but an import and
# attribute lookups can ever happen to the text.
TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class BatchFileError(Exception):
    """A batch file that cannot be used at all (unreadable, unparsable, bad top-level key)."""


class CaseInvalid(ValueError):
    """A case whose keys or values are wrong; it becomes an `error` row."""


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One check: an expression, the points to check it at, and optional expectations."""

    expr: str
    points: tuple[dict[str, float], ...]
    name: str | None = None
    expect: dict[str, float] | None = None
    atol: float | None = None
    rtol: float | None = None
    order: int = 1
    dtype: str = "float64"
    location: str = ""


@dataclass(frozen=True)
class InputSpec:
    """One positional input: explicit values, or a shape filled uniformly in [low, high)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None
    values: Any = None  # a number or nested tuples of numbers
    low: float = -1.0
    high: float = 1.0
    requires_grad: bool = True

    def _shape(self) -> tuple[int, ...]:
        if self.values is None:
            return self.shape or ()
        shape, level = [], self.values
        while isinstance(level, tuple):
            shape.append(len(level))
            level = level[0]
        return tuple(shape)

    def brief(self) -> str:
        """'x[3,4]' (or 'x[]' for a scalar)."""
        return f"{self.name}[{','.join(map(str, self._shape()))}]"

    def describe(self) -> str:
        """'x: float64[3, 4] in [-2, 2)' or 'x: float64[5] given'."""
        shape = ", ".join(map(str, self._shape()))
        if self.values is not None:
            text = f"{self.name}: {self.dtype}[{shape}] given"
        else:
            text = f"{self.name}: {self.dtype}[{shape}] in [{self.low:g}, {self.high:g})"
        return text if self.requires_grad else text + " (no grad)"


@dataclass(frozen=True)
class CallableCase:
    """A check of a Python callable's gradients, as a batch file states it."""

    fn: str
    inputs: tuple[InputSpec, ...]
    name: str | None = None
    seed: int = 0
    atol: float | None = None
    rtol: float | None = None
    order: int = 1
    dtype: str = "float64"
    fast: bool = False
    timeout: float | None = None  # seconds; None: the runner's default (--timeout)
    framework: str = "engine"  # the row of callables.FRAMEWORKS that loads and checks it
    grad: str | None = None  # framework "numpy": "pkg.mod:name" of the hand-written derivative
    location: str = ""
    allow_python: bool = False
    paths: tuple[str, ...] = ()

    @property
    def expr(self) -> str:
        """The target text, where reports show an expression."""
        return self.fn


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
    lines: tuple[int, ...] = ()  # where each case starts in the file; () if unknown

    def __len__(self) -> int:
        return len(self.raw_cases)


# ------------------------------------------------------------------------------ reading

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_kind(mode: int) -> str | None:
    """'a FIFO (named pipe)', 'a directory', ... for anything but a regular file, else None."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def read_text(path: Path) -> str:
    """A regular file's text, at most MAX_FILE_BYTES; BatchFileError says what and why."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BatchFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise BatchFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        kind = special_kind(info.st_mode)
        if kind is not None:
            raise BatchFileError(f"{path}: is {kind}, not a batch file")
        limit = f"the limit is {MAX_FILE_BYTES // 2**20} MB"
        if info.st_size > MAX_FILE_BYTES:
            raise BatchFileError(f"{path}: {info.st_size / 2**20:.0f} MB is too large ({limit})")
        chunks, size = [], 0
        while chunk := os.read(fd, 2**20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:  # it grew while being read
                raise BatchFileError(f"{path}: too large ({limit})")
    except OSError as exc:
        raise BatchFileError(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _parse(path: Path, text: str, kind: str) -> Any:
    """Parse file text with the safe loader for its format; errors name the line."""
    if kind == "toml":
        import tomllib  # here, not at the top: `gradcheck grad` imports this module too

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
    try:
        import yaml  # optional (gradcheck[yaml]): only YAML batch files need PyYAML
    except ImportError:
        raise BatchFileError(
            f"{path}: reading YAML needs PyYAML: pip install 'gradcheck[yaml]' "
            "(or write the batch in TOML or JSON)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BatchFileError(f"{path}: invalid YAML{where}: {problem}") from None


def read_stdin() -> str:
    """Standard input's text (FILE `-`), at most MAX_FILE_BYTES."""
    text = sys.stdin.read(MAX_FILE_BYTES + 1)
    if len(text) > MAX_FILE_BYTES:
        raise BatchFileError(f"{STDIN_NAME}: too large (the limit is {MAX_FILE_BYTES // 2**20} MB)")
    return text


def sniff(text: str) -> str:
    """The format of a batch read from stdin: JSON if it starts with '{', else TOML if it
    parses as TOML, else YAML (whose messages then say what is wrong)."""
    if text.lstrip().startswith("{"):
        return "json"
    import tomllib

    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "yaml"
    return "toml"


def read_document(path: str | Path) -> tuple[Any, str]:
    """(parsed document, 'toml' | 'yaml' | 'json') of a batch file; BatchFileError if not."""
    doc, kind, _ = _read_document(path)
    return doc, kind


def _read_document(path: str | Path) -> tuple[Any, str, str]:
    """(document, kind, text) of a batch file, or of standard input for `-`."""
    if str(path) == STDIN:
        path = Path(STDIN_NAME)
        text = read_stdin()
        kind = sniff(text)
    else:
        path = Path(path)
        found = SUFFIXES.get(path.suffix.lower())
        if found is None:
            raise BatchFileError(
                f"{path}: unknown file type '{path.suffix}' (use .toml, .yaml, .yml or .json)"
            )
        kind, text = found, read_text(path)
    name = kind.upper()
    try:
        doc = _parse(path, text, kind)
    except RecursionError:
        raise BatchFileError(f"{path}: invalid {name}: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer past Python's 4300 digits
        raise BatchFileError(f"{path}: invalid {name}: {_first_line(exc)}") from None
    return doc, kind, text


_TOML_CASE = re.compile(r"^[ \t]*\[\[[ \t]*case[ \t]*\]\]")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def case_lines(text: str, kind: str, count: int) -> tuple[int, ...]:
    """The line (from 1) where each of the `count` cases starts, for annotations that point
    at a case; () when the text does not tell (then reports name the file only)."""
    try:
        if kind == "toml":
            found = tuple(
                number
                for number, line in enumerate(text.splitlines(), start=1)
                if _TOML_CASE.match(line)
            )
        elif kind == "json":
            found = _json_case_lines(text)
        else:
            found = _yaml_case_lines(text)
    except (ValueError, RecursionError, ImportError):
        return ()
    return found if len(found) == count else ()


def _yaml_case_lines(text: str) -> tuple[int, ...]:
    """Lines of the items of the top-level 'case' sequence (the node tree: no aliases expanded)."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return ()
    if not isinstance(root, yaml.MappingNode):
        return ()
    for key, value in root.value:
        if getattr(key, "value", None) != "case":
            continue
        if isinstance(value, yaml.SequenceNode):
            return tuple(item.start_mark.line + 1 for item in value.value)
        return (value.start_mark.line + 1,)
    return ()


def _json_case_lines(text: str) -> tuple[int, ...]:
    """Lines of the items of the top-level "case" array, read with json's own scanner."""
    decoder = json.JSONDecoder()
    newlines = [i for i, char in enumerate(text) if char == "\n"]

    def skip(i: int, char: str = "") -> int:
        i = _JSON_SPACE.match(text, i).end()  # type: ignore[union-attr]
        if char and text.startswith(char, i):
            i = _JSON_SPACE.match(text, i + 1).end()  # type: ignore[union-attr]
        return i

    i = skip(0)
    if not text.startswith("{", i):
        return ()
    i = skip(i + 1)
    while i < len(text) and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = skip(i, ":")
        if key == "case" and text.startswith("[", i):
            starts = []
            i = skip(i + 1)
            while i < len(text) and text[i] != "]":
                starts.append(bisect.bisect_left(newlines, i) + 1)
                _, i = decoder.raw_decode(text, i)
                i = skip(i, ",")
            return tuple(starts)
        _, i = decoder.raw_decode(text, i)
        i = skip(i, ",")
    return ()


def is_batch_document(doc: Any) -> bool:
    """A top-level table with a 'case' entry and nothing foreign: what the plugin collects."""
    return isinstance(doc, dict) and "case" in doc and all(key in TOP_KEYS for key in doc)


def load_file(path: str | Path) -> BatchFile:
    """Read and check the top level of one batch file (`-`: standard input); raise
    BatchFileError if unusable."""
    doc, kind, text = _read_document(path)
    path = Path(STDIN_NAME if str(path) == STDIN else path)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise BatchFileError(
            f"{path}: the top level must be a table with 'case' entries, not {_kind(doc)}"
        )
    for key in doc:
        if key not in TOP_KEYS:
            raise BatchFileError(
                f"{path}: unknown top-level key {_brief(key)}{suggest(str(key), TOP_KEYS)}"
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
    lines = case_lines(text, kind, len(cases))
    return BatchFile(str(path), defaults, tuple(cases), lenient, lines)


def _check_defaults(path: Path, raw: Any, lenient: bool) -> dict[str, Any]:
    """Validate the [defaults] table; any problem makes the whole file unusable."""
    if not isinstance(raw, dict):
        raise BatchFileError(f"{path}: 'defaults' must be a table, not {_kind(raw)}")
    out: dict[str, Any] = {}
    try:
        _check_size(raw, "defaults")
        for key, value in raw.items():
            if key not in DEFAULT_KEYS:
                hint = suggest(str(key), DEFAULT_KEYS)
                if not hint and key in CASE_KEYS + FN_KEYS:
                    hint = " (it can only be set per case)"
                raise CaseInvalid(f"unknown key {_brief(key)}{hint}")
            out[key] = _check_setting(key, value, lenient)
    except CaseInvalid as exc:
        raise BatchFileError(f"{path}: [defaults]: {exc}") from None
    return out


# ---------------------------------------------------------------------------- values


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'X'?)' for a close match, else ''."""
    import difflib  # only a mistake needs it

    close = difflib.get_close_matches(word[:100], list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _brief(value: Any, limit: int = 40) -> str:
    """repr of a value, cut short: a 400-digit integer is named, not printed."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    """Name a parsed value's type the way a batch-file author would."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {_brief(value)}"
    if value is None:
        return "empty"
    return _brief(value)


def _check_size(value: Any, key: str) -> None:
    """Refuse a value nested deeper than MAX_DEPTH or bigger than MAX_NODES (explicit stack)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, key)]
    nodes = 0
    while stack:
        item, depth, where = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise CaseInvalid(f"'{key}' has more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise CaseInvalid(f"'{where}' is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, where) for v in item)


def _number(key: str, value: Any, lenient: bool) -> float:
    """A finite float from a batch value; bools refused, YAML's '1e-6' strings accepted."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            raise CaseInvalid(f"'{key}' is out of range ({_brief(value)})") from None
    # PyYAML follows YAML 1.1, where `1e-6` (no dot) is a string: accept what float() reads.
    elif lenient and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise CaseInvalid(f"'{key}' must be a number, not {_kind(value)}")
    if not math.isfinite(number):
        raise CaseInvalid(f"'{key}' must be a finite number, not {_brief(value)}")
    return number


def _int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CaseInvalid(f"'{key}' must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise CaseInvalid(f"'{key}' must be between {low} and {high}, not {_brief(value)}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CaseInvalid(f"'{key}' must be true or false, not {_kind(value)}")
    return value


def _check_setting(key: str, value: Any, lenient: bool) -> Any:
    """Validate one of the keys that [defaults] and cases share."""
    if key in ("atol", "rtol"):
        number = _number(key, value, lenient)
        if number < 0:
            raise CaseInvalid(f"'{key}' must be a finite number >= 0, not {_brief(value)}")
        return number
    if key == "timeout":
        number = _number(key, value, lenient)
        if not 0 < number <= MAX_TIMEOUT:
            raise CaseInvalid(
                f"'timeout' must be seconds > 0 and at most {MAX_TIMEOUT:.0f}, not {_brief(value)}"
            )
        return number
    if key == "order":
        if isinstance(value, bool) or value not in ORDERS:
            raise CaseInvalid(f"'order' must be 1 or 2, not {_brief(value)}")
        return int(value)
    if key == "dtype":
        if value not in DTYPES:
            hint = suggest(str(value), DTYPES)
            raise CaseInvalid(f"'dtype' must be float32 or float64, not {_brief(value)}{hint}")
        return value
    raise AssertionError(key)


def _name(raw: dict[str, Any]) -> str | None:
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise CaseInvalid(f"'name' must be a string, not {_kind(name)}")
    return name


def _point(key: str, value: Any, lenient: bool) -> dict[str, float]:
    """Validate a {variable: number} table."""
    if not isinstance(value, dict):
        raise CaseInvalid(f"'{key}' must be a table of variable = number, not {_kind(value)}")
    if not value:
        raise CaseInvalid(f"'{key}' is empty")
    point: dict[str, float] = {}
    for name, number in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise CaseInvalid(f"'{key}': {_brief(name)} is not a variable name")
        point[name] = _number(f"{key}.{name}", number, lenient)
    return point


def _settings(raw: dict[str, Any], defaults: dict[str, Any], keys: Sequence[str], lenient: bool):
    """The defaults that apply to this kind of case, overridden by the case's own keys."""
    settings = {key: value for key, value in defaults.items() if key in keys}
    for key in DEFAULT_KEYS:
        if key in raw and key in keys:
            settings[key] = _check_setting(key, raw[key], lenient)
    return settings


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
    if not isinstance(raw, dict):
        raise CaseInvalid(f"a case must be a table, not {_kind(raw)}")
    _check_size(raw, "case")
    if "fn" in raw:
        if "expr" in raw:
            raise CaseInvalid("give either 'expr' or 'fn', not both")
        return to_callable_case(
            raw, defaults, location, lenient, allow_python=allow_python, paths=paths
        )
    for key in raw:
        if key not in CASE_KEYS:
            if key in ("inputs", "seed", "fast", "timeout"):
                hint = ' (it belongs to Python callable cases: add fn = "pkg.module:function")'
            else:
                hint = suggest(str(key), (*CASE_KEYS, "fn"))
            raise CaseInvalid(f"unknown key {_brief(key)}{hint}")
    name = _name(raw)
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
    settings = _settings(raw, defaults, CASE_KEYS, lenient)
    return Case(expr=expr, points=points, name=name, expect=expect, location=location, **settings)


def _values(key: str, value: Any, lenient: bool) -> Any:
    """Validate a number or a rectangular nested list of numbers -> nested tuples."""
    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any], int, str, int]] = [(value, root, 0, key, 0)]
    # Children are filled after their parents: freeze lists into tuples innermost first.
    built: list[tuple[list[Any], list[Any], int]] = []
    shapes: dict[int, int] = {}  # depth -> length every list at that depth must have
    leaf_depths: set[int] = set()
    count = 0
    while stack:
        item, parent, slot, where, depth = stack.pop()
        if isinstance(item, list):
            if not item:
                raise CaseInvalid(f"'{where}' is an empty list")
            if shapes.setdefault(depth, len(item)) != len(item):
                raise CaseInvalid(f"'{key}' is not rectangular (rows of different lengths)")
            copy: list[Any] = [None] * len(item)
            built.append((copy, parent, slot))
            stack.extend((v, copy, i, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
        else:
            leaf_depths.add(depth)
            count += 1
            if count > MAX_ELEMENTS:
                raise CaseInvalid(f"'{key}' has more than {MAX_ELEMENTS} elements")
            parent[slot] = _number(where, item, lenient)
    if leaf_depths != {len(shapes)}:
        raise CaseInvalid(f"'{key}' is not rectangular (rows of different lengths)")
    for copy, parent, slot in reversed(built):
        parent[slot] = tuple(copy)
    return root[0]


def _input(raw: Any, index: int, dtype: str, lenient: bool) -> InputSpec:
    where = f"inputs[{index}]"
    if not isinstance(raw, dict):
        raise CaseInvalid(f"'{where}' must be a table with 'shape' or 'values', not {_kind(raw)}")
    for key in raw:
        if key not in INPUT_KEYS:
            hint = suggest(str(key), INPUT_KEYS)
            raise CaseInvalid(f"'{where}': unknown key {_brief(key)}{hint}")
    name = raw.get("name", f"x{index}")
    if not isinstance(name, str) or not name.isidentifier():
        raise CaseInvalid(f"'{where}.name' must be an identifier, not {_kind(name)}")
    if "dtype" in raw:
        dtype = _check_setting("dtype", raw["dtype"], lenient)
    grad = _bool(f"{where}.requires_grad", raw.get("requires_grad", True))
    if ("shape" in raw) == ("values" in raw):
        raise CaseInvalid(f"'{where}' needs exactly one of 'shape' or 'values'")
    if "values" in raw:
        for key in ("low", "high"):
            if key in raw:
                raise CaseInvalid(f"'{where}.{key}' only goes with 'shape', not 'values'")
        values = _values(f"{where}.values", raw["values"], lenient)
        return InputSpec(name, dtype, values=values, requires_grad=grad)
    shape = raw["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DEPTH:
        raise CaseInvalid(
            f"'{where}.shape' must be a list of positive integers ([] for a scalar), "
            f"not {_kind(shape)}"
        )
    dims = tuple(_int(f"{where}.shape[{i}]", n, 1, MAX_ELEMENTS) for i, n in enumerate(shape))
    if math.prod(dims) > MAX_ELEMENTS:
        raise CaseInvalid(
            f"'{where}.shape' has {math.prod(dims)} elements (at most {MAX_ELEMENTS})"
        )
    low = _number(f"{where}.low", raw.get("low", -1.0), lenient)
    high = _number(f"{where}.high", raw.get("high", 1.0), lenient)
    if not low < high:
        raise CaseInvalid(f"'{where}': need low < high, not low={low:g}, high={high:g}")
    return InputSpec(name, dtype, shape=dims, low=low, high=high, requires_grad=grad)


def to_callable_case(
    raw: dict[str, Any],
    defaults: dict[str, Any],
    location: str,
    lenient: bool,
    *,
    allow_python: bool = False,
    paths: Sequence[str] = (),
) -> CallableCase:
    """Validate a case table with 'fn' and build a CallableCase; raise CaseInvalid."""
    for key in raw:
        if key not in FN_KEYS:
            if key in ("at", "points", "expect"):
                hint = " (it belongs to expression cases, not to 'fn' cases)"
            else:
                hint = suggest(str(key), FN_KEYS)
            raise CaseInvalid(f"unknown key {_brief(key)}{hint}")
    fn = raw["fn"]
    if not isinstance(fn, str):
        raise CaseInvalid(f"'fn' must be a string like \"pkg.module:function\", not {_kind(fn)}")
    if not TARGET.fullmatch(fn):
        raise CaseInvalid(f"'fn' must look like \"pkg.module:function\", not {_brief(fn)}")
    name = _name(raw)
    settings = _settings(raw, defaults, FN_KEYS, lenient)
    dtype = settings.get("dtype", "float64")
    if "inputs" not in raw:
        raise CaseInvalid("missing key 'inputs' (a list of { shape = [...] } or { values = ... })")
    listed = raw["inputs"]
    if not isinstance(listed, list) or not listed:
        raise CaseInvalid(f"'inputs' must be a non-empty list of tables, not {_kind(listed)}")
    inputs = tuple(_input(spec, i, dtype, lenient) for i, spec in enumerate(listed))
    if not any(spec.requires_grad for spec in inputs):
        raise CaseInvalid("no input requires grad: there is no gradient to check")
    framework, grad = _framework(raw, settings.get("order", 1))
    return CallableCase(
        fn=fn,
        inputs=inputs,
        name=name,
        framework=framework,
        grad=grad,
        seed=_int("seed", raw.get("seed", 0), 0, MAX_SEED),
        fast=_bool("fast", raw.get("fast", False)),
        location=location,
        allow_python=allow_python,
        paths=tuple(paths),
        **settings,
    )


def _framework(raw: dict[str, Any], order: int) -> tuple[str, str | None]:
    """The case's framework and, for "numpy", its validated `grad` target."""
    framework = raw.get("framework", "engine")
    if not isinstance(framework, str) or framework not in FRAMEWORKS:
        hint = suggest(framework, FRAMEWORKS) if isinstance(framework, str) else ""
        raise CaseInvalid(
            f"'framework' must be one of {', '.join(FRAMEWORKS)}, not {_brief(framework)}{hint}"
        )
    grad = raw.get("grad")
    if framework != "numpy":
        if grad is not None:
            raise CaseInvalid(
                "'grad' goes with framework = \"numpy\" (the hand-written derivative)"
            )
        return framework, None
    if grad is None:
        raise CaseInvalid('framework = "numpy" needs \'grad = "pkg.module:function"\', the '
                          "hand-written derivative")
    if not isinstance(grad, str) or not TARGET.fullmatch(grad):
        raise CaseInvalid(f"'grad' must look like \"pkg.module:function\", not {_brief(grad)}")
    if order != 1:
        raise CaseInvalid('order = 2 needs a second derivative: framework = "numpy" checks '
                          "the first only")
    return framework, grad


# ------------------------------------------------------------------------- file -> items


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
                case = to_case(
                    raw,
                    batch.defaults,
                    location,
                    batch.lenient_numbers,
                    allow_python=allow_python,
                    paths=dirs,
                )
            except CaseInvalid as exc:
                name, expr = _describe(raw, index)
                yield batch.path, CaseProblem(name, expr, location, f"{location}: {exc}")
            else:
                yield batch.path, case
