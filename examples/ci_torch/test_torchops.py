"""Ordinary PyTorch tests; the only change from torch's own check is the import line:

    from torch.autograd import gradcheck, gradgradcheck      # before
    from engine.autograd import gradcheck, gradgradcheck     # after
"""

import pytest
import torch
from torch.autograd.gradcheck import GradcheckError
from torchops import log_cosh, log_cosh_loss, softplus, softplus_layer

from engine.autograd import gradcheck, gradgradcheck
from engine.testing import assert_gradcheck


def _x(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(0)
                       ).requires_grad_()


def test_softplus():
    assert gradcheck(softplus, (_x(3, 4),))
    assert gradgradcheck(softplus, (_x(3, 4),))


def test_softplus_float32():
    # torch.autograd.gradcheck fails this right Function in float32 (rounding noise); ours
    # re-runs it in float64 for the reference and passes it.
    assert gradcheck(softplus, (_x(5, dtype=torch.float32),))


def test_softplus_layer():
    assert gradcheck(softplus_layer, (_x(5, 3), _x(3, 2)))


def test_log_cosh_is_caught():
    # LogCosh.backward is 0.1% off: torch.autograd.gradcheck passes it, ours does not.
    assert torch.autograd.gradcheck(log_cosh, (_x(4),))
    with pytest.raises(GradcheckError):  # ours is also torch's GradcheckError
        gradcheck(log_cosh, (_x(4),))


@pytest.mark.xfail(reason="LogCosh.backward is deliberately wrong", strict=True)
def test_log_cosh_loss():
    prediction, target = _x(6), torch.zeros(6, dtype=torch.float64)
    assert_gradcheck(log_cosh_loss, (prediction, target))  # the failure names LogCosh.backward
