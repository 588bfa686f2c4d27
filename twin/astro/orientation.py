"""Earth orientation per day, so that alt/az of any direction is a few numpy operations.

astropy's ICRS -> AltAz chain (aberration, bias-precession-nutation, Earth rotation,
polar motion) is exact but costs ~10 µs per coordinate. Almost all of it changes
slowly: the celestial-to-intermediate (CIO-based) matrix moves by < 0.3" in a day,
and annual aberration (the Earth's barycentric velocity) by < 0.4". We compute both
once per UTC day with ERFA (the library inside astropy), and keep only the Earth
Rotation Angle, linear in UT1, per instant. What is left out: polar motion (< 0.5"),
diurnal aberration (< 0.32"), gravitational light deflection (< 0.002" away from the
Sun) and refraction (the comparison is with astropy's AltAz at zero pressure).
"""

from __future__ import annotations

import erfa
import numpy as np
from astropy.time import Time

_C_AU_PER_DAY = 173.1446326742403  # speed of light in au/day (IAU)
AU_M = 149_597_870_700.0


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


class EarthOrientation:
    """Per-day matrices and velocities, computed lazily and cached by integer MJD."""

    def __init__(self) -> None:
        self._c2i: dict[int, np.ndarray] = {}
        self._beta: dict[int, np.ndarray] = {}
        self._dut1_s: dict[int, float] = {}

    def _ensure(self, days: np.ndarray) -> None:
        missing = np.array(sorted(set(days.tolist()) - self._c2i.keys()), dtype=np.int64)
        if missing.size == 0:
            return
        mid = Time(missing + 0.5, format="mjd", scale="utc")
        tt, tdb = mid.tt, mid.tdb
        c2i = erfa.c2i06a(tt.jd1, tt.jd2)
        _, pvb = erfa.epv00(tdb.jd1, tdb.jd2)
        beta = pvb["v"] / _C_AU_PER_DAY
        dut1 = np.atleast_1d(mid.delta_ut1_utc).astype(float)
        for i, day in enumerate(missing.tolist()):
            self._c2i[day] = c2i[i]
            self._beta[day] = beta[i]
            self._dut1_s[day] = float(dut1[i])

    def matrices(self, mjd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(c2i (...,3,3), beta (...,3), dut1_s (...)) for each time, from its day.

        When every time falls on one day (a scheduler's decision) the single day's values
        are returned unbroadcast: (3,3), (3,), scalar.
        """
        mjd = np.asarray(mjd, dtype=float)
        first, last = int(np.floor(mjd.min())), int(np.floor(mjd.max()))
        if first == last:
            if first not in self._c2i:
                self._ensure(np.array([first]))
            return self._c2i[first], self._beta[first], self._dut1_s[first]
        days = np.floor(mjd).astype(np.int64)
        unique, inverse = np.unique(days, return_inverse=True)
        self._ensure(unique)
        c2i = np.stack([self._c2i[d] for d in unique.tolist()])
        beta = np.stack([self._beta[d] for d in unique.tolist()])
        dut1 = np.array([self._dut1_s[d] for d in unique.tolist()])
        inverse = inverse.reshape(days.shape)
        return c2i[inverse], beta[inverse], dut1[inverse]

    def earth_rotation_angle_rad(self, mjd: np.ndarray, dut1_s: np.ndarray) -> np.ndarray:
        """ERA (IAU 2000) at UT1 = UTC + DUT1."""
        tu = np.asarray(mjd, dtype=float) + dut1_s / 86400.0 - 51544.5  # JD(UT1) - 2451545
        frac = np.mod(tu, 1.0) + 0.7790572732640 + 0.00273781191135448 * tu
        return 2.0 * np.pi * np.mod(frac, 1.0)

    def to_cirs(
        self, u: np.ndarray, mjd: np.ndarray, aberrate: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(CIRS vectors, ERA rad) for GCRS-aligned vectors ``u`` (..., 3) at times ``mjd``.

        ``aberrate`` applies first-order stellar aberration to unit vectors of stars;
        solar-system positions from the ephemeris are passed without it.
        """
        c2i, beta, dut1 = self.matrices(mjd)
        if aberrate:  # u' = u + beta - (u.beta) u, then renormalise
            u = u + beta - np.sum(u * beta, axis=-1, keepdims=True) * u
            u = u / np.linalg.norm(u, axis=-1, keepdims=True)
        if c2i.ndim == 2:
            v = u @ c2i.T
        else:
            v = np.einsum("...ij,...j->...i", c2i, u)
        return v, self.earth_rotation_angle_rad(mjd, dut1)


class SiteFrame:
    """Turns CIRS vectors into altitude, azimuth and hour angle at one site."""

    def __init__(self, lat_deg: float, lon_deg: float, height_m: float,
                 orientation: EarthOrientation) -> None:  # fmt: skip
        self.orientation = orientation
        self._sin_lat = np.sin(np.radians(lat_deg))
        self._cos_lat = np.cos(np.radians(lat_deg))
        self._lon_rad = np.radians(lon_deg)
        x, y, z = erfa.gd2gc(1, np.radians(lon_deg), np.radians(lat_deg), height_m)
        self._r_xy_au = float(np.hypot(x, y)) / AU_M  # geocentric, for lunar parallax
        self._z_au = float(z) / AU_M

    def prepare(self, u: np.ndarray, mjd_ref: float) -> tuple:
        """Apparent CIRS (ra_rad, sin_dec, cos_dec, dut1_s) of star vectors at a reference time.

        Within a night the apparent place moves < 0.5" (aberration, precession), so a
        scheduler prepares its candidates once and then pays only for the Earth's turn.
        """
        v, _ = self.orientation.to_cirs(u, np.asarray(mjd_ref, dtype=float))
        sin_dec = np.clip(v[..., 2], -1.0, 1.0)
        dut1 = self.orientation.matrices(np.asarray(mjd_ref, dtype=float))[2]
        return np.arctan2(v[..., 1], v[..., 0]), sin_dec, np.sqrt(1.0 - sin_dec**2), dut1

    def altaz_prepared(self, prepared: tuple, mjd: np.ndarray | float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """(alt_deg, az_deg, hour_angle_h) of prepared targets at times ``mjd``.

        DUT1 is taken from the reference day (it changes by < 2 ms a day)."""
        ra, sin_dec, cos_dec, dut1 = prepared
        era = self.orientation.earth_rotation_angle_rad(mjd, dut1)
        return self._horizon(era + self._lon_rad - ra, sin_dec, cos_dec)

    def _horizon(self, ha: np.ndarray, sin_dec: np.ndarray, cos_dec: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        cos_ha = np.cos(ha)
        alt = np.arcsin(np.clip(self._sin_lat * sin_dec + self._cos_lat * cos_dec * cos_ha, -1, 1))
        y = -cos_dec * np.sin(ha)  # azimuth from north through east
        x = self._cos_lat * sin_dec - self._sin_lat * cos_dec * cos_ha
        az = np.mod(np.arctan2(y, x), 2 * np.pi)
        ha_h = np.mod(np.degrees(ha) / 15.0 + 12.0, 24.0) - 12.0
        return np.degrees(alt), np.degrees(az), ha_h

    def altaz(self, u: np.ndarray, mjd: np.ndarray, aberrate: bool = True,
              topocentric: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """(alt_deg, az_deg, hour_angle_h) of vectors ``u`` (..., 3) at times ``mjd``.

        With ``topocentric``, ``u`` is a geocentric position in au (the Moon) and the
        observer's offset from the geocentre is removed first: lunar parallax is ~1 deg.
        """
        v, era = self.orientation.to_cirs(u, mjd, aberrate)
        if topocentric:
            angle = era + self._lon_rad
            obs = np.stack(
                [self._r_xy_au * np.cos(angle), self._r_xy_au * np.sin(angle),
                 np.full_like(angle, self._z_au)], axis=-1)  # fmt: skip
            v = v - obs
        v = v / np.linalg.norm(v, axis=-1, keepdims=True)
        ha = era + self._lon_rad - np.arctan2(v[..., 1], v[..., 0])
        sin_dec = np.clip(v[..., 2], -1.0, 1.0)
        return self._horizon(ha, sin_dec, np.sqrt(1.0 - sin_dec**2))
