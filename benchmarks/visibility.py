"""Alt/az of many targets at many times: skytwin's hot path against astropy's AltAz.

Both compute the same (targets x times) grid at one site, refraction off. The ratio is
astropy's wall time over ours, measured in the same process; the agreement (max
angular difference) is printed too, so speed is never bought with accuracy.

    .venv/bin/python benchmarks/visibility.py [--targets 500] [--times 200]
"""

from __future__ import annotations

import argparse

import astropy.units as u
import numpy as np
from _common import best_of, report
from astropy.coordinates import AltAz, SkyCoord
from astropy.time import Time

import twin  # noqa: F401  (offline astropy)
from twin.astro.almanac import site_location
from twin.astro.orientation import EarthOrientation
from twin.astro.visibility import SiteVisibility
from twin.world.sites import SITES


def _max_sep_arcsec(alt, az, ref) -> float:
    a1, z1, a2, z2 = map(np.radians, (alt, az, ref.alt.deg, ref.az.deg))
    cos = np.sin(a1) * np.sin(a2) + np.cos(a1) * np.cos(a2) * np.cos(z1 - z2)
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))).max() * 3600)


def _row(case: str, n: int, t_astropy: float, t_ours: float, err: float) -> dict:
    return {"case": case, "pairs": n, "astropy_s": t_astropy, "skytwin_s": t_ours,
            "ratio": t_astropy / t_ours, "max_err_arcsec": err}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=100)
    args = parser.parse_args()

    site = SITES["cerro-pachon"]
    location = site_location(site)
    rng = np.random.default_rng(0)
    start = Time("2027-01-01").mjd
    vis = SiteVisibility(site, start, days=1)
    rows = []

    # 1. Random (target, time) pairs over a year: one vectorised astropy call.
    ra, dec = rng.uniform(0, 360, args.pairs), np.degrees(np.arcsin(rng.uniform(-1, 1, args.pairs)))
    mjd = start + rng.uniform(0, 365, args.pairs)
    frame = AltAz(obstime=Time(mjd, format="mjd"), location=location, pressure=0 * u.hPa)
    coords = SkyCoord(ra * u.deg, dec * u.deg)
    ref = coords.transform_to(frame)
    alt, az, _ = vis.altaz(ra, dec, mjd)

    def cold():
        vis.frame.orientation = EarthOrientation()
        vis.altaz(ra, dec, mjd)

    t_ref = best_of(lambda: coords.transform_to(frame), 2)
    err = _max_sep_arcsec(alt, az, ref)
    rows.append(
        _row("random pairs over a year, cold cache", args.pairs, t_ref, best_of(cold, 3), err)
    )
    warm = best_of(lambda: vis.altaz(ra, dec, mjd), 3)
    rows.append(_row("random pairs over a year, warm cache", args.pairs, t_ref, warm, err))

    # 2. A scheduler's use: at each decision time, all candidates at once.
    times = np.sort(start + 0.1 + rng.uniform(0, 0.4, args.decisions))
    cra = rng.uniform(0, 360, args.candidates)
    cdec = np.degrees(np.arcsin(rng.uniform(-1, 0.5, args.candidates)))
    candidates = SkyCoord(cra * u.deg, cdec * u.deg)

    def astropy_decisions():
        return [candidates.transform_to(AltAz(obstime=Time(t, format="mjd"), location=location,
                                              pressure=0 * u.hPa)) for t in times]  # fmt: skip

    def our_decisions():
        return [vis.altaz(cra, cdec, t) for t in times]

    def our_prepared_decisions():
        prepared = vis.prepare(cra, cdec, times[0])  # once per night, counted in the time
        return [vis.altaz_prepared(prepared, t) for t in times]

    refs, t_ref = astropy_decisions(), best_of(astropy_decisions, 2)
    label = f"{args.decisions} decisions x {args.candidates} candidates"
    for name, fn in (("", our_decisions), (", prepared", our_prepared_decisions)):
        ours = fn()
        err = max(_max_sep_arcsec(o[0], o[1], r) for o, r in zip(ours, refs, strict=True))
        rows.append(
            _row(label + name, args.decisions * args.candidates, t_ref, best_of(fn, 3), err)
        )

    # 3. A (targets x times) grid: astropy's best case (astrometry once per time).
    grid_t = start + 0.1 + np.linspace(0, 0.4, 100)
    grid_frame = AltAz(obstime=Time(grid_t, format="mjd"), location=location, pressure=0 * u.hPa)
    grid_coords = SkyCoord(cra[:, None] * u.deg, cdec[:, None] * u.deg)
    gref = grid_coords.transform_to(grid_frame)
    galt, gaz, _ = vis.altaz(cra[:, None], cdec[:, None], grid_t[None, :])
    rows.append(_row(f"grid {args.candidates} targets x 100 times", args.candidates * 100,
                     best_of(lambda: grid_coords.transform_to(grid_frame), 3),
                     best_of(lambda: vis.altaz(cra[:, None], cdec[:, None], grid_t[None, :]), 5),
                     _max_sep_arcsec(galt, gaz, gref)))  # fmt: skip

    print(f"alt/az at {site.name}, refraction off; ratio = astropy time / skytwin time")
    report("visibility", rows)


if __name__ == "__main__":
    main()
