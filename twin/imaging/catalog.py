"""The sky in a field: stars, galaxies, the exposure's transient, satellite and aircraft trails.

With a population (``spec.population``, :mod:`twin.alerts.population`), the transients
nobody announced, variable stars, AGN and asteroids join them: see
:mod:`twin.alerts.population.frame` for what a frame shows.

Persistence. The static sky (stars, galaxies) is a function of position on the sky and
``sky_seed`` only, never of the exposure: the sphere is cut into fixed cells
(:data:`CELL_DEG` declination strips split into near-equal-area RA cells) and each cell's
sources come from its own generator, seeded by ``(sky_seed, kind, cell)``. Within a cell
the sources are drawn one magnitude bin at a time, brightest first, so a deeper
exposure adds faint sources without changing the bright ones. Two exposures of
overlapping fields (other pointing error, dither, band or depth) therefore see the same
stars and galaxies at the same positions, with stable ``source_id`` s, which reference
subtraction and multi-site fusion need. Trails come from ``spec.seed`` (they belong to
the exposure).

Depth. Sources are drawn to ``m5 + extra_mag`` (1.5 mag below the exposure's 5σ depth
from :func:`twin.physics.etc.m5` with the exposure's airmass, image FWHM, sky,
transparency × throughput and height) so that completeness can be measured around m5;
``max_stars`` / ``max_galaxies`` (sources on the frame plus a 30" margin) brighten the
limit of very deep or crowded fields.

Star counts (cumulative, per deg², r band), a fitted power law with a gentle curvature::

    log10 N(<r, b) = log10 N20 + γ log10(1 / sin|b|) + s(b) (r - 20) + c (r - 20)²

with ``N20 = 1000`` deg⁻² to r = 20 at the galactic pole, ``γ = 1.2`` (|b| floored at
3°), ``s(b) = 0.20 + 0.06 (1 - sin|b|)`` and ``c = -0.004``. Anchors (approximate, read
off published counts rather than refitted): Bahcall & Soneira (1980, ApJS 44, 73) model
counts of ~10³ deg⁻² to V ~ 20 near the pole and the steep rise toward the plane;
SDSS counts at high latitude of a few thousand deg⁻² to r ~ 22 (Jurić et al. 2008, ApJ
673, 864), i.e. ``dlogN/dm`` ≈ 0.2 at r ~ 20 flattening fainter as the halo takes over.
This gives ~1,000 (pole), ~2,500 (|b| = 30°), ~8,000 (|b| = 10°) stars per deg² to r =
20. Longitude (bulge, anticentre) and dust extinction are not modelled.

Star colours: a position ``t`` along the main-sequence stellar locus (A0 ... M6,
:data:`STELLAR_LOCUS`, SDSS-like AB colours rounded after Covey et al. 2007, AJ 134,
2398, Table 3, with the Sun's u-g 1.43, g-r 0.44, r-i 0.11, i-z 0.03) drawn from a
mixture of a blue turnoff peak (F/G, g-r ≈ 0.3), G/K dwarfs, and an M-dwarf peak (g-r ≈
1.4) whose weight grows faintward: the bimodal g-r distribution of faint high-latitude
stars (Jurić et al. 2008, Fig. 1; Bahcall & Soneira's "G and M" stars), plus 0.03 mag
scatter per colour.

Galaxy counts (cumulative, per deg², i band): the LSST Science Book (2009, §3.7.2, eq.
3.7) ``N(<i) = 46 × 10^(0.31 (i - 25))`` arcmin⁻² for 20.5 < i < 25.5 (55 arcmin⁻² to
i = 25.3), extended fainter with the same slope, and brighter than i = 20.5 with the
Euclidean slope 0.6 (Yasuda et al. 2001, AJ 122, 1104), which gives ~90 deg⁻² to r ≈
17.8, the SDSS main-sample density (Strauss et al. 2002, AJ 124, 1810). In r this is
~4 × 10⁴ deg⁻² to r = 23.5 (r - i ≈ 0.35).

Galaxy morphology: bulge (de Vaucouleurs, n = 4) + disk (exponential, n = 1) + star-
forming knots (small Gaussians on the disk). Redness ``q`` ~ Beta(1.5, 3) sets the colour
(between blue-cloud and red-sequence observed colours at z ~ 0.3-0.8; illustrative, not
fitted) and the bulge fraction (≈ 0.7 q). Disk half-light radius ``0.8" × 10^(-0.12 (i -
22))`` with 0.15 dex scatter (≈ 0.35" at i = 25, as COSMOS galaxies, Leauthaud et al.
2007, ApJS 172, 219); bulge radius 0.2-0.5 of it. Disk axis ratio from a random
inclination of an oblate disk of intrinsic thickness 0.2; bulge axis ratio 0.6-1.
Knots: Poisson, mean 5 (1 - B/T), carrying 5-20 % of the disk light.

Trails: satellites (sunlit, solar colours via
:data:`twin.physics.sky.SUN_COLOUR_MINUS_V`) and aircraft, at ``rate_per_hour_deg2`` per
deg² of footprint per hour of exposure; each crosses the whole frame. Default 0.5 h⁻¹
deg⁻²: ZTF found satellite streaks on 18 % of its 30 s, 47 deg² twilight frames in 2021
(Mróz et al. 2022, ApJL 924, L30), ≈ 0.46 h⁻¹ deg⁻². A trail's brightness is the object's
magnitude spread over its angular speed: ``m + 2.5 log10(ω / (arcsec/s))`` per arcsec of
track; its width is the out-of-focus pupil, ``D / range``.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twin.imaging.spec import FrameSpec
from twin.physics.etc import m5
from twin.physics.sky import SUN_COLOUR_MINUS_V

BANDS = ("u", "g", "r", "i", "z", "y")
CELL_DEG = 0.2
"""Side of the sky cells whose sources share a generator."""
MAG_BIN = 1.0
MAX_STARS = 50000
MAX_GALAXIES = 30000
"""Default caps on a frame's sources (the faint limit brightens to keep within them)."""

STAR_N20_POLE_PER_DEG2 = 1000.0
STAR_COSEC_POWER = 1.2
STAR_SLOPE_POLE = 0.20
STAR_SLOPE_PLANE_EXTRA = 0.06
STAR_CURVATURE = -0.004
STAR_MIN_ABS_B_DEG = 3.0
STAR_MAG_RANGE_R = (4.0, 30.0)

GALAXY_N_I25_PER_ARCMIN2 = 46.0
GALAXY_SLOPE_FAINT = 0.31
GALAXY_KNEE_I = 20.5
GALAXY_SLOPE_BRIGHT = 0.6
GALAXY_MAG_RANGE_I = (12.0, 29.0)

# Main-sequence locus, one row per node t = 0..9: A0 F0 F5 G2 K0 K5 M0 M2 M4 M6.
# Columns: u-g, g-r, r-i, i-z, z-y (AB).
STELLAR_LOCUS = np.array([
    [1.00, -0.23, -0.15, -0.13, -0.05],
    [0.95, 0.10, -0.01, -0.03, 0.00],
    [0.98, 0.25, 0.06, 0.00, 0.01],
    [1.43, 0.44, 0.11, 0.03, 0.02],
    [1.75, 0.65, 0.22, 0.10, 0.04],
    [2.35, 1.05, 0.40, 0.22, 0.08],
    [2.55, 1.35, 0.62, 0.35, 0.12],
    [2.60, 1.45, 0.95, 0.50, 0.20],
    [2.65, 1.52, 1.45, 0.75, 0.32],
    [2.70, 1.60, 2.05, 1.05, 0.45],
])  # fmt: skip
# Star populations: (weight at r = 14, centre t, sigma t); the M-dwarf weight grows faintward.
_TURNOFF, _GK, _MDWARF = (0.35, 2.3, 0.6), (0.55, 3.8, 0.8), (0.10, 6.8, 1.2)
_MDWARF_WEIGHT_PER_MAG, _MDWARF_WEIGHT_MAX = 0.03, 0.45
STAR_COLOUR_SCATTER = 0.03
GALAXY_BLUE = np.array([0.70, 0.40, 0.25, 0.15, 0.08])  # u-g, g-r, r-i, i-z, z-y
GALAXY_RED = np.array([1.90, 1.30, 0.60, 0.40, 0.20])
GALAXY_COLOUR_SCATTER = 0.05
_NOISE_COLUMNS = [f"colour_noise_{k}" for k in range(5)]
_KIND = {"star": 0, "galaxy": 1, "transient": 2, "trail": 3}


def star_counts_per_deg2(r_mag, abs_b_deg) -> np.ndarray:
    """Stars brighter than ``r_mag`` per deg² at galactic latitude ``|b|``."""
    sin_b = np.sin(np.radians(np.maximum(np.abs(abs_b_deg), STAR_MIN_ABS_B_DEG)))
    dm = np.asarray(r_mag, dtype=float) - 20.0
    slope = STAR_SLOPE_POLE + STAR_SLOPE_PLANE_EXTRA * (1.0 - sin_b)
    log_n = (math.log10(STAR_N20_POLE_PER_DEG2) - STAR_COSEC_POWER * np.log10(sin_b)
             + slope * dm + STAR_CURVATURE * dm**2)  # fmt: skip
    return 10.0**log_n


def galaxy_counts_per_deg2(i_mag) -> np.ndarray:
    """Galaxies brighter than ``i_mag`` per deg² (LSST Science Book eq. 3.7, extended)."""
    i = np.asarray(i_mag, dtype=float)
    at_knee = math.log10(GALAXY_N_I25_PER_ARCMIN2 * 3600.0) + GALAXY_SLOPE_FAINT * (
        GALAXY_KNEE_I - 25.0
    )
    slope = np.where(i >= GALAXY_KNEE_I, GALAXY_SLOPE_FAINT, GALAXY_SLOPE_BRIGHT)
    return 10.0 ** (at_knee + slope * (i - GALAXY_KNEE_I))


def _mags_from_colours(ref: np.ndarray, ref_band: str, colours: np.ndarray) -> dict:
    """Magnitudes in every band from one band's and the colours u-g, g-r, r-i, i-z, z-y."""
    ug, gr, ri, iz, zy = colours.T
    r = ref if ref_band == "r" else ref + ri
    i = r - ri
    g = r + gr
    z = i - iz
    return {"u": g + ug, "g": g, "r": r, "i": i, "z": z, "y": z - zy}


def _band_minus_ref(colours: np.ndarray, ref_band: str, band: str) -> np.ndarray:
    zero = np.zeros(len(colours))
    return _mags_from_colours(zero, ref_band, colours)[band]


def _ref_limit(band: str, band_limit: float, ref_band: str, colours: np.ndarray, scatter: float):
    """The reference-band limit holding every source brighter than ``band_limit``."""
    return band_limit - float(_band_minus_ref(colours, ref_band, band).min()) + 5.0 * scatter


# --- sky cells ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    i_dec: int
    i_ra: int
    dec_lo: float
    dec_hi: float
    ra_lo: float
    ra_hi: float

    @property
    def area_deg2(self) -> float:
        band = math.sin(math.radians(self.dec_hi)) - math.sin(math.radians(self.dec_lo))
        return band * math.radians(self.ra_hi - self.ra_lo) * (180.0 / math.pi) ** 2

    @property
    def centre(self) -> tuple[float, float]:
        return 0.5 * (self.ra_lo + self.ra_hi), 0.5 * (self.dec_lo + self.dec_hi)


def _cells_in_circle(ra_deg: float, dec_deg: float, radius_deg: float) -> list[_Cell]:
    """Sky cells that may hold points within ``radius_deg`` of (ra, dec)."""
    n_strips = round(180.0 / CELL_DEG)
    lo = max(0, math.floor((dec_deg - radius_deg + 90.0) / CELL_DEG))
    hi = min(n_strips - 1, math.floor((dec_deg + radius_deg + 90.0) / CELL_DEG))
    # No point of the circle is further in RA than asin(sin r / cos d) for the circle's most
    # poleward declination d (the exact bound uses the centre's; this one is looser, safe).
    cos_pole = math.cos(math.radians(min(90.0, abs(dec_deg) + radius_deg)))
    s = math.sin(math.radians(radius_deg))
    half = 180.0 if s >= cos_pole else math.degrees(math.asin(s / cos_pole))
    cells = []
    for i_dec in range(lo, hi + 1):
        dec_lo, dec_hi = i_dec * CELL_DEG - 90.0, (i_dec + 1) * CELL_DEG - 90.0
        n_ra = max(1, int(360.0 * math.cos(math.radians(0.5 * (dec_lo + dec_hi))) / CELL_DEG))
        width = 360.0 / n_ra
        if half >= 180.0 or 2 * half + 2 * width >= 360.0:
            indices = range(n_ra)
        else:
            first, last = math.floor((ra_deg - half) / width), math.floor((ra_deg + half) / width)
            indices = sorted({k % n_ra for k in range(first, last + 1)})
        cells += [_Cell(i_dec, k, dec_lo, dec_hi, k * width, (k + 1) * width) for k in indices]
    return cells


def sky_cell(i_dec: int, i_ra: int) -> _Cell:
    """The sky cell of strip ``i_dec`` (from the south pole) and RA index ``i_ra``."""
    i_dec, i_ra = int(i_dec), int(i_ra)
    dec_lo, dec_hi = i_dec * CELL_DEG - 90.0, (i_dec + 1) * CELL_DEG - 90.0
    n_ra = max(1, int(360.0 * math.cos(math.radians(0.5 * (dec_lo + dec_hi))) / CELL_DEG))
    width = 360.0 / n_ra
    return _Cell(i_dec, i_ra, dec_lo, dec_hi, i_ra * width, (i_ra + 1) * width)


def cell_of(source_id) -> tuple[np.ndarray, np.ndarray]:
    """``(i_dec, i_ra)`` of the cell a star's or galaxy's ``source_id`` was drawn in."""
    ids = np.asarray(source_id, dtype=np.int64)
    return (ids >> 48) & 0xFFF, (ids >> 32) & 0xFFFF


def cell_galaxies(i_dec: int, i_ra: int, faint_i: float, sky_seed: int = 0) -> pd.DataFrame:
    """Every galaxy of one sky cell to ``faint_i`` (i band, rounded up to a whole bin), as
    :func:`field_sources` draws them: the same ``source_id`` s and shapes, whatever the field.

    Columns: ``source_id``, ``ra_deg``, ``dec_deg``, ``i_mag`` and the shape columns.
    Why: a per-cell product (a learned source's bank of stamps) must not depend on which
    exposure asked for the cell first.
    """
    cell = sky_cell(i_dec, i_ra)
    table = _draw_kind("galaxy", [cell], [galaxy_counts_per_deg2], (GALAXY_MAG_RANGE_I[0],
                       float(faint_i)), sky_seed, _galaxy_attributes)  # fmt: skip
    if table.empty:
        return table
    return table.drop(columns=_NOISE_COLUMNS).rename(columns={"ref_mag": "i_mag"})


def _source_ids(kind: str, cell: _Cell, n: int) -> np.ndarray:
    base = (_KIND[kind] << 60) | (cell.i_dec << 48) | (cell.i_ra << 32)
    return base + np.arange(n, dtype=np.int64)


def _draw_cell(cell, rng, cumulative, mag_lo, mag_hi, attributes) -> dict:
    """Sources in ``cell`` bin by bin from ``mag_lo`` (brightest first) to ``mag_hi``."""
    parts = []
    if not mag_hi > mag_lo:  # also False for a NaN or -inf limit (no light)
        return {}
    edges = np.arange(mag_lo, mag_hi + MAG_BIN, MAG_BIN)
    for lo, hi in itertools.pairwise(edges):
        grid = np.linspace(lo, hi, 17)
        counts = cumulative(grid) * cell.area_deg2
        n = int(rng.poisson(counts[-1] - counts[0]))
        sin_dec = rng.uniform(math.sin(math.radians(cell.dec_lo)),
                              math.sin(math.radians(cell.dec_hi)), n)  # fmt: skip
        part = {
            "ra_deg": rng.uniform(cell.ra_lo, cell.ra_hi, n),
            "dec_deg": np.degrees(np.arcsin(sin_dec)),
            "ref_mag": np.interp(rng.uniform(counts[0], counts[-1], n), counts, grid),
        }
        part.update(attributes(rng, part["ref_mag"]))
        parts.append(part)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def _star_attributes(rng: np.random.Generator, r_mag: np.ndarray) -> dict:
    n = len(r_mag)
    w_m = np.clip(_MDWARF[0] + _MDWARF_WEIGHT_PER_MAG * (r_mag - 14.0), _MDWARF[0],
                  _MDWARF_WEIGHT_MAX)  # fmt: skip
    w_to = _TURNOFF[0] * (1.0 - w_m) / (_TURNOFF[0] + _GK[0])
    u = rng.uniform(size=n)
    z = rng.normal(size=n)
    centre = np.where(u < w_to, _TURNOFF[1], np.where(u < 1.0 - w_m, _GK[1], _MDWARF[1]))
    sigma = np.where(u < w_to, _TURNOFF[2], np.where(u < 1.0 - w_m, _GK[2], _MDWARF[2]))
    return {"locus_t": np.clip(centre + sigma * z, 0.0, len(STELLAR_LOCUS) - 1.0),
            "colour_noise": rng.normal(0.0, STAR_COLOUR_SCATTER, (n, 5))}  # fmt: skip


def _galaxy_attributes(rng: np.random.Generator, i_mag: np.ndarray) -> dict:
    n = len(i_mag)
    redness = rng.beta(1.5, 3.0, n)
    colour_noise = rng.normal(0.0, GALAXY_COLOUR_SCATTER, (n, 5))
    bulge_frac = np.clip(0.7 * redness + rng.normal(0.0, 0.1, n), 0.0, 0.9)
    hlr = 0.8 * 10.0 ** (-0.12 * (i_mag - 22.0) + rng.normal(0.0, 0.15, n))
    hlr = np.clip(hlr, 0.08, 15.0)
    bulge_ratio = rng.uniform(0.2, 0.5, n)
    cos_i = rng.uniform(0.0, 1.0, n)
    q_bulge = rng.uniform(0.6, 1.0, n)
    pa = rng.uniform(0.0, 180.0, n)
    n_knots = rng.poisson(5.0 * (1.0 - bulge_frac))
    knot_frac = rng.uniform(0.05, 0.2, n)
    knot_seed = rng.integers(0, 2**31 - 1, n)
    return {
        "redness": redness, "colour_noise": colour_noise, "bulge_frac": bulge_frac,
        "hlr_disk_arcsec": hlr, "hlr_bulge_arcsec": bulge_ratio * hlr,
        "q_disk": np.sqrt(cos_i**2 + 0.2**2 * (1.0 - cos_i**2)), "q_bulge": q_bulge,
        "pa_deg": pa, "n_knots": n_knots, "knot_frac": np.where(n_knots > 0, knot_frac, 0.0),
        "knot_seed": knot_seed,
    }  # fmt: skip


def star_colours(locus_t: np.ndarray) -> np.ndarray:
    """Colours u-g, g-r, r-i, i-z, z-y along the stellar locus at positions ``locus_t``."""
    nodes = np.arange(len(STELLAR_LOCUS))
    return np.stack([np.interp(locus_t, nodes, STELLAR_LOCUS[:, k]) for k in range(5)], axis=1)


def galaxy_colours(redness: np.ndarray) -> np.ndarray:
    return GALAXY_BLUE + np.asarray(redness)[:, None] * (GALAXY_RED - GALAXY_BLUE)


# --- the catalogue -------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailModel:
    """Satellite and aircraft trails: rate and the objects' brightness, speed and range."""

    rate_per_hour_deg2: float = 0.5
    aircraft_fraction: float = 0.1
    satellite_mag_v: tuple[float, float] = (4.5, 8.0)
    satellite_speed_deg_s: tuple[float, float] = (0.3, 1.2)
    satellite_altitude_km: tuple[float, float] = (400.0, 1200.0)
    aircraft_mag_v: tuple[float, float] = (0.0, 3.0)
    aircraft_speed_deg_s: tuple[float, float] = (0.5, 2.0)
    aircraft_altitude_km: tuple[float, float] = (8.0, 12.0)


@dataclass(frozen=True)
class SkyCatalog:
    """Sources around one exposure's field. Magnitudes are AB, in ``band`` (``mag``)."""

    band: str
    faint_mag: float
    stars: pd.DataFrame
    galaxies: pd.DataFrame
    transients: pd.DataFrame = field(default_factory=pd.DataFrame)
    trails: pd.DataFrame = field(default_factory=pd.DataFrame)


def faint_limit_mag(spec: FrameSpec, extra_mag: float = 1.5) -> float:
    """``m5 + extra_mag`` for the exposure (``-inf`` when no light gets through)."""
    depth = m5(spec.telescope, spec.band, exptime_s=spec.exptime_s, airmass=spec.airmass,
               seeing_fwhm_arcsec=spec.image_fwhm_arcsec, sky_mag_arcsec2=spec.sky_mag_arcsec2,
               transparency=spec.transparency * spec.throughput,
               height_m=spec.site_height_m)  # fmt: skip
    return float(depth) + extra_mag


def field_box_deg(spec: FrameSpec, margin_arcsec: float = 30.0) -> tuple[float, float]:
    """Half width and half height (deg) of the frame plus a margin, in the tangent plane."""
    half = 0.5 * spec.pixel_scale_arcsec * np.array([spec.nx, spec.ny]) + margin_arcsec
    return float(half[0] / 3600.0), float(half[1] / 3600.0)


def field_radius_deg(spec: FrameSpec, margin_arcsec: float = 30.0) -> float:
    """Radius of the circle around the true centre that holds the frame plus a margin."""
    return math.hypot(*field_box_deg(spec, margin_arcsec)) * 1.001


def _galactic_b(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra=ra_deg * u.deg, dec=dec_deg * u.deg, frame="icrs").galactic.b.deg


def _within(ra, dec, ra0, dec0, radius_deg, box_deg=None) -> np.ndarray:
    """True where (ra, dec) lies within ``radius_deg`` of (ra0, dec0) and, if given, within
    ``box_deg = (half width, half height)`` in the tangent plane there (north up)."""
    r1, d1, r0, d0 = map(np.radians, (ra, dec, ra0, dec0))
    cos_c = np.sin(d1) * np.sin(d0) + np.cos(d1) * np.cos(d0) * np.cos(r1 - r0)
    inside = cos_c >= math.cos(math.radians(radius_deg))
    if box_deg is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = np.cos(d1) * np.sin(r1 - r0) / cos_c
            eta = (np.cos(d0) * np.sin(d1) - np.sin(d0) * np.cos(d1) * np.cos(r1 - r0)) / cos_c
        half_w, half_h = np.radians(box_deg[0]), np.radians(box_deg[1])
        inside &= (cos_c > 0) & (np.abs(xi) <= half_w) & (np.abs(eta) <= half_h)
    return inside


def _draw_kind(kind, cells, cumulatives, mag_range, sky_seed, attributes) -> pd.DataFrame:
    frames = []
    for cell, cumulative in zip(cells, cumulatives, strict=True):
        rng = np.random.default_rng([sky_seed, _KIND[kind], cell.i_dec, cell.i_ra])
        drawn = _draw_cell(cell, rng, cumulative, *mag_range, attributes)
        if drawn and len(drawn["ra_deg"]):
            noise = drawn.pop("colour_noise")
            table = pd.DataFrame(drawn)
            table.insert(0, "source_id", _source_ids(kind, cell, len(table)))
            table[_NOISE_COLUMNS] = noise
            frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _finish(table, ref_band, colours_fn, band, limit, max_n, in_field) -> pd.DataFrame:
    """Band magnitudes, the field and depth cuts, and the count cap (brightest kept)."""
    if table.empty:
        return table
    table = table[in_field(table)].copy()
    colours = colours_fn(table) + table[_NOISE_COLUMNS].to_numpy()
    table = table.drop(columns=_NOISE_COLUMNS)
    for b, mags in _mags_from_colours(table.pop("ref_mag").to_numpy(), ref_band, colours).items():
        table[f"mag_{b}"] = mags
    table["mag"] = table[f"mag_{band}"]
    table = table[table["mag"] <= limit].sort_values("mag", kind="stable")
    return table.head(max_n).reset_index(drop=True)


def field_sources(ra_deg: float, dec_deg: float, radius_deg: float, band: str, faint_mag: float,
                  *, box_deg: tuple[float, float] | None = None, sky_seed: int = 0,
                  max_stars: int = MAX_STARS, max_galaxies: int = MAX_GALAXIES,
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Stars and galaxies within ``radius_deg`` of (ra, dec) (and within ``box_deg``, half
    sizes in the tangent plane, if given) brighter than ``faint_mag`` in ``band``."""
    cells = _cells_in_circle(ra_deg, dec_deg, radius_deg)
    centres = np.array([c.centre for c in cells]).reshape(-1, 2)
    abs_b = np.abs(_galactic_b(centres[:, 0], centres[:, 1])) if cells else np.empty(0)
    area = 2 * math.pi * (1 - math.cos(math.radians(radius_deg))) * (180 / math.pi) ** 2
    if box_deg is not None:
        area = min(area, 4.0 * box_deg[0] * box_deg[1])

    def in_field(t):
        return _within(t["ra_deg"], t["dec_deg"], ra_deg, dec_deg, radius_deg, box_deg)

    def ref_cap(limit, cumulative, lo, max_n):
        if not limit > lo:
            return limit
        grid = np.linspace(lo, limit, 200)  # pre-cap: expect at most 4 max_n before cuts
        n = cumulative(grid) * area
        return float(limit if n[-1] <= 4 * max_n else np.interp(4 * max_n, n, grid))

    b_mean = float(abs_b.mean()) if cells else 90.0
    r_lim = _ref_limit(band, faint_mag, "r", STELLAR_LOCUS, STAR_COLOUR_SCATTER)
    r_lim = min(ref_cap(r_lim, lambda m: star_counts_per_deg2(m, b_mean),
                        STAR_MAG_RANGE_R[0], max_stars), STAR_MAG_RANGE_R[1])  # fmt: skip
    locus_ends = np.vstack([GALAXY_BLUE, GALAXY_RED])
    i_lim = _ref_limit(band, faint_mag, "i", locus_ends, GALAXY_COLOUR_SCATTER)
    i_lim = min(ref_cap(i_lim, galaxy_counts_per_deg2, GALAXY_MAG_RANGE_I[0], max_galaxies),
                GALAXY_MAG_RANGE_I[1])  # fmt: skip

    star_cum = [lambda m, b=b: star_counts_per_deg2(m, b) for b in abs_b]
    stars = _draw_kind("star", cells, star_cum, (STAR_MAG_RANGE_R[0], r_lim), sky_seed,
                       _star_attributes)  # fmt: skip
    galaxies = _draw_kind("galaxy", cells, [galaxy_counts_per_deg2] * len(cells),
                          (GALAXY_MAG_RANGE_I[0], i_lim), sky_seed, _galaxy_attributes)  # fmt: skip
    stars = _finish(stars, "r", lambda t: star_colours(t["locus_t"].to_numpy()), band,
                    faint_mag, max_stars, in_field)  # fmt: skip
    galaxies = _finish(galaxies, "i", lambda t: galaxy_colours(t["redness"].to_numpy()), band,
                       faint_mag, max_galaxies, in_field)  # fmt: skip
    return stars, galaxies


def _transients(spec: FrameSpec) -> pd.DataFrame:
    if spec.transient is None:
        return pd.DataFrame()
    t = spec.transient
    source_id = (_KIND["transient"] << 60) | zlib.crc32(t.alert_id.encode())
    return pd.DataFrame({"source_id": [source_id], "ra_deg": [t.ra_deg], "dec_deg": [t.dec_deg],
                         "mag": [t.mag], "alert_id": [t.alert_id]})  # fmt: skip


def draw_trails(spec: FrameSpec, model: TrailModel, radius_deg: float) -> pd.DataFrame:
    """Trails crossing the footprint during the exposure (random from ``spec.seed``)."""
    rng = np.random.default_rng([spec.seed, _KIND["trail"], 0x7472])
    area = math.pi * radius_deg**2
    n = int(rng.poisson(model.rate_per_hour_deg2 * area * spec.exptime_s / 3600.0))
    aircraft = rng.uniform(size=n) < model.aircraft_fraction

    def pick(sat, air):
        return np.where(aircraft, rng.uniform(*air, n), rng.uniform(*sat, n))

    mag_v = pick(model.satellite_mag_v, model.aircraft_mag_v)
    speed_arcsec_s = 3600.0 * pick(model.satellite_speed_deg_s, model.aircraft_speed_deg_s)
    range_m = 1e3 * pick(model.satellite_altitude_km, model.aircraft_altitude_km) * spec.airmass
    offset = radius_deg * np.sqrt(rng.uniform(size=n))
    angle = rng.uniform(0.0, 2 * math.pi, n)
    cos_dec = max(math.cos(math.radians(spec.true_dec_deg)), 1e-6)
    mag = mag_v + SUN_COLOUR_MINUS_V[spec.band] + 2.5 * np.log10(speed_arcsec_s)
    return pd.DataFrame({
        "source_id": (_KIND["trail"] << 60) | (spec.obs_id << 16) + np.arange(n, dtype=np.int64),
        "ra_deg": (spec.true_ra_deg + offset * np.sin(angle) / cos_dec) % 360.0,
        "dec_deg": spec.true_dec_deg + offset * np.cos(angle),
        "mag": mag, "pa_deg": rng.uniform(0.0, 180.0, n),
        "width_arcsec": np.degrees(spec.telescope.aperture_m / range_m) * 3600.0,
        "trail_kind": np.where(aircraft, "aircraft", "satellite"),
    })  # fmt: skip


def sky_catalog(spec: FrameSpec, *, sky_seed: int = 0, trails: TrailModel | None = None,
                extra_mag: float = 1.5, faint_mag: float | None = None,
                max_stars: int = MAX_STARS, max_galaxies: int = MAX_GALAXIES,
                margin_arcsec: float = 30.0) -> SkyCatalog:  # fmt: skip
    """The sources of the exposure ``spec`` on its frame (true pointing) plus a margin."""
    limit = faint_limit_mag(spec, extra_mag) if faint_mag is None else float(faint_mag)
    radius = field_radius_deg(spec, margin_arcsec)
    stars, galaxies = field_sources(spec.true_ra_deg, spec.true_dec_deg, radius, spec.band,
                                    limit, box_deg=field_box_deg(spec, margin_arcsec),
                                    sky_seed=sky_seed, max_stars=max_stars,
                                    max_galaxies=max_galaxies)  # fmt: skip
    trail_table = draw_trails(spec, trails or TrailModel(), radius)
    transients = _transients(spec)
    if spec.population is not None:
        box = field_box_deg(spec, margin_arcsec)
        stars, transients = _with_population(spec, stars, galaxies, transients, sky_seed, limit,
                                             radius, box)  # fmt: skip
    return SkyCatalog(spec.band, limit, stars, galaxies, transients, trail_table)


def _with_population(spec, stars, galaxies, transients, sky_seed, limit, radius, box):
    """Variable stars varied, and the population's point sources added to the transients
    (:mod:`twin.alerts.population.frame`), to the catalogue's faint limit."""
    from twin.alerts.population.frame import population_points, vary_stars

    def within(ra, dec):
        return _within(ra, dec, spec.true_ra_deg, spec.true_dec_deg, radius, box)

    points = population_points(spec, galaxies, sky_seed=sky_seed, radius_deg=radius,
                               within=within)  # fmt: skip
    points = points[points["mag"] <= limit]
    if not transients.empty:
        transients = transients.assign(pop_kind="", pop_id="")
    parts = [t for t in (transients, points) if not t.empty]
    transients = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return vary_stars(stars, spec, sky_seed), transients
