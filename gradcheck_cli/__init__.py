"""The gradcheck command line: autograd, exact derivatives and finite differences side by side."""

from importlib import metadata as _metadata

try:
    # One source for the version: the installed distribution's metadata (pyproject.toml).
    __version__ = _metadata.version("gradcheck")
except _metadata.PackageNotFoundError:  # a source tree put on sys.path, never installed
    __version__ = "0+unknown"
