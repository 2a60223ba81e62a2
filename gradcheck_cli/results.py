"""What a batch run produces, as plain data: result rows, outcomes, tallies, error rows.

The report writers (report.py), the terminal (render.py), the pytest plugin and the runner
all read and build these; nothing here computes a gradient or formats a line. `error_row`
is the one builder of `error` rows, whatever went wrong: a bad case, user code that raised,
exited, crashed or ran out of time, or a case an interrupt left unrun.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.autograd.gradcheck import JacobianMismatch

__all__ = ["CallableResult", "CaseResult", "Outcome", "Tally", "error_row", "error_rows"]


@dataclass
class CaseResult:
    """The verdict at one point; fields mirror the JSON report entry of CONTRACT §2."""

    name: str
    expr: str
    point: dict[str, float]
    status: str  # "pass" | "fail" | "error"
    value: float | None = None
    derivative: dict[str, str] = field(default_factory=dict)
    gradient: dict[str, dict[str, float]] = field(default_factory=dict)
    error: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    hessian: dict[str, dict[str, dict[str, float]]] | None = None
    numeric_error: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    location: str = ""
    hessian_derivative: dict[str, dict[str, str]] | None = None
    numeric_method: str | None = None
    numeric_agrees: bool | None = None
    differentiable: dict[str, bool] = field(default_factory=dict)
    rounding: dict[str, float] = field(default_factory=dict)  # float32: extra tolerance
    one_sided: dict[str, tuple[float, float]] = field(default_factory=dict)
    atol: float = 0.0
    rtol: float = 0.0
    dtype: str = "float64"
    line: int = 0  # where the case starts in its batch file (0: unknown), for annotations


@dataclass
class CallableResult(CaseResult):
    """A CaseResult for a callable: its inputs, the blamed node, what the user's code printed."""

    inputs: list[str] = field(default_factory=list)
    shapes: str = ""  # 'x[3,4] w[3,2]': what the table shows in its point column
    blame: dict[str, Any] | None = None
    output: str = ""  # the user's stdout and stderr while the case ran, trimmed
    # The failing Jacobian block as data: render.py lays its worst elements out as a table
    # (the notes keep them as text, for the reports).
    mismatch: JacobianMismatch | None = None


@dataclass(frozen=True)
class Outcome:
    """What one case produced: its file, one result per point, and the seconds it took."""

    path: str
    results: list[CaseResult]
    seconds: float


@dataclass
class Tally:
    """Counts of results by status, in the contract's summary shape."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0

    def add(self, status: str) -> None:
        """Count one result."""
        self.total += 1
        if status == "pass":
            self.passed += 1
        elif status == "fail":
            self.failed += 1
        else:
            self.errors += 1

    def as_dict(self) -> dict[str, int]:
        """The `summary` object of the JSON report."""
        return {
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
        }


def error_row(
    name: str,
    expr: str,
    message: str,
    location: str = "",
    *,
    point: dict[str, float] | None = None,
    dtype: str = "float64",
    inputs: list[str] | None = None,
    shapes: str = "",
    output: str = "",
) -> CaseResult:
    """An `error` row; `inputs` (descriptions of a callable's inputs) makes it a callable's.

    The message is prefixed with the location ('file: case N (name): ...') unless it
    already starts with it, so that every error row says where, once.
    """
    if location and message and not message.startswith(location):
        message = f"{location}: {message}"
    fields: dict[str, Any] = {
        "name": name,
        "expr": expr,
        "point": dict(point or {}),
        "status": "error",
        "gradient": {"autograd": {}, "symbolic": {}, "numeric": {}},
        "message": message,
        "location": location,
        "dtype": dtype,
    }
    if inputs is None:
        return CaseResult(**fields)
    return CallableResult(**fields, inputs=list(inputs), shapes=shapes, output=output)


def error_rows(case: Any, message: str, output: str = "") -> list[CaseResult]:
    """The error rows of a case that could not run: one per point of an expression case.

    `case` is any of the schema's items: a Case (with points), a CallableCase (with
    input specs) or a CaseProblem; they share name, expr and location.
    """
    name = getattr(case, "name", None) or case.expr
    location = getattr(case, "location", "")
    dtype = getattr(case, "dtype", "float64")
    specs = getattr(case, "inputs", None)
    if specs is not None:
        inputs = [spec.describe() for spec in specs]
        shapes = " ".join(spec.brief() for spec in specs)
        row = error_row(
            name,
            case.expr,
            message,
            location,
            dtype=dtype,
            inputs=inputs,
            shapes=shapes,
            output=output,
        )
        return [row]
    points = getattr(case, "points", None) or [None]
    return [error_row(name, case.expr, message, location, point=p, dtype=dtype) for p in points]
