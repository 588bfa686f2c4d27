"""Labelled difference-image candidates for real/bogus, made by the twin, with truth.

``skytwin models dataset transient --out DIR --pairs N --size PIX --seed S``

One *pair* (:func:`make_pair`):

1. a :class:`~twin.imaging.spec.FrameSpec` drawn by :func:`draw_spec`: site (height, so
   the cosmic-ray rate), telescope, band, exposure time, pointing (galactic latitude
   5-30°, so that most frames have stars for their PSF), pointing error, airmass, seeing,
   sky, transparency, defocus, tracking, hot pixels and bad columns in the frame;
2. the deep template of the field (:func:`models.transient.reference.render_template`,
   8 exposures, seeing 0.6-1.0 × the frame's); in a fraction :data:`P_MISREGISTER` of
   pairs its WCS is shifted by 0.3-1 px (:func:`misregister`): the frame's refined
   solution and the template then disagree, as with a bad astrometric solution;
3. injections (probability :data:`P_INJECT`; then 1 to :data:`MAX_INJECTIONS` per frame,
   ≥ 24 px apart, added to the frame's catalogue as transients): point sources of magnitude
   ``m5 + U(-3, 0.5)`` at least :data:`INJECT_MARGIN_PX` from the edges, ``m5`` the
   frame's 5σ depth (:func:`twin.imaging.catalog.
   faint_limit_mag` with no margin): a supernova in a galaxy of the template brighter
   than ``m5 + 1`` at an exponential-disk offset (radius ~ Gamma(2, h), h = disk
   half-light radius / 1.68, scaled by the axis ratio along a random angle), a hostless
   fast transient anywhere, or an asteroid (a hostless point: in one 30-300 s exposure a
   main-belt asteroid moves ≤ 2″, under the seeing, so it is drawn as a point);
4. the new frame rendered as ``skytwin frame`` does (:func:`render_new`), trails at a
   rate giving on average :data:`TRAILS_PER_FRAME` trails crossing the field, cosmic
   rays topped up to ``U(1, 6)`` expected per frame (the twin's own event model at a
   longer effective exposure: a 512² 60 s frame of the 1 m at 2200 m has 1.6),
   calibrated with the detector's noise-free bias and flat and a defect mask missing a
   fraction ``U(0, 0.5)`` of the hot pixels and 30 % of the bad columns (a defect map
   lags the detector: new hot pixels are bogus candidates every survey sees);
5. :func:`models.transient.difference.subtract`, then
   :func:`models.transient.cutouts.candidate_triplets`, then :func:`label_candidates`.

Labels (truth of the new frame, first match wins): ``real`` = within
:data:`MATCH_RADIUS_PX` = 1.5 px of an injected source; ``ambiguous`` (label −1, left
out of training and evaluation) within 2 FWHM of it; bogus classes:
``cosmic_ray`` (≤ 3 px of a track segment), ``hot_pixel`` (≤ 2.5 px), ``bad_column``
(≤ 2.5 px in x), ``trail`` (≤ half its width + 4 px of the line), ``bright_star`` (in a
bright star's halo, or ≤ 2 FWHM + 3 px of a star whose peak reaches half the full well),
``misregistration`` (a shifted pair, ≤ 2 FWHM of a star or galaxy brighter than
``m5 + 1``), ``other`` (everything else: residuals of fainter sources, noise).

Splits (:data:`SPLITS`): ``train``, ``val`` (threshold and model selection),
``test`` (the held-out seeds: other frame seeds *and* another static sky,
``sky_seed`` 1), all from the training sites and telescopes; ``unseen``: the site
:data:`UNSEEN_SITE` with the telescope :data:`UNSEEN_TELESCOPE`, never in training
(another pixel scale: 0.27″ against 0.389″ and 0.26″), ``sky_seed`` 2.

Storage (no pickle): ``shard_NNNN.npz`` (``triplets`` float16 N×3×63×63),
``shard_NNNN.candidates.parquet`` (one row per candidate: pair, split, label,
bogus_class, features, position, Scorr, flux, the pair's m5 and the injection's
magnitude), ``shard_NNNN.injections.parquet`` (one row per injected source, found or
not: kind, position, magnitude, m5, optimal SNR, ``detected`` within 1.5 px, ``masked``
by ZOGY), ``shard_NNNN.pairs.parquet`` (one row per pair: conditions, counts, seconds,
failure), ``index.json``. A shard is written when done,
so an interrupted build resumes at the next missing shard (``--resume`` is the default).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test", "unseen")
SPLIT_FRACTIONS = {"train": 0.62, "val": 0.13, "test": 0.13, "unseen": 0.12}
SKY_SEEDS = {"train": 0, "val": 0, "test": 1, "unseen": 2}
TRAIN_SITES = {"teide": 2390.0, "sutherland": 1800.0, "siding-spring": 1165.0,
               "mcdonald": 2070.0, "cerro-pachon": 2700.0}  # fmt: skip
TRAIN_TELESCOPES = ("1m", "4m")
UNSEEN_SITE, UNSEEN_SITE_HEIGHT_M, UNSEEN_TELESCOPE = "hanle", 4500.0, "2m"
BANDS = ("g", "r", "i")
EXPTIMES_S = (30.0, 60.0, 120.0, 300.0)
P_INJECT = 0.9
INJECT_KINDS = {"sn": 0.6, "hostless": 0.25, "asteroid": 0.15}
P_MISREGISTER = 0.15
TRAILS_PER_FRAME = 0.3
MAX_INJECTIONS = 4
INJECT_SEPARATION_PX = 24.0
INJECT_MARGIN_PX = 64.0
"""Injections stay this far from the frame's edge: ZOGY masks its outer 2 PSF radii
(30-50 px here), where nothing can be found."""
MATCH_RADIUS_PX = 1.5
AMBIGUOUS_RADIUS_FWHM = 2.0
"""Candidates farther than 1.5 px from the injection but within 2 FWHM of it are neither
real nor bogus (label −1, class ``ambiguous``): the injected source's own light, its
peak pushed off by a masked pixel or a host's residual. They are kept in the tables and
left out of training and evaluation (:func:`load_split`)."""
BOGUS_CLASSES = ("cosmic_ray", "hot_pixel", "bad_column", "trail", "bright_star",
                 "misregistration", "other")  # fmt: skip
SHARD_PAIRS = 40
MAX_CANDIDATES_PER_PAIR = 40
"""A pair keeps every real candidate and at most this many in all (a random subset of
its bogus ones): a frame with a bright saturated star makes hundreds of residual
candidates, which would otherwise be most of the dataset. Class rates per candidate are
then per-frame-weighted; ``n_candidates_all`` in the pairs table keeps the true count."""


@dataclass(frozen=True)
class PairPlan:
    """One pair to make: its index, split and seed (all draws come from the seed)."""

    pair_id: int
    split: str
    seed: int


def plan_pairs(n_pairs: int, seed: int) -> list[PairPlan]:
    """``n_pairs`` plans, splits in :data:`SPLIT_FRACTIONS`, interleaved so that a
    partial build holds every split; seeds disjoint per split (SeedSequence keyed by
    the split)."""
    counts = {s: round(f * n_pairs) for s, f in SPLIT_FRACTIONS.items()}
    counts["train"] += n_pairs - sum(counts.values())
    order = []
    for s in SPLITS:  # evenly spread positions per split, then sorted: interleaved
        order += [((k + 0.5) / max(counts[s], 1), s, k) for k in range(counts[s])]
    order.sort()
    plans = []
    for pair_id, (_, split, k) in enumerate(order):
        state = np.random.SeedSequence([seed, SPLITS.index(split), k]).generate_state(1)[0]
        plans.append(PairPlan(pair_id, split, int(state)))
    return plans


# --- 1. the frame ----------------------------------------------------------------------


def draw_spec(plan: PairPlan, size: int):
    """The frame's spec (module docstring, step 1) and the draws the labels need."""
    from astropy.coordinates import SkyCoord

    from twin.imaging.spec import FrameSpec
    from twin.physics.sky import DARK_SKY_ZENITH_MAG_ARCSEC2
    from twin.world.telescope import TELESCOPE_PRESETS

    rng = np.random.default_rng([plan.seed, 1])
    if plan.split == "unseen":
        site, height_m, tel = UNSEEN_SITE, UNSEEN_SITE_HEIGHT_M, UNSEEN_TELESCOPE
    else:
        site = str(rng.choice(list(TRAIN_SITES)))
        height_m, tel = TRAIN_SITES[site], str(rng.choice(TRAIN_TELESCOPES))
    telescope = TELESCOPE_PRESETS[tel]
    band = str(rng.choice(BANDS))
    gal_l = rng.uniform(0.0, 360.0)
    gal_b = rng.choice([-1, 1]) * rng.uniform(5.0, 30.0)
    icrs = SkyCoord(l=gal_l, b=gal_b, unit="deg", frame="galactic").icrs
    airmass = float(rng.uniform(1.0, 2.0))
    det = telescope.detector
    frame_px = size * size
    # Defects in the frame: U(0, 8) hot pixels and Poisson(0.5) bad columns. More would
    # mask much of the difference: ZOGY masks a PSF-sized box around each masked pixel.
    n_hot = int(rng.uniform(0, 8) * det.nx_pix * det.ny_pix / frame_px)
    n_cols = int(rng.poisson(0.5) * det.nx_pix / size)
    spec = FrameSpec(
        obs_id=plan.pair_id + 1, site=site, site_height_m=height_m, telescope=telescope,
        band=band, exptime_s=float(rng.choice(EXPTIMES_S, p=[0.2, 0.4, 0.25, 0.15])),
        mjd_start=61000.0 + rng.uniform(0, 365), ra_deg=float(icrs.ra.deg),
        dec_deg=float(icrs.dec.deg),
        pointing_error_ra_arcsec=float(rng.normal(0, 5)),
        pointing_error_dec_arcsec=float(rng.normal(0, 5)), airmass=airmass,
        alt_deg=float(np.degrees(np.arcsin(1.0 / airmass))), az_deg=float(rng.uniform(0, 360)),
        sky_mag_arcsec2=DARK_SKY_ZENITH_MAG_ARCSEC2[band] - float(rng.uniform(0.0, 2.0)),
        seeing_fwhm_arcsec=float(np.clip(rng.lognormal(np.log(1.1), 0.25), 0.6, 2.5)),
        defocus_fwhm_arcsec=float(rng.uniform(0.0, 0.5)),
        tracking_error_arcsec=float(rng.uniform(0.0, 0.4)),
        tracking_pa_deg=float(rng.uniform(0, 180)),
        transparency=float(rng.uniform(0.6, 1.0)), throughput=float(rng.uniform(0.85, 1.0)),
        n_hot_pixels=n_hot, n_bad_columns=n_cols, moon_illum=0.0, moon_sep_deg=90.0,
        seed=int(rng.integers(0, 2**62)), nx=size, ny=size,
    )  # fmt: skip
    return spec, rng


def frame_m5(spec) -> float:
    """The frame's 5σ point-source depth (the twin's exposure-time calculator)."""
    from twin.imaging.catalog import faint_limit_mag

    return float(faint_limit_mag(spec, extra_mag=0.0))


# --- 2. the reference ------------------------------------------------------------------


def misregister(image, rng: np.random.Generator):
    """``image`` with its WCS reference pixel moved by 0.3-1 px in a random direction."""
    shift_px = rng.uniform(0.3, 1.0)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    wcs = image.wcs.deepcopy()
    wcs.wcs.crpix = wcs.wcs.crpix + shift_px * np.array([math.cos(angle), math.sin(angle)])
    return image.with_wcs(wcs), float(shift_px)


# --- 3. the injection ------------------------------------------------------------------


def draw_injections(spec, template_truth: pd.DataFrame, m5: float,
                    rng: np.random.Generator) -> pd.DataFrame:  # fmt: skip
    """``kind``, ``x_pix``, ``y_pix``, ``mag`` of the sources injected (step 3): none with
    probability 1 − :data:`P_INJECT`, else 1 to :data:`MAX_INJECTIONS`, each at least
    :data:`INJECT_SEPARATION_PX` from the others (a draw too close is dropped)."""
    rows: list[tuple] = []
    if rng.uniform() < P_INJECT:
        for _ in range(int(rng.integers(1, MAX_INJECTIONS + 1))):
            kind, x, y, mag = draw_injection(spec, template_truth, m5, rng)
            if all(math.hypot(x - r[1], y - r[2]) >= INJECT_SEPARATION_PX for r in rows):
                rows.append((kind, x, y, mag))
    return pd.DataFrame(rows, columns=["kind", "x_pix", "y_pix", "mag"]).astype(
        {"kind": str, "x_pix": float, "y_pix": float, "mag": float}
    )


def draw_injection(spec, template_truth: pd.DataFrame, m5: float, rng: np.random.Generator):
    """``(kind, x_pix, y_pix, mag)`` of one injected source (step 3)."""
    kind = str(rng.choice(list(INJECT_KINDS), p=list(INJECT_KINDS.values())))
    mag = float(m5 + rng.uniform(-3.0, 0.5))
    margin = INJECT_MARGIN_PX
    if kind == "sn":
        host = _host(spec, template_truth, m5, margin, rng)
        if host is not None:
            return ("sn", *host, mag)
        kind = "hostless"
    x, y = rng.uniform(margin, spec.nx - margin, 2)
    return (kind, float(x), float(y), mag)


def _host(spec, truth: pd.DataFrame, m5: float, margin: float, rng: np.random.Generator):
    from twin.imaging.scene import frame_wcs

    gal = truth[(truth["type"] == "galaxy") & (truth["mag"] < m5 + 1.0)]
    if gal.empty:
        return None
    x, y = frame_wcs(spec).all_world2pix(gal["ra_deg"].to_numpy(), gal["dec_deg"].to_numpy(), 0)
    inside = (x > margin) & (x < spec.nx - margin) & (y > margin) & (y < spec.ny - margin)
    if not inside.any():
        return None
    k = int(rng.choice(np.flatnonzero(inside)))
    row = gal.iloc[k]
    h_arcsec = float(np.nan_to_num(row.get("hlr_disk_arcsec", 1.0), nan=1.0)) / 1.68
    r_arcsec = rng.gamma(2.0, max(h_arcsec, 0.1))
    q = float(np.nan_to_num(row.get("q_disk", 1.0), nan=1.0))
    phi = rng.uniform(0.0, 2.0 * math.pi)
    pa = math.radians(float(np.nan_to_num(row.get("pa_deg", 0.0), nan=0.0)))
    u, v = r_arcsec * math.cos(phi), q * r_arcsec * math.sin(phi)
    dx = (u * math.cos(pa) - v * math.sin(pa)) / spec.pixel_scale_arcsec
    dy = (u * math.sin(pa) + v * math.cos(pa)) / spec.pixel_scale_arcsec
    xs = float(np.clip(x[k] + dx, margin, spec.nx - margin))
    ys = float(np.clip(y[k] + dy, margin, spec.ny - margin))
    return xs, ys


# --- 4. the new frame ------------------------------------------------------------------


def render_new(spec, options, rng: np.random.Generator, *,
               injections: pd.DataFrame | None = None,
               cosmic_rays_expected: float | None = None,
               hot_unmasked_fraction: float | None = None):  # fmt: skip
    """The new frame, calibrated, and its truth (step 4 of the module docstring).

    ``injections`` (``x_pix``, ``y_pix``, ``mag``) are added to the frame's catalogue as
    transients (the scene is drawn once, with all of them; the truth types them
    ``transient``). ``cosmic_rays_expected`` and ``hot_unmasked_fraction`` fix what is
    otherwise drawn from ``rng`` (tests; the draws from ``rng`` stay the same)."""
    from models.transient.image import calibrate, ideal_calibration
    from twin.imaging.catalog import TrailModel, sky_catalog
    from twin.imaging.detector import add_cosmic_rays, apply_detector, expected_cosmic_rays
    from twin.imaging.fits import frame_header, truth_table
    from twin.imaging.render import render_expected
    from twin.imaging.scene import frame_wcs

    trails = TrailModel(rate_per_hour_deg2=options.trail_rate_per_hour_deg2)
    catalog = sky_catalog(spec, sky_seed=options.sky_seed, trails=trails)
    if injections is not None and len(injections):
        ra, dec = frame_wcs(spec).all_pix2world(injections[["x_pix", "y_pix"]].to_numpy(), 0).T
        extra = pd.DataFrame({
            "source_id": (1 << 60) + 7_000_000 + np.arange(len(injections), dtype=np.int64),
            "ra_deg": ra, "dec_deg": dec, "mag": injections["mag"].to_numpy(float),
            "alert_id": [f"inj-{k}" for k in range(len(injections))],
        })  # fmt: skip
        catalog = replace(catalog, transients=pd.concat([catalog.transients, extra],
                                                        ignore_index=True))  # fmt: skip
    rendered = render_expected(spec, catalog=catalog, sky_seed=options.sky_seed,
                               galaxies=options.galaxies)  # fmt: skip
    det = apply_detector(rendered.image_e, spec, np.random.default_rng(spec.seed))
    gain = spec.telescope.detector.gain_e_per_adu
    extra_e = np.zeros(det.raw_adu.shape)
    target = rng.uniform(1.0, 6.0)
    target = target if cosmic_rays_expected is None else cosmic_rays_expected
    boost = max(target / max(expected_cosmic_rays(spec), 1e-6) - 1.0, 0.0)
    extra = add_cosmic_rays(extra_e, replace(spec, exptime_s=spec.exptime_s * boost), rng)
    raw = np.clip(det.raw_adu + np.rint(extra_e / gain), 0, 65535).astype(np.uint16)
    det = replace(det, raw_adu=raw, cosmic_rays=pd.concat([det.cosmic_rays, extra],
                                                          ignore_index=True))  # fmt: skip
    det = replace(det, cosmic_rays=det.cosmic_rays.assign(cr_id=np.arange(len(det.cosmic_rays))))
    header = dict(frame_header(spec))
    cal = ideal_calibration(spec)
    bad = np.zeros(raw.shape, dtype=bool)
    u_hot, unmasked = rng.uniform(size=len(det.hot_pixels)), rng.uniform(0.0, 0.5)
    unmasked = unmasked if hot_unmasked_fraction is None else hot_unmasked_fraction
    keep_hot = u_hot >= unmasked
    hot = det.hot_pixels[keep_hot]
    bad[hot["y_pix"].to_numpy(), hot["x_pix"].to_numpy()] = True
    cols = det.bad_columns[rng.uniform(size=len(det.bad_columns)) >= 0.3]
    bad[:, cols["x_pix"].to_numpy()] = True
    image = calibrate(raw, header, bias_adu=cal["bias_adu"], flat=cal["flat"], bad_pixels=bad)
    return image, truth_table(rendered.truth, det, spec)


# --- 5. labels -------------------------------------------------------------------------


def label_candidates(cands: pd.DataFrame, truth: pd.DataFrame, *, injected_xy,
                     fwhm_pix: float, full_well_e: float, misregistered: bool,
                     m5: float, pixel_scale_arcsec: float) -> pd.DataFrame:  # fmt: skip
    """``label`` (1 real, 0 bogus), ``bogus_class`` (or ``real``) and ``match_dist_pix``
    for each candidate (rules in the module docstring)."""
    from twin.imaging.psf import image_angle_deg

    n = len(cands)
    x, y = cands["x_pix"].to_numpy(float), cands["y_pix"].to_numpy(float)
    klass = np.full(n, "", dtype=object)
    dist = np.full(n, np.inf)
    inj_xy = np.zeros((0, 2)) if injected_xy is None else np.reshape(injected_xy, (-1, 2))
    if len(inj_xy):
        dist = np.hypot(x[:, None] - inj_xy[None, :, 0], y[:, None] - inj_xy[None, :, 1]).min(1)
        klass[dist <= MATCH_RADIUS_PX] = "real"
        klass[(dist > MATCH_RADIUS_PX) & (dist <= AMBIGUOUS_RADIUS_FWHM * fwhm_pix)] = "ambiguous"

    def assign(name: str, hit: np.ndarray) -> None:
        klass[(klass == "") & hit] = name

    kind = truth["type"].astype(str)
    cr = truth[kind == "cosmic_ray"]
    assign("cosmic_ray", _near_segments(x, y, cr, 3.0))
    hot = truth[kind == "hot_pixel"]
    assign("hot_pixel", _near_points(x, y, hot, 2.5))
    cols = truth.loc[kind == "bad_column", "x_pix"].to_numpy(float)
    assign("bad_column", _near_points_1d(x, cols, 2.5))
    hit = np.zeros(n, dtype=bool)
    for _, row in truth[kind == "trail"].iterrows():
        t = math.radians(float(image_angle_deg(row["pa_deg"])))
        across = np.abs(-(x - row["x_pix"]) * math.sin(t) + (y - row["y_pix"]) * math.cos(t))
        width_px = float(row["width_arcsec"]) / pixel_scale_arcsec
        hit |= across <= 0.5 * width_px + 4.0
    assign("trail", hit)
    stars = truth[(kind == "star") & truth["x_pix"].notna()]
    peak_e = stars["flux_e"].to_numpy(float) * 4.0 * math.log(2.0) / (math.pi * fwhm_pix**2)
    bright = stars[peak_e >= 0.5 * full_well_e]
    halo = cands["in_halo"].to_numpy(bool) if "in_halo" in cands else np.zeros(n, bool)
    assign("bright_star", halo | _near_points(x, y, bright, 2.0 * fwhm_pix + 3.0))
    if misregistered:
        sources = truth[kind.isin(["star", "galaxy"]) & (truth["mag"] < m5 + 1.0)]
        assign("misregistration", _near_points(x, y, sources, 2.0 * fwhm_pix))
    assign("other", np.ones(n, dtype=bool))
    label = np.where(klass == "real", 1, np.where(klass == "ambiguous", -1, 0))
    return pd.DataFrame(
        {"label": label.astype(np.int8), "bogus_class": klass.astype(str),
         "match_dist_pix": dist},
        index=cands.index,
    )  # fmt: skip


def _near_points(x, y, table: pd.DataFrame, radius_px: float) -> np.ndarray:
    if table.empty:
        return np.zeros(len(x), dtype=bool)
    px, py = table["x_pix"].to_numpy(float), table["y_pix"].to_numpy(float)
    r = np.hypot(x[:, None] - px[None, :], y[:, None] - py[None, :])
    return (r <= radius_px).any(axis=1)


def _near_points_1d(x, px, radius_px: float) -> np.ndarray:
    if len(px) == 0:
        return np.zeros(len(x), dtype=bool)
    return (np.abs(x[:, None] - px[None, :]) <= radius_px).any(axis=1)


def _near_segments(x, y, table: pd.DataFrame, radius_px: float) -> np.ndarray:
    """Candidates within ``radius_px`` of a cosmic ray's track (a point for a blob)."""
    if table.empty:
        return np.zeros(len(x), dtype=bool)
    cx, cy = table["x_pix"].to_numpy(float), table["y_pix"].to_numpy(float)
    half = 0.5 * np.nan_to_num(table["length_pix"].to_numpy(float))
    ang = np.radians(np.nan_to_num(table["angle_deg"].to_numpy(float)))
    ux, uy = np.cos(ang), np.sin(ang)
    dx, dy = x[:, None] - cx[None, :], y[:, None] - cy[None, :]
    along = np.clip(dx * ux + dy * uy, -half, half)
    r = np.hypot(dx - along * ux, dy - along * uy)
    return (r <= radius_px).any(axis=1)


# --- one pair --------------------------------------------------------------------------


def make_pair(plan: PairPlan, size: int):
    """``(triplets, candidates table, pair row)`` of one pair (steps 1-5)."""
    from models.transient.cutouts import candidate_triplets
    from models.transient.difference import subtract
    from models.transient.reference import render_template
    from twin.imaging.catalog import field_radius_deg
    from twin.imaging.frames import RenderOptions

    t0 = time.perf_counter()
    spec, rng = draw_spec(plan, size)
    m5 = frame_m5(spec)
    sky_seed = SKY_SEEDS[plan.split]
    radius = field_radius_deg(spec)
    trail_rate = TRAILS_PER_FRAME / (math.pi * radius**2 * spec.exptime_s / 3600.0)
    options = RenderOptions(trail_rate_per_hour_deg2=trail_rate, sky_seed=sky_seed)
    template, template_truth = render_template(
        spec, options, seeing_fwhm_arcsec=spec.seeing_fwhm_arcsec * rng.uniform(0.6, 1.0)
    )
    misregistered = rng.uniform() < P_MISREGISTER
    shift_px = 0.0
    if misregistered:
        template, shift_px = misregister(template, rng)
    inj = draw_injections(spec, template_truth, m5, rng)
    new, truth = render_new(spec, options, rng, injections=inj)
    row = {
        "pair_id": plan.pair_id, "split": plan.split, "seed": plan.seed, "site": spec.site,
        "telescope": spec.telescope.name, "band": spec.band, "exptime_s": spec.exptime_s,
        "seeing_fwhm_arcsec": spec.seeing_fwhm_arcsec, "m5_mag": m5,
        "misregistration_px": shift_px, "n_injected": len(inj), "failed": "",
    }  # fmt: skip
    inj = inj.assign(pair_id=plan.pair_id, split=plan.split, telescope=row["telescope"],
                     m5_mag=m5, detected=False, masked=False, snr=np.nan)  # fmt: skip
    try:
        diff = subtract(new, template, spec.band, sky_seed=sky_seed)
    except ValueError as err:  # too few stars for a PSF in a small frame: skipped, counted
        row.update(failed=str(err)[:120], n_candidates=0, seconds=time.perf_counter() - t0)
        return np.zeros((0, 3, 1, 1), np.float16), pd.DataFrame(), row, inj.iloc[:0]
    triplets, features = candidate_triplets(diff)
    cands = diff.candidates.reset_index(drop=True)
    labels = label_candidates(
        cands, truth, injected_xy=inj[["x_pix", "y_pix"]].to_numpy(float),
        fwhm_pix=diff.psf_new.fwhm_pix, full_well_e=spec.telescope.detector.full_well_e,
        misregistered=misregistered, m5=m5, pixel_scale_arcsec=spec.pixel_scale_arcsec,
    )  # fmt: skip
    table = pd.concat([cands[["x_pix", "y_pix", "scorr", "flux_e", "flux_err_e"]],
                       features, labels], axis=1)  # fmt: skip
    keep = _subsample(labels["label"].to_numpy(), rng)
    triplets, table = triplets[keep], table.iloc[keep].reset_index(drop=True)
    for key in ("pair_id", "split", "site", "telescope", "band", "m5_mag",
                "misregistration_px"):  # fmt: skip
        table[key] = row[key]
    inj = _injection_outcomes(diff, inj, cands)
    table = _attach_injection(table, inj)
    row.update(n_candidates=len(table), n_candidates_all=len(cands),
               seconds=time.perf_counter() - t0)  # fmt: skip
    return triplets.astype(np.float16), table, row, inj


def _subsample(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices kept (sorted): all real and ambiguous, bogus ones at random up to the cap."""
    real, bogus = np.flatnonzero(label != 0), np.flatnonzero(label == 0)
    room = max(MAX_CANDIDATES_PER_PAIR - len(real), 0)
    if len(bogus) > room:
        bogus = rng.choice(bogus, room, replace=False)
    return np.sort(np.r_[real, bogus]).astype(int)


def _injection_outcomes(diff, inj: pd.DataFrame, cands: pd.DataFrame) -> pd.DataFrame:
    """Per injection: optimal SNR in the new frame (PSF-weighted: flux over
    √(σ² / Σ P² + flux)), whether a candidate lies within 1.5 px (``detected``) and
    whether ZOGY's mask covers it (``masked``: nothing can be found there)."""
    if inj.empty:
        return inj
    flux = np.array([diff.new.flux_e(m) for m in inj["mag"]])
    sum_p2 = float((diff.psf_new.stamp**2).sum())
    snr = flux / np.sqrt(diff.sigma_new_e**2 / sum_p2 + flux)
    ix = np.rint(inj["x_pix"].to_numpy()).astype(int)
    iy = np.rint(inj["y_pix"].to_numpy()).astype(int)
    cx, cy = cands["x_pix"].to_numpy(float), cands["y_pix"].to_numpy(float)
    r = np.hypot(cx[None, :] - inj["x_pix"].to_numpy()[:, None],
                 cy[None, :] - inj["y_pix"].to_numpy()[:, None])  # fmt: skip
    detected = (r <= MATCH_RADIUS_PX).any(axis=1) if len(cands) else np.zeros(len(inj), bool)
    return inj.assign(flux_e=flux, snr=snr, detected=detected, masked=diff.zogy.mask[iy, ix])


def _attach_injection(table: pd.DataFrame, inj: pd.DataFrame) -> pd.DataFrame:
    """Each real candidate's injection: ``inj_index`` (row in the pair's injections, −1
    for the others), its kind and magnitude (for recall by kind and depth)."""
    if inj.empty or table.empty:
        return table.assign(inj_index=-1, inj_kind="", inj_mag=np.nan)
    r = np.hypot(table["x_pix"].to_numpy()[:, None] - inj["x_pix"].to_numpy()[None, :],
                 table["y_pix"].to_numpy()[:, None] - inj["y_pix"].to_numpy()[None, :])  # fmt: skip
    k = r.argmin(axis=1)
    near = table["label"].to_numpy() == 1
    return table.assign(
        inj_index=np.where(near, k, -1),
        inj_kind=np.where(near, inj["kind"].to_numpy()[k], ""),
        inj_mag=np.where(near, inj["mag"].to_numpy()[k], np.nan),
    )


# --- the whole build -------------------------------------------------------------------


def build_dataset(out: str | Path, n_pairs: int, size: int = 512, seed: int = 0,
                  progress: bool = True, argv: list[str] | None = None,
                  shards: int | None = None) -> dict:  # fmt: skip
    """Make ``n_pairs`` pairs into ``out`` in shards of :data:`SHARD_PAIRS` (existing
    shards are kept: a rerun resumes). ``shards``: only the first ones of the plan (the
    splits are interleaved, so any prefix holds all of them in proportion)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_pairs(n_pairs, seed)
    if shards is not None:
        plans = plans[: shards * SHARD_PAIRS]
    t0 = time.perf_counter()
    for k in range(0, len(plans), SHARD_PAIRS):
        name = f"shard_{k // SHARD_PAIRS:04d}"
        if (out / f"{name}.pairs.parquet").exists():
            continue
        trips, tables, rows, injs = [], [], [], []
        for plan in plans[k : k + SHARD_PAIRS]:
            t, table, row, inj = make_pair(plan, size)
            rows.append(row)
            injs.append(inj)
            if len(table):
                trips.append(t)
                tables.append(table)
        _write_shard(out, name, trips, tables, rows, size, injs)
        if progress:
            done = min(k + SHARD_PAIRS, len(plans))
            print(f"{name}: {done}/{len(plans)} pairs, {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    return write_index(out, n_pairs, size, seed, argv)


def _write_shard(out: Path, name: str, trips, tables, rows, size: int, injs=()) -> None:
    from models.transient.cutouts import CUTOUT_PX

    cands = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    arr = np.concatenate(trips) if trips else np.zeros((0, 3, CUTOUT_PX, CUTOUT_PX), np.float16)
    np.savez_compressed(out / f"{name}.npz", triplets=arr)
    cands.to_parquet(out / f"{name}.candidates.parquet")
    injs = [i for i in injs if len(i)]
    (pd.concat(injs, ignore_index=True) if injs else pd.DataFrame()).to_parquet(
        out / f"{name}.injections.parquet"
    )
    pd.DataFrame(rows).to_parquet(out / f"{name}.pairs.parquet")  # last: marks the shard done


def write_index(out: Path, n_pairs: int, size: int, seed: int, argv) -> dict:
    pairs = load_pairs(out)
    cands = load_candidates(out)
    index = {
        "n_pairs": len(pairs), "n_pairs_planned": n_pairs, "size": size, "seed": seed,
        "command": "skytwin models dataset transient " + " ".join(argv or []),
        "failed_pairs": int((pairs["failed"] != "").sum()) if len(pairs) else 0,
        "seconds_per_pair": float(pairs["seconds"].mean()) if len(pairs) else 0.0,
        "candidates": {s: int((cands["split"] == s).sum()) for s in SPLITS},
        "real": {s: int(((cands["split"] == s) & (cands["label"] == 1)).sum()) for s in SPLITS},
        "bogus_classes": cands[cands["label"] == 0]["bogus_class"].value_counts().to_dict()
        if len(cands) else {},
    }  # fmt: skip
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


def load_pairs(data_dir: str | Path) -> pd.DataFrame:
    files = sorted(Path(data_dir).glob("shard_*.pairs.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else (
        pd.DataFrame())  # fmt: skip


def load_injections(data_dir: str | Path) -> pd.DataFrame:
    """Every injected source of the finished shards (found or not), for recall."""
    files = sorted(Path(data_dir).glob("shard_*.injections.parquet"))
    tables = [t for t in (pd.read_parquet(f) for f in files) if len(t)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def load_candidates(data_dir: str | Path) -> pd.DataFrame:
    files = sorted(Path(data_dir).glob("shard_*.candidates.parquet"))
    tables = [pd.read_parquet(f) for f in files]
    tables = [t for t in tables if len(t)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def load_split(data_dir: str | Path, splits: tuple[str, ...],
               ambiguous: bool = False) -> tuple[np.ndarray, pd.DataFrame]:  # fmt: skip
    """Triplets (float16) and candidate rows of the shards' candidates in ``splits``
    (``ambiguous`` ones, label −1, only when asked)."""
    trips, tables = [], []
    for f in sorted(Path(data_dir).glob("shard_*.pairs.parquet")):
        stem = f.name.removesuffix(".pairs.parquet")
        table = pd.read_parquet(f.with_name(f"{stem}.candidates.parquet"))
        if table.empty:
            continue
        keep = table["split"].isin(splits).to_numpy().copy()
        if not ambiguous:
            keep &= table["label"].to_numpy() >= 0
        with np.load(f.with_name(f"{stem}.npz")) as z:
            trips.append(z["triplets"][keep])
        tables.append(table[keep])
    if not tables:
        return np.zeros((0, 3, 63, 63), np.float16), pd.DataFrame()
    triplets, table = np.concatenate(trips), pd.concat(tables, ignore_index=True)
    return triplets, _with_triplet_features(triplets, table)


def _with_triplet_features(triplets: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
    """The features :func:`~models.transient.cutouts.triplet_features` makes from the
    stored triplets, added or recomputed (a dataset older than a feature still loads)."""
    from models.transient.cutouts import triplet_features

    return table.assign(**triplet_features(triplets))
