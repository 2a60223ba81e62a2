"""`engine.linalg`: the norms of torch.linalg that tutorials use."""

from engine._api import linalg_norm as norm
from engine._api import vector_norm

__all__ = ["norm", "vector_norm"]
