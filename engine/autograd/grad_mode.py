"""Grad mode, under its torch path (`torch.autograd.grad_mode`); it lives in engine/_grad_mode.py,
a leaf module, so that the tensor module can read it without loading engine.autograd."""

from engine._grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled, state

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled", "state"]
