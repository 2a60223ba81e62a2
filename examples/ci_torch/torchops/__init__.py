"""PyTorch custom Functions whose gradients CI checks with gradcheck (see ../gradcheck.toml)."""

from torchops.ops import LogCosh, Softplus, log_cosh, log_cosh_loss, softplus, softplus_layer

__all__ = ["LogCosh", "Softplus", "log_cosh", "log_cosh_loss", "softplus", "softplus_layer"]
