"""gradcheck and gradgradcheck: analytic gradients against trusted finite differences.

PyTorch's signatures, defaults and meaning, with a better numeric reference (Richardson
extrapolation with an error estimate, see `numeric.py`) and a verdict rule that neither
swallows small errors nor cries wolf in float32 (see `gradcheck`'s docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

import numpy as np

from . import numeric
from .frameworks import Adapter, BackwardError, for_inputs

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]

_EPS32 = float(np.finfo(np.float32).eps)
_DEFAULT_EPS = 1e-6
_ERROR_FACTOR = 4.0  # how many numeric error estimates a difference may hide behind
_WORST = 5  # elements listed in a failure message


@dataclass(frozen=True)
class WorstElement:
    """One element of a Jacobian mismatch: where, both values, their gap and the estimate."""

    index: str  # '(3,), (0,)': output index, input index; 'projection 2' in fast mode
    analytic: float
    numeric: float
    error: float  # |analytic - numeric|
    estimate: float  # the numeric derivative's own error estimate


@dataclass(frozen=True)
class JacobianMismatch:
    """Why one (output, input) block of the Jacobian failed, as data (see `lines`)."""

    output: int
    input: int
    differing: int  # how many elements differ
    size: int
    projected: bool  # fast mode: the elements are projections v^T J u
    worst: tuple[WorstElement, ...]
    scale: float  # of the whole Jacobian: the tolerances are relative to it
    undefined: tuple[int, ...] = ()  # flat elements whose numeric derivative is NaN/inf
    hint: str | None = None

    def lines(self) -> list[str]:
        """The failure message: headline, the worst elements as columns, the hint."""
        lines = [f"Jacobian mismatch for output {self.output} with respect to input {self.input},"]
        if self.undefined:
            lines.append(
                f"the numeric derivative is undefined (NaN/inf) at flat elements "
                f"{list(self.undefined)}"
            )
        which = "projections" if self.projected else "elements (output index, input index)"
        lines.append(f"{self.differing} of {self.size} elements differ; worst {which}:")
        lines.append(
            f"  {'index':<24} {'analytic':>14} {'numeric':>14} {'error':>11} {'estimate':>11}"
        )
        for w in self.worst:
            lines.append(
                f"  {w.index:<24} {w.analytic:>14.8g} {w.numeric:>14.8g} {w.error:>11.3g}"
                f" {w.estimate:>11.3g}"
            )
        lines.append(
            f"  (estimate: the numeric error estimate; scale of the Jacobian {self.scale:.3g})"
        )
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return lines


class GradcheckError(RuntimeError):
    """Raised by gradcheck and gradgradcheck when a check fails and raise_exception is set.

    `mismatch` holds the failing Jacobian block as data when that is the reason (None for
    other failures), for tools that lay the worst elements out themselves.
    """

    mismatch: JacobianMismatch | None = None


@dataclass
class _Failure:
    """One reason a check failed, with a message for humans."""

    message: str
    mismatch: JacobianMismatch | None = None
    numeric: bool = False  # analytic and numeric disagree (rather than a broken backward)

    def after(self, note: str) -> _Failure:
        """The same failure, its message prefixed by `note`."""
        return _Failure(note + self.message, self.mismatch, self.numeric)


def _raise(error_type: type[RuntimeError] | None, message: str, failure: Any) -> NoReturn:
    """Raise the framework's error (GradcheckError by default), with the mismatch as data."""
    error = (error_type or GradcheckError)(message)
    error.mismatch = getattr(failure, "mismatch", None)  # type: ignore[attr-defined]
    raise error from None  # gradgradcheck's first failure is in the message already


@dataclass
class _Pair:
    """The analytic and numeric Jacobian blocks of one (output, input) pair."""

    out_index: int
    in_index: int
    out_shape: tuple[int, ...]
    in_shape: tuple[int, ...]
    analytic: np.ndarray
    numeric: np.ndarray
    error: np.ndarray
    eps: float
    in_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    projected: bool = False  # fast mode: elements are projections v^T J u


@dataclass
class _Run:
    """One execution of func whose backward is checked: native, or re-run in float64."""

    inputs: tuple
    outs: list
    eps: float | None = None  # the dtype eps to judge by, None for the pair's own
    note: str = ""


@dataclass(frozen=True)
class _Options:
    """The keywords of one gradcheck call, written once: ours all, torch's by `torch_kwargs`."""

    eps: float = _DEFAULT_EPS
    atol: float = 1e-5
    rtol: float = 1e-3
    raise_exception: bool = True
    nondet_tol: float = 0.0
    check_undefined_grad: bool = True
    check_grad_dtypes: bool = False
    check_backward_ad: bool = True
    fast_mode: bool = False
    scale_tolerances: bool = True
    projections: int = 2
    seed: int = 0
    batched: bool = False

    @classmethod
    def pick(cls, keywords: dict[str, Any]) -> _Options:
        """The options among a public function's keywords (its `locals()`), by field name."""
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in keywords.items() if name in names})

    def torch_kwargs(self) -> dict[str, Any]:
        """The keywords torch.autograd.gradcheck and gradgradcheck share with ours."""
        return {
            "eps": self.eps,
            "atol": self.atol,
            "rtol": self.rtol,
            "raise_exception": self.raise_exception,
            "nondet_tol": self.nondet_tol,
            "check_grad_dtypes": self.check_grad_dtypes,
            "fast_mode": self.fast_mode,
        }


# ------------------------------------------------------------------------------ helpers


def _as_tuple(obj: Any) -> tuple:
    if isinstance(obj, tuple):
        return obj
    if isinstance(obj, list):
        return tuple(obj)
    return (obj,)


def _tolerance_scale(dtype_eps: float, scale_tolerances: bool) -> float:
    """atol and rtol are stated at float32 precision; scaled by (eps/eps32)^(1/3) per dtype."""
    if not scale_tolerances:
        return 1.0
    return (dtype_eps / _EPS32) ** (1.0 / 3.0)


def _fmt_index(flat: int, shape: tuple[int, ...]) -> str:
    if not shape:
        return "()"
    return str(tuple(int(i) for i in np.unravel_index(flat, shape)))


# --------------------------------------------------------------------------- the checker


class _Checker:
    """Runs the analytic and numeric sides of one gradcheck call."""

    def __init__(self, adapter: Adapter, func: Callable, inputs: tuple, options: _Options):
        self.adapter = adapter
        self.func = func
        self.inputs = inputs
        self.opts = options
        self.diff = adapter.diff_indices(inputs)
        if not self.diff:
            raise ValueError("gradcheck expects at least one input tensor to require gradient")
        for i in self.diff:
            if not adapter.is_floating(inputs[i]):
                raise ValueError(f"input {i} requires gradient but is not floating point")
        self.x0 = [adapter.to_numpy(inputs[i]).astype(np.float64) for i in self.diff]
        self.in_shapes = [tuple(inputs[i].shape) for i in self.diff]
        self.in_dtypes = [adapter.dtype_of(inputs[i]) for i in self.diff]
        self.sizes = [int(x.size) for x in self.x0]
        self._columns = True  # the Jacobian by JVPs where cheaper, until func has none
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)

    # ---------------------------------------------------------------- forward evaluation

    def _call(self, flat: np.ndarray, dtype: np.dtype | None) -> tuple:
        """func at the diff inputs given by flat, (N,), or, for a batched func, by a stack
        of points (P, N) given as a new leading dimension of every differentiated input;
        other floating inputs cast to dtype."""
        fw = self.adapter
        args = list(self.inputs)
        lead = flat.shape[:-1]
        for k, i in enumerate(self.diff):
            chunk = flat[..., self.offsets[k] : self.offsets[k + 1]]
            target = self.in_dtypes[k] if dtype is None else dtype
            # Keep the flags: gradgradcheck's function calls autograd.grad inside.
            chunk = chunk.reshape(lead + self.in_shapes[k]).astype(target)
            args[i] = fw.from_numpy(chunk, requires_grad=True)
        if dtype is not None:
            args = self._cast(args, dtype)
        return fw.call(self.func, args)

    def _cast(self, args: list, dtype: np.dtype) -> list:
        """args with their floating inputs other than the differentiated ones cast to dtype."""
        fw = self.adapter
        return [
            fw.from_numpy(fw.to_numpy(t).astype(dtype), requires_grad=fw.requires_grad(t))
            if i not in self.diff and fw.is_floating(t)
            else t
            for i, t in enumerate(args)
        ]

    def _flat_outputs(self, outs: tuple, stack: int | None = None) -> np.ndarray:
        """The floating outputs as one vector, or (stack, M) for a batched call."""
        parts = [self.adapter.to_numpy(o).astype(np.float64) for o in self._float_outputs(outs)]
        if stack is None:
            return np.concatenate([p.reshape(-1) for p in parts]) if parts else np.zeros(0)
        for p in parts:
            if p.ndim == 0 or p.shape[0] != stack:
                raise ValueError(
                    f"batched=True, but an output of func for a stack of {stack} inputs has "
                    f"shape {list(p.shape)}, not a leading dimension of {stack}"
                )
        return np.concatenate([p.reshape(stack, -1) for p in parts], axis=1)

    def _float_outputs(self, outs: tuple) -> list:
        return [o for o in outs if self.adapter.is_floating(o)]

    def _reference(self) -> tuple[Callable[[np.ndarray], np.ndarray], np.dtype, np.ndarray]:
        """The function the numeric side differentiates, in float64 when func allows it, and
        its value at the inputs.

        float32 functions are re-run in float64 (inputs cast) so that the reference is not
        limited by float32 rounding; if that fails or changes the result beyond float32
        rounding, the function is differentiated in its own precision and the error
        estimates grow accordingly.
        """
        native = min((np.finfo(d).eps for d in self.in_dtypes), default=1.0)
        native_dtype = np.float64 if native <= np.finfo(np.float64).eps else np.float32
        ref_native = self._flat_outputs(self.outputs)

        def in_dtype(dtype: np.dtype | None) -> Callable[[np.ndarray], np.ndarray]:
            def evaluate(flat: np.ndarray) -> np.ndarray:
                stack = flat.shape[0] if flat.ndim == 2 else None  # a batched func's points
                try:
                    return self._flat_outputs(self._call(flat, dtype), stack)
                except Exception as exc:  # noqa: BLE001
                    # A perturbed point outside func's domain: the numeric side treats NaN
                    # as "invalid step" and moves to smaller or one-sided steps.
                    raise ValueError(str(exc)) from exc

            return evaluate

        self._rerun: tuple[tuple, list] | None = None
        if native_dtype != np.float64:
            try:
                # The float64 forward, with its graph: also the float64 re-run's (_float64_run).
                args = self._float64_args()
                outs = self.adapter.call(self.func, args)
                out = self._flat_outputs(outs)
                tol = 64 * _EPS32 * (np.abs(ref_native) + np.max(np.abs(ref_native), initial=1))
                if out.shape == ref_native.shape and np.all(np.abs(out - ref_native) <= tol):
                    self._rerun = (tuple(args), self._float_outputs(outs))
                    return in_dtype(np.dtype(np.float64)), np.dtype(np.float64), out
            except Exception:  # noqa: BLE001 - any failure means "cannot run in float64"
                pass
        return in_dtype(None), np.dtype(native_dtype), ref_native

    def _float64_args(self) -> list:
        """The inputs with float64 copies of the floating ones (the differentiated ones
        requiring grad)."""
        fw = self.adapter
        return [
            fw.from_numpy(fw.to_numpy(t).astype(np.float64), requires_grad=i in self.diff)
            if fw.is_floating(t)
            else t
            for i, t in enumerate(self.inputs)
        ]

    def _batched(self) -> Callable[[np.ndarray], np.ndarray]:
        """The reference over stacks of points, once func has shown it batches.

        batched=True is the caller's claim; one stack of two different points (the centre
        and a point one first step away) must give each point's own outputs, to the
        rounding of a differently ordered reduction, or the claim is an error.
        """
        flat1 = self.flat0 + np.where(self.flat0 < 0, -1.0, 1.0) * 2.0**-10 * np.maximum(
            np.abs(self.flat0), 1.0
        )
        points = np.stack([self.flat0, flat1])
        try:
            stacked = self.f_ref(points)
            each = np.stack([self.f0, self.f_ref(flat1)])
        except ValueError as exc:
            raise ValueError(
                f"gradcheck: batched=True, but func failed on a stack: {exc}"
            ) from None
        eps = float(np.finfo(self.ref_dtype).eps)
        tol = 64 * eps * (np.abs(each) + np.max(np.abs(each), initial=1.0))
        with np.errstate(invalid="ignore"):
            same = (np.abs(stacked - each) <= tol) | (np.isnan(stacked) & np.isnan(each))
        if stacked.shape != each.shape or not np.all(same):
            raise ValueError(
                "gradcheck: batched=True, but func's outputs for a stack of 2 inputs are not "
                "its outputs for each (row p must be func at row p of the stacked inputs)"
            )
        return self.f_ref

    # ---------------------------------------------------------------- analytic side

    def _vjp(self, run: _Run, grad_outputs: list) -> list[np.ndarray] | _Failure:
        """Input gradients for the given output cotangents, checked for shape and dtype."""
        fw = self.adapter
        zipped = zip(run.outs, grad_outputs, strict=True)
        pairs = [(o, g) for o, g in zipped if fw.requires_grad(o)]
        if not pairs:
            return [np.zeros(s) for s in self.in_shapes]
        try:
            grads = fw.vjp(
                self.func, run.inputs, self.diff, [p[0] for p in pairs], [p[1] for p in pairs]
            )
        except BackwardError as exc:
            return _Failure(str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken backward is a failed check
            return _Failure(f"{fw.backward_name} raised {type(exc).__name__}: {exc}")
        result = []
        for k, g in enumerate(grads):
            if g is None:
                result.append(np.zeros(self.in_shapes[k]))
                continue
            shape = tuple(g.shape)
            if shape != self.in_shapes[k]:
                hint = ""
                try:
                    np.broadcast_shapes(shape, self.in_shapes[k])
                    if len(shape) >= len(self.in_shapes[k]):
                        hint = " (hint: a missing sum over broadcast dimensions?)"
                except ValueError:
                    pass
                return _Failure(
                    f"wrong-shaped gradient for input {self.diff[k]}: got {list(shape)}, "
                    f"expected {list(self.in_shapes[k])}{hint}"
                )
            if self.opts.check_grad_dtypes:
                expected = fw.dtype_of(run.inputs[self.diff[k]])
                if fw.dtype_of(g) != expected:
                    return _Failure(
                        f"gradient for input {self.diff[k]} has dtype {fw.dtype_of(g)}, "
                        f"expected {expected}"
                    )
            result.append(fw.to_numpy(g).astype(np.float64))
        return result

    def _cotangent(self, out: Any, values: np.ndarray) -> Any:
        fw = self.adapter
        return fw.from_numpy(values.astype(fw.dtype_of(out)).reshape(tuple(out.shape)))

    def _analytic_full(self, run: _Run) -> list[list[np.ndarray]] | _Failure:
        """jac[o][k]: (numel(out o), numel(input k)) by one backward per output element, or
        by one forward-mode derivative per input element where there are fewer of those and
        the framework has forward mode for func (JAX, but not its custom_vjp functions)."""
        if self._columns and self.offsets[-1] < sum(self.out_sizes):
            columns = self._analytic_columns(run)
            if columns is not None:
                return columns
            self._columns = False  # no forward mode for func: rows from now on
        jac = []
        outs = run.outs
        # The other outputs' cotangents are zeros in every row: built once (backward only
        # reads them).
        zeros = [self._cotangent(q, np.zeros(int(np.prod(q.shape, dtype=np.int64)))) for q in outs]
        for o, out in enumerate(outs):
            m = int(np.prod(out.shape, dtype=np.int64))
            blocks = [np.zeros((m, n)) for n in self.sizes]
            for j in range(m):
                cot = list(zeros)
                onehot = np.zeros(m)
                onehot[j] = 1.0
                cot[o] = self._cotangent(out, onehot)
                grads = self._vjp(run, cot)
                if isinstance(grads, _Failure):
                    return grads
                for k, g in enumerate(grads):
                    blocks[k][j] = g.reshape(-1)
            jac.append(blocks)
        return jac

    def _analytic_columns(self, run: _Run) -> list[list[np.ndarray]] | None:
        """The Jacobian by one JVP per input element; None when the framework cannot (any
        trouble: the rows, whose failures are reported as usual, have the last word)."""
        fw = self.adapter
        dtypes = [fw.dtype_of(run.inputs[i]) for i in self.diff]
        zeros = [fw.from_numpy(np.zeros(s, dtype=d)) for s, d in zip(self.in_shapes, dtypes,
                                                                      strict=True)]
        jac = [[np.zeros((m, n)) for n in self.sizes] for m in self.out_sizes]
        for k in range(len(self.diff)):
            for c in range(self.sizes[k]):
                onehot = np.zeros(self.sizes[k], dtype=dtypes[k])
                onehot[c] = 1.0
                tangents = list(zeros)
                tangents[k] = fw.from_numpy(onehot.reshape(self.in_shapes[k]))
                try:
                    outs = fw.jvp(self.func, run.inputs, self.diff, tangents)
                except Exception:  # noqa: BLE001 - see the docstring
                    return None
                if outs is None or len(outs) != len(run.outs):
                    return None
                for o, t in enumerate(outs):
                    column = fw.to_numpy(t).astype(np.float64).reshape(-1)
                    if column.size != self.out_sizes[o]:
                        return None
                    jac[o][k][:, c] = column
        return jac

    # ---------------------------------------------------------------- the checks

    def run(self) -> _Failure | None:
        """None when every check passes, else the first failure."""
        self.outputs = self.adapter.call(self.func, self.inputs)
        outs = self._float_outputs(self.outputs)
        if not outs:
            return None
        self.f_ref, self.ref_dtype, self.f0 = self._reference()
        self.flat0 = np.concatenate([x.reshape(-1) for x in self.x0])
        self.f_many = self._batched() if self.opts.batched else None
        self.out_sizes = [int(np.prod(o.shape, dtype=np.int64)) for o in outs]
        self.out_offsets = np.concatenate([[0], np.cumsum(self.out_sizes)]).astype(int)
        if self.opts.check_undefined_grad and any(map(self.adapter.requires_grad, outs)):
            zeros = [
                self._cotangent(o, np.zeros(s)) for o, s in zip(outs, self.out_sizes, strict=True)
            ]
            grads = self._vjp(_Run(self.inputs, outs), zeros)
            if isinstance(grads, _Failure):
                return _Failure(f"backward with zero grad_outputs failed: {grads.message}")
            for k, g in enumerate(grads):
                if np.any(g != 0):
                    return _Failure(
                        f"backward with zero grad_outputs gave a non-zero gradient for input "
                        f"{self.diff[k]} (max |g| = {np.max(np.abs(g)):.3g})"
                    )
        runs = [_Run(self.inputs, outs)] + self._float64_run()
        if self.opts.fast_mode:
            failure = self._fast(runs)
            if failure is None or not failure.numeric:
                return failure
            # The element-wise check locates the failure and has the last word, so that
            # fast mode is never stricter than the full check (a directional estimate can be
            # less precise than per-coordinate ones).  Reentrance was checked on the
            # projections' backward already: one Jacobian per run is enough here.
            return self._full(runs, reentrant=False)
        return self._full(runs)

    def _float64_run(self) -> list[_Run]:
        """func and its backward re-run on float64 copies of float32 inputs, when possible.

        float32 gradients can only be held to float32 tolerances, which let a backward
        formula off by 1e-4 through; the same backward run in float64 is held to float64
        tolerances.  Only when the float64 forward reproduces the float32 one (the numeric
        reference is then float64 too), so that both runs compute the same function.
        """
        if self._rerun is None or all(d == np.float64 for d in self.in_dtypes):
            return []
        fw = self.adapter
        args, outs = self._rerun  # the reference's own float64 forward (see _reference)
        if len(outs) != len(self.out_sizes) or any(fw.dtype_of(o) != np.float64 for o in outs):
            return []
        note = "(float32 inputs; this is the backward re-run in float64, held to float64 "
        note += "tolerances)\n"
        return [_Run(tuple(args), outs, float(np.finfo(np.float64).eps), note)]

    def _step(self) -> float | None:
        """None: steps chosen per element; an explicit eps is PyTorch's fixed central step."""
        return None if self.opts.eps == _DEFAULT_EPS else self.opts.eps

    def _numeric_full(
        self, runs: list[_Run], analytic: Callable[[int], list | _Failure]
    ) -> tuple[numeric.NumericResult, dict[int, set[tuple[int, int]]], _Failure | None]:
        """The numeric Jacobian, as precise as the verdicts on the analytic ones need.

        analytic(r): run r's analytic Jacobian (or its failure), computed when first asked:
        the later runs' only once the earlier ones have not settled the verdict.  Also
        returns the pairs (o, k) per run that failed on estimates whose error settles it,
        and a run's analytic failure; in both cases nothing more was refined.
        """
        blocks = [(int(self.offsets[k]), int(self.offsets[k + 1])) for k in range(len(self.diff))]
        # Structure detection costs 2 log2(n) evaluations; it is worth trying only where the
        # analytic Jacobian looks gather-shaped (a wrong one costs time, never a verdict).
        jac0 = analytic(0)
        detect = [
            np.all(np.count_nonzero(np.vstack([j[k] for j in jac0]), axis=1) <= 1)
            for k in range(len(self.diff))
        ]
        settled: dict[int, set[tuple[int, int]]] = {}
        broken: list[_Failure] = []

        def undecided(value: np.ndarray, error: np.ndarray, floor: np.ndarray) -> np.ndarray:
            need = np.zeros(value.shape, dtype=bool)
            for r, run in enumerate(runs):
                jac = analytic(r)
                if isinstance(jac, _Failure):
                    broken.append(jac.after(run.note))
                    break
                ok, bad, excess = self._decide(run, jac, value, error, floor)
                if np.any(bad) and self._cross_checked(run, jac, value, error, excess):
                    settled[r] = self._pairs(bad)
                    break
                need |= ~ok
            # One element that fails whatever a refined reference says settles the verdict:
            # refining the others (or running a later run's backward) would only cost time.
            return np.zeros(value.shape, dtype=bool) if settled or broken else need

        num = numeric.staged_jacobian(
            self.f_ref,
            self.flat0,
            undecided,
            blocks=blocks,
            detect=detect,
            dtype=self.ref_dtype,
            step=self._step(),
            batched=self.f_many,
            f0=self.f0,
        )
        return num, settled, broken[0] if broken else None

    def _cross_checked(
        self, run: _Run, jac: list, value: np.ndarray, error: np.ndarray, excess: np.ndarray
    ) -> bool:
        """Does the most clearly failing element fail the rule again on an estimate 64 times
        finer (numeric.cross_check, at the highest scales), consistent with the first within
        their error estimates?

        A first estimate of a function that varies faster than its step aliases; one settled
        failure decides the whole check, so it must not rest on four samples alone.  Where
        the finer estimate agrees but is too noisy to fail the rule (rounding / h: x log x
        at 1e8), it is taken again 8 times finer than the first; a disagreement is the answer.
        """
        r, c = np.unravel_index(int(np.argmax(excess)), excess.shape)
        for fraction in (1 / 64, 1 / 8):
            fine = numeric.cross_check(
                self.f_ref, self.flat0, [c], dtype=self.ref_dtype, f0=self.f0, fraction=fraction
            )
            value2, error2 = value.copy(), error.copy()
            value2[:, c], error2[:, c] = fine.value[:, 0], fine.error[:, 0]
            _, bad, _ = self._decide(
                run, jac, value2, error2, np.zeros_like(error), errors_failing=_ERROR_FACTOR
            )
            with np.errstate(invalid="ignore"):
                gap = abs(value[r, c] - value2[r, c])
                agree = gap <= _ERROR_FACTOR * (error[r, c] + error2[r, c])
            if not agree or bad[r, c]:
                return bool(agree and bad[r, c])
        return False

    def _pairs(self, mask: np.ndarray) -> set[tuple[int, int]]:
        """The (output, input) pairs holding an element of mask."""
        return {
            (o, k)
            for o in range(len(self.out_sizes))
            for k in range(len(self.diff))
            if np.any(
                mask[
                    self.out_offsets[o] : self.out_offsets[o + 1],
                    self.offsets[k] : self.offsets[k + 1],
                ]
            )
        }

    def _decide(
        self,
        run: _Run,
        jac: list,
        value: np.ndarray,
        error: np.ndarray,
        floor: np.ndarray,
        errors_failing: float = 2 * _ERROR_FACTOR,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The elements settled as passing, those settled as failing, and how clearly each
        fails (its margin over the tolerance in tolerances; -inf where it does not).

        An element is decided passing when |A - N| + 4 E fits in the tolerance, computed
        from lower bounds of the scales (|N| - 4 E for |N|), plus 4 F, F a lower bound on the
        error any refined reference would report (numeric's floor; E >= F).  The truth lies
        within 4 E of N (the rule's own premise), so A is within tolerance + 4 F of it: the
        refined verdict could not call it a mismatch beyond the margin the rule leaves
        anyway, and the first estimate passes the rule itself.

        An element is decided failing when |A - N| - 8 E exceeds the tolerance computed from
        upper bounds of the scales (|N| + 4 E for |N|): a refined reference N' within 4 E of
        N with an error E' <= E, judged at any scale it allows, still fails the rule.  Upper
        bounds exist only where every element of the Jacobian is finite, so a NaN anywhere
        leaves the failures to the refined reference.  The caller settles the verdict on a
        failing element only once `_cross_checked` confirms it; the rest is refined before
        it is judged.
        """
        usable = np.isfinite(value) & np.isfinite(error)
        low = np.where(usable, np.maximum(np.abs(value) - _ERROR_FACTOR * error, 0.0), 0.0)
        high = np.where(usable, np.abs(value) + _ERROR_FACTOR * error, np.inf)
        global_low = float(low.max(initial=0.0))
        global_high = float(high.max(initial=0.0))
        passing = np.zeros(value.shape, dtype=bool)
        failing = np.zeros(value.shape, dtype=bool)
        excess = np.full(value.shape, -np.inf)
        atol, rtol = self.opts.atol, self.opts.rtol
        with np.errstate(invalid="ignore"):
            for o in range(len(self.out_sizes)):
                rows = slice(self.out_offsets[o], self.out_offsets[o + 1])
                for k in range(len(self.diff)):
                    cols = slice(self.offsets[k], self.offsets[k + 1])
                    a, n, e = jac[o][k], value[rows, cols], error[rows, cols]
                    lo, hi = low[rows, cols], high[rows, cols]
                    both = usable[rows, cols] & np.isfinite(a)
                    a_max = float(np.abs(a[both]).max(initial=0.0))
                    scale = max(a_max, float(lo[both].max(initial=0.0)), 1e-3 * global_low)
                    scale_hi = max(a_max, float(hi[both].max(initial=0.0)), 1e-3 * global_high)
                    tau = _tolerance_scale(self._pair_eps(o, k, run), self.opts.scale_tolerances)
                    gap = np.abs(a - n)
                    tol = tau * (atol * scale + rtol * lo)
                    slack = _ERROR_FACTOR * floor[rows, cols]
                    passing[rows, cols] = both & (gap + _ERROR_FACTOR * e <= tol + slack)
                    tol_hi = tau * (atol * scale_hi + rtol * hi)
                    margin = gap - errors_failing * e - tol_hi
                    bad = both & (margin > 0)
                    failing[rows, cols] = bad
                    excess[rows, cols] = np.where(bad, margin / np.maximum(tol_hi, 1e-300), -np.inf)
        return passing, failing, excess

    def _pair_eps(self, o: int, k: int, run: _Run) -> float:
        if run.eps is not None:
            return run.eps
        out_dtype = self.adapter.dtype_of(run.outs[o])
        return max(np.finfo(self.in_dtypes[k]).eps, np.finfo(out_dtype).eps)

    def _analytic_checked(self, run: _Run, reentrant: bool) -> list[list[np.ndarray]] | _Failure:
        """The analytic Jacobian, and when asked, the backward shown reentrant.

        torch recomputes the whole Jacobian and compares; with nondet_tol 0 (the default:
        equal to the last bit) one random cotangent on every output, run twice, shows the
        same for 2 backward calls instead of one per output element: its gradients mix every
        row of the Jacobian with a non-zero weight, so any row that changes between runs
        changes them (and a nondeterministic order of accumulation, which one-hot rows
        hide, shows too).  A nondet_tol > 0 bounds each element, which a mixture of rows
        cannot state: the Jacobian is recomputed, as torch does.
        """
        first = self._analytic_full(run)
        if isinstance(first, _Failure) or not reentrant:
            return first
        if self.opts.nondet_tol > 0:
            second = self._analytic_full(run)
            if isinstance(second, _Failure):
                return second
            for o in range(len(run.outs)):
                failure = self._reentrant(first[o], second[o], f"output {o}")
                if failure is not None:
                    return failure
            return first
        weights = _random_entries(np.random.default_rng(self.opts.seed), sum(self.out_sizes))
        ends = self.out_offsets
        parts = [weights[ends[o] : ends[o + 1]] for o in range(len(self.out_sizes))]

        def mixed() -> list[np.ndarray] | _Failure:
            # Fresh cotangents for each call: a backward that writes into its grad_output
            # must not make the second call see other numbers.
            cotangents = [self._cotangent(q, w) for q, w in zip(run.outs, parts, strict=True)]
            return self._vjp(run, cotangents)

        once = mixed()
        if isinstance(once, _Failure):
            return once
        failure = self._reentrant(once, mixed(), "random grad_outputs")
        return first if failure is None else failure

    def _full(self, runs: list[_Run], reentrant: bool = True) -> _Failure | None:
        jacs: dict[int, list | _Failure] = {}

        def analytic(r: int) -> list | _Failure:
            if r not in jacs:
                # Reentrance is a property of the backward's code: shown on the native run,
                # not again on its float64 re-run.
                jacs[r] = self._analytic_checked(runs[r], reentrant and r == 0)
            return jacs[r]

        if isinstance(analytic(0), _Failure):
            return analytic(0).after(runs[0].note)
        num, settled, broken = self._numeric_full(runs, analytic)
        if broken is not None:
            return broken
        for r, run in enumerate(runs):
            if settled and r not in settled:
                continue  # its elements were left unrefined: judge the run that failed
            jac = analytic(r)
            if isinstance(jac, _Failure):
                return jac.after(run.note)
            failure = self._full_run(run, jac, num, settled.get(r))
            if failure is not None:
                return failure.after(run.note)
        return None

    def _full_run(
        self,
        run: _Run,
        jac: list[list[np.ndarray]],
        num: numeric.NumericResult,
        only: set[tuple[int, int]] | None = None,
    ) -> _Failure | None:
        """The first failing pair of one run (of the pairs in `only`, when given)."""
        outs = run.outs
        pairs = []
        for o in range(len(outs)):
            rows = slice(self.out_offsets[o], self.out_offsets[o + 1])
            for k in range(len(self.diff)):
                cols = slice(self.offsets[k], self.offsets[k + 1])
                pairs.append(
                    _Pair(
                        o,
                        self.diff[k],
                        tuple(outs[o].shape),
                        self.in_shapes[k],
                        jac[o][k],
                        num.value[rows, cols],
                        num.error[rows, cols],
                        self._pair_eps(o, k, run),
                        self.x0[k].reshape(-1),
                    )
                )
        global_scale = max(
            (float(np.max(np.abs(p.numeric), initial=0.0)) for p in pairs), default=0.0
        )
        for pair in pairs:
            if only is not None and (pair.out_index, self.diff.index(pair.in_index)) not in only:
                continue
            failure = self._judge(pair, global_scale)
            if failure is not None:
                return failure
        return None

    def _reentrant(self, first: Any, second: Any, where: str) -> _Failure | None:
        """Two backward runs with the same cotangents must agree within nondet_tol."""
        if isinstance(second, _Failure):
            return second
        for k in range(len(self.diff)):
            diff = float(np.max(np.abs(first[k] - second[k]), initial=0.0))
            if not diff <= self.opts.nondet_tol:
                return _Failure(
                    f"Backward is not reentrant, i.e., running backward with same input "
                    f"and grad_output multiple times gives different values (max "
                    f"difference {diff:.3g} for {where}, input {self.diff[k]}). The "
                    f"tolerance for nondeterminism was {self.opts.nondet_tol}."
                )
        return None

    def _judge(self, pair: _Pair, global_scale: float) -> _Failure | None:
        tau = _tolerance_scale(pair.eps, self.opts.scale_tolerances)
        finite = np.isfinite(pair.analytic) & np.isfinite(pair.numeric)
        local = max(
            float(np.max(np.abs(pair.analytic[finite]), initial=0.0)),
            float(np.max(np.abs(pair.numeric[finite]), initial=0.0)),
        )
        # A pair far smaller than the rest of the Jacobian (often exactly zero) is judged at
        # 1e-3 of the global scale so that rounding garbage in it is not an alarm.
        scale = max(local, 1e-3 * global_scale)
        verdict = numeric.compare(
            pair.analytic,
            pair.numeric,
            pair.error,
            atol=self.opts.atol * tau,
            rtol=self.opts.rtol * tau,
            error_factor=_ERROR_FACTOR,
            scale=scale,
        )
        unusable = ~np.isfinite(pair.numeric) | ~np.isfinite(pair.error)
        if verdict.ok and not np.any(unusable & np.isfinite(pair.analytic)):
            return None
        if not self.opts.raise_exception:
            return _Failure("Jacobian mismatch", numeric=True)  # nobody sees the report
        mismatch = _mismatch(pair, verdict, unusable)
        return _Failure("\n".join(mismatch.lines()), mismatch, numeric=True)

    # ---------------------------------------------------------------- fast mode

    def _fast(self, runs: list[_Run]) -> _Failure | None:
        """Signed random projections w^T J u, each one directional derivative, as scalars.

        u spans all inputs at once, each input's share scaled by 1 / the size of its
        analytic gradients (a power of two; the largest weight where they vanish) so that
        no input hides behind a larger one.  The numeric side is a first estimate along u
        (three evaluations), refined on the Richardson ladder only where it cannot decide.
        """
        rng = np.random.default_rng(self.opts.seed)
        n_out, count, size = len(self.out_sizes), self.opts.projections, self.flat0.size
        # Random sizes as well as signs: with +-1 entries an error in two elements of equal
        # size cancels in half the projections; with sizes in [0.5, 1.5] it cancels in none.
        w = [[_random_entries(rng, m) for m in self.out_sizes] for _ in range(count)]
        signs = _random_entries(rng, (count, size))
        # vjps[r][p, o]: the flat input gradient for cotangent w[p][o] on output o, run r.
        vjps = []
        for run in runs:
            grads_r = np.zeros((count, n_out, size))
            for p in range(count):
                for o in range(n_out):
                    cot = [
                        self._cotangent(q, w[p][o] if q_i == o else np.zeros(self.out_sizes[q_i]))
                        for q_i, q in enumerate(run.outs)
                    ]
                    grads = self._vjp(run, cot)
                    if isinstance(grads, _Failure):
                        return grads.after(run.note)
                    if p == 0:
                        failure = self._reentrant(grads, self._vjp(run, cot), f"output {o}")
                        if failure is not None:
                            return failure.after(run.note)
                    grads_r[p, o] = np.concatenate([g.reshape(-1) for g in grads])
            vjps.append(grads_r)
        weights = np.ones(size)
        sizes = []
        for k in range(len(self.diff)):
            block = vjps[0][:, :, self.offsets[k] : self.offsets[k + 1]]
            sizes.append(float(np.max(np.abs(np.nan_to_num(block)), initial=0.0)))
        positive = [s for s in sizes if s > 0 and np.isfinite(s)]
        for k, s in enumerate(sizes):
            ref = s if s in positive else (min(positive) if positive else 1.0)
            weights[self.offsets[k] : self.offsets[k + 1]] = 2.0 ** -np.round(np.log2(ref))
        dirs = signs * (weights / np.max(weights))

        def projected(r: int, value, error, realised) -> list[tuple]:
            """Per output: analytic, numeric and error of the count projections."""
            out = []
            for o in range(n_out):
                rows = slice(self.out_offsets[o], self.out_offsets[o + 1])
                a = np.array([vjps[r][p, o] @ realised[p] for p in range(count)])
                n = np.array([w[p][o] @ value[rows, p] for p in range(count)])
                e = np.array([np.abs(w[p][o]) @ error[rows, p] for p in range(count)])
                out.append((a, n, e))
            return out

        def decide(
            value, error, floor, realised, errors_failing: float = 2 * _ERROR_FACTOR
        ) -> tuple[np.ndarray, np.ndarray, list]:
            """Decided as the elements of the full check are (see _decide): passing at the
            lower bounds of the scales, failing at the upper ones by more than 8 E.  Returns
            the undecided projections, each one's margin over the tolerance (-inf: not
            failing), and the numeric projections with their errors per run and output."""
            need = np.zeros(count, dtype=bool)
            margin = np.full(count, -np.inf)
            numbers = []
            for r, run in enumerate(runs):
                lows = projected(r, value, floor, realised)
                for o, (a, n, e) in enumerate(projected(r, value, error, realised)):
                    numbers.append((n, e))
                    slack = _ERROR_FACTOR * lows[o][2]
                    usable = np.isfinite(a) & np.isfinite(n) & np.isfinite(e)
                    low = np.where(usable, np.maximum(np.abs(n) - _ERROR_FACTOR * e, 0.0), 0.0)
                    high = np.where(usable, np.abs(n) + _ERROR_FACTOR * e, np.inf)
                    a_max = float(np.max(np.abs(a[usable]), initial=0.0))
                    scale = max(a_max, float(np.max(low)))
                    scale_hi = max(a_max, float(np.max(high)))
                    tau = _tolerance_scale(self._fast_eps(o, run), self.opts.scale_tolerances)
                    with np.errstate(invalid="ignore"):
                        gap = np.abs(a - n)
                        tol = tau * (self.opts.atol * scale + self.opts.rtol * low)
                        tol_hi = tau * (self.opts.atol * scale_hi + self.opts.rtol * high)
                        need |= ~(usable & (gap + _ERROR_FACTOR * e <= tol + slack))
                        over = (gap - errors_failing * e - tol_hi) / np.maximum(tol_hi, 1e-300)
                    margin = np.maximum(margin, np.where(usable & (over > 0), over, -np.inf))
            return need, margin, numbers

        def undecided(value, error, floor, realised) -> np.ndarray:
            need, margin, numbers = decide(value, error, floor, realised)
            if not np.any(np.isfinite(margin)):
                return need
            # A projection that fails whatever a refined reference says sends the check to
            # the full one (refining the others would only cost evaluations), once the same
            # estimate 64 times finer fails too and agrees (see _cross_checked).
            p = int(np.argmax(margin))
            fine, fine_dirs = numeric.cross_check_directions(
                self.f_ref, self.flat0, dirs[[p]], dtype=self.ref_dtype, f0=self.f0
            )
            value2, error2, realised2 = value.copy(), error.copy(), realised.copy()
            value2[:, p], error2[:, p], realised2[p] = (
                fine.value[:, 0],
                fine.error[:, 0],
                fine_dirs[0],
            )
            _, margin2, numbers2 = decide(
                value2, error2, np.zeros_like(error), realised2, errors_failing=_ERROR_FACTOR
            )
            with np.errstate(invalid="ignore"):
                agree = all(
                    abs(n1[p] - n2[p]) <= _ERROR_FACTOR * (e1[p] + e2[p])
                    for (n1, e1), (n2, e2) in zip(numbers, numbers2, strict=True)
                )
            return np.zeros(count, dtype=bool) if agree and margin2[p] > 0 else need

        res, realised = numeric.staged_directional(
            self.f_ref,
            self.flat0,
            dirs,
            undecided,
            dtype=self.ref_dtype,
            step=self._step(),
            batched=self.f_many,
            f0=self.f0,
        )
        for r, run in enumerate(runs):
            for o, (a, n, e) in enumerate(projected(r, res.value, res.error, realised)):
                pair = _Pair(o, -1, (count,), (), a, n, e, self._fast_eps(o, run), projected=True)
                failure = self._judge(pair, 0.0)
                if failure is not None:
                    return failure.after(run.note)
        return None

    def _fast_eps(self, o: int, run: _Run) -> float:
        """A projection mixes every input: judged at the loosest of their precisions."""
        return max(self._pair_eps(o, k, run) for k in range(len(self.diff)))


def _random_entries(rng: np.random.Generator, shape: Any) -> np.ndarray:
    """Random signs times random sizes in [0.5, 1.5]: projection vectors for fast mode."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)


# ------------------------------------------------------------------------------ messages


def _hint(pair: _Pair, mismatch: np.ndarray, bound: np.ndarray) -> str | None:
    """A recognisable pattern in the mismatch, for the failure message."""
    a, n = pair.analytic, pair.numeric
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n))):
        return None
    big = np.abs(n) > bound
    if not np.any(big):
        if np.any(a != 0):
            return "the numeric Jacobian is ~0 here: a gradient for an input the output ignores?"
        return None
    if np.all(a == 0):
        return "the analytic gradient is all zero: a missing backward or a detached path?"
    ratio = a[big] / n[big]
    med = float(np.median(ratio))
    if np.allclose(a, med * n, rtol=0, atol=float(np.max(bound))) and abs(med - 1) > 1e-12:
        if abs(med + 1) < 1e-3:
            return "the analytic gradient is the numeric one with its sign flipped"
        for k in (2.0, 0.5, 3.0, 1.0 / 3.0, 4.0, 0.25):
            if abs(med - k) < 1e-3 * k:
                return f"the analytic gradient is {k:g} times the numeric one (a factor of {k:g})"
        return f"the analytic gradient is the numeric one times {med:.6g} (a constant factor)"
    if a.shape[0] == a.shape[1] and np.allclose(a, n.T, rtol=0, atol=float(np.max(bound))):
        return "the analytic Jacobian is the numeric one transposed"
    if a.size > 1 and np.allclose(
        np.sort(a, axis=None), np.sort(n, axis=None), atol=float(np.max(bound)), rtol=0
    ):
        return "same values, different places: a transposed or permuted index?"
    count = int(np.count_nonzero(mismatch))
    if count == 1:
        return "only one element is wrong"
    cols = np.flatnonzero(np.any(mismatch, axis=0))
    if pair.in_values.size == a.shape[1] and cols.size:
        xs = pair.in_values
        if np.all(xs[cols] < 0) and np.any(xs >= 0):
            return "wrong only where the input is negative"
        if np.all(xs[cols] > 0) and np.any(xs <= 0):
            return "wrong only where the input is positive"
    if count <= 3 and a.size > 3:
        return f"only {count} elements are wrong"
    return None


def _mismatch(pair: _Pair, verdict: numeric.Comparison, unusable: np.ndarray) -> JacobianMismatch:
    """The failing block as data: counts, the worst elements by excess over the bound."""
    a, n, e = pair.analytic, pair.numeric, pair.error
    undefined: tuple[int, ...] = ()
    if np.any(unusable & np.isfinite(a)):
        undefined = tuple(int(i) for i in np.flatnonzero(unusable.ravel())[:_WORST])
    mismatch = verdict.mismatch
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.where(mismatch, np.abs(a - n) / np.maximum(verdict.bound, 1e-300), -np.inf)
    order = np.argsort(-excess, axis=None)[: min(_WORST, int(np.count_nonzero(mismatch)))]
    fast = pair.projected
    worst = []
    for flat in order:
        if fast:
            label = f"projection {int(flat)}"
        else:
            r, c = np.unravel_index(int(flat), a.shape)
            label = f"{_fmt_index(r, pair.out_shape)}, {_fmt_index(c, pair.in_shape)}"
        ai, ni, ei = float(a.flat[flat]), float(n.flat[flat]), float(e.flat[flat])
        worst.append(WorstElement(label, ai, ni, abs(ai - ni), ei))
    return JacobianMismatch(
        output=pair.out_index,
        input=pair.in_index,
        differing=int(np.count_nonzero(mismatch)),
        size=int(a.size),
        projected=fast,
        worst=tuple(worst),
        scale=float(verdict.scale),
        undefined=undefined,
        hint=None if fast else _hint(pair, mismatch, verdict.bound),
    )


# --------------------------------------------------------------------------- public API


def _unsupported(adapter: Adapter, **flags: bool) -> dict[str, bool]:
    """The flags set (torch runs its own checks for them); an error for other frameworks."""
    wanted = {name: value for name, value in flags.items() if value}
    if wanted and adapter.name != "torch":
        name = next(iter(wanted))
        why = {
            "engine": "engine has no forward-mode AD, vmap or masked tensors",
            "jax": "use jax.test_util.check_grads(modes=['fwd']) for forward mode",
        }.get(adapter.name, f"{adapter.name} code has no forward-mode AD")
        raise NotImplementedError(f"gradcheck: {name}=True is not supported: {why}")
    return wanted


def _adapter_for(inputs: tuple, adapter: Adapter | None) -> Adapter:
    return adapter if adapter is not None else for_inputs(inputs)


def _gradcheck(adapter: Adapter | None, func: Callable, inputs: Any, options: _Options) -> bool:
    """gradcheck through a framework adapter (None: the one the inputs' arrays call for)."""
    tupled = _as_tuple(inputs)
    fw = _adapter_for(tupled, adapter)
    checker = _Checker(fw, func, tupled, options)
    if not options.check_backward_ad:
        return True
    failure = checker.run()
    if failure is None:
        return True
    if options.raise_exception:
        _raise(fw.error_type, fw.note(checker.in_dtypes) + failure.message, failure)
    return False


def gradcheck(
    func: Callable,
    inputs: Any,
    *,
    eps: float = _DEFAULT_EPS,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_batched_forward_grad: bool = False,
    check_forward_ad: bool = False,
    check_backward_ad: bool = True,
    fast_mode: bool = False,
    masked: bool | None = None,
    scale_tolerances: bool = True,
    projections: int = 2,
    seed: int = 0,
    batched: bool = False,
) -> bool:
    """Check func's analytic gradients against finite differences; True or GradcheckError.

    inputs may be engine tensors, torch.Tensors (func is then a PyTorch function and the
    analytic side is torch's autograd) or JAX arrays (func is a JAX function, the analytic
    side is jax.vjp, and every floating input is differentiated); the numeric side and the
    verdict are the same for all three.

    The verdict rule, per (output, input) pair with analytic Jacobian A, numeric N and
    numeric error estimate E (see engine.autograd.numeric):

        mismatch where |A - N| > 4 * E + tau * (atol * S + rtol * |N|)

    N and E are, per element, a cheap first estimate (three evaluations per input element,
    or 2 log2(n) for a block of n that no output element reads two of) where it settles the
    verdict, else Richardson extrapolation.  It settles a pass where |A - N| + 4 E fits the
    tolerance even at the lowest scales consistent with the estimates, and a failure where
    |A - N| - 8 E exceeds it even at the highest ones (every refined N' within 4 E of N, with
    an error at most E, would fail too) and the same estimate 64 times finer fails too and
    agrees with it (a function varying faster than the first step aliases); one settled
    failure ends the numeric work, and the report then shows the first estimates with their
    error estimates.  So no element passes
    and none fails that the Richardson reference would judge otherwise, unless the first
    estimate's error bound is dishonest.

    S is the scale of the pair's Jacobian, max |A|, |N| (floored at 1e-3 of the largest
    pair's scale), so atol is relative: a wrong gradient of size 1e-9 is still caught and
    inputs of 1e8 do not trip it.  tau = (eps_dtype / eps_float32) ** (1/3) states atol and
    rtol at float32 precision: 1 for float32, 1.2e-3 for float64 (so an error of 1e-4 is
    caught in float64), larger for half precision; scale_tolerances=False makes tau 1.
    float32 inputs: when func re-run on float64 copies reproduces its float32 outputs, the
    numeric reference is computed in float64, and the backward is checked twice: its float32
    run at float32 tolerances, and its float64 re-run at float64 tolerances (which catches a
    formula off by 1e-4 that float32 rounding would hide).  Otherwise N is computed in
    float32 and E grows with float32's rounding noise.

    eps: the default (1e-6) chooses steps automatically; any other value forces central
    differences with that absolute step, as in PyTorch.  fast_mode compares `projections`
    random projections w^T J u (u over all inputs at once, each one directional derivative
    of three evaluations, refined like the elements above); if one disagrees, the full check
    locates the failure and gives the verdict.
    batched=True declares that func evaluates a stack of points in one call: given every
    differentiated input with one extra leading dimension of size P (the other inputs as
    they are), it returns every floating output with that leading dimension, row p being
    func at row p (as `torch.vmap(func)` or `jax.vmap(func)` would, or code that
    broadcasts over a leading dimension).  The perturbations of each stage (the first
    estimates of all inputs, a rung of the ladder for all inputs, ...) are then evaluated in
    a few calls instead of one call each; the numbers are func's own, so the verdicts are
    the same.  Checked once on a stack of two points (a ValueError if func does not batch).
    A backward that raises, returns a wrong shape (or, with check_grad_dtypes, dtype), is
    not reentrant within nondet_tol, or gives non-zero gradients for zero grad_outputs
    (check_undefined_grad) fails the check.
    With torch inputs, check_batched_grad, check_batched_forward_grad, check_forward_ad and
    masked are torch's own checks, run by torch.autograd.gradcheck after ours passes.
    """
    options = _Options.pick(locals())  # before any other local: the keywords, once
    adapter = for_inputs(_as_tuple(inputs))
    torch_checks = _unsupported(
        adapter,
        check_batched_grad=check_batched_grad,
        check_batched_forward_grad=check_batched_forward_grad,
        check_forward_ad=check_forward_ad,
        masked=bool(masked),
    )
    ours = _gradcheck(adapter, func, inputs, options)
    if not (ours and torch_checks):
        return ours
    # Batched grads need torch's backward pass; ours has judged the backward already.
    return adapter.own_check(
        "gradcheck",
        (func, inputs),
        {
            **options.torch_kwargs(),
            "check_undefined_grad": False,
            "check_backward_ad": check_batched_grad,
            **torch_checks,
        },
    )


def _gradgradcheck(
    adapter: Adapter | None, func: Callable, inputs: Any, grad_outputs: Any, options: _Options
) -> bool:
    """gradgradcheck through a framework adapter (None: the one the inputs call for)."""
    tupled = _as_tuple(inputs)
    fw = _adapter_for(tupled, adapter)
    diff = fw.diff_indices(tupled)
    if grad_outputs is None:
        rng = np.random.default_rng(options.seed)
        grad_outputs = tuple(
            fw.from_numpy(
                rng.standard_normal(tuple(o.shape)).astype(fw.dtype_of(o)), requires_grad=True
            )
            for o in fw.call(func, tupled)
            if fw.is_floating(o) and fw.requires_grad(o)
        )
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(tupled)
    first_derivative = fw.first_derivative(func, n_in, diff)
    try:
        return _gradcheck(fw, first_derivative, tupled + grad_outputs, options)
    except GradcheckError as exc:
        _raise(
            fw.error_type,
            f"gradgradcheck: output k below is the gradient for differentiable input k, and "
            f"inputs {n_in}.. are the grad_outputs.\n{exc}",
            exc,
        )


def gradgradcheck(
    func: Callable,
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = _DEFAULT_EPS,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
    scale_tolerances: bool = True,
    projections: int = 2,
    seed: int = 0,
) -> bool:
    """Check the gradients of func's backward (built with create_graph) by gradcheck.

    grad_outputs default to seeded random normals that require grad, as in PyTorch; the
    verdict rule is gradcheck's.  gen_non_contig_grad_outputs is accepted and ignored
    (engine arrays have no strides to vary).  torch and JAX inputs as for gradcheck; with
    torch inputs, check_batched_grad and check_fwd_over_rev are torch's own checks.
    """
    options = _Options.pick(locals())  # before any other local: the keywords, once
    adapter = for_inputs(_as_tuple(inputs))
    torch_checks = _unsupported(
        adapter,
        check_batched_grad=check_batched_grad,
        check_fwd_over_rev=check_fwd_over_rev,
        masked=masked,
    )
    ours = (
        _gradgradcheck(adapter, func, inputs, grad_outputs, options) if check_rev_over_rev else True
    )
    if not (ours and torch_checks):
        return ours
    return adapter.own_check(
        "gradgradcheck",
        (func, inputs, grad_outputs),
        {
            **options.torch_kwargs(),
            "check_undefined_grad": False,
            "check_rev_over_rev": check_batched_grad,
            "gen_non_contig_grad_outputs": gen_non_contig_grad_outputs,
            **torch_checks,
        },
    )
