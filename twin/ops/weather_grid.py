"""The truth weather of one site on the run's 10-minute grid, for fast lookups.

The operations loop reads the seeing and transparency at every exposure start; going
through the weather source each time (span checks, six interpolations) would cost more
than the rest of the exposure. The grid is sampled once from the source when the world is
built, and both the loop (scalar :meth:`at`) and the log (vectorised :meth:`sample`)
interpolate the same arrays, so what the loop checked is what the log shows.
"""

from __future__ import annotations

import numpy as np

from twin.weather.state import WEATHER_FIELDS


class WeatherGrid:
    def __init__(self, mjd: np.ndarray, samples: dict[str, np.ndarray]) -> None:
        self.mjd = np.asarray(mjd, dtype=float)
        self.samples = {k: np.asarray(samples[k], dtype=float) for k in WEATHER_FIELDS}
        self._t0 = float(self.mjd[0])
        self._step = float(self.mjd[1] - self.mjd[0])
        self._lists = {k: v.tolist() for k, v in self.samples.items()}
        self._n = len(self.mjd)

    def sample(self, mjd: np.ndarray) -> dict[str, np.ndarray]:
        mjd = np.asarray(mjd, dtype=float)
        return {k: np.interp(mjd, self.mjd, v) for k, v in self.samples.items()}

    def at(self, mjd: float, field: str) -> float:
        """One field at one time (linear interpolation, clamped at the grid's ends)."""
        x = (mjd - self._t0) / self._step
        i = int(x)
        if i < 0:
            return self._lists[field][0]
        if i >= self._n - 1:
            return self._lists[field][-1]
        values = self._lists[field]
        f = x - i
        return values[i] + f * (values[i + 1] - values[i])
