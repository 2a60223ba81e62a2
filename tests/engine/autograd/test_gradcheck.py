"""gradcheck / gradgradcheck on a catalogue of custom Functions, correct and deliberately wrong.

The catalogue is written against PyTorch's names only (`make_catalogue(lib)` works for
`engine` and for `torch`), so benchmarks/bench_gradcheck.py runs the same cases through
both checkers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.autograd import GradcheckError, gradcheck, gradgradcheck


@dataclass(frozen=True)
class Case:
    """One catalogue entry: build(dtype) -> (func, inputs)."""

    name: str
    wrong: bool
    build: Callable[[Any], tuple[Callable, tuple]]
    second_order: bool = False  # judged by gradgradcheck instead of gradcheck


def make_catalogue(lib: ModuleType) -> list[Case]:
    """Custom Functions with correct and deliberately wrong backwards, for `lib`."""
    Function = lib.autograd.Function

    def inputs(
        dtype: Any, *shapes: tuple[int, ...], low: float = -2.0, high: float = 2.0, seed: int = 0
    ) -> tuple:
        rng = np.random.default_rng(seed)
        out = []
        for shape in shapes:
            values = rng.uniform(low, high, size=shape)
            out.append(lib.tensor(values, dtype=dtype, requires_grad=True))
        return tuple(out)

    def unary(
        name: str,
        wrong: bool,
        forward: Callable,
        backward: Callable,
        *,
        shape=(5,),
        low: float = -2.0,
        high: float = 2.0,
        second_order: bool = False,
    ) -> Case:
        """A one-input Function: forward(x) and backward(x, g) in differentiable ops."""

        class Op(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return forward(x)

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return backward(x, g)

        def build(dtype: Any) -> tuple[Callable, tuple]:
            return Op.apply, inputs(dtype, shape, low=low, high=high)

        return Case(name, wrong, build, second_order)

    def matmul(name: str, wrong: bool, transpose_bug: bool) -> Case:
        class MatMul(Function):
            @staticmethod
            def forward(ctx, a, b):
                ctx.save_for_backward(a, b)
                return a @ b

            @staticmethod
            def backward(ctx, g):
                a, b = ctx.saved_tensors
                if transpose_bug:
                    return g @ b, a.T @ g
                return g @ b.T, a.T @ g

        def build(dtype: Any) -> tuple[Callable, tuple]:
            return MatMul.apply, inputs(dtype, (3, 3), (3, 3))

        return Case(name, wrong, build)

    def broadcast(name: str, wrong: bool) -> Case:
        class AddBias(Function):
            @staticmethod
            def forward(ctx, x, b):
                return x + b

            @staticmethod
            def backward(ctx, g):
                # The bias was broadcast over dim 0: its gradient sums over it.
                return g, (g[0] if wrong else g.sum(0))

        def build(dtype: Any) -> tuple[Callable, tuple]:
            return AddBias.apply, inputs(dtype, (4, 3), (3,))

        return Case(name, wrong, build)

    def one_element(dtype_mask: Callable) -> Case:
        class Square(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * g * x * dtype_mask(x)

        def build(dtype: Any) -> tuple[Callable, tuple]:
            return Square.apply, inputs(dtype, (6,))

        return Case("one element 1% off", True, build)

    def mask(x: Any) -> Any:
        m = np.ones(tuple(x.shape))
        m[3] = 1.01
        return lib.tensor(m, dtype=x.dtype)

    sig = lib.sigmoid
    return [
        # correct backwards
        unary("square", False, lambda x: x * x, lambda x, g: 2 * g * x),
        unary(
            "sin*exp",
            False,
            lambda x: lib.sin(x) * lib.exp(x),
            lambda x, g: g * (lib.cos(x) + lib.sin(x)) * lib.exp(x),
        ),
        unary("softplus", False, lambda x: lib.log(1 + lib.exp(x)), lambda x, g: g * sig(x)),
        unary("x|x|", False, lambda x: x * lib.abs(x), lambda x, g: 2 * g * lib.abs(x)),
        unary("sin(x^2)", False, lambda x: lib.sin(x * x), lambda x, g: g * lib.cos(x * x) * 2 * x),
        unary("tiny scale 1e-8 x^3", False, lambda x: 1e-8 * x**3, lambda x, g: 3e-8 * g * x**2),
        unary("log at 1e8", False, lambda x: lib.log(x), lambda x, g: g / x, low=0.5e8, high=2e8),
        unary("offset 1e8 + sin", False, lambda x: 1e8 + lib.sin(x), lambda x, g: g * lib.cos(x)),
        unary(
            "x log x at 1e8",
            False,
            lambda x: x * lib.log(x),
            lambda x, g: g * (lib.log(x) + 1),
            low=0.5e8,
            high=2e8,
        ),
        unary(
            "sqrt at 1e-6",
            False,
            lambda x: lib.sqrt(x),
            lambda x, g: g / (2 * lib.sqrt(x)),
            low=0.5e-6,
            high=2e-6,
        ),
        unary(
            "x^3 (2nd order)", False, lambda x: x**3, lambda x, g: 3 * g * x * x, second_order=True
        ),
        matmul("matmul", False, transpose_bug=False),
        broadcast("broadcast add", False),
        # wrong backwards
        unary("sign flip", True, lambda x: x * x, lambda x, g: -2 * g * x),
        unary("factor 2", True, lambda x: lib.sin(x), lambda x, g: 2 * g * lib.cos(x)),
        unary("factor 1.0001", True, lambda x: lib.exp(x), lambda x, g: 1.0001 * g * lib.exp(x)),
        matmul("transposed matmul", True, transpose_bug=True),
        broadcast("missing broadcast reduction", True),
        one_element(mask),
        unary("wrong for x<0 only", True, lambda x: x * lib.abs(x), lambda x, g: 2 * g * x),
        unary(
            "forgotten chain factor",
            True,
            lambda x: lib.sin(x * x),
            lambda x, g: g * lib.cos(x * x),
        ),
        unary("tiny scale, factor 2", True, lambda x: 1e-8 * x**3, lambda x, g: 6e-8 * g * x**2),
        unary(
            "log at 1e8, factor 1.01",
            True,
            lambda x: lib.log(x),
            lambda x, g: 1.01 * g / x,
            low=0.5e8,
            high=2e8,
        ),
        unary(
            "wrong 2nd derivative",
            True,
            lambda x: x**3,
            lambda x, g: 3 * g * x.detach() * x.detach(),
            second_order=True,
        ),
    ]


def run_case(
    gradcheck_fn: Callable, gradgradcheck_fn: Callable, case: Case, dtype: Any, **kwargs: Any
) -> bool:
    """True when the checker passes the case (no exception, raise_exception=False)."""
    func, args = case.build(dtype)
    fn = gradgradcheck_fn if case.second_order else gradcheck_fn
    return bool(fn(func, args, raise_exception=False, **kwargs))


CATALOGUE = make_catalogue(engine)
DTYPES = {"float64": engine.float64, "float32": engine.float32}


@pytest.mark.parametrize("dtype", DTYPES, ids=list(DTYPES))
@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_catalogue(case: Case, dtype: str, fast_mode: bool):
    passed = run_case(gradcheck, gradgradcheck, case, DTYPES[dtype], fast_mode=fast_mode)
    assert passed == (not case.wrong)


def _looped(func: Callable, args: tuple) -> tuple[Callable, list[int]]:
    """func made batched by a loop over the stack (what batched=True promises), counted."""
    shapes = [tuple(a.shape) for a in args]
    calls = [0]

    def batched(*xs: Any) -> Any:
        calls[0] += 1
        stacked = [tuple(x.shape) != s for x, s in zip(xs, shapes, strict=True)]
        if not any(stacked):
            return func(*xs)
        count = next(x.shape[0] for x, st in zip(xs, stacked, strict=True) if st)
        rows = [
            func(*[x[p] if st else x for x, st in zip(xs, stacked, strict=True)])
            for p in range(count)
        ]
        if isinstance(rows[0], tuple):
            return tuple(engine.stack([r[k] for r in rows]) for k in range(len(rows[0])))
        return engine.stack(rows)

    return batched, calls


FIRST_ORDER = [c for c in CATALOGUE if not c.second_order]


@pytest.mark.parametrize("dtype", DTYPES, ids=list(DTYPES))
@pytest.mark.parametrize("case", FIRST_ORDER, ids=[c.name for c in FIRST_ORDER])
@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_batched_evaluations_give_the_same_verdicts_in_fewer_calls(
    case: Case, dtype: str, fast_mode: bool
):
    func, args = case.build(DTYPES[dtype])
    verdicts, calls = [], []
    for batched in (False, True):
        counted, count = _looped(func, args)
        verdicts.append(
            gradcheck(counted, args, batched=batched, fast_mode=fast_mode, raise_exception=False)
        )
        calls.append(count[0])
    assert verdicts[0] == verdicts[1] == (not case.wrong)
    assert calls[1] < calls[0]


def test_batched_needs_a_function_that_batches():
    rng = np.random.default_rng(4)
    W = engine.tensor(rng.standard_normal((3, 4)), dtype=engine.float64)
    x = engine.tensor(rng.uniform(-1, 1, 4), dtype=engine.float64, requires_grad=True)
    with pytest.raises(ValueError, match="batched=True, but func failed on a stack"):
        gradcheck(lambda a: W @ a, (x,), batched=True)  # (3, 4) @ (2, 4)
    with pytest.raises(ValueError, match="batched=True, but func's outputs for a stack"):
        gradcheck(lambda a: a * a.sum(), (x,), batched=True)  # mixes the stack's rows
    with pytest.raises(ValueError, match="not a leading dimension of 2"):
        gradcheck(lambda a: (a * a).sum(), (x,), batched=True)
    assert gradcheck(lambda a: engine.tanh(a @ W.T), (x,), batched=True)


def _failure(func: Callable, args: tuple, **kwargs: Any) -> str:
    with pytest.raises(GradcheckError) as info:
        gradcheck(func, args, **kwargs)
    return str(info.value)


def _case(name: str) -> Case:
    return next(c for c in CATALOGUE if c.name == name)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("sign flip", "sign flipped"),
        ("factor 2", "a factor of 2"),
        ("factor 1.0001", "times 1.0001"),
        ("one element 1% off", "only one element"),
        ("wrong for x<0 only", "negative"),
        ("transposed matmul", "input 0"),
    ],
)
def test_failure_message_names_pair_elements_and_hint(name: str, pattern: str):
    func, args = _case(name).build(engine.float64)
    message = _failure(func, args)
    assert "Jacobian mismatch for output 0 with respect to input" in message
    assert "analytic" in message and "numeric" in message and "estimate" in message
    assert pattern in message


def test_transposed_jacobian_hint():
    W = np.arange(9.0).reshape(3, 3) + np.eye(3)

    class Linear(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x @ engine.tensor(W.T, dtype=x.dtype)

        @staticmethod
        def backward(ctx, g):
            return g @ engine.tensor(W.T, dtype=g.dtype)  # should be g @ W

    x = engine.tensor([0.1, 0.2, 0.3], dtype=engine.float64, requires_grad=True)
    assert "transposed" in _failure(Linear.apply, (x,))


@pytest.mark.parametrize("fast_mode", [False, True])
def test_the_error_carries_the_mismatch_as_data_matching_its_message(fast_mode: bool):
    func, args = _case("factor 2").build(engine.float64)
    with pytest.raises(GradcheckError) as info:
        gradcheck(func, args, fast_mode=fast_mode)
    mismatch = info.value.mismatch
    assert mismatch is not None
    assert "\n".join(mismatch.lines()) in str(info.value)  # the message is made from it
    assert 0 < len(mismatch.worst) <= mismatch.differing <= mismatch.size
    for worst in mismatch.worst:
        assert worst.analytic == pytest.approx(2 * worst.numeric, rel=1e-6)
        assert worst.error == pytest.approx(abs(worst.analytic - worst.numeric))
        assert 0 <= worst.estimate < worst.error
    assert mismatch.projected or "a factor of 2" in mismatch.hint
    # Other failures carry no table.

    class Broken(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")

    with pytest.raises(GradcheckError, match="boom") as info:
        gradcheck(Broken.apply, args)
    assert info.value.mismatch is None


def test_gradgradcheck_keeps_the_mismatch_data():
    class DoubleWrong(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x.detach()  # the second derivative loses a factor of 2

    x = engine.tensor([0.5, -1.0, 2.0], dtype=engine.float64, requires_grad=True)
    gradcheck(DoubleWrong.apply, (x,))
    with pytest.raises(GradcheckError) as info:
        gradgradcheck(DoubleWrong.apply, (x,))
    mismatch = info.value.mismatch
    assert mismatch is not None and "\n".join(mismatch.lines()) in str(info.value)
    assert str(info.value).startswith("gradgradcheck: ")
    assert info.value.__suppress_context__  # one message, not two tracebacks


def test_wrong_shaped_gradient_is_a_failed_check_not_a_crash():
    class Flat(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return (g * 2).reshape(-1)[:5]

    x = engine.tensor(np.ones((2, 3)), dtype=engine.float64, requires_grad=True)
    assert gradcheck(Flat.apply, (x,), raise_exception=False) is False
    assert gradcheck(Flat.apply, (x,), raise_exception=False, fast_mode=True) is False
    message = _failure(Flat.apply, (x,))
    assert "[5]" in message and "[2, 3]" in message


def test_backward_that_raises_is_a_failed_check():
    class Broken(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")

    x = engine.tensor([1.0, 2.0], dtype=engine.float64, requires_grad=True)
    assert gradcheck(Broken.apply, (x,), raise_exception=False) is False
    assert "boom" in _failure(Broken.apply, (x,))
    assert issubclass(GradcheckError, RuntimeError)


def test_nondeterministic_backward_and_nondet_tol():
    rng = np.random.default_rng(1)

    class Noisy(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, g):
            return g * (3 + 1e-9 * float(rng.standard_normal()))

    x = engine.tensor([1.0, 2.0], dtype=engine.float64, requires_grad=True)
    assert "not reentrant" in _failure(Noisy.apply, (x,))
    assert "not reentrant" in _failure(Noisy.apply, (x,), fast_mode=True)
    assert gradcheck(Noisy.apply, (x,), nondet_tol=1e-6)
    assert gradcheck(Noisy.apply, (x,), nondet_tol=1e-6, fast_mode=True)


def test_a_backward_nondeterministic_in_one_row_is_not_reentrant():
    # Only an output gradient that reaches element 2 makes it noisy: the one random
    # cotangent run twice reaches every row at once, as torch's second Jacobian does.
    rng = np.random.default_rng(2)

    class OneRowNoisy(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, g):
            noise = np.zeros(5)
            if g.numpy()[2] != 0:
                noise[2] = 1e-12 * rng.standard_normal()
            return g * 3 + engine.tensor(noise, dtype=engine.float64)

    x = engine.tensor(np.linspace(-1, 1, 5), dtype=engine.float64, requires_grad=True)
    assert "not reentrant" in _failure(OneRowNoisy.apply, (x,))
    assert gradcheck(OneRowNoisy.apply, (x,), nondet_tol=1e-9)


@pytest.mark.parametrize(("nondet_tol", "backwards"), [(0.0, 1 + 5 + 2), (1e-9, 1 + 5 + 5)])
def test_reentrance_costs_two_backward_calls_unless_a_tolerance_needs_the_jacobian_again(
    nondet_tol, backwards
):
    calls = []

    class Scale(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g * 3

    x = engine.tensor(np.linspace(-1, 1, 5), dtype=engine.float64, requires_grad=True)
    assert gradcheck(Scale.apply, (x,), nondet_tol=nondet_tol)
    # zero grad_outputs, one row per output element, then the reentrance check
    assert len(calls) == backwards


def test_nonzero_gradient_for_zero_grad_outputs_is_caught_and_can_be_skipped():
    class Leaky(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, g):
            return g * 3 + 1e-3  # a constant that does not scale with g

    x = engine.tensor([1.0, 2.0], dtype=engine.float64, requires_grad=True)
    assert "zero grad_outputs" in _failure(Leaky.apply, (x,))
    assert "Jacobian mismatch" in _failure(Leaky.apply, (x,), check_undefined_grad=False)


def test_tiny_gradients_are_still_checked_where_torch_swallows_them():
    torch = pytest.importorskip("torch")

    ours = make_catalogue(engine)
    names = ("tiny scale, factor 2", "log at 1e8, factor 1.01")
    for case in (c for c in ours if c.name in names):
        assert not run_case(gradcheck, gradgradcheck, case, engine.float64)
    theirs = {c.name: c for c in make_catalogue(torch)}
    for name in names:
        # torch's absolute atol swallows these: the reason for a scale-relative tolerance.
        assert run_case(
            torch.autograd.gradcheck, torch.autograd.gradgradcheck, theirs[name], torch.float64
        )


def test_float32_inputs_are_differentiated_in_float64():
    # A float32 function with correct backward: no alarm; its reference was built in float64.
    x = engine.tensor(np.linspace(-1, 1, 7), dtype=engine.float32, requires_grad=True)
    assert gradcheck(lambda a: engine.tanh(a * 3) * engine.exp(a), (x,))
    assert gradcheck(lambda a: engine.tanh(a * 3) * engine.exp(a), (x,), fast_mode=True)


def test_outputs_that_do_not_require_grad_and_unused_inputs():
    x = engine.tensor([1.0, 2.0], dtype=engine.float64, requires_grad=True)
    y = engine.tensor([3.0, 4.0], dtype=engine.float64, requires_grad=True)
    # y is unused: its gradient is None, which is right.
    assert gradcheck(lambda a, b: a * a, (x, y))
    # An output cut from the graph although it depends on x: the numeric side sees it.
    assert gradcheck(lambda a: (a * a).detach(), (x,), raise_exception=False) is False


def test_errors_and_unsupported_flags():
    x = engine.tensor([1.0, 2.0], dtype=engine.float64)
    with pytest.raises(ValueError, match="require gradient"):
        gradcheck(lambda a: a * 2, (x,))
    x.requires_grad_(True)
    with pytest.raises(NotImplementedError):
        gradcheck(lambda a: a * 2, (x,), check_forward_ad=True)
    assert gradcheck(lambda a: a * 2, x)  # a single tensor is accepted, as in torch


def test_user_eps_means_a_fixed_central_step():
    x = engine.tensor([0.5, 1.5], dtype=engine.float64, requires_grad=True)
    assert gradcheck(lambda a: engine.sin(a), (x,), eps=1e-4)


def _scaled_backward(forward: Callable, derivative: Callable, m: np.ndarray) -> Callable:
    """A Function forward(x) whose backward is right except for the factors m."""

    class Op(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return forward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * derivative(x) * engine.tensor(m, dtype=g.dtype)

    return Op.apply


def test_fast_mode_catches_an_error_confined_to_one_element_of_many():
    n = 400
    m = np.ones(n)
    m[123] = 1.5
    sin = _scaled_backward(engine.sin, engine.cos, m)
    x = engine.tensor(np.linspace(-1, 1, n), dtype=engine.float64, requires_grad=True)
    message = _failure(lambda a: sin(a).sum(), (x,), fast_mode=True)
    # The full check located it.
    assert "(), (123,)" in message


def test_fast_mode_with_1000_inputs_is_fast():
    x = engine.tensor(np.linspace(-2, 2, 1000), dtype=engine.float64, requires_grad=True)

    def f(a):
        return (engine.sin(a) * a).sum() + engine.tanh(a * a).mean()

    start = time.perf_counter()
    assert gradcheck(f, (x,), fast_mode=True)
    assert time.perf_counter() - start < 20.0  # a hang guard, not a benchmark (shared CI)


def test_gradgradcheck_with_given_grad_outputs():
    x = engine.tensor([0.3, -0.7], dtype=engine.float64, requires_grad=True)
    go = engine.tensor([1.0, -2.0], dtype=engine.float64, requires_grad=True)
    assert gradgradcheck(lambda a: engine.sin(a) * a, (x,), (go,))


def _common_functions() -> dict[str, tuple[Callable, list[np.ndarray]]]:
    rng = np.random.default_rng(3)
    E = engine
    return {
        "sin(100x)": (lambda a: E.sin(100 * a), [rng.uniform(-2, 2, 6)]),
        "exp(5x)": (lambda a: E.exp(5 * a), [rng.uniform(-2, 2, 6)]),
        "tanh(matmul)": (
            lambda a, b: E.tanh(a @ b),
            [rng.standard_normal((3, 8)), rng.standard_normal((8, 2))],
        ),
        "softmax": (
            lambda a: E.exp(a - a.max()) / E.exp(a - a.max()).sum(),
            [5 * rng.standard_normal(6)],
        ),
        "variance near 100": (
            lambda a: ((a - a.mean()) ** 2).mean(),
            [100 + rng.standard_normal(12)],
        ),
        "logsumexp": (lambda a: E.log(E.exp(a).sum()), [3 * rng.standard_normal(8)]),
        "saturating sigmoid": (lambda a: E.sigmoid(10 * a), [rng.uniform(-2, 2, 8)]),
        "prod": (lambda a: a.prod(), [rng.uniform(0.5, 1.5, 10)]),
        "x^10": (lambda a: a**10, [rng.uniform(-1.5, 1.5, 6)]),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=list(DTYPES))
@pytest.mark.parametrize("name", list(_common_functions()))
def test_no_false_alarm_on_ordinary_functions(name: str, dtype: str):
    func, arrays = _common_functions()[name]
    args = tuple(engine.tensor(a, dtype=DTYPES[dtype], requires_grad=True) for a in arrays)
    assert gradcheck(func, args)
    assert gradcheck(func, args, fast_mode=True)


def test_float32_backward_formula_is_checked_in_float64():
    func, args = _case("factor 1.0001").build(engine.float32)
    message = _failure(func, args)
    assert "re-run in float64" in message and "times 1.0001" in message


@settings(max_examples=20, deadline=None)
@given(
    a=st.floats(0.2, 5.0),
    c=st.floats(-3.0, 3.0),
    k=st.one_of(st.just(1.0), st.floats(0.5, 0.999), st.floats(1.001, 2.0)),
    seed=st.integers(0, 2**16),
    fast=st.booleans(),
)
def test_property_verdict_is_exactly_the_factor(a, c, k, seed, fast):
    """sin(a x) + c x^2 with the backward scaled by k: flagged if and only if k != 1."""

    class Op(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return engine.sin(a * x) + c * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return k * g * (a * engine.cos(a * x) + 2 * c * x)

    values = np.random.default_rng(seed).uniform(-2, 2, 4)
    x = engine.tensor(values, dtype=engine.float64, requires_grad=True)
    assert gradcheck(Op.apply, (x,), raise_exception=False, fast_mode=fast) == (k == 1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=list(DTYPES))
@pytest.mark.parametrize(
    "values",
    [
        [83.21988085, 145.2184089, 62.42785029, 105.85930853],
        [315403.96203829, 75249.96279214, -273162.26933131, -555666.97787947],
    ],
    ids=["x~1e2", "x~1e5"],
)
def test_no_false_alarm_on_a_wiggle_over_a_large_trend(values, dtype):
    """Found by a random stress run: sin(a x) + c x**2 once cried wolf at large x."""
    a, c = 3.9985015426382877, 0.7348130286149468

    class Op(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return engine.sin(a * x) + c * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (a * engine.cos(a * x) + 2 * c * x)

    x = engine.tensor(np.array(values), dtype=DTYPES[dtype], requires_grad=True)
    assert gradcheck(Op.apply, (x,))
    assert gradcheck(Op.apply, (x,), fast_mode=True)


# --------------------------------------------------------------------- checker cost


def _counted(func: Callable) -> tuple[Callable, list[int]]:
    calls = [0]

    def wrapped(*args: Any) -> Any:
        calls[0] += 1
        return func(*args)

    return wrapped, calls


@pytest.mark.parametrize("dtype", DTYPES, ids=list(DTYPES))
def test_an_elementwise_function_costs_a_few_evaluations_not_two_per_input(dtype: str):
    x = engine.tensor(np.linspace(-2, 2, 256), dtype=DTYPES[dtype], requires_grad=True)
    func, calls = _counted(lambda a: engine.sin(a) * engine.exp(0.5 * a))
    assert gradcheck(func, (x,))
    # One forward for the outputs (and a float64 re-run for float32), the centre, 2 log2(256)
    # structure probes and the three perturbations of the first estimate; torch: 512.
    assert calls[0] <= 2 + 1 + 16 + 3 + (1 if dtype == "float32" else 0)


def test_a_dense_function_costs_three_evaluations_per_input():
    rng = np.random.default_rng(2)
    W = engine.tensor(rng.standard_normal((30, 40)), dtype=engine.float64)
    x = engine.tensor(rng.uniform(-1, 1, 40), dtype=engine.float64, requires_grad=True)
    func, calls = _counted(lambda a: engine.tanh(W @ a / 6))
    assert gradcheck(func, (x,))
    assert calls[0] <= 2 + 3 * 40


def test_fast_mode_costs_three_evaluations_per_projection():
    x = engine.tensor(np.linspace(-2, 2, 500), dtype=engine.float64, requires_grad=True)
    y = engine.tensor(np.linspace(1, 3, 500), dtype=engine.float64, requires_grad=True)
    func, calls = _counted(lambda a, b: (engine.sin(a) * b).sum() + engine.tanh(a * b).mean())
    assert gradcheck(func, (x, y), fast_mode=True, projections=4)
    assert calls[0] <= 2 + 3 * 4


def _dense_with_backward_factor(factor: float) -> tuple[Callable, tuple]:
    rng = np.random.default_rng(3)
    W = engine.tensor(rng.standard_normal((30, 40)), dtype=engine.float64)

    class Dense(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return engine.tanh(W @ x / 6)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            y = engine.tanh(W @ x / 6)
            return factor * (W.T @ (g * (1 - y * y))) / 6

    x = engine.tensor(rng.uniform(-1, 1, 40), dtype=engine.float64, requires_grad=True)
    return Dense.apply, (x,)


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_a_clear_mismatch_is_settled_by_the_first_estimate(fast_mode: bool):
    """|A - N| beyond the tolerance by more than 8 error estimates needs no ladder."""
    func, args = _dense_with_backward_factor(-1.0)
    counted, calls = _counted(func)
    message = _failure(counted, args, fast_mode=fast_mode)
    assert "Jacobian mismatch" in message and "sign flipped" in message
    # The forward, the centre, three perturbations per input and three for the cross-check
    # 64 times finer (fast: first three per projection and three for its cross-check, then
    # the full check to locate the failure).
    assert calls[0] <= 2 + 3 * 40 + 3 + (3 * 2 + 3 if fast_mode else 0)
    # Its twin with a right backward passes, fast mode without the full check.
    func, args = _dense_with_backward_factor(1.0)
    counted, calls = _counted(func)
    assert gradcheck(counted, args, fast_mode=fast_mode)
    assert calls[0] <= 2 + (3 * 2 if fast_mode else 3 * 40)


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_an_aliased_first_estimate_does_not_settle_a_failure(fast_mode):
    """sin(1e4 x) sampled 1e-5 apart, then 1.6e-4 apart (the second look), can alias into
    numbers that look smooth and wrong; the cross-check 64 times finer sends them on to the
    ladder, which finds the right backward right.  (float64: in float32, w x itself rounds
    by 6e-4 rad, and the float32 backward is then honestly off by more than its tolerance.)"""
    w = 1e4

    class Wiggle(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return engine.sin(w * x) / w + x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (engine.cos(w * x) + 2 * x)

    rng = np.random.default_rng(7)
    for _ in range(6):
        x = engine.tensor(rng.uniform(-1, 1, 5), dtype=engine.float64, requires_grad=True)
        assert gradcheck(Wiggle.apply, (x,), fast_mode=fast_mode)


def test_a_settled_failure_still_reports_the_elements_and_their_estimates():
    func, args = _dense_with_backward_factor(1.0001)
    with pytest.raises(GradcheckError) as info:
        gradcheck(func, args)
    mismatch = info.value.mismatch
    assert mismatch is not None and mismatch.differing == 30 * 40
    assert "1.0001 (a constant factor)" in str(info.value)
    for w in mismatch.worst:
        # Each shown element fails the rule on the numbers shown, by far.
        assert w.error > 8 * w.estimate and w.error > 1e-5 * abs(w.numeric)


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_a_backward_that_claims_elementwise_for_a_mixing_function_is_caught(fast_mode: bool):
    """The structure comes from the function's own values, never from the analytic side."""

    class Leak(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x + 0.01 * x[0]  # every output also reads x[0]

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g  # diagonal: the x[0] column is missing

    x = engine.tensor(np.linspace(0.5, 1.5, 64), dtype=engine.float64, requires_grad=True)
    message = _failure(Leak.apply, (x,), fast_mode=fast_mode)
    assert "Jacobian mismatch" in message and ", (0,)" in message


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_large_elementwise_check_with_one_wrong_element(fast_mode: bool):
    m = np.ones(1000)
    m[777] = 1 + 1e-4

    x = engine.tensor(np.linspace(-1, 1, 1000), dtype=engine.float64, requires_grad=True)
    message = _failure(_scaled_backward(engine.exp, engine.exp, m), (x,), fast_mode=fast_mode)
    assert "(777,), (777,)" in message and "only one element is wrong" in message


def test_a_hard_elementwise_function_costs_one_ladder_not_one_per_input():
    x = engine.tensor(np.linspace(0.5, 1.5, 400), dtype=engine.float64, requires_grad=True)
    func, calls = _counted(lambda a: 1e8 + engine.sin(100 * a))
    assert gradcheck(func, (x,))
    assert calls[0] <= 150  # torch: 800; one Richardson ladder per input: ~12,000
