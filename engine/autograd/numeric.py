"""Finite differences that can be trusted: central, Richardson, complex step, one-sided.

Pure NumPy on purpose: the CLI imports this module without the engine. Every estimate comes
with an error estimate, the steps it used and the number of function evaluations, so that a
verdict can tell "the numbers disagree" from "the reference is not precise enough to tell".

Steps. A step scaled by ``|x|`` alone is right for ``log(x)`` at 1e8 and wrong for ``sin(x)``
at 1e4 (far too coarse); a step of ~1e-6 is wrong for ``cos(x)`` at 1e-6 (the rounding noise of
``f`` swamps the difference) and for ``log(x)`` at 1e8 (same).  No single step is right, so the
default method walks a geometric ladder of steps (ratio 3) from ``max(|x|, 1) / 2`` down to
``1e-7 * min(|x|, 1)`` (at most 13 decades), extrapolates each rung (Neville/Richardson in
``h**2``, up to order 8) and keeps, per element, the estimate with the smallest error.  A
rung's error is the disagreement with its neighbouring rungs and extrapolation levels (the max
over three rungs, so that a lucky agreement does not count), floored by the measured rounding
noise of f, and raised to its distance from any smaller-step estimate beyond that estimate's
own error (large steps cannot see a wiggle smaller than themselves).  The ladder stops once the
noise floor makes smaller steps useless, after one look further down for such a wiggle.  Steps
are the ones floating point realises: ``(x + h) - (x - h)``, not ``2 h``.

Methods: "auto" (complex step if f is complex-safe, probed and never assumed, else Richardson),
"richardson", "complex-step", "central" (one step, choose_step), and "one-sided" is what
Richardson falls back to where x - h or x + h leaves f's domain (NaN, inf, an exception, or
``domain(x) is False``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Comparison",
    "NumericResult",
    "choose_step",
    "compare",
    "cross_check",
    "cross_check_directions",
    "directional",
    "gradient",
    "hessian",
    "jacobian",
    "scan_steps",
    "staged_directional",
    "staged_jacobian",
]

_EPS = float(np.finfo(np.float64).eps)
# The absolute rounding quantum of f's values: once they underflow, eps * |f| says nothing.
_QUANTUM = float(np.finfo(np.float64).smallest_subnormal)
# The ladder: steps hi, hi/RATIO, hi/RATIO**2, ... down to LO_FACTOR * min(|x|, 1).
_RATIO = 3.0
_LO_FACTOR = 1e-7
_HI_FACTOR = 0.5
_MAX_SPAN = 1e13
_MAX_RUNGS = 40
_MIN_RUNGS = 6
_LEVELS = 3  # extrapolation levels: central differences of order 2, 4, 6, 8
_STOP = 10.0  # a rung whose rounding floor is this many times the best error ends the ladder
_CONFLICT = 3.0  # the wiggle probe: estimates this many error bars apart disagree
# Noise probe offsets in ulps of max(|x|, 1): uneven, and not whole numbers, because points
# a whole number of ulps apart can round alike and hide the noise.
_NOISE_OFFSETS = np.array(
    [0.0, 36979.3, -61043.7, 98991.1, -131017.9, 155021.3, -182993.6, 211007.4]
)
# Complex step: tiny enough that h**2 terms vanish, two different significands so that the
# difference of the two estimates exposes the rounding error of f's imaginary part.
_CS_STEPS = (1e-20, 1.3671875e-20)

Domain = Callable[[np.ndarray], bool] | None


@dataclass(frozen=True)
class NumericResult:
    """A numeric derivative with its error estimate, cost, method and steps."""

    value: np.ndarray
    error: np.ndarray
    evaluations: int
    method: str
    step: np.ndarray
    calls: int | None = None  # calls of f, when a batched f evaluated many points per call


@dataclass(frozen=True)
class Comparison:
    """Element-wise verdict of analytic against numeric derivatives (see `compare`)."""

    ok: bool
    mismatch: np.ndarray
    bound: np.ndarray
    scale: float


# --------------------------------------------------------------------------- evaluation


# A batched call stacks at most this many floats of inputs or outputs (32 MB).
_BATCH_FLOATS = 1 << 22

Batched = Callable[[np.ndarray], np.ndarray] | None


class _Counted:
    """Wraps f: counts calls, returns float64 1-D arrays, maps failures to NaN.

    many: f over a stack of points, (P, n) -> (P, m) in one call.  `prefetch` then evaluates
    the points a stage is about to ask for in few calls and keeps their values, which the
    stage's own calls of ev(p) return: the numbers, and so the verdicts, are the ones of
    point-by-point calls, for far fewer calls of f.
    """

    def __init__(
        self,
        f: Callable,
        domain: Domain,
        size: int | None = None,
        dtype=np.float64,
        many: Batched = None,
    ):
        self.f = f
        self.domain = domain
        self.count = 0  # points evaluated
        self.calls = 0  # calls of f (fewer than points when many evaluates stacks)
        self.size = size
        # The precision f works in: points are rounded to it so that the realised steps are
        # the ones f sees, and its rounding noise sets the floor of the error estimates.
        self.dtype = np.dtype(dtype)
        self.eps = float(np.finfo(self.dtype).eps)
        self.quiet = False
        self.many = many
        self.cache: dict[bytes, np.ndarray] = {}

    def point(self, x: np.ndarray) -> np.ndarray:
        """x rounded to the working precision of f (as float64)."""
        if self.dtype == np.float64:
            return x.astype(np.float64, copy=False)
        return x.astype(self.dtype).astype(np.float64)

    @contextmanager
    def hushed(self) -> Iterator[None]:
        """Silence f's floating-point warnings once for many calls (a context per call costs
        more than a small function's evaluation)."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.quiet = True
            try:
                yield
            finally:
                self.quiet = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.domain is not None and not self.domain(x):
            return self._nan()
        if self.cache:
            hit = self.cache.get(x.tobytes())
            if hit is not None:
                return hit
        self.count += 1
        self.calls += 1
        try:
            if self.quiet:
                out = np.asarray(self.f(x), dtype=np.float64).reshape(-1)
            else:
                with self.hushed():
                    out = np.asarray(self.f(x), dtype=np.float64).reshape(-1)
        except (ArithmeticError, ValueError):
            # Outside the domain for math.log & co; treated like a NaN result.
            return self._nan()
        if self.size is None:
            self.size = out.size
        return out

    def known(self, x: np.ndarray, value: np.ndarray | None) -> np.ndarray:
        """f(x): `value` when the caller computed it already, else one evaluation."""
        if value is None:
            return self(x)
        out = np.asarray(value, dtype=np.float64).reshape(-1)
        self.size = out.size
        return out

    def prefetch(self, points: list[np.ndarray]) -> None:
        """Evaluate points (already rounded by `point`) in as few calls of `many` as fit.

        A stack that raises, or returns the wrong shape, is left to point-by-point calls
        (then the failing point alone becomes NaN, as without batching).
        """
        if self.many is None or self.size is None:
            return
        todo, seen = [], set()
        for p in points:
            key = p.tobytes()
            if key not in self.cache and key not in seen:
                seen.add(key)
                todo.append(p)
        if len(todo) < 2:
            return
        per = max(1, _BATCH_FLOATS // max(todo[0].size, self.size, 1))
        for lo in range(0, len(todo), per):
            chunk = np.stack(todo[lo : lo + per])
            self.calls += 1
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out = np.asarray(self.many(chunk), dtype=np.float64)
            except (ArithmeticError, ValueError):
                continue
            if out.size != chunk.shape[0] * self.size:
                continue
            self.count += chunk.shape[0]
            for p, row in zip(chunk, out.reshape(chunk.shape[0], self.size), strict=True):
                self.cache[p.tobytes()] = row

    def _nan(self) -> np.ndarray:
        return np.full(self.size if self.size is not None else 1, np.nan)


def choose_step(x: np.ndarray | float, dtype: type | np.dtype = np.float64) -> np.ndarray:
    """The realised step cbrt(eps) * max(1, |x|) of method="central", per coordinate.

    Richardson (the default) reports the step it selected in NumericResult.step instead.
    """
    xd = np.asarray(x, dtype=dtype)
    eps = np.finfo(xd.dtype).eps
    h = (np.cbrt(eps) * np.maximum(1.0, np.abs(xd))).astype(xd.dtype)
    return ((xd + h) - xd).astype(np.float64)


_TINY = 1e-30  # below this |x| counts as zero when scaling steps


def _ladder(x: np.ndarray, dirs: np.ndarray, dtype: type | np.dtype = np.float64) -> np.ndarray:
    """Geometric step ladder (K, d) for moving x along each row of dirs, largest first."""
    ax = np.abs(x)
    hi_coord = _HI_FACTOR * np.maximum(ax, 1.0)
    # |x| sets the scale of the smallest steps (log at 1e-6 needs steps below 1e-6), but a
    # nearly-zero x is treated as zero: with |x| ~ 1e-160 the whole ladder would otherwise sit
    # near 1e-160, where the rounding noise of f divided by h dwarfs any smooth f's derivative.
    lo_coord = _LO_FACTOR * np.where(ax < _TINY, 1.0, np.minimum(ax, 1.0))
    # Below ~eps**(-1/3) ulps of x (1.6e5 in float64) only the rounding noise of f is left.
    eps = np.finfo(dtype).eps
    lo_coord = np.maximum(lo_coord, eps ** (-1 / 3) * np.spacing(ax.astype(dtype)))
    # A bounded f gives |D(h)| ~ 1/h at huge steps: smooth-looking garbage whose absolute
    # differences could undercut the honest rungs' errors if the ladder spanned ~1/eps.
    hi_coord = np.minimum(hi_coord, lo_coord * _MAX_SPAN)
    with np.errstate(divide="ignore"):
        inv = 1.0 / np.abs(dirs)  # (d, n), inf where the direction does not move x
    hi = np.min(hi_coord * inv, axis=1)
    lo = np.min(lo_coord * inv, axis=1)
    # A power-of-two top rung keeps t * dirs exact along unit vectors.
    hi = 2.0 ** np.floor(np.log2(hi))
    rungs = np.ceil(np.log(hi / lo) / np.log(_RATIO)) + 1
    k = int(np.clip(np.max(rungs), _MIN_RUNGS, _MAX_RUNGS))
    return hi[None, :] * _RATIO ** -np.arange(k, dtype=np.float64)[:, None]


def _neville(d0: np.ndarray, h: np.ndarray, power: int, levels: int) -> list[np.ndarray]:
    """Extrapolation tableau to h -> 0 for an error series in h**power, 2*power, ...

    d0: (K, d, m) estimates at steps h: (K, d). Returns one (K, d, m) table per level; row k
    of level j combines rungs k-j..k and is NaN for k < j.
    """
    hp = (h**power)[..., None]
    tables = [d0]
    prev = d0
    for j in range(1, levels + 1):
        cur = np.full_like(d0, np.nan)
        a, b = hp[:-j], hp[j:]  # larger step, smaller step
        with np.errstate(all="ignore"):
            cur[j:] = (a * prev[j:] - b * prev[j - 1 : -1]) / (a - b)
        tables.append(cur)
        prev = cur
    return tables


def _select(
    tables: list[np.ndarray], noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per element, the extrapolated estimate with the smallest smoothed error estimate.

    The error of row k at level j is |R_j[k] - R_j[k-1]| + |R_j[k] - R_{j-1}[k]| plus the
    rounding floor; it is then replaced by the max over rows k-1..k+1 so that two noisy
    estimates agreeing by luck cannot win.  Returns value, error, chosen row (d, m).
    """
    k_rows = tables[0].shape[0]
    best_val = np.full(tables[0].shape[1:], np.nan)
    best_err = np.full(tables[0].shape[1:], np.inf)
    best_row = np.zeros(tables[0].shape[1:], dtype=np.int64)
    for j in range(1, len(tables)):
        cur, low = tables[j], tables[j - 1]
        err = np.full_like(cur, np.nan)
        with np.errstate(invalid="ignore"):
            err[1:] = np.abs(cur[1:] - cur[:-1]) + np.abs(cur[1:] - low[1:])
        err = err + noise * (2.0**j)
        padded = np.concatenate([err[:1], err, err[-1:]])
        smooth = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])
        smooth = np.where(np.isnan(smooth), np.inf, smooth)
        for k in range(k_rows):
            better = smooth[k] < best_err
            best_val = np.where(better, cur[k], best_val)
            best_err = np.where(better, smooth[k], best_err)
            best_row = np.where(better, k, best_row)
    return best_val, best_err, best_row


def _rounding_noise(ev: _Counted, x: np.ndarray, f0: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Measured rounding noise of f along each direction, (d, m).

    eps * |f| underestimates the noise of a sum that cancels (sum(sin(x)) over a symmetric
    grid is ~0 but carries the rounding of every term), of exp(x) - 1 - x (the noise of
    exp(x) ~ 1, not of the result) or of sqrt(x + 1) - sqrt(x).  Over +-2e5 ulps f is a
    quartic plus that noise, so the residual of a quartic fitted through eight points
    measures it.  Offsets of a few ulps would not do: both square roots of sqrt(x + 1) -
    sqrt(x) then move by the same number of ulps and round alike, and whole-ulp offsets
    round alike too.  Where the fifth derivative is large the estimate errs high (safe).
    """
    out = np.zeros((dirs.shape[0], f0.size))
    # Spacing of max(|x|, 1): a perturbation below the ulp of a sum's partial sums shows
    # nothing.
    spacing = np.spacing(np.maximum(np.abs(x), 1.0).astype(ev.dtype)).astype(np.float64)
    offsets = _NOISE_OFFSETS
    bases, stacks = [], []
    for i in range(dirs.shape[0]):
        nz = np.flatnonzero(dirs[i])
        bases.append(float(np.max(spacing[nz] / np.abs(dirs[i, nz]))))
        stacks.append([ev.point(x + o * bases[i] * dirs[i]) for o in offsets[1:]])
    ev.prefetch([p for points in stacks for p in points])
    for i in range(dirs.shape[0]):
        base, points = bases[i], stacks[i]
        # The offsets floating point realised, in units of base.
        real = np.array([0.0] + [float(np.max(np.abs(p - x))) for p in points]) / base
        real *= np.sign(offsets)
        values = np.stack([f0] + [ev(p) for p in points])  # (8, m)
        unit = real / np.max(np.abs(real))  # a well-conditioned design matrix
        design = np.stack([unit**p for p in range(5)], axis=1)
        with np.errstate(invalid="ignore"):
            residual = values - design @ (np.linalg.pinv(design) @ values)
        out[i] = np.max(np.abs(residual), axis=0)
    return np.nan_to_num(out, nan=0.0)


def _hidden_wiggle(
    ev: _Counted,
    x: np.ndarray,
    direction: np.ndarray,
    t: np.ndarray,
    k: int,
    best_val: np.ndarray,
    best_err: np.ndarray,
    jitter: np.ndarray,
    realise: Callable[[np.ndarray, np.ndarray, float], np.ndarray | float] | None = None,
) -> bool:
    """Does an estimate far below rung k disagree with the best one (before stopping there)?

    Large steps cannot see a feature smaller than themselves: on sin(a x) + x**2 at x = 1e7
    every large rung agrees on 2 x, with tiny rung-to-rung differences.  One extrapolated
    estimate from the next two rungs (noise permitting) exposes such a wiggle.
    """
    rows = [r for r in (k + 1, k + 2) if r < t.size]
    if len(rows) < 2:
        return False
    ests, noises, steps = [], [], []
    for r in rows:
        xp, xm = ev.point(x + t[r] * direction), ev.point(x - t[r] * direction)
        fp, fm = ev(xp), ev(xm)
        h = t[r] if realise is None else realise(xp, xm, t[r])
        steps.append(h)
        ests.append((fp - fm) / (2.0 * h))
        scale = np.maximum(np.abs(fp), np.abs(fm))
        noises.append((2.0 * ev.eps * scale + jitter + _QUANTUM) / h)
    a, b = steps[0] ** 2, steps[1] ** 2
    with np.errstate(all="ignore"):
        probe = (a * ests[1] - b * ests[0]) / (a - b)
        gap = np.abs(probe - best_val)
    bound = _CONFLICT * (2.0 * noises[1] + best_err)
    return bool(np.any(np.isfinite(gap) & (gap > bound)))


def _admit_row(
    vals: np.ndarray, inflated: np.ndarray, r: int, val: np.ndarray, err: np.ndarray
) -> None:
    """Record rung r's estimate and make every larger-step error consistent with it.

    The truth lies within every honest error bar, and smaller steps are the more trustworthy
    (their error is mostly the measured rounding noise), so a larger step's error is raised
    to its distance from this estimate beyond this estimate's own bar.  Large steps cannot
    see a feature smaller than themselves: on sin(a x) + x**2 at x = 1e6 they all agree on
    2 x with tiny rung-to-rung differences; the small steps that see the wiggle raise them.
    """
    vals[r], inflated[r] = val, err
    if r == 0:
        return
    with np.errstate(invalid="ignore"):
        gap = np.abs(vals[:r] - val) - err
    gap = np.where(np.isfinite(gap), gap, -np.inf)
    inflated[:r] = np.maximum(inflated[:r], gap)


def _richardson(
    ev: _Counted,
    x: np.ndarray,
    f0: np.ndarray,
    dirs: np.ndarray,
    *,
    levels: int | None = None,
    owner: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Derivatives of ev along each row of dirs: value, error (m, d), step (d,), methods.

    Rungs are evaluated from the largest step down.  A direction stops early once the
    rounding floor of its current rung is _STOP times the best error seen so far: every
    smaller step is worse still, so evaluating it would only cost time.

    owner: a block of coordinates walked together, dirs being one row that scales each
    coordinate's ladder, where output element r depends on coordinate owner[r] only (-1:
    none; see `_owners`).  Element r then gets d f_r / d x_owner[r], on the step floating
    point realised for that coordinate, and one ladder serves the whole block.
    """
    levels = _LEVELS if levels is None else levels
    t = _ladder(x, dirs, ev.dtype)  # (K, d)
    k_rows, d = t.shape
    levels = min(levels, k_rows - 2)
    m = f0.size
    d0 = np.full((k_rows, d, m), np.nan)
    noise = np.full((k_rows, d, m), np.nan)
    real = np.full((k_rows, d, m), np.nan)
    tables = [d0] + [np.full((k_rows, d, m), np.nan) for _ in range(levels)]
    errs = [np.full((k_rows, d, m), np.nan) for _ in range(levels + 1)]
    best = np.full((d, m), np.inf)
    best_val = np.full((d, m), np.nan)
    row_vals = np.full((k_rows, d, m), np.nan)
    inflated = np.full((k_rows, d, m), np.inf)
    active = np.ones(d, dtype=bool)
    probed = np.zeros(d, dtype=bool)
    unit = np.count_nonzero(dirs, axis=1) == 1
    axes = [int(np.flatnonzero(dirs[i])[0]) if unit[i] else -1 for i in range(d)]
    jitter = _rounding_noise(ev, x, f0, dirs)
    mine = None if owner is None else np.maximum(owner, 0)

    def realise(i: int, xp: np.ndarray, xm: np.ndarray, step: float) -> np.ndarray | float:
        """The step floating point realised, not the one asked for."""
        if mine is not None:
            return np.where(owner >= 0, (xp[mine] - xm[mine]) / 2, step)
        a = axes[i]
        return (xp[a] - xm[a]) / (2 * dirs[i, a]) if unit[i] else step

    fetched = 0  # rungs prefetched for a batched f
    for k in range(k_rows):
        if ev.many is not None and k >= fetched:
            # The next rungs of every active direction in one call: as many as the earliest
            # stop needs, then twice as many as walked so far.
            fetched = min(k_rows, max(k + levels + 4, 2 * k))
            ev.prefetch(
                [
                    ev.point(x + sign * t[r, i] * dirs[i])
                    for r in range(k, fetched)
                    for i in np.flatnonzero(active)
                    for sign in (1.0, -1.0)
                ]
            )
        for i in np.flatnonzero(active):
            xp = ev.point(x + t[k, i] * dirs[i])
            xm = ev.point(x - t[k, i] * dirs[i])
            fp, fm = ev(xp), ev(xm)
            real[k, i] = realise(i, xp, xm, t[k, i])
            d0[k, i] = (fp - fm) / (2.0 * real[k, i])
            scale = np.maximum(np.maximum(np.abs(fp), np.abs(fm)), np.abs(f0))
            noise[k, i] = (2.0 * ev.eps * scale + jitter[i] + _QUANTUM) / real[k, i]
        with np.errstate(all="ignore"):
            for j in range(1, min(k, levels) + 1):
                hi2, lo2 = real[k - j] ** 2, real[k] ** 2
                cur, low = tables[j], tables[j - 1]
                cur[k] = (hi2 * low[k] - lo2 * low[k - 1]) / (hi2 - lo2)
                if k - 1 >= j:
                    errs[j][k] = np.abs(cur[k] - cur[k - 1]) + np.abs(cur[k] - low[k])
                    errs[j][k] += noise[k] * 2**j
            # Row k-1 is now complete: its smoothed error (max over rows k-2..k, so that one
            # lucky agreement does not count) at each level, and its best level.
            row_val = np.full((d, m), np.nan)
            row_err = np.full((d, m), np.inf)
            for j in range(1, min(k - 2, levels) + 1):
                window = np.maximum(np.maximum(errs[j][k - 2], errs[j][k - 1]), errs[j][k])
                window = np.where(np.isnan(window), np.inf, window)
                better = window < row_err
                row_val = np.where(better, tables[j][k - 1], row_val)
                row_err = np.where(better, window, row_err)
            if k >= 1:
                _admit_row(row_vals, inflated, k - 1, row_val, row_err)
                row = np.argmin(inflated[:k], axis=0)
                best_val = np.take_along_axis(row_vals[:k], row[None], axis=0)[0]
                best = np.take_along_axis(inflated[:k], row[None], axis=0)[0]
            if k >= levels + 3:
                done = active & ~probed & np.all(noise[k] >= _STOP * best, axis=1)
                for i in np.flatnonzero(done):
                    wiggle = _hidden_wiggle(
                        ev,
                        x,
                        dirs[i],
                        t[:, i],
                        k,
                        best_val[i],
                        best[i],
                        jitter[i],
                        lambda xp, xm, step, i=i: realise(i, xp, xm, step),
                    )
                    if wiggle:
                        probed[i] = True  # keep walking down, and no more early stops
                    else:
                        active[i] = False
        if not np.any(active):
            break
    row = np.argmin(inflated, axis=0)
    value = np.take_along_axis(row_vals, row[None], axis=0)[0]
    error = np.take_along_axis(inflated, row[None], axis=0)[0]
    error = np.where(np.isfinite(error), error, np.nan)
    steps = np.take_along_axis(real[:, :, 0], np.min(row, axis=1)[None, :], axis=0)[0]
    methods = ["richardson"] * d
    bad_cols = np.flatnonzero(~np.all(np.isfinite(value), axis=1))
    if bad_cols.size and np.all(np.isfinite(f0)) and owner is None:
        # Near a domain edge the central ladder has no usable rung: go one-sided.
        v1, e1, s1 = _one_sided(ev, x, f0, dirs[bad_cols], t[:, bad_cols], levels)
        value[bad_cols], error[bad_cols], steps[bad_cols] = v1, e1, s1
        for i in bad_cols:
            methods[i] = "one-sided"
    return value.T, error.T, steps, methods


def _one_sided(
    ev: _Counted, x: np.ndarray, f0: np.ndarray, dirs: np.ndarray, t: np.ndarray, levels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward or backward differences with Richardson in h, toward the valid side."""
    k_rows, d = t.shape
    m = f0.size
    best_val = np.full((d, m), np.nan)
    best_err = np.full((d, m), np.inf)
    best_step = np.full(d, np.nan)
    ev.prefetch(
        [
            ev.point(x + sign * t[k, i] * dirs[i])
            for sign in (1.0, -1.0)
            for i in range(d)
            for k in range(k_rows)
        ]
    )
    for sign in (1.0, -1.0):
        f1 = np.empty((k_rows, d, m))
        real = np.empty((k_rows, d))
        for i in range(d):
            for k in range(k_rows):
                xs = ev.point(x + sign * t[k, i] * dirs[i])
                f1[k, i] = ev(xs)
                nz = np.flatnonzero(dirs[i])
                real[k, i] = (
                    (xs[nz[0]] - x[nz[0]]) / dirs[i, nz[0]] if nz.size == 1 else sign * t[k, i]
                )
        d0 = (f1 - f0[None, None, :]) / real[..., None]
        scale = np.maximum(np.abs(f1), np.abs(f0)[None, None, :])
        noise = (2.0 * ev.eps * scale + _QUANTUM) / np.abs(real[..., None])
        tables = _neville(d0, np.abs(real), 1, min(levels + 1, k_rows - 2))
        value, error, row = _select(tables, noise)
        better = error < best_err
        best_val = np.where(better, value, best_val)
        best_err = np.where(better, error, best_err)
        steps = np.take_along_axis(real, np.min(row, axis=1)[None, :], axis=0)[0]
        best_step = np.where(np.any(better, axis=1), steps, best_step)
    return best_val, best_err, best_step


def _central(
    ev: _Counted, x: np.ndarray, dirs: np.ndarray, step: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain central differences at choose_step (or `step`); error from step doubling."""
    d = dirs.shape[0]
    vals = []
    for i in range(d):
        nz = np.flatnonzero(dirs[i])
        scale = np.max(np.maximum(1.0, np.abs(x[nz])) / np.abs(dirs[i, nz]))
        h = float(np.cbrt(ev.eps) * scale) if step is None else float(step)
        row = []
        for mult in (1.0, 2.0):
            xp = ev.point(x + mult * h * dirs[i])
            xm = ev.point(x - mult * h * dirs[i])
            k = nz[0]
            real = (xp[k] - xm[k]) / (2 * dirs[i, k]) if nz.size == 1 else mult * h
            fp, fm = ev(xp), ev(xm)
            noise = (2.0 * ev.eps * np.maximum(np.abs(fp), np.abs(fm)) + _QUANTUM) / real
            row.append(((fp - fm) / (2 * real), noise, real))
        (d1, n1, s1), (d2, _, _) = row
        vals.append((d1, np.abs(d1 - d2) / 3.0 + n1, s1))
    value = np.stack([v[0] for v in vals], axis=1)
    error = np.stack([v[1] for v in vals], axis=1)
    return value, error, np.array([v[2] for v in vals])


# ------------------------------------------------------------------------- complex step


def _complex_step(f: Callable, x: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex-step derivatives along dirs: value, error (m, d).  Raises if f is not complex."""
    ests = []
    for h0 in _CS_STEPS:
        cols = []
        for i in range(dirs.shape[0]):
            nz = np.flatnonzero(dirs[i])
            h = h0 * float(np.max(np.maximum(1.0, np.abs(x[nz]))))
            with np.errstate(all="ignore"), warnings.catch_warnings():
                # A float cast of a complex value silently drops the imaginary part.
                warnings.simplefilter("error", np.exceptions.ComplexWarning)
                try:
                    out = np.asarray(f(x + 1j * h * dirs[i])).reshape(-1)
                except np.exceptions.ComplexWarning as exc:
                    raise TypeError(f"function casts complex input to real: {exc}") from exc
            if not np.iscomplexobj(out):
                raise TypeError("function returned a real value for a complex input")
            cols.append(out.imag / h)
        ests.append(np.stack(cols, axis=1))
    value = ests[0]
    error = np.abs(ests[0] - ests[1]) + 4.0 * _EPS * np.abs(value)
    return value, error


def _complex_probe(
    f: Callable, x: np.ndarray, f0: np.ndarray, cs: np.ndarray, domain: Domain
) -> int:
    """Check a complex-step Jacobian against real Richardson estimates; return evaluations.

    Raises ValueError when the complex step is not trustworthy.  The probe direction weights
    each coordinate by 1/|column scale| so that every coordinate contributes equally and a
    coordinate the complex step gets wrong (abs, max, a cast to real) cannot hide behind a
    large neighbour; random signs keep errors from cancelling.
    """
    n = x.size
    rng = np.random.default_rng(0x5EED)
    colscale = np.max(np.abs(cs), axis=0)
    # Floored at the smallest normal number: 1e-3 of it is subnormal, whose inverse
    # overflows, and an all-zero Jacobian (x^2 + 3x at -1.5) would weigh by inf / inf.
    floor = max(1e-3 * float(np.max(colscale)), np.finfo(np.float64).tiny)
    weights = 1.0 / np.maximum(colscale, floor)
    weights = 2.0 ** np.round(np.log2(weights / np.max(weights)))
    evals = 0
    for _ in range(2):
        v = rng.choice([-1.0, 1.0], size=n) * weights
        ev = _Counted(f, domain, f0.size)
        value, error, _, _ = _richardson(ev, x, f0, v[None, :])
        evals += ev.count
        predicted = cs @ v
        diff = np.abs(predicted - value[:, 0])
        bound = 8.0 * error[:, 0] + 1e-9 * np.maximum(np.abs(predicted), np.abs(value[:, 0]))
        if not np.all(np.isfinite(value)) or np.any(diff > bound):
            raise ValueError("complex step disagrees with the real-valued function")
    return evals


# ------------------------------------------------------------------- staged estimates

# gradcheck needs a verdict per element, not the best derivative: most elements are decided
# by one cheap estimate with an honest error bound, and only the rest pay for the ladder.
# The cheap estimate sits on the nodes -h, 0, h, 2h (f(x) is known already): the central
# difference (nodes -h, 0, h) and the cubic fit through all four differ by the central
# difference's truncation error to leading order, which is the error estimate, with the
# rounding floor of f added.  Three evaluations per coordinate; for a block of coordinates
# where every output element depends on at most one of them (elementwise ops, broadcasting,
# indexing), the probes that find that out are the nodes (see `_PROBE_NODES`), and the
# retry's evaluations perturb the whole block at once.
_FIRST_NODES = (-1.0, 1.0, 2.0)  # multiples of the step, besides the centre
_FIRST_FACTOR = 2.0  # the first step is _FIRST_FACTOR * cbrt(eps) * sqrt(max(|x|, 1))
_RETRY = 16.0  # the second look's step, in first steps
_CROSS = 1 / 64  # a cross-check's step, in first steps (see `cross_check`)
_SEED = 0x16


def _derivative_weights(nodes: list[np.ndarray]) -> list[np.ndarray]:
    """w_j with sum_j w_j p(z_j) = p'(0) for every polynomial p of degree < len(nodes).

    nodes: distinct offsets z_j, nodes[1] being the centre 0, arrays that broadcast
    together.  Lagrange's derivative at 0 in closed form: with the centre among the nodes,
    only the product that leaves out the centre survives, w_j = prod_{i != j, c} (-z_i) /
    (z_j prod_{i != j, c} (z_j - z_i)), and the centre's own is -sum_{i != c} 1 / z_i (not
    minus the others' sum, which cancels to a few ulps of 1/h).  Every first estimate
    computes these: a few array operations, not the general sum of products.
    """
    outer = [nodes[0], *nodes[2:]]
    weights = []
    for j, zj in enumerate(outer):
        numer, denom = 1.0, zj
        for i, zi in enumerate(outer):
            if i != j:
                numer = numer * -zi
                denom = denom * (zj - zi)
        weights.append(numer / denom)
    centre = -sum(1.0 / z for z in outer)
    return [weights[0], centre, *weights[1:]]


@contextmanager
def _started(
    f: Callable,
    x: np.ndarray | float,
    dtype: type | np.dtype | None,
    f0: np.ndarray | None,
    batched: Batched = None,
) -> Iterator[tuple[_Counted, np.ndarray, np.ndarray]]:
    """How every staged estimate starts: f counted (in dtype, float64 by default), its
    warnings hushed, the point rounded to f's precision and f there (f0 when given)."""
    ev = _Counted(f, None, dtype=np.float64 if dtype is None else dtype, many=batched)
    with ev.hushed():
        xv = ev.point(_prepare(x))
        yield ev, xv, ev.known(xv, f0)


def _first_step(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The first step per coordinate: a power of two near 2 cbrt(eps) sqrt(max(|x|, 1)).

    Not proportional to |x|: four samples cannot tell a smooth function from an aliased
    wiggle, and sin(x) sampled every 2048 at x = 1e8 looks smooth and slow, with a small
    error estimate.  A step growing like sqrt(|x|) keeps features of unit size resolved up
    to |x| ~ 1e8 (where the ladder's own smallest steps are ~1e-3) and stays above the
    rounding of x; where f's rounding noise over this step is too large, the estimate's
    error says so and the element is refined.
    """
    scale = np.sqrt(np.maximum(np.abs(x), 1.0))
    h = 2.0 ** np.round(np.log2(_FIRST_FACTOR * np.cbrt(np.finfo(dtype).eps) * scale))
    # Near zero the nodes -h..2h would straddle it, and 1/x, log x or sqrt x with them: keep
    # them on x's side (then a singularity shows as a large error, not a wrong value).
    ax = np.abs(x)
    with np.errstate(divide="ignore"):
        near = 2.0 ** np.floor(np.log2(ax / 4.0))
    return np.where((ax > 0) & (ax < 2.0 * h), near, h)


def _stencil(
    ev: _Counted, f0: np.ndarray, values: list[np.ndarray], nodes: list[np.ndarray], central: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate and error from the values at the realised nodes for -h, h, 2h (broadcast).

    The estimate is the cubic fit's derivative (central=False) or the central difference
    (central=True: PyTorch's value for an explicit eps); the error is their difference plus
    the rounding floor of f (2 ulps of each value through the weights).
    """
    vals = [values[0], f0, values[1], values[2]]
    z = [np.asarray(nodes[0]), 0.0, np.asarray(nodes[1]), np.asarray(nodes[2])]
    with np.errstate(all="ignore"):
        w3 = _derivative_weights(z)
        w2 = _derivative_weights(z[:3])
        d3 = w3[0] * vals[0] + w3[1] * vals[1] + w3[2] * vals[2] + w3[3] * vals[3]
        d2 = w2[0] * vals[0] + w2[1] * vals[1] + w2[2] * vals[2]
        noise = sum(np.abs(w) * np.abs(v) for w, v in zip(w3, vals, strict=True))
        noise = 2.0 * ev.eps * noise + _QUANTUM * sum(np.abs(w) for w in w3)
        error = np.abs(d3 - d2) + noise
    value = d2 if central else d3
    bad = ~(np.isfinite(value) & np.isfinite(error))
    return np.where(bad, np.nan, value), np.where(bad, np.nan, error)


# The first structure probes move bit b's half of the block by _PROBE_NODES[b] times each
# coordinate's random step (1.25-1.75 first steps, see `_owners`): an output element that
# reads one coordinate sees it at three offsets in the ratio -1 : 1 : 2, the first estimate's
# nodes, so the probes are the first estimate too and no block evaluation follows them.
# At most 2 first steps from x, as the first estimate's own nodes (which `_first_step` keeps
# on x's side of zero); the smallest move is 4/7 * 1.25 first steps.
_PROBE_NODES = (-4 / 7, 4 / 7, 8 / 7)
_PROBE_LEAST = 4 / 7  # the smallest |node|, in the random steps' 1.25-1.75 first steps


@dataclass(frozen=True)
class _Probes:
    """What `_owners` saw: each output element's coordinate, and the probes themselves."""

    owner: np.ndarray | None  # per output element, its coordinate in cols (-1: none)
    delta: np.ndarray  # each coordinate's random step
    looks: list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]
    # looks[bit] = ((upper point, f there), (lower point, f there))


def _owners(
    ev: _Counted,
    x: np.ndarray,
    f0: np.ndarray,
    cols: np.ndarray,
    h: np.ndarray,
    nodes: tuple[float, ...] = (),
) -> _Probes:
    """For each output element, the one coordinate of cols it depends on (-1: none; the
    owner is None when some element depends on several), with the probes taken.

    Coordinates are split by each bit of their index; each half is perturbed (by about twice
    the first step, random sizes and signs so that changes cannot cancel) while the other
    stays, and an output element that depends on one coordinate only changes in exactly one
    half per bit, which spells that coordinate's index.  Changes are exact comparisons: an
    elementwise function gives bit-identical outputs where its input is unchanged, and any
    other function (one that mixes, rounds differently, or is not deterministic) shows as
    dependent.  2 ceil(log2 n) evaluations; a dense function is rejected after the first 2.
    nodes: the multiples of the random steps that bits 0, 1, ... move by (1 for the rest).
    """
    n = cols.size
    rng = np.random.default_rng(_SEED)
    delta = h[cols] * (1.25 + 0.5 * rng.random(n)) * rng.choice([-1.0, 1.0], size=n)
    index = np.arange(n)
    bits = max(1, int(np.ceil(np.log2(n))))
    looks: list = []

    def probe(bit: int, upper: bool) -> np.ndarray:
        side = ((index >> bit) & 1 == 1) == upper
        p = x.copy()
        p[cols[side]] += (nodes[bit] if bit < len(nodes) else 1.0) * delta[side]
        return ev.point(p)

    def changes(which: range) -> np.ndarray:
        """(bits, 2, m): did output element r change when bit b's upper / lower half moved?"""
        points = [(probe(b, True), probe(b, False)) for b in which]
        ev.prefetch([p for pair in points for p in pair])  # a batched f: few calls
        for upper, lower in points:
            looks.append(((upper, ev(upper)), (lower, ev(lower))))
        return np.array([(u[1], w[1]) for u, w in looks[-len(points) :]]) != f0

    # Bit by bit, so that an element changing in both halves stops the probing; a batched f
    # takes the first bit alone (a dense f stops there), then the rest in one stage.
    if ev.many is None:
        stages = [range(b, b + 1) for b in range(bits)]
    else:
        stages = [range(1), range(1, bits)]
    parts = []
    for which in filter(None, stages):
        parts.append(changes(which))
        if np.any(parts[-1][:, 0] & parts[-1][:, 1]):
            return _Probes(None, delta, looks)
    changed = np.concatenate(parts)
    upper, either = changed[:, 0], changed[:, 0] | changed[:, 1]
    moved, still = np.any(either, axis=0), np.any(~either, axis=0)
    code = np.sum(upper.astype(np.int64) << np.arange(bits)[:, None], axis=0)
    if np.any(moved & still) or np.any(code[moved] >= n):
        return _Probes(None, delta, looks)
    return _Probes(np.where(moved, code, -1), delta, looks)


def _first_probed(
    ev: _Counted, x: np.ndarray, f0: np.ndarray, cols: np.ndarray, h: np.ndarray, seen: _Probes
) -> tuple[np.ndarray, np.ndarray]:
    """The first estimate (m, len(cols)) of an independent block from its structure probes
    (taken with nodes=_PROBE_NODES), as `_first_block` would from its own evaluations.

    Output element r reads coordinate c = cols[owner[r]]; bit b's probe that moved c holds
    f_r at the node x_c + _PROBE_NODES[b] delta_c.  A block of at most 4 coordinates has
    fewer bits than nodes: the missing nodes move the whole block at once.
    """
    owner = seen.owner
    m, n = f0.size, cols.size
    mine = np.maximum(owner, 0)
    reads = cols[mine]
    values, nodes = [], []
    for bit, ((up_p, up_v), (lo_p, lo_v)) in enumerate(seen.looks[: len(_PROBE_NODES)]):
        upper = ((mine >> bit) & 1) == 1
        values.append(np.where(upper, up_v, lo_v))
        nodes.append(np.where(upper, up_p[reads], lo_p[reads]) - x[reads])
    points = []
    for t in _PROBE_NODES[len(values) :]:
        p = x.copy()
        p[cols] += t * seen.delta
        points.append(ev.point(p))
    ev.prefetch(points)
    for p in points:
        values.append(ev(p))
        nodes.append(p[reads] - x[reads])
    d, e = _stencil(ev, f0, values, nodes, False)
    least = _PROBE_LEAST * 1.25 * h[cols]  # every probe moved every coordinate at least this
    e = e + _leakage(ev, f0, n, least[mine])
    error = _resolution(ev, f0, least / 1.25)
    value = np.zeros((m, n))
    rows = np.flatnonzero(owner >= 0)
    value[rows, owner[rows]] = d[rows]
    error[rows, owner[rows]] = e[rows]
    return value, error


def _resolution(ev: _Counted, f0: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The error (m, n) of a zero derivative found by `_owners` probing with steps ~h.

    The probes moved x_j by at least 1.25 h_j and f_r did not change by an ulp, so
    |d f_r / d x_j| is below about ulp(f_r) / h_j: exact for an elementwise f, but not
    provably, so it is an honest error bar rather than zero.
    """
    return (ev.eps * np.abs(f0) + _QUANTUM)[:, None] / h[None, :]


def _leakage(ev: _Counted, f0: np.ndarray, n: int, probe: np.ndarray) -> np.ndarray:
    """What dependences too weak for the probes could add to a whole-block difference.

    The probes bound random-signed, random-sized sums of f_r's other partial derivatives
    times steps of at least `probe` by an ulp; the block's difference sums the same terms
    with equal signs, which is larger by about sqrt(n) at worst, short of a conspiracy.
    """
    return 2.0 * np.sqrt(max(n - 1, 0)) * (ev.eps * np.abs(f0) + _QUANTUM) / probe


def _first_block(
    ev: _Counted,
    x: np.ndarray,
    f0: np.ndarray,
    cols: np.ndarray,
    h: np.ndarray,
    owner: np.ndarray | None,
    central: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The first estimate (m, len(cols)) and its error for one block of coordinates."""
    m, n = f0.size, cols.size
    if owner is None:

        def moved(c: int, node: float) -> np.ndarray:
            p = x.copy()
            p[c] += node * h[c]
            return ev.point(p)

        ev.prefetch([moved(c, node) for c in cols for node in _FIRST_NODES])
        values = [np.empty((m, n)) for _ in _FIRST_NODES]
        nodes = [np.empty(n) for _ in _FIRST_NODES]
        for j, c in enumerate(cols):
            for t, node in enumerate(_FIRST_NODES):
                p = moved(c, node)
                values[t][:, j] = ev(p)
                nodes[t][j] = p[c] - x[c]
        return _stencil(ev, f0[:, None], values, nodes, central)
    # One perturbation of the whole block: output element r sees only coordinate owner[r].
    points = []
    for t in _FIRST_NODES:
        p = x.copy()
        p[cols] += t * h[cols]
        points.append(ev.point(p))
    ev.prefetch(points)
    values = [ev(p) for p in points]
    nodes = [p[cols] - x[cols] for p in points]
    mine = np.maximum(owner, 0)
    d, e = _stencil(ev, f0, values, [z[mine] for z in nodes], central)
    e = e + _leakage(ev, f0, n, h[cols][mine] * 1.25)
    error = _resolution(ev, f0, h[cols])
    value = np.zeros((m, n))
    rows = np.flatnonzero(owner >= 0)
    value[rows, owner[rows]] = d[rows]
    error[rows, owner[rows]] = e[rows]
    return value, error


def _first_directions(
    ev: _Counted, x: np.ndarray, f0: np.ndarray, dirs: np.ndarray, steps: np.ndarray, central: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First estimates (m, d) along the rows of dirs, their errors and realised directions."""
    d, m = dirs.shape[0], f0.size
    value, error = np.empty((m, d)), np.empty((m, d))
    realised = np.empty_like(dirs)
    ev.prefetch(
        [ev.point(x + node * t * dirs[i]) for i, t in enumerate(steps) for node in _FIRST_NODES]
    )
    for i, t in enumerate(steps):
        values, offsets = [], []
        for node in _FIRST_NODES:
            p = ev.point(x + node * t * dirs[i])
            values.append(ev(p))
            offsets.append(p - x)
        nodes = [np.array(node * t) for node in _FIRST_NODES]
        value[:, i], error[:, i] = _stencil(ev, f0, values, nodes, central)
        stencil = [-t, 0.0, t] if central else [-t, 0.0, t, 2 * t]
        weights = _derivative_weights([np.float64(z) for z in stencil])
        offsets = [offsets[0], np.zeros_like(x), offsets[1], offsets[2]]
        realised[i] = sum(w * o for w, o in zip(weights, offsets, strict=False))
    return value, error, realised


def _ladder_floor(ev: _Counted, f0: np.ndarray, top: np.ndarray) -> np.ndarray:
    """A lower bound (m, d) on the error Richardson reports along directions whose largest
    step is at most top (d,).

    Every ladder error includes, at extrapolation level 1 or more, twice the rounding floor
    2 eps |f| / h of its rung, and no rung is longer than the top one: 4 eps |f0| / top.
    The verdict cannot judge an element more finely than this, whatever the reference.
    """
    return 0.9 * (4.0 * ev.eps * np.abs(f0))[:, None] / top[None, :]


def _wide_owners(
    ev: _Counted, x: np.ndarray, f0: np.ndarray, lo: int, hi: int, owner: np.ndarray
) -> bool:
    """Does the block show the same structure when probed with steps up to the ladder's?

    The first probes move x by ~1e-5: a dependence too weak to change f by an ulp there
    (1e-4 under an offset of 1e8) passes unseen, and the ladder walks steps up to
    max(|x|, 1) / 2.  A step outside f's domain only changes the outputs that read the
    coordinate moved (NaN is a change), so it does not spoil the probe.
    """
    cols = np.arange(lo, hi)
    steps = np.zeros_like(x)
    steps[cols] = _HI_FACTOR * np.maximum(np.abs(x[cols]), 1.0) / 1.75  # probes: 1.25-1.75 x
    again = _owners(ev, x, f0, cols, steps).owner
    return again is not None and np.array_equal(again, owner)


def _widen_zeros(
    ev: _Counted,
    x: np.ndarray,
    f0: np.ndarray,
    blocks: list[tuple[int, int]],
    owners: list[np.ndarray | None],
    need: np.ndarray,
    error: np.ndarray,
) -> list[bool]:
    """Sharpen undecided structural zeros where wide probes confirm the structure.

    A zero found with steps ~1e-5 is only known to an ulp of f over 1e-5 (1e-3 under an
    offset of 1e8); confirmed with steps up to the ladder's top, it is known as well as any
    ladder could tell, for 2 log2(n) evaluations instead of a ladder per column.  Returns,
    per block, whether the wide probes confirmed it (blocks not probed: False).
    """
    confirmed = []
    for (lo, hi), owner in zip(blocks, owners, strict=True):
        confirmed.append(False)
        if owner is None:
            continue
        block = need[:, lo:hi].copy()
        rows = np.flatnonzero(owner >= 0)
        block[rows, owner[rows]] = False
        if not np.any(block) or not _wide_owners(ev, x, f0, lo, hi, owner):
            continue
        confirmed[-1] = True
        sharp = _resolution(ev, f0, _HI_FACTOR * np.maximum(np.abs(x[lo:hi]), 1.0) / 1.75)
        sharp[rows, owner[rows]] = np.inf
        error[:, lo:hi] = np.minimum(error[:, lo:hi], sharp)
    return confirmed


def _refine_blocks(
    ev: _Counted,
    x: np.ndarray,
    f0: np.ndarray,
    blocks: list[tuple[int, int]],
    owners: list[np.ndarray | None],
    confirmed: list[bool],
    need: np.ndarray,
    value: np.ndarray,
    error: np.ndarray,
) -> str | None:
    """Richardson for the undecided elements of independent blocks, one ladder per block.

    Each coordinate of the block walks its own ladder (scaled like `_ladder`'s per
    coordinate) in the same evaluations, which needs the structure to hold at the ladder's
    steps: confirmed by wide probes first.  Fills value and error in place and clears need
    where the ladder gave finite numbers; the rest is left to one column at a time.
    """
    method = None
    for (lo, hi), owner, wide in zip(blocks, owners, confirmed, strict=True):
        if owner is None:
            continue
        rows = np.flatnonzero(owner >= 0)
        rows = rows[need[rows, lo + owner[rows]]]
        if not rows.size or not (wide or _wide_owners(ev, x, f0, lo, hi, owner)):
            continue
        scale = np.zeros((1, x.size))
        scale[0, lo:hi] = _HI_FACTOR * np.maximum(np.abs(x[lo:hi]), 1.0)
        mapped = np.where(owner >= 0, lo + owner, -1)
        rv, re, _, _ = _richardson(ev, x, f0, scale, owner=mapped)
        cols = lo + owner[rows]
        wide = 1.25 * scale[0, cols] / 1.75  # the wide probes' smallest steps
        re[rows, 0] += _leakage(ev, f0[rows], hi - lo, wide)
        done = np.isfinite(rv[rows, 0]) & np.isfinite(re[rows, 0])
        rows, cols = rows[done], cols[done]
        value[rows, cols], error[rows, cols] = rv[rows, 0], re[rows, 0]
        need[rows, cols] = False
        method = "richardson"
    return method


def staged_jacobian(
    f: Callable,
    x: np.ndarray | float,
    undecided: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    *,
    blocks: list[tuple[int, int]] | None = None,
    detect: list[bool] | None = None,
    dtype: type | np.dtype | None = None,
    step: float | None = None,
    batched: Batched = None,
    f0: np.ndarray | None = None,
) -> NumericResult:
    """Jacobian (m, n) by a cheap first estimate, refined by Richardson only where needed.

    undecided(value, error, floor) -> bool (m, n): the elements whose verdict the first
    estimate cannot settle; they are recomputed on the Richardson ladder (see `jacobian`;
    one ladder for an independent block, else one per column) and take the refined
    numbers.  floor: a lower bound on the error any refined estimate will report (errors
    passed are at least that).  blocks: (start, stop) column ranges
    (gradcheck's inputs) searched for independence structure where detect[k] is true.
    step: PyTorch's fixed central difference with that step, never refined.
    batched: f over a stack of points, (P, n) -> (P, m): each stage's points are evaluated
    in a few calls of it (the numbers are f's, so nothing else changes; result.calls).
    f0: f(x) when the caller has it already (one evaluation fewer).
    """
    with _started(f, x, dtype, f0, batched) as (ev, xv, f0):
        n = xv.size
        blocks = [(0, n)] if blocks is None else blocks
        detect = [True] * len(blocks) if detect is None else detect
        h = _first_step(xv, ev.dtype) if step is None else np.full(n, float(step))
        value, error = np.empty((f0.size, n)), np.empty((f0.size, n))
        owners = []
        for (lo, hi), look in zip(blocks, detect, strict=True):
            cols = np.arange(lo, hi)
            if not (look and cols.size > 1):
                owners.append(None)
            elif step is None:  # the probes' own evaluations make the first estimate
                seen = _owners(ev, xv, f0, cols, h, _PROBE_NODES)
                owners.append(seen.owner)
                if seen.owner is not None:
                    value[:, lo:hi], error[:, lo:hi] = _first_probed(ev, xv, f0, cols, h, seen)
                    continue
            else:  # PyTorch's central difference, on nodes exactly -step and step
                owners.append(_owners(ev, xv, f0, cols, h).owner)
            value[:, lo:hi], error[:, lo:hi] = _first_block(
                ev, xv, f0, cols, h, owners[-1], step is not None
            )
        if step is not None:
            return NumericResult(value, error, ev.count, "central", h, ev.calls)
        # The top of any ladder the refinement could walk (per column or per block).
        floor = _ladder_floor(ev, f0, _HI_FACTOR * np.maximum(np.abs(xv), 1.0))
        error = np.maximum(error, floor)
        need = np.asarray(undecided(value, error, floor), dtype=bool)
        method = "first estimate"
        if np.any(need):
            # A second look at _RETRY times the step, three evaluations per undecided column (or
            # block): it divides f's rounding noise (a sum of many terms, a large offset) by
            # _RETRY, and decides where the first estimate's truncation error was tiny.
            wide = np.empty_like(value), np.empty_like(error)
            for (lo, hi), owner in zip(blocks, owners, strict=True):
                cols = np.arange(lo, hi)
                if owner is None:
                    cols = cols[np.any(need[:, lo:hi], axis=0)]
                elif not np.any(need[:, lo:hi]):
                    continue
                if cols.size:
                    wide[0][:, cols], wide[1][:, cols] = _first_block(
                        ev, xv, f0, cols, _RETRY * h, owner, False
                    )
            value = np.where(need, wide[0], value)
            error = np.where(need, wide[1], error)
            confirmed = _widen_zeros(ev, xv, f0, blocks, owners, need, error)
            error = np.maximum(error, floor)
            need &= np.asarray(undecided(value, error, floor), dtype=bool)
            method = _refine_blocks(ev, xv, f0, blocks, owners, confirmed, need, value, error)
            method = method or "first estimate"
        cols = np.flatnonzero(np.any(need, axis=0))
        if cols.size:
            rv, re, rs, methods = _richardson(ev, xv, f0, np.eye(n)[cols])
            sub = need[:, cols]
            value[:, cols] = np.where(sub, rv, value[:, cols])
            error[:, cols] = np.where(sub, re, error[:, cols])
            h = h.copy()
            h[cols] = rs
            method = "one-sided" if "one-sided" in methods else "richardson"
        return NumericResult(value, error, ev.count, method, h, ev.calls)


def _direction_steps(x: np.ndarray, dirs: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The first step along each row of dirs: the largest power of two by which no
    coordinate moves further than its own first step."""
    own = _first_step(x, dtype)
    moved = [np.flatnonzero(row) for row in dirs]
    steps = np.array(
        [np.min(own[nz] / np.abs(row[nz])) for row, nz in zip(dirs, moved, strict=True)]
    )
    return 2.0 ** np.floor(np.log2(steps))


def cross_check_directions(
    f: Callable,
    x: np.ndarray | float,
    dirs: np.ndarray,
    *,
    dtype: type | np.dtype | None = None,
    f0: np.ndarray | None = None,
) -> tuple[NumericResult, np.ndarray]:
    """`cross_check` along the rows of dirs: first estimates (m, d) at 1/64 of the first
    step of `staged_directional`, and the directions floating point realised."""
    with _started(f, x, dtype, f0) as (ev, xv, f0):
        dirs = np.asarray(dirs, dtype=np.float64)
        steps = _direction_steps(xv, dirs, ev.dtype) * _CROSS
        value, error, realised = _first_directions(ev, xv, f0, dirs, steps, False)
        return NumericResult(value, error, ev.count, "first estimate", steps, ev.calls), realised


def cross_check(
    f: Callable,
    x: np.ndarray | float,
    cols: np.ndarray,
    *,
    dtype: type | np.dtype | None = None,
    f0: np.ndarray | None = None,
    fraction: float = _CROSS,
) -> NumericResult:
    """First estimates (m, len(cols)) of columns cols at `fraction` (1/64) of their first step.

    A first estimate samples f at a few points ~1e-5 apart: f varying faster than that (sin
    of 1e5 x) aliases into numbers that can look smooth, with a small error estimate, and be
    wrong.  Before a verdict rests on a first estimate alone, the same estimate 64 times
    finer must agree with it within their error estimates (the aliased samples of two
    steps almost never agree; a feature below 1/64 of the step is beyond the ladder's
    smallest rungs too).
    """
    with _started(f, x, dtype, f0) as (ev, xv, f0):
        cols = np.asarray(cols, dtype=np.int64)
        h = _first_step(xv, ev.dtype) * fraction
        value, error = _first_block(ev, xv, f0, cols, h, None, False)
        return NumericResult(value, error, ev.count, "first estimate", h[cols], ev.calls)


def staged_directional(
    f: Callable,
    x: np.ndarray | float,
    dirs: np.ndarray,
    undecided: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    *,
    dtype: type | np.dtype | None = None,
    step: float | None = None,
    batched: Batched = None,
    f0: np.ndarray | None = None,
) -> tuple[NumericResult, np.ndarray]:
    """Derivatives (m, d) along the rows of dirs, first estimates refined where needed.

    Returns the result and the directions (d, n) the numbers are derivatives along: for a
    first estimate the direction floating point realised (the stencil's weights applied to
    the offsets x + t h v actually reached, so no rounding of x + t h v is lost), for a
    refined one dirs itself.  undecided(value, error, floor, realised) -> bool (d,), floor
    as in `staged_jacobian`, and so are batched and f0.
    """
    with _started(f, x, dtype, f0, batched) as (ev, xv, f0):
        dirs = np.asarray(dirs, dtype=np.float64)
        if step is None:
            steps = _direction_steps(xv, dirs, ev.dtype)
        else:
            steps = np.full(dirs.shape[0], float(step))
        value, error, realised = _first_directions(ev, xv, f0, dirs, steps, step is not None)
        if step is not None:
            return NumericResult(value, error, ev.count, "central", steps, ev.calls), realised
        top = np.array([_ladder(xv, row[None, :], ev.dtype)[0, 0] for row in dirs])
        floor = _ladder_floor(ev, f0, top)
        error = np.maximum(error, floor)
        need = np.asarray(undecided(value, error, floor, realised), dtype=bool)
        if np.any(need):
            # The second look at _RETRY times the step, as in staged_jacobian.
            retry = np.flatnonzero(need)
            wide = _first_directions(ev, xv, f0, dirs[retry], _RETRY * steps[retry], False)
            value[:, retry], error[:, retry], realised[retry] = wide
            error = np.maximum(error, floor)
            steps[retry] *= _RETRY
            need[retry] = np.asarray(undecided(value, error, floor, realised), dtype=bool)[retry]
        need = np.flatnonzero(need)
        method = "first estimate"
        if need.size:
            rv, re, rs, methods = _richardson(ev, xv, f0, dirs[need])
            value[:, need], error[:, need], steps[need] = rv, re, rs
            realised[need] = dirs[need]
            method = "one-sided" if "one-sided" in methods else "richardson"
        return NumericResult(value, error, ev.count, method, steps, ev.calls), realised


# ------------------------------------------------------------------------------ public


def _prepare(x: np.ndarray | float) -> np.ndarray:
    return np.array(x, dtype=np.float64).reshape(-1)


def _derivatives(
    f: Callable,
    x: np.ndarray,
    dirs: np.ndarray,
    method: str,
    complex_safe: bool | None,
    domain: Domain,
    dtype: type | np.dtype | None = None,
    step: float | None = None,
) -> NumericResult:
    """Derivatives of f along each row of dirs, as a (m, d) result."""
    ev = _Counted(f, domain, dtype=np.float64 if dtype is None else dtype)
    x = ev.point(x)
    f0 = ev(x)
    if step is not None:
        method = "central"
    # The complex step needs complex128 arithmetic, so only for functions working in float64.
    complex_ok = ev.dtype == np.float64 and complex_safe is not False
    if method in ("auto", "complex-step") and complex_ok:
        try:
            with np.errstate(all="ignore"):
                value, error = _complex_step(f, x, dirs)
            if complex_safe is None:
                extra = _complex_probe(f, x, f0, value, domain)
            else:
                extra = 0
            if np.all(np.isfinite(value)):
                step = _CS_STEPS[0] * np.ones(dirs.shape[0])
                count = ev.count + 2 * dirs.shape[0] + extra
                return NumericResult(value, error, count, "complex-step", step)
        except Exception:
            # Whatever goes wrong with a complex input means "not complex-safe", unless the
            # caller insisted on the complex step.
            if method == "complex-step" or complex_safe:
                raise
    if method == "central":
        value, error, steps = _central(ev, x, dirs, step)
        return NumericResult(value, error, ev.count, "central", steps)
    if method not in ("auto", "richardson", "complex-step"):
        raise ValueError(f"unknown method {method!r}")
    value, error, steps, methods = _richardson(ev, x, f0, dirs)
    name = "richardson" if all(m == "richardson" for m in methods) else "one-sided"
    return NumericResult(value, error, ev.count, name, steps)


def jacobian(
    f: Callable,
    x: np.ndarray | float,
    *,
    method: str = "auto",
    complex_safe: bool | None = None,
    domain: Domain = None,
    dtype: type | np.dtype | None = None,
    step: float | None = None,
) -> NumericResult:
    """Jacobian (m, n) of f: R^n -> R^m at x, with an error estimate per element.

    dtype: the precision f computes in (points are rounded to it); step: force central
    differences with this absolute step (PyTorch's eps).
    """
    xv = _prepare(x)
    return _derivatives(f, xv, np.eye(xv.size), method, complex_safe, domain, dtype, step)


def gradient(
    f: Callable,
    x: np.ndarray | float,
    *,
    method: str = "auto",
    complex_safe: bool | None = None,
    domain: Domain = None,
    dtype: type | np.dtype | None = None,
    step: float | None = None,
) -> NumericResult:
    """Gradient (n,) of a scalar function f at x, with an error estimate per element."""
    res = jacobian(
        f, x, method=method, complex_safe=complex_safe, domain=domain, dtype=dtype, step=step
    )
    if res.value.shape[0] != 1:
        raise ValueError(f"gradient needs a scalar function, got {res.value.shape[0]} outputs")
    return NumericResult(res.value[0], res.error[0], res.evaluations, res.method, res.step)


def directional(
    f: Callable,
    x: np.ndarray | float,
    v: np.ndarray,
    *,
    method: str = "auto",
    complex_safe: bool | None = None,
    domain: Domain = None,
    dtype: type | np.dtype | None = None,
    step: float | None = None,
) -> NumericResult:
    """Directional derivative J(x) @ v, shape (m,), of f: R^n -> R^m."""
    xv = _prepare(x)
    dirs = np.asarray(v, dtype=np.float64).reshape(1, -1)
    res = _derivatives(f, xv, dirs, method, complex_safe, domain, dtype, step)
    return NumericResult(res.value[:, 0], res.error[:, 0], res.evaluations, res.method, res.step)


def hessian(
    f: Callable, x: np.ndarray | float, *, method: str = "auto", domain: Domain = None
) -> NumericResult:
    """Hessian (n, n) of a scalar f at x by extrapolated second differences."""
    xv = _prepare(x)
    n = xv.size
    ev = _Counted(f, domain)
    f0 = ev(xv)
    if f0.size != 1:
        raise ValueError(f"hessian needs a scalar function, got {f0.size} outputs")
    eye = np.eye(n)
    t = _ladder(xv, eye)
    if method == "central":
        t = (_EPS**0.25 * np.maximum(1.0, np.abs(xv)))[None, :]
    elif method not in ("auto", "richardson"):
        raise ValueError(f"unknown method {method!r}")
    k_rows = t.shape[0]
    real = np.empty((k_rows, n))
    plus = np.empty((k_rows, n))
    minus = np.empty((k_rows, n))
    for i in range(n):
        for k in range(k_rows):
            xp, xm = xv.copy(), xv.copy()
            xp[i] += t[k, i]
            xm[i] -= t[k, i]
            real[k, i] = (xp[i] - xm[i]) / 2
            plus[k, i] = ev(xp)[0]
            minus[k, i] = ev(xm)[0]
    value = np.zeros((n, n))
    error = np.zeros((n, n))
    step = real[-1].copy()
    fscale = np.maximum(np.maximum(np.abs(plus), np.abs(minus)), abs(f0[0]))
    diag = (plus - 2 * f0[0] + minus) / real**2
    noise = (4.0 * _EPS * fscale + _QUANTUM) / real**2
    if k_rows > 2:
        tables = _neville(diag[..., None], real, 2, min(_LEVELS, k_rows - 2))
        val, err, _ = _select(tables, noise[..., None])
        value[np.diag_indices(n)], error[np.diag_indices(n)] = val[:, 0], err[:, 0]
    else:
        value[np.diag_indices(n)], error[np.diag_indices(n)] = diag[0], noise[0]
    for i in range(n):
        for j in range(i + 1, n):
            quads = np.empty((k_rows, 1, 1))
            nz = np.empty((k_rows, 1, 1))
            for k in range(k_rows):
                hi, hj = real[k, i], real[k, j]
                vals = []
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    xs = xv.copy()
                    xs[i] += si * hi
                    xs[j] += sj * hj
                    vals.append(ev(xs)[0])
                quads[k] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * hi * hj)
                nz[k] = 4.0 * _EPS * max(max(abs(v) for v in vals), abs(f0[0])) / (hi * hj)
            if k_rows > 2:
                hij = np.sqrt(real[:, i] * real[:, j])[:, None]
                tables = _neville(quads, hij, 2, min(_LEVELS, k_rows - 2))
                val, err, _ = _select(tables, nz)
                value[i, j] = value[j, i] = val[0, 0]
                error[i, j] = error[j, i] = err[0, 0]
            else:
                value[i, j] = value[j, i] = quads[0, 0, 0]
                error[i, j] = error[j, i] = nz[0, 0, 0]
    name = "richardson" if k_rows > 2 else "central"
    return NumericResult(value, error, ev.count, name, step)


def scan_steps(
    f: Callable, x: np.ndarray | float, index: int, steps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference estimates of df/dx[index] over a range of steps (the V-plot)."""
    xv = _prepare(x)
    if steps is None:
        steps = np.logspace(-15, 0, 61) * max(1.0, abs(float(xv[index])))
    steps = np.asarray(steps, dtype=np.float64)
    ev = _Counted(f, None)
    real = np.empty_like(steps)
    est = np.empty_like(steps)
    for k, h in enumerate(steps):
        xp, xm = xv.copy(), xv.copy()
        xp[index] += h
        xm[index] -= h
        real[k] = (xp[index] - xm[index]) / 2
        with np.errstate(all="ignore"):
            est[k] = float(np.sum(ev(xp) - ev(xm))) / (2 * real[k]) if real[k] else np.nan
    return real, est


def compare(
    analytic: np.ndarray,
    numeric: np.ndarray,
    error: np.ndarray,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    error_factor: float = 4.0,
    scale: float | None = None,
) -> Comparison:
    """The verdict rule: mismatch where |a - n| > error_factor*error + atol*S + rtol*|n|.

    S is the scale of the whole Jacobian, max(|a|, |n|) over all its elements (or `scale`),
    so atol is relative: a wrong gradient of size 1e-9 is still caught, and a correct one of
    size 1e8 still passes.  `error` is the numeric error estimate, so an imprecise reference
    widens the bound instead of crying wolf.  Non-finite values mismatch unless both agree.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(n)
    if scale is None:
        both = np.concatenate([np.abs(a[finite]).ravel(), np.abs(n[finite]).ravel(), [0.0]])
        scale = float(np.max(both))
    with np.errstate(invalid="ignore"):
        bound = error_factor * np.where(np.isfinite(e), e, np.inf) + atol * scale + rtol * np.abs(n)
        diff = np.abs(a - n)
        mismatch = np.where(finite, diff > bound, ~((a == n) | (np.isnan(a) & np.isnan(n))))
    return Comparison(ok=not bool(np.any(mismatch)), mismatch=mismatch, bound=bound, scale=scale)
