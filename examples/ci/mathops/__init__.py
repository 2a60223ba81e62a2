"""A tiny package of custom autograd Functions, checked in CI by `gradcheck check`."""

from mathops.ops import LogCosh, Softplus, log_cosh, log_cosh_loss, softplus, softplus_layer

__all__ = ["LogCosh", "Softplus", "log_cosh", "log_cosh_loss", "softplus", "softplus_layer"]
