"""Fuse a run's frames: every field and band seen by at least two sites, one coadd each.

``skytwin fuse RUN [--field F] [--band B] [--method ivw|psf-matched|proper|learned]`` (after a
run; the centre's grouping in the loop is not built yet). Per group:

1. **Grouping.** Exposures of one target in one band within ``window_h`` of the group's
   first, from at least ``min_sites`` sites (one site's frames alone are a stack, not a
   fusion). When the run had a pipeline, a frame counts from the moment its result
   reached the centre (``pipeline.parquet``'s ``mjd_received``) and the product records
   when its last input had arrived (``available_mjd``): bandwidth and outages decide
   when a fusion could have run. Without one, the shutter-close time stands in.
2. **Frames.** Each exposure is rendered as ``skytwin frame`` renders it (same seed) and
   calibrated with ideal masters (``models.transient.image.ideal_calibration``: what
   deep biases, flats and the night's defect map give; the run's own calibration frames
   are not used yet).
3. **Registration.** Each frame's WCS is solved against the catalogue stars of its
   field (the header carries the pointing error); every frame is resampled with
   ``reproject`` onto the grid of the group's best-seeing frame, variance and mask
   carried along.
4. **Coadd.** Background subtracted, PSF measured from each frame's own stars, flux
   scale from its zero point (the header's ``MAGZERO``: the photometric calibration a
   site's pipeline would measure), then :data:`models.fusion.METHODS` ``[method]``.

``--method learned`` (:mod:`models.fusion.learned`, needs torch and the shipped weights):
the proper coadd with what the network flags as inconsistent taken out, its calibrated
variance, and a ``FLAGS`` plane per input (bit k: :data:`models.fusion.inputs.KINDS` [k]
at probability > 0.5); each frame's header conditions (transparency, sky, site, time)
go in as its :class:`~models.fusion.inputs.FrameMeta`.

Products: ``RUN/fused/FIELD_BAND_N.fits`` (primary: the coadd in units of a 25th-mag
source's flux, with the WCS; ``VARIANCE``; ``MASK``, 1 where no frame entered;
``COVERAGE``, the bit mask of the inputs that entered each pixel; ``PSF``; ``INPUTS``, a
table of the frames) and ``RUN/fusion.parquet``, one row per product.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from twin.errors import ConfigError

FUSED_DIR = "fused"
TABLE = "fusion.parquet"
AFTER_DIR = "fused-after"
AFTER_TABLE = "fusion-after.parquet"
"""Where ``skytwin fuse`` writes in a run that fused in the loop: the loop's own products and
table (with when the centre could fuse) are the run's record and are not overwritten."""


def output_names(run_dir: Path) -> tuple[str, str]:
    """``(products folder, table)`` for ``skytwin fuse`` on ``run_dir`` (see AFTER_DIR)."""
    table = run_dir / TABLE
    if table.exists() and "fused_mjd" in pq.read_schema(table).names:
        return AFTER_DIR, AFTER_TABLE
    return FUSED_DIR, TABLE


MAGZERO_OUT = 25.0


class FusionSkipped(RuntimeError):
    """A group that cannot be fused (too few frames registered or with stars)."""


@dataclass(frozen=True)
class Group:
    target_id: str
    band: str
    index: int  # groups of one target and band, in time order
    obs_ids: tuple[int, ...]
    sites: tuple[str, ...]
    available_mjd: float

    @property
    def name(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", self.target_id).strip("-") or "field"
        return f"{safe}_{self.band}_{self.index}"


def arrival_mjd(run_dir: Path, obs: pd.DataFrame) -> pd.Series:
    """When each exposure counts at the centre: its pipeline result's arrival, else the
    shutter closing."""
    path = run_dir / "pipeline.parquet"
    out = obs.set_index("obs_id")["mjd_end"].astype(float)
    if path.exists():
        received = pd.read_parquet(path, columns=["obs_id", "mjd_received"])
        received = received.groupby("obs_id")["mjd_received"].max()
        out = received.reindex(out.index).fillna(out)
    return out


def find_groups(obs: pd.DataFrame, arrival: pd.Series, *, min_sites: int = 2,
                window_h: float = 24.0, max_frames: int = 12, field: str | None = None,
                band: str | None = None) -> list[Group]:  # fmt: skip
    """The fusable groups of a run's observations (see the module docstring)."""
    obs = obs[obs["target_id"].notna() & (obs["target_id"] != "")]
    if field is not None:
        obs = obs[obs["target_id"] == field]
    if band is not None:
        obs = obs[obs["band"] == band]
    groups = []
    for (target, b), part in obs.sort_values("mjd_start").groupby(["target_id", "band"]):
        t = part["mjd_start"].to_numpy()
        start, k = 0, 0
        while start < len(part):
            stop = int(np.searchsorted(t, t[start] + window_h / 24.0, side="left"))
            chunk = part.iloc[start:stop]
            if chunk["site"].nunique() >= min_sites:
                # The sharpest frames first, keeping every site: at most max_frames.
                chunk = chunk.sort_values("image_fwhm_arcsec", kind="stable")
                keep = chunk.groupby("site", sort=False).head(1)
                rest = chunk.drop(keep.index).head(max(max_frames - len(keep), 0))
                chosen = pd.concat([keep, rest]).sort_values("mjd_start")
                ids = tuple(int(i) for i in chosen["obs_id"])
                groups.append(Group(str(target), str(b), k, ids, tuple(sorted(chosen["site"]
                                    .unique())), float(arrival.loc[list(ids)].max())))  # fmt: skip
                k += 1
            start = stop
    return groups


def _aligned(image, psf_stamp, background):
    from models.fusion import AlignedFrame, flux_scale_from_zero_point

    return AlignedFrame(image.data_e - background, image.variance_e2, image.mask, psf_stamp,
                        flux_scale_from_zero_point(image.magzero_e, image.exptime_s,
                                                   MAGZERO_OUT))  # fmt: skip


def fuse_group(frames, group: Group, method: str = "proper", min_sites: int = 2):
    """``(coadd, wcs, inputs table, aligned frames)`` of one group (steps 2-4 of the
    module docstring)."""
    from models.fusion import METHODS
    from models.transient.difference import register
    from models.transient.psf import gaussian_psf, measure_psf
    from models.transient.reference import render_frame_calibrated
    from models.transient.resample import resample
    from models.transient.stars import background, detect_sources

    images, rows, specs = [], [], []
    for obs_id in group.obs_ids:
        spec = frames.spec(obs_id)
        image, _header, _truth = render_frame_calibrated(spec, frames.options)
        try:
            reg, sources, _back = register(image, group.band,
                                           sky_seed=frames.options.sky_seed)  # fmt: skip
        except (ValueError, RuntimeError) as err:  # too few stars to solve: leave it out
            rows.append({"obs_id": obs_id, "site": spec.site, "status": f"skipped: {err}"})
            continue
        images.append(image.with_wcs(reg.wcs))
        specs.append(spec)
        clean = sources[sources["clean"]] if len(sources) else sources
        size_pix = float(np.median(clean["flux_radius_pix"])) if len(clean) else math.inf
        rows.append({"obs_id": obs_id, "site": spec.site, "telescope": spec.telescope.name,
                     "image_fwhm_arcsec": float(spec.image_fwhm_arcsec),
                     "star_radius_arcsec": size_pix * spec.pixel_scale_arcsec,
                     "registration_rms_pix": float(reg.rms_pix), "matched": int(reg.n_matched),
                     "magzero_e": image.magzero_e, "status": "used"})  # fmt: skip
    rows_used = [r for r in rows if r["status"] == "used"]
    if len({r["site"] for r in rows_used}) < min_sites or len(images) < 2:
        raise FusionSkipped(f"{len(images)} frames could be registered")
    # The grid of the sharpest frame as *measured* (its stars' half-light radius): the
    # centre does not know the true seeing; ``image_fwhm_arcsec`` stays as truth beside.
    best = int(np.argmin([r["star_radius_arcsec"] for r in rows_used]))
    grid_wcs, shape = images[best].wcs, images[best].shape
    aligned = []
    for i, image in enumerate(images):
        on = image if i == best else resample(image, grid_wcs, shape)
        back = background(on)
        sources = detect_sources(on, back_e=back)
        try:
            psf = measure_psf(on.data_e - back, sources, mask=on.mask)
        except ValueError:  # too few clean stars: a Gaussian of their measured size
            clean = sources[sources["clean"]] if len(sources) else sources
            if clean.empty:
                raise FusionSkipped(f"obs {rows_used[i]['obs_id']}: no star for a PSF") from None
            psf = gaussian_psf(2.0 * float(np.median(clean["flux_radius_pix"])))
        rows_used[i]["psf_fwhm_pix"] = float(psf.fwhm_pix)
        rows_used[i]["psf_stars"] = int(psf.n_stars)
        aligned.append(_aligned(on, psf.stamp, back))
    inputs = pd.DataFrame(rows_used)
    if method == "learned":
        coadd, inputs.attrs["flags"] = _learned(aligned, specs)
    else:
        coadd = METHODS[method](aligned)
    return coadd, grid_wcs, inputs, aligned


LEARNED_FLAG_THRESHOLD = 0.5


def _learned(aligned, specs):
    """The learned coadd and its flag planes (N × H × W, bit k for kind k above 0.5)."""
    from models.fusion.inputs import KINDS, FrameMeta
    from models.fusion.learned import learned_coadd

    metas = [FrameMeta(s.transparency, s.sky_mag_arcsec2, s.site, s.mjd_start,
                       s.pixel_scale_arcsec) for s in specs]  # fmt: skip
    coadd, result = learned_coadd(aligned, metas)
    bits = np.zeros(result.flags.shape[:1] + result.flags.shape[2:], np.uint8)
    for k in range(len(KINDS)):
        bits |= (result.flags[:, k] > LEARNED_FLAG_THRESHOLD).astype(np.uint8) << k
    return coadd, bits


def write_fused(path: Path, coadd, wcs, inputs: pd.DataFrame, group: Group, method: str
                ) -> Path:  # fmt: skip
    """The product's FITS file (hidden temporary name, then an atomic rename)."""
    from astropy.io import fits
    from astropy.table import Table

    header = wcs.to_header()
    header["BUNIT"] = (f"f{MAGZERO_OUT:g}", f"flux of an AB mag {MAGZERO_OUT:g} source")
    header["OBJECT"] = group.target_id
    header["FILTER"] = group.band
    header["METHOD"] = (method, "models.fusion coadd")
    header["NINPUTS"] = len(group.obs_ids)
    header["SITES"] = ",".join(group.sites)
    header["AVAILMJD"] = (group.available_mjd, "the last input reached the centre")
    hdus = [
        fits.PrimaryHDU(np.asarray(coadd.image, np.float32), header=header),
        fits.ImageHDU(np.asarray(np.where(np.isfinite(coadd.variance), coadd.variance,
                                          np.float32(3e38)), np.float32), name="VARIANCE"),
        fits.ImageHDU(np.asarray(coadd.mask, np.uint8), name="MASK"),
        fits.ImageHDU(np.asarray(coadd.frames_in, np.int32), name="COVERAGE"),
        fits.ImageHDU(np.asarray(coadd.psf, np.float32), name="PSF"),
        fits.BinTableHDU(Table.from_pandas(inputs), name="INPUTS"),
    ]  # fmt: skip
    if "flags" in inputs.attrs:  # the learned fusion's inconsistency flags, one plane per input
        from models.fusion.inputs import KINDS

        flag_hdu = fits.ImageHDU(inputs.attrs["flags"], name="FLAGS")
        flag_hdu.header["KINDS"] = (",".join(KINDS), "bit k = kind k")
        hdus.append(flag_hdu)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    os.replace(tmp, path)
    return path


def fuse_run(run_dir: str | Path, *, field: str | None = None, band: str | None = None,
             method: str = "proper", size: int = 512, min_sites: int = 2,
             window_h: float = 24.0, max_frames: int = 12, progress: bool = True
             ) -> pd.DataFrame:  # fmt: skip
    """Fuse every group of the run (``fused/`` and ``fusion.parquet``); returns the table."""
    from tqdm.auto import tqdm

    from models.fusion import METHODS
    from models.fusion.photometry import coadd_flux_sigma, frame_flux_sigma, limiting_mag
    from twin.imaging.frames import RunFrames

    if method not in (*METHODS, "learned"):
        raise ConfigError("--method", "method", f"unknown {method!r}; allowed: "
                          f"{', '.join(METHODS)}, learned")  # fmt: skip
    run_dir = Path(run_dir)
    frames = RunFrames(run_dir, size=size)
    obs = frames.observations
    groups = find_groups(obs, arrival_mjd(run_dir, obs), min_sites=min_sites,
                         window_h=window_h, max_frames=max_frames, field=field,
                         band=band)  # fmt: skip
    fused_dir, table_name = output_names(run_dir)
    rows, skipped = [], []
    for group in tqdm(groups, desc="fuse", unit="field", disable=not progress):
        try:
            coadd, wcs, inputs, aligned = fuse_group(frames, group, method, min_sites)
        except FusionSkipped as why:
            skipped.append(f"{group.name}: {why}")
            continue
        inputs["m5"] = [limiting_mag(frame_flux_sigma(f), MAGZERO_OUT) for f in aligned]
        m5 = limiting_mag(coadd_flux_sigma(coadd, aligned), MAGZERO_OUT)
        path = write_fused(run_dir / fused_dir / f"{group.name}.fits", coadd, wcs, inputs,
                           group, method)  # fmt: skip
        rows.append({"product": f"{fused_dir}/{path.name}", "target_id": group.target_id,
                     "band": group.band, "method": method, "n_inputs": len(group.obs_ids),
                     "sites": ",".join(group.sites), "obs_ids": list(group.obs_ids),
                     "available_mjd": group.available_mjd,
                     "registration_rms_pix_max": float(inputs["registration_rms_pix"].max()),
                     "coverage_fraction": float(1.0 - np.mean(coadd.mask)),
                     "m5": m5, "m5_best_input": float(inputs["m5"].max()),
                     "depth_gain_mag": m5 - float(inputs["m5"].max())})  # fmt: skip
    table = pd.DataFrame(rows)
    table.attrs["skipped"] = skipped
    table.attrs["table"] = table_name
    tmp = run_dir / f".{table_name}.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, run_dir / table_name)
    return table
