"""Shared time constants and the span check used by every equipment component.

Each component precomputes its schedule for a fixed span ``[start_mjd, start_mjd + days]``
(random walks live on a grid over that span), so a query outside it cannot be answered
honestly. It fails with a message that says how to fix it instead of extrapolating.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

S_PER_DAY = 86_400.0
H_PER_DAY = 24.0
MIN_PER_DAY = 1_440.0
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12.0
_SLACK_DAYS = 1e-9


def checked_mjd(mjd: ArrayLike, start_mjd: float, end_mjd: float, who: str) -> np.ndarray:
    """``mjd`` as a float array, or a ValueError if any time lies outside the span."""
    values = np.asarray(mjd, dtype=float)
    if values.size == 0:
        return values
    low, high = float(np.min(values)), float(np.max(values))
    if not np.isfinite(low) or not np.isfinite(high):
        raise ValueError(f"{who}: query times must be finite MJDs")
    if low < start_mjd - _SLACK_DAYS or high > end_mjd + _SLACK_DAYS:
        raise ValueError(
            f"{who}: MJD {low if low < start_mjd else high:.5f} is outside the simulated span "
            f"[{start_mjd:.5f}, {end_mjd:.5f}]; build the model with an earlier start_mjd "
            "or a longer `days`"
        )
    return values


def check_span(start_mjd: float, days: float) -> tuple[float, float]:
    """Validate a component's span and return ``(start_mjd, end_mjd)``."""
    if not np.isfinite(start_mjd) or not np.isfinite(days) or days <= 0.0:
        raise ValueError(f"span needs a finite start_mjd and days > 0; got {start_mjd}, {days}")
    return float(start_mjd), float(start_mjd) + float(days)
