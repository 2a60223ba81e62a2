"""engine.autograd.gradcheck as a drop-in for torch.autograd.gradcheck on PyTorch code."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import framework_catalogue as fc  # noqa: E402
from test_gradcheck import make_catalogue  # noqa: E402

import engine  # noqa: E402
from engine.autograd import GradcheckError, gradcheck, gradgradcheck  # noqa: E402

CASES = fc.sample(fc.catalogue(fc.torch_ops()))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_catalogue_verdicts(case: fc.Case, dtype: str):
    assert fc.verdict(case, dtype) is (not case.wrong)
    # Fast mode: the same verdict (a disagreeing projection hands over to the full check).
    assert fc.verdict(case, dtype, fast_mode=True) is (not case.wrong)


ENGINE_PORT = make_catalogue(engine)
TORCH_PORT = make_catalogue(torch)


@pytest.mark.parametrize("index", range(len(TORCH_PORT)), ids=[c.name for c in TORCH_PORT])
def test_drop_in_agrees_with_our_verdict_on_the_engine_port(index: int):
    ours, theirs = ENGINE_PORT[index], TORCH_PORT[index]
    results = []
    for lib, case in ((engine, ours), (torch, theirs)):
        func, args = case.build(lib.float32)
        check = gradgradcheck if case.second_order else gradcheck
        results.append(check(func, args, raise_exception=False))
    assert results[0] is results[1] is (not ours.wrong)


def _x(*values: float, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, requires_grad=True)


class Sin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) * 1.0001  # wrong by 1e-4: torch's rtol=1e-3 lets it through


def test_a_wrong_backward_torch_passes_is_caught_and_the_error_is_also_torchs():
    x = _x(0.3, -1.2, 2.0)
    assert torch.autograd.gradcheck(Sin.apply, (x,))  # documents the difference
    torch_error = __import__("torch.autograd.gradcheck", fromlist=["GradcheckError"])
    with pytest.raises(torch_error.GradcheckError) as info:
        gradcheck(Sin.apply, (x,))
    assert isinstance(info.value, GradcheckError) and isinstance(info.value, RuntimeError)
    assert "times 1.0001" in str(info.value)
    assert gradcheck(Sin.apply, (x,), raise_exception=False) is False


def test_float32_correct_functions_are_not_false_alarms_where_torch_cries_wolf():
    x = torch.linspace(-2, 2, 7, dtype=torch.float32, requires_grad=True)

    def f(a):
        return torch.tanh(3 * a) * torch.exp(a)

    assert gradcheck(f, (x,)) and gradcheck(f, (x,), fast_mode=True)
    with pytest.warns(UserWarning):  # torch warns about float32 ... and then fails it
        assert not torch.autograd.gradcheck(f, (x,), raise_exception=False)


def test_modules_constants_and_several_outputs():
    lin = torch.nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lin, (x,))
    # A non-tensor argument and an integer tensor pass through; two outputs are both checked.
    idx = torch.tensor([2, 0, 1])
    assert gradcheck(lambda a, k, i: (a[:, i] * k, a.sum(0)), (x, 2.5, idx))


def test_outputs_of_torch_functions_wrong_shapes_and_raising_backwards_fail_cleanly():
    class Boom(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")

    x = _x(1.0, 2.0)
    with pytest.raises(GradcheckError, match="backward raised ValueError: boom"):
        gradcheck(Boom.apply, (x,))


def test_torch_only_flags_run_torchs_own_checks_after_ours():
    x = _x(0.5, 1.5)
    assert gradcheck(torch.sin, (x,), check_forward_ad=True, check_batched_grad=True)
    assert gradgradcheck(torch.sin, (x,), check_batched_grad=True)

    class NoForwardAD(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    with pytest.raises(RuntimeError):  # torch's own message: no jvp defined
        gradcheck(NoForwardAD.apply, (x,), check_forward_ad=True)
    assert gradcheck(NoForwardAD.apply, (x,))


def test_gradgradcheck_on_torch_with_given_grad_outputs_and_fast_mode():
    x = _x(0.3, -0.7)
    go = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    assert gradgradcheck(lambda a: torch.sin(a) * a, (x,), (go,))
    assert gradgradcheck(lambda a: torch.sin(a) * a, (x,), fast_mode=True)


def test_errors_for_inputs_that_mix_frameworks_or_need_no_grad():
    with pytest.raises(TypeError, match="mix engine and torch"):
        gradcheck(lambda a, b: a, (engine.tensor([1.0], requires_grad=True), _x(1.0)))
    with pytest.raises(ValueError, match="require gradient"):
        gradcheck(torch.sin, (torch.ones(2, dtype=torch.float64),))
    with pytest.raises(TypeError, match="numpy_gradcheck"):
        gradcheck(np.sin, (np.ones(2),))


def _dense_torch(factor: float, dtype: torch.dtype):
    """tanh(x W^T) as a torch.autograd.Function whose backward is `factor` times right; its
    forward broadcasts over a leading dimension (what batched=True needs), counted."""
    W = torch.tensor(np.random.default_rng(8).standard_normal((8, 5)), dtype=dtype)
    calls = [0]

    class Dense(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            calls[0] += 1
            y = torch.tanh(x @ W.T)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return factor * (g * (1 - y * y)) @ W

    return Dense.apply, calls


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("factor", [1.0, 1.01, -1.0])
def test_batched_torch_function_same_verdict_fewer_calls(factor, dtype, fast_mode):
    x = torch.tensor(np.linspace(-1, 1, 5), dtype=getattr(torch, dtype), requires_grad=True)
    verdicts, calls = [], []
    for batched in (False, True):
        func, count = _dense_torch(factor, x.dtype)
        verdicts.append(
            gradcheck(func, (x,), batched=batched, fast_mode=fast_mode, raise_exception=False)
        )
        calls.append(count[0])
    assert verdicts[0] == verdicts[1] == (factor == 1.0)
    assert calls[1] < calls[0]
