"""`engine.save` / `engine.load`: state_dicts and other plain structures of tensors on disk.

The format is engine's own, NOT torch's: a NumPy `.npz` archive (a zip) holding one array per
tensor and, under `__structure__`, a JSON description of the object that refers to them.
Loading never unpickles (`allow_pickle=False`), so a file cannot run code, which makes it
safe to load files from others. It holds what state_dicts are made of: dicts (any number or
string keys, order kept), lists, tuples, strings, numbers, booleans, None and tensors.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from typing import Any

import numpy as np

from engine import _device
from engine.tensor import Tensor, _wrap

_STRUCTURE = "__structure__"
_FORMAT = "engine-save-1"


def _encode(obj: Any, arrays: list[np.ndarray]) -> Any:
    # An explicit stack would be overkill: state_dicts nest three levels deep.
    if isinstance(obj, Tensor):
        arrays.append(np.array(obj._data))
        return {"tensor": len(arrays) - 1, "requires_grad": obj.requires_grad}
    if isinstance(obj, dict):
        return {"dict": [[_encode(k, arrays), _encode(v, arrays)] for k, v in obj.items()],
                "ordered": isinstance(obj, OrderedDict)}
    if isinstance(obj, list | tuple):
        return {"list" if isinstance(obj, list) else "tuple": [_encode(v, arrays) for v in obj]}
    if obj is None or isinstance(obj, bool | int | float | str):
        return {"value": obj}
    if isinstance(obj, np.generic):
        return {"value": obj.item()}
    raise TypeError(
        f"engine.save stores state_dicts and plain structures of tensors, not "
        f"{type(obj).__name__} objects: save model.state_dict() instead"
    )


def _decode(node: Any, arrays: Any) -> Any:
    if "tensor" in node:
        t = _wrap(arrays[f"a{node['tensor']}"])
        t = _wrap(t._data[()] if t._data.ndim == 0 else t._data)
        if node["requires_grad"]:
            t.requires_grad_(True)
        return t
    if "dict" in node:
        items = [(_decode(k, arrays), _decode(v, arrays)) for k, v in node["dict"]]
        return OrderedDict(items) if node["ordered"] else dict(items)
    if "list" in node:
        return [_decode(v, arrays) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays) for v in node["tuple"])
    return node["value"]


def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
    """Write `obj` (a state_dict, or dicts/lists of tensors and numbers) to a path or file."""
    arrays: list[np.ndarray] = []
    structure = {"format": _FORMAT, "object": _encode(obj, arrays)}
    payload = {f"a{i}": a for i, a in enumerate(arrays)}
    payload[_STRUCTURE] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    data = buffer.getvalue()
    if isinstance(f, str | os.PathLike):
        with open(f, "wb") as out:
            out.write(data)
    else:
        f.write(data)


def load(f: Any, map_location: Any = None, weights_only: bool | None = None,
         **kwargs: Any) -> Any:
    """Read an object written by `engine.save` (never a pickle: no code runs)."""
    if map_location is not None and not callable(map_location) and not isinstance(
            map_location, dict):
        _device.check(map_location)
    try:
        archive = np.load(f, allow_pickle=False)
        structure = json.loads(bytes(archive[_STRUCTURE]).decode())
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as e:
        raise RuntimeError(
            f"not a file written by engine.save ({e}); engine does not read torch's format"
        ) from None
    if structure.get("format") != _FORMAT:
        raise RuntimeError(f"unknown engine.save format: {structure.get('format')!r}")
    with archive:
        return _decode(structure["object"], archive)
