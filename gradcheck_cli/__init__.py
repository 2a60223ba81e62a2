"""The gradcheck command line: autograd, exact derivatives and finite differences side by side."""

from typing import Any


def __getattr__(name: str) -> Any:
    # The version is read on demand: importlib.metadata costs ~20 ms at every start.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import metadata

    try:
        # One source for the version: the installed distribution's metadata (pyproject.toml).
        version = metadata.version("gradcheck")
    except metadata.PackageNotFoundError:  # a source tree put on sys.path, never installed
        version = "0+unknown"
    globals()["__version__"] = version
    return version
