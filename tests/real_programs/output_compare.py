"""Compare two programs' printed output: the same text, and numbers equal to printing precision.

Text is compared after removing what differs between the libraries by design: the module
name in reprs (`engine.float64` prints `torch.float64`) and object addresses. Numbers are
equal when they differ by less than `rtol` relative (float32 rounding over a training run),
than one unit of the last printed digit (a value on a rounding boundary prints differently),
or than `atol`. A program may ask for a looser `rtol` in a line `# compare: rtol=...`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


@dataclass(frozen=True)
class Mismatch:
    """Where two outputs part: the line, and the two versions of it."""

    line: int
    ours: str
    theirs: str


def _normalized(text: str) -> str:
    return _ADDRESS.sub("0x…", text.replace("engine.", "torch."))


def _tokens(line: str) -> tuple[list[str], list[str]]:
    return _NUMBER.split(line), _NUMBER.findall(line)


def _close(a: str, b: str, rtol: float, atol: float) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if x != x or y != y:
        return x != x and y != y
    decimals = len(b.split(".")[1].split("e")[0].split("E")[0]) if "." in b else 0
    exponent = int(b.lower().split("e")[1]) if "e" in b.lower() else 0
    unit = 10.0 ** (exponent - decimals)
    return abs(x - y) <= max(rtol * abs(y), 1.01 * unit, atol)


def compare(ours: str, theirs: str, rtol: float = 2e-4, atol: float = 1e-6) -> list[Mismatch]:
    """The lines where `ours` differs from `theirs` beyond printing precision.

    `atol`: values that float32 noise leaves near zero (a fitted 1e-10 against 7e-10).
    """
    a, b = _normalized(ours).splitlines(), _normalized(theirs).splitlines()
    problems = []
    for k in range(max(len(a), len(b))):
        la = a[k] if k < len(a) else "<missing>"
        lb = b[k] if k < len(b) else "<missing>"
        (text_a, nums_a), (text_b, nums_b) = _tokens(la), _tokens(lb)
        if text_a != text_b or len(nums_a) != len(nums_b) or not all(
                _close(x, y, rtol, atol) for x, y in zip(nums_a, nums_b, strict=True)):
            problems.append(Mismatch(k + 1, la, lb))
    return problems


def tolerance(source: str) -> float:
    """The rtol a program asks for (`# compare: rtol=2e-3`), else the default."""
    match = re.search(r"^# compare: rtol=([0-9.eE+-]+)", source, re.MULTILINE)
    return float(match.group(1)) if match else 2e-4
