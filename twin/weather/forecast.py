"""Weather forecasts: the truth seen through an error that grows with lead time.

Schedulers must plan on forecasts, never on the truth (DESIGN.md "Weather"). A
:class:`Forecast` wraps a truth source, keeps it private and hands out only perturbed
values. Error model (additive, in the space where each quantity is roughly Gaussian):

| quantity      | space                   | std at lead h (hours)      | cap  |
|---------------|-------------------------|----------------------------|------|
| cloud cover   | latent units (x 0.5)    | 0.15 + 0.08 h              | 1.0  |
| seeing        | ln(FWHM)                | 0.10 + 0.03 h              | 0.40 |
| humidity      | percent                 | 2.0 + 0.5 h                | 15   |
| wind          | ln(speed)               | 0.08 + 0.02 h              | 0.50 |
| temperature   | deg C                   | 0.3 + 0.1 h                | 3.0  |

Cloud errors are expressed in units of the latent cloud variable (one unit = 0.5 in cloud
cover, :mod:`twin.weather.fields`); at the cap the error equals the climatological
spread, i.e. little skill left after ~10 h, which is pessimistic for synoptic cloud but
about right for the patchy cloud that closes domes. Seeing error starts at ~10 % (a
DIMM's own scatter) and saturates near the climatological spread. These figures are
illustrative defaults, not a fit to any forecast verification; pass another
:class:`ForecastErrors` to change them.

Errors at different target times of one forecast are correlated (an AR(1) in lead time,
e-folding 6 h): a forecast that is too cloudy at 22 h is too cloudy at 23 h as well.
Determinism: the noise of a forecast depends only on (seed, site name, issue time floored
to the issue grid), so the same question gives the same answer in any order, and a target
time gets the same value whatever other targets are asked with it. Targets before the
issue time get the lead-0 ("nowcast") error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from twin.weather.fields import CLOUD_COVER_PER_LATENT, transparency_from_cloud
from twin.weather.noise import ar1, ar1_phi, as_seed_sequence, child_seed, name_key
from twin.weather.state import WEATHER_FIELDS, WeatherSource

LEAD_GRID_STEP_H = 0.25
ERROR_CORRELATION_H = 6.0


class ErrorGrowth(BaseModel):
    """Error std = min(at_zero + per_hour * lead_h, cap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at_zero: float = Field(ge=0.0)
    per_hour: float = Field(ge=0.0)
    cap: float = Field(ge=0.0)

    def std(self, lead_h: np.ndarray) -> np.ndarray:
        return np.minimum(self.at_zero + self.per_hour * lead_h, self.cap)


class ForecastErrors(BaseModel):
    """Error growth per quantity (see the module table for the spaces and units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cloud_latent: ErrorGrowth = ErrorGrowth(at_zero=0.15, per_hour=0.08, cap=1.0)
    seeing_ln: ErrorGrowth = ErrorGrowth(at_zero=0.10, per_hour=0.03, cap=0.40)
    humidity_pct: ErrorGrowth = ErrorGrowth(at_zero=2.0, per_hour=0.5, cap=15.0)
    wind_ln: ErrorGrowth = ErrorGrowth(at_zero=0.08, per_hour=0.02, cap=0.50)
    temperature_c: ErrorGrowth = ErrorGrowth(at_zero=0.3, per_hour=0.1, cap=3.0)


class Forecast:
    """Forecasts of a truth source, issued every ``issue_step_min``, up to ``max_lead_h``."""

    def __init__(
        self,
        truth: WeatherSource,
        seed: int | np.random.SeedSequence,
        issue_step_min: float = 60.0,
        max_lead_h: float = 72.0,
        errors: ForecastErrors | None = None,
    ) -> None:
        if issue_step_min <= 0 or max_lead_h <= 0:
            raise ValueError("issue_step_min and max_lead_h must be > 0")
        self._truth = truth
        self._root = as_seed_sequence(seed)
        self.issue_step_min = float(issue_step_min)
        self.max_lead_h = float(max_lead_h)
        # The lead-time grid of the per-issue noise: fixed by max_lead_h, read every call.
        n_lead = int(np.ceil(self.max_lead_h / LEAD_GRID_STEP_H)) + 1
        self._lead_grid_h = np.arange(n_lead) * LEAD_GRID_STEP_H
        self.errors = errors or ForecastErrors()
        self._grids: dict[tuple[str, int], np.ndarray] = {}

    def issue_time(self, issued_mjd: float) -> float:
        """The latest forecast issue (on the issue grid) at or before ``issued_mjd``."""
        return self._issue_index(issued_mjd) * self.issue_step_min / 1440.0

    def predict(
        self,
        site_name: str,
        target_mjd: np.ndarray,
        issued_mjd: float,
        fields: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Forecast of every weather field at ``target_mjd``, as known at ``issued_mjd``;
        only ``fields`` when given (a policy asking every decision for two fields skips
        the others' noise and perturbation; the values are the same)."""
        fields = WEATHER_FIELDS if fields is None else tuple(fields)
        unknown = set(fields) - set(WEATHER_FIELDS)
        if unknown:
            raise ValueError(f"unknown forecast fields {sorted(unknown)}; "
                             f"allowed: {', '.join(WEATHER_FIELDS)}")  # fmt: skip
        target_mjd = np.asarray(target_mjd, dtype=float)
        issue_index = self._issue_index(issued_mjd)
        lead_h = np.maximum(target_mjd - self.issue_time(issued_mjd), 0.0) * 24.0
        if lead_h.size and float(lead_h.max()) > self.max_lead_h:
            raise ValueError(
                f"target {float(target_mjd.max()):.5f} is {float(lead_h.max()):.1f} h after the "
                f"issue; forecasts reach {self.max_lead_h:g} h (raise max_lead_h)"
            )
        if not fields:
            return {}
        rows = sorted({_NOISE_ROW[f] for f in fields})
        noise = dict(zip(rows, self._noise(site_name, issue_index, lead_h, rows), strict=True))
        truth = self._truth.sample(site_name, target_mjd)
        return self._perturb(truth, lead_h, noise, fields)

    def _issue_index(self, issued_mjd: float) -> int:
        return int(np.floor(issued_mjd * 1440.0 / self.issue_step_min + 1e-9))

    def _noise(self, site_name: str, issue_index: int, lead_h: np.ndarray,
               rows: Sequence[int] = range(5)) -> np.ndarray:  # fmt: skip
        """Unit-variance errors, correlated in lead time, shape (len(rows), *lead_h.shape):
        the rows of :data:`_NOISE_ROW`'s error streams asked for."""
        key = (site_name, issue_index)
        grid = self._grids.get(key)
        n_lead = self._lead_grid_h.size
        if grid is None:  # one draw per site and issue: schedulers ask many times an hour
            seed = child_seed(self._root, name_key(site_name), issue_index % 2**63)
            z = np.random.default_rng(seed).standard_normal((n_lead, 5))
            phi = ar1_phi(LEAD_GRID_STEP_H, np.full(5, ERROR_CORRELATION_H))
            grid = ar1(z, phi)
            if len(self._grids) > 4096:
                self._grids.clear()
            self._grids[key] = grid
        return np.stack([np.interp(lead_h, self._lead_grid_h, grid[:, k]) for k in rows])

    def _perturb(
        self,
        truth: dict[str, np.ndarray],
        lead_h: np.ndarray,
        noise: dict[int, np.ndarray],
        fields: Sequence[str] = WEATHER_FIELDS,
    ) -> dict[str, np.ndarray]:
        """The forecast of ``fields``; ``noise`` maps each needed error stream (a row of
        :data:`_NOISE_ROW`) to its values."""
        e = self.errors
        out: dict[str, np.ndarray] = {}
        if "cloud_cover" in fields or "transparency" in fields:
            cloud_err = CLOUD_COVER_PER_LATENT * e.cloud_latent.std(lead_h) * noise[0]
            out["cloud_cover"] = np.clip(truth["cloud_cover"] + cloud_err, 0.0, 1.0)
            out["transparency"] = transparency_from_cloud(out["cloud_cover"])
        if "seeing_fwhm_arcsec" in fields:
            out["seeing_fwhm_arcsec"] = truth["seeing_fwhm_arcsec"] * np.exp(
                e.seeing_ln.std(lead_h) * noise[1]
            )
        if "humidity_pct" in fields:
            out["humidity_pct"] = np.clip(
                truth["humidity_pct"] + e.humidity_pct.std(lead_h) * noise[2], 0.0, 100.0
            )
        if "wind_m_s" in fields:
            out["wind_m_s"] = truth["wind_m_s"] * np.exp(e.wind_ln.std(lead_h) * noise[3])
        if "temperature_c" in fields:
            out["temperature_c"] = truth["temperature_c"] + e.temperature_c.std(lead_h) * noise[4]
        return {name: out[name] for name in WEATHER_FIELDS if name in fields}


_NOISE_ROW = {"cloud_cover": 0, "transparency": 0, "seeing_fwhm_arcsec": 1, "humidity_pct": 2,
              "wind_m_s": 3, "temperature_c": 4}  # fmt: skip
"""The error stream (a column of the per-issue noise grid) each field is perturbed by."""
