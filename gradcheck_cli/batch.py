"""A batch's cases as pytest and `trace FILE::CASE` name them, and deterministic sharding.

Files become cases in schema.py and cases run in runner.py; this module only decides which
cases a run takes (--shard K/N) and what each one is called.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from gradcheck_cli.report import fmt_point, printable
from gradcheck_cli.schema import Case, Item

__all__ = ["shard", "shard_size", "split_points"]


def split_points(items: Iterable[Item]) -> Iterator[tuple[str, str, Any]]:
    """(id, file, runnable) per case and point: the ids pytest shows and `trace` accepts.

    An expression case yields 'name[x=3]' per point (a one-point Case); a callable case
    or an invalid one yields its name. Repeated ids get ' (case N)' appended, so that ids
    are unique and the same in every process (pytest-xdist collects in each worker).
    """
    seen: Counter[str] = Counter()
    for index, (path, item) in enumerate(items, start=1):
        # Ids reach terminals (pytest's summaries): control characters arrive escaped.
        base = printable(item.name or item.expr or f"case {index}").replace("::", ":")
        if isinstance(item, Case) and item.points:
            runs = [
                (f"{base}[{fmt_point(p)}]", dataclasses.replace(item, points=(p,)))
                for p in item.points
            ]
        else:
            runs = [(base, item)]
        for name, run in runs:
            seen[name] += 1
            yield (name if seen[name] == 1 else f"{name} (case {index})"), path, run


def shard(items: Iterable[Any], k: int, n: int) -> Iterator[Any]:
    """Keep item i (counted from 0 across all files) when i mod n == k - 1."""
    for i, item in enumerate(items):
        if i % n == k - 1:
            yield item


def shard_size(total: int, k: int, n: int) -> int:
    """How many of `total` items shard k of n keeps."""
    return len(range(k - 1, total, n))
