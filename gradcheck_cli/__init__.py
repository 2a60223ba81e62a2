"""The gradcheck command line: autograd, exact derivatives and finite differences side by side."""

__version__ = "0.1.0"
