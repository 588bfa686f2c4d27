"""Sorted, disjoint time intervals (dome closures, failures) with O(log n) queries.

The operations loop asks "is the dome closed now, and until when?" and "when does the
next closure start?" at every step; the answers come from ``bisect`` on two sorted lists.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable


class Intervals:
    """Union of [start, end) intervals; overlapping or touching inputs are merged."""

    def __init__(self, pairs: Iterable[tuple[float, float]]) -> None:
        merged: list[list[float]] = []
        for start, end in sorted((float(a), float(b)) for a, b in pairs if b > a):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [a for a, _ in merged]
        self.ends = [b for _, b in merged]

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self):
        return iter(zip(self.starts, self.ends, strict=True))

    def until(self, mjd: float) -> float | None:
        """End of the interval containing ``mjd``, or None if ``mjd`` is outside all."""
        k = bisect.bisect_right(self.starts, mjd) - 1
        if k >= 0 and mjd < self.ends[k]:
            return self.ends[k]
        return None

    def next_start(self, mjd: float) -> float:
        """Start of the first interval beginning after ``mjd`` (inf if none)."""
        k = bisect.bisect_right(self.starts, mjd)
        return self.starts[k] if k < len(self.starts) else math.inf

    def overlaps(self, start: float, end: float) -> bool:
        """True if [start, end) meets any interval."""
        return self.until(start) is not None or self.next_start(start) < end
