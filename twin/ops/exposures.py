"""The full truth of exposures, computed in batches from what the loop recorded.

Why batches: the operations loop only needs to know *when* each exposure ran and that
its constraints held; the geometry at both ends, the sky brightness, the delivered
seeing, the equipment state, the depth and the value are needed for the log. Computed
per exposure they would cost ~1 ms each in numpy call overhead; computed once a day for
all exposures of a telescope they cost a few microseconds each. Alert exposures, whose
detection steers the run, ask :func:`exposure_detected` at once: the same functions on
one row, only those the detection needs, so both paths give identical numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from twin.ops.queue import RequestQueue
from twin.ops.world import TelescopeWorld
from twin.physics.etc import delivered_seeing_arcsec
from twin.physics.sky import sky_mag_arcsec2


@dataclass(frozen=True, slots=True)
class Exposure:
    """One science exposure as the operations loop knows it when the shutter closes.

    What the loop decides (which request, when, which band, how long) and nothing it
    would have to compute: the rest of the truth (geometry, sky, seeing, equipment,
    depth, value) is :func:`exposure_truth`'s, in batches. Pipeline stages, the envs'
    reward and the log all start from this one record.
    """

    obs_id: int  # unique in the run, increasing with completion time
    visit_id: int  # the visit (one policy decision) it belongs to
    exposure_index: int  # 0.. within the visit
    night: int  # index of the run's night at its site
    request_row: int  # row of the request in the run's RequestQueue
    band: str
    exptime_s: float
    mjd_start: float  # shutter opens
    mjd_end: float  # shutter closes
    slew_s: float  # slew/settle/filter time before it (0 after the visit's first)
    n_exposures: int  # exposures planned in the visit (the value is shared among them)
    telescope: str
    site: str


EXPOSURE_FIELDS = tuple(f.name for f in fields(Exposure))


def exposure_columns(exposures: Sequence[Exposure]) -> dict[str, np.ndarray]:
    """The records as columns, the input of :func:`exposure_truth`."""
    out = {name: np.asarray([getattr(e, name) for e in exposures]) for name in EXPOSURE_FIELDS}
    out["band"] = np.asarray([e.band for e in exposures], dtype=object)
    return out


def exposure_truth(tw: TelescopeWorld, queue: RequestQueue, raw: dict[str, np.ndarray],
                   alert_mag=None) -> dict[str, np.ndarray]:  # fmt: skip
    """Every column of :data:`twin.ops.records.OBSERVATION_SCHEMA` for exposures of one
    telescope. ``raw`` holds :func:`exposure_columns` of its records; ``alert_mag(alert_id,
    band, mjd)`` gives a transient's true magnitude."""
    sw = tw.site
    site = sw.site
    rows = np.asarray(raw["request_row"], dtype=np.int64)
    n = rows.size
    t0 = np.asarray(raw["mjd_start"], dtype=float)
    t1 = np.asarray(raw["mjd_end"], dtype=float)
    bands = np.asarray(raw["band"], dtype=object)
    exptime = np.asarray(raw["exptime_s"], dtype=float)
    ra, dec = queue.ra_deg[rows], queue.dec_deg[rows]
    geo = sw.visibility.observe(np.concatenate([ra, ra]), np.concatenate([dec, dec]),
                                np.concatenate([t0, t1]))  # fmt: skip
    start, end = slice(0, n), slice(n, 2 * n)
    weather = sw.weather.sample(t0)
    eq = tw.equipment.columns(t0)
    airmass = geo.airmass[start]
    seeing, image_fwhm, sky, m5, quality, zeropoint = _depth(
        tw, geo, start, weather, eq, bands, exptime, with_quality=True
    )
    value = queue.priority[rows] * quality / np.asarray(raw["n_exposures"], dtype=float)
    requests = [queue.requests[r] for r in rows]
    alert_ids = [r.alert_id for r in requests]
    transient = _transient_mag(alert_ids, bands, t0, alert_mag)
    detected = np.nan_to_num(transient, nan=np.inf) <= m5
    return {
        "obs_id": raw["obs_id"], "visit_id": raw["visit_id"],
        "exposure_index": raw["exposure_index"], "night": raw["night"],
        "site": [site.name] * n, "site_lat_deg": np.full(n, site.lat_deg),
        "site_lon_deg": np.full(n, site.lon_deg), "site_height_m": np.full(n, site.height_m),
        "telescope": [tw.name] * n, "request_id": [r.request_id for r in requests],
        "program": [r.program for r in requests], "target_id": [r.target_id for r in requests],
        "alert_id": alert_ids, "ra_deg": ra, "dec_deg": dec, "band": list(bands),
        "exptime_s": exptime, "mjd_start": t0, "mjd_end": t1,
        "alt_deg": geo.alt_deg[start], "az_deg": geo.az_deg[start], "airmass": airmass,
        "hour_angle_h": geo.hour_angle_h[start], "alt_end_deg": geo.alt_deg[end],
        "az_end_deg": geo.az_deg[end], "airmass_end": geo.airmass[end],
        "sun_alt_end_deg": geo.sun_alt_deg[end], "sun_alt_deg": geo.sun_alt_deg[start],
        "moon_alt_deg": geo.moon_alt_deg[start], "moon_sep_deg": geo.moon_sep_deg[start],
        "moon_illum": geo.moon_illum[start], "sky_mag_arcsec2": sky,
        "seeing_zenith_arcsec": weather["seeing_fwhm_arcsec"], "seeing_fwhm_arcsec": seeing,
        "image_fwhm_arcsec": image_fwhm, "transparency": weather["transparency"],
        "cloud_cover": weather["cloud_cover"], "zeropoint_mag": zeropoint, "m5": m5,
        "quality": quality, "value": value, "slew_s": raw["slew_s"],
        "transient_mag": transient, "detected": detected,
        "focus_offset_um": eq["focus_offset_um"], "defocus_fwhm_arcsec": eq["defocus_fwhm_arcsec"],
        "throughput": eq["throughput"], "pointing_error_ra_arcsec": eq["pointing_error_ra_arcsec"],
        "pointing_error_dec_arcsec": eq["pointing_error_dec_arcsec"],
        "tracking_error_arcsec": eq["tracking_error_arcsec"],
        "tracking_pa_deg": eq["tracking_pa_deg"], "n_hot_pixels": eq["n_hot_pixels"],
        "n_bad_columns": eq["n_bad_columns"], "calibration_age_days": eq["calibration_age_days"],
        "zeropoint_error_mag": eq["zeropoint_error_mag"],
    }  # fmt: skip


def exposure_detected(tw: TelescopeWorld, queue: RequestQueue, exposure: Exposure,
                      alert_mag) -> bool:  # fmt: skip
    """:func:`exposure_truth`'s ``detected`` for one alert exposure, computing only what
    it needs (the geometry at the shutter's opening, the focus and the throughput, not
    the whole equipment state): the loop asks it at each alert exposure, whose detection
    steers the run. The same functions on the same values, so the same answer as the
    day's batch (tested)."""
    t0 = np.asarray([exposure.mjd_start], dtype=float)
    bands = np.asarray([exposure.band], dtype=object)
    alert_ids = [queue.requests[exposure.request_row].alert_id]
    transient = _transient_mag(alert_ids, bands, t0, alert_mag)
    return bool(np.nan_to_num(transient, nan=np.inf)[0] <= exposure_m5(tw, queue, exposure))


def exposure_m5(tw: TelescopeWorld, queue: RequestQueue, exposure: Exposure) -> float:
    """:func:`exposure_truth`'s ``m5`` of one exposure, computed alone."""
    sw = tw.site
    rows = np.asarray([exposure.request_row], dtype=np.int64)
    t0 = np.asarray([exposure.mjd_start], dtype=float)
    bands = np.asarray([exposure.band], dtype=object)
    exptime = np.asarray([exposure.exptime_s], dtype=float)
    geo = sw.visibility.observe(queue.ra_deg[rows], queue.dec_deg[rows], t0)
    equipment = tw.equipment
    eq = {"defocus_fwhm_arcsec": equipment.focus.at(t0)[1],
          "throughput": equipment.throughput.at(t0)}  # fmt: skip
    return float(_depth(tw, geo, slice(0, 1), sw.weather.sample(t0), eq, bands, exptime)[3][0])


def _depth(tw: TelescopeWorld, geo, start: slice, weather: dict, eq: dict, bands: np.ndarray,
           exptime: np.ndarray, with_quality: bool = False) -> tuple:  # fmt: skip
    """(seeing, image FWHM, sky, m5, quality, zero point) at the shutter's opening; the
    last two only ``with_quality`` (else None)."""
    site = tw.site.site
    n = bands.size
    centre = np.array([tw.telescope.filter(b).center_nm for b in bands]) if n else np.empty(0)
    airmass = geo.airmass[start]
    seeing = delivered_seeing_arcsec(weather["seeing_fwhm_arcsec"], airmass, centre)
    image_fwhm = np.hypot(seeing, eq["defocus_fwhm_arcsec"])
    sky = np.empty(n)
    m5 = np.empty(n)
    quality = np.empty(n) if with_quality else None
    zeropoint = np.empty(n) if with_quality else None
    for band in np.unique(bands) if n else ():
        sel = bands == band
        sky[sel] = sky_mag_arcsec2(
            band, geo.alt_deg[start][sel], geo.moon_alt_deg[start][sel],
            geo.moon_sep_deg[start][sel], geo.moon_illum[start][sel],
            geo.sun_alt_deg[start][sel], site.sky_brightening_mag, site.height_m,
        )  # fmt: skip
        if with_quality:
            zeropoint[sel] = (tw.telescope.zeropoint_mag(band)
                              + 2.5 * np.log10(eq["throughput"][sel]))  # fmt: skip
        for t in np.unique(exptime[sel]):
            sub = sel & (exptime == t)
            m5[sub] = tw.quality.depth(
                band, t, airmass=airmass[sub], seeing_fwhm_arcsec=image_fwhm[sub],
                sky_mag_arcsec2=sky[sub], transparency=weather["transparency"][sub],
                throughput=eq["throughput"][sub],
            )  # fmt: skip
            if with_quality:
                quality[sub] = tw.quality.quality(band, t, m5[sub])
    return seeing, image_fwhm, sky, m5, quality, zeropoint


def _transient_mag(alert_ids: list[str], bands: np.ndarray, t0: np.ndarray,
                   alert_mag) -> np.ndarray:  # fmt: skip
    """The true magnitude of each exposure's alert transient (NaN: none or unknown)."""
    transient = np.full(len(alert_ids), np.nan)
    if alert_mag is not None:
        for i, alert_id in enumerate(alert_ids):
            if alert_id:
                transient[i] = alert_mag(alert_id, bands[i], t0[i])
    return transient
