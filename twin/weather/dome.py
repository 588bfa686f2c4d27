"""When the dome closes and when it may reopen.

Observatories close for humidity (condensation on the optics), high wind (wind shake and
damage) and threatening cloud (rain risk). The defaults are round values of the order
that observatories publish (humidity 85-90 %, wind 15-20 m/s); set a site's own limits
where they are known. The dome reopens only when conditions are clearly better than the
closing limit *and* it has stayed shut for a while: without that hysteresis a
humidity hovering at the limit would open and close the dome every few minutes, which no
operator does.

The state machine runs over closure *events*, not time steps: with the bad and good
samples indexed once (numpy), each closure costs two ``searchsorted`` calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import FieldProblem

MINUTES_PER_DAY = 1440.0


class DomeRules(BaseModel):
    """Limits that close the dome, and how much better it must get before it reopens."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    humidity_max_pct: float = Field(default=85.0, gt=0.0, le=100.0)
    # 100 m/s is beyond any recorded surface gust (113 m/s, Barrow Island 1996).
    wind_max_m_s: float = Field(default=15.0, gt=0.0, le=100.0)
    cloud_max: float = Field(default=0.7, gt=0.0, le=1.0, description="Cloud cover 0..1.")
    humidity_reopen_margin_pct: float = Field(default=5.0, ge=0.0, le=100.0)
    wind_reopen_margin_m_s: float = Field(default=3.0, ge=0.0, le=100.0)
    cloud_reopen_margin: float = Field(default=0.1, ge=0.0, le=1.0)
    min_closed_min: float = Field(
        default=20.0, ge=0.0, le=10_080.0, description="Shortest closure (at most a week)."
    )

    @model_validator(mode="after")
    def _margins_below_limits(self) -> DomeRules:
        pairs = [
            ("humidity_reopen_margin_pct", self.humidity_reopen_margin_pct, self.humidity_max_pct),
            ("wind_reopen_margin_m_s", self.wind_reopen_margin_m_s, self.wind_max_m_s),
            ("cloud_reopen_margin", self.cloud_reopen_margin, self.cloud_max),
        ]
        for name, margin, limit in pairs:
            if margin >= limit:
                raise FieldProblem(
                    name, f"{name} ({margin}) must be smaller than its limit ({limit})"
                )
        return self

    def must_close(self, samples: Mapping[str, np.ndarray]) -> np.ndarray:
        return (
            (samples["humidity_pct"] > self.humidity_max_pct)
            | (samples["wind_m_s"] > self.wind_max_m_s)
            | (samples["cloud_cover"] > self.cloud_max)
        )

    def may_reopen(self, samples: Mapping[str, np.ndarray]) -> np.ndarray:
        return (
            (samples["humidity_pct"] < self.humidity_max_pct - self.humidity_reopen_margin_pct)
            & (samples["wind_m_s"] < self.wind_max_m_s - self.wind_reopen_margin_m_s)
            & (samples["cloud_cover"] < self.cloud_max - self.cloud_reopen_margin)
        )


def dome_closure(
    mjd: np.ndarray, samples: Mapping[str, np.ndarray], rules: DomeRules | None = None
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Dome state on an increasing time grid, with hysteresis.

    Returns ``dome_closed`` (bool, like ``mjd``) and the closures as (close_mjd, open_mjd)
    pairs; open_mjd is ``inf`` for a dome still closed at the end of the grid. The dome
    starts open unless the first sample already demands closing.
    """
    rules = rules or DomeRules()
    mjd = np.asarray(mjd, dtype=float)
    if mjd.size > 1 and np.any(np.diff(mjd) <= 0):
        raise ValueError("dome_closure needs a strictly increasing mjd grid")
    bad_idx = np.flatnonzero(rules.must_close(samples))
    good_idx = np.flatnonzero(rules.may_reopen(samples))
    closed = np.zeros(mjd.size, dtype=bool)
    intervals: list[tuple[float, float]] = []
    start = 0
    while True:
        k = np.searchsorted(bad_idx, start)
        if k == bad_idx.size:
            return closed, intervals
        close = int(bad_idx[k])
        earliest = np.searchsorted(mjd, mjd[close] + rules.min_closed_min / MINUTES_PER_DAY - 1e-9)
        g = np.searchsorted(good_idx, max(earliest, close + 1))
        if g == good_idx.size:
            closed[close:] = True
            intervals.append((float(mjd[close]), math.inf))
            return closed, intervals
        start = int(good_idx[g])
        closed[close:start] = True
        intervals.append((float(mjd[close]), float(mjd[start])))
