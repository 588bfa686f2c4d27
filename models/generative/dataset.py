"""Training data for the galaxy generator, made offline from what is on this disk.

Two sources, each contributing what the other lacks (``skytwin models dataset generative``):

- **Real galaxies** from the Hubble (eXtreme) Deep Field picture that ships inside
  scikit-image (``skimage.data.hubble_deep_field()``, 872 × 1000 RGB JPEG, public
  domain): spiral arms, bars, clumps, tidal features, irregular and merging shapes.
  The three channels are summed; SEP (Barbary 2016) estimates the background and its
  noise, detects at 1.5σ and deblends (contrast 0.02, so a spiral's arms stay one
  object). Each kept galaxy is cut to :data:`STAMP`² pixels — block-averaged by the
  smallest factor 1-4 that fits its segment (large galaxies keep their whole shape at a
  coarser scale) — and its neighbours' pixels are replaced by noise of the measured
  level. Kept: at least :data:`MIN_AREA_PIX` segment pixels, flux S/N ≥ :data:`MIN_SNR`,
  not saturated at the peak in all three channels (the field's stars, with diffraction
  spikes), fully inside the picture. What the picture cannot give is recorded in
  ``generative.json``: its noise (per stamp), the JPEG's 8-bit quantisation, the
  black point that clips the sky's noise at 0 and the saturated pixels (the press
  release's stretch, not the telescope's). The real set's conditioning carries the S/N
  so the renderer can ask for the cleanest ones.
- **Parametric galaxies** from the twin's own profiles (:func:`twin.imaging.galaxies.
  galaxy_profile`: bulge + disk + knots, shapes drawn as
  :func:`twin.imaging.catalog._galaxy_attributes` draws them), noise-free, at
  half-light radii log-uniform over :data:`PARAMETRIC_HLR_PX` and every ellipticity and
  position angle, convolved with a Gaussian of :data:`HDF_PSF_FWHM_PX` (the picture's
  resolution): they cover sizes and shapes the 700-odd real galaxies sample thinly.

Split: a seeded 20 % of the real galaxies is held out for evaluation (all of a
galaxy's augmentations with it); the parametric set is all training. Augmentation (the
eight rotations by 90° and flips) happens when training, with the conditioning measured
on each variant (:func:`dihedral`).

Conditioning (:data:`COND_NAMES`), measured identically on every stamp by
:func:`measure`: log half-light radius in stamp pixels (curve of growth inside the
object's mask), the ellipticity components ``e1, e2 = ε cos 2θ, ε sin 2θ`` (ε = 1 - b/a
from the masked second moments, θ counter-clockwise from +x in ``image[y, x]``), log10
S/N (flux over noise × √area; noise-free parametric stamps get :data:`CLEAN_LOG_SNR`) and
a "realness" token (1 HDF, 0 parametric).

Pixels go to the network as :func:`to_model`: peak-normalised, asinh-stretched
(softening :data:`ASINH_BETA` of the peak) to [-1, 1]; :func:`from_model` inverts it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

STAMP = 32
"""Side of a stamp (pixels)."""
COND_NAMES = ("log_hlr_px", "e1", "e2", "log_snr", "real")
MIN_AREA_PIX = 25
MIN_SNR = 20.0
MAX_FACTOR = 4
FIT_FRACTION = 0.8
"""A galaxy's segment must span at most this fraction of the stamp after block-averaging."""
DEBLEND_CONT = 0.02
DETECT_SIGMA = 1.5
HELD_OUT_FRACTION = 0.2
PARAMETRIC_HLR_PX = (1.0, 7.0)
HDF_PSF_FWHM_PX = 1.5
CLEAN_LOG_SNR = 3.5
ASINH_BETA = 0.02
HDF_PIXEL_ARCSEC = 0.14
"""Approximate scale of scikit-image's picture: the XDF's ~2.3′ over its 1000 columns.
Used only to choose the stamp scale of a twin galaxy (:func:`stamp_hlr_px`)."""
DEFAULT_OUT = Path("outputs/generative/data")


def _pix(value: float) -> int:
    """The nearest pixel index (numpy's round-half-even, as Python's ``round``)."""
    return int(np.rint(value))


# --- pixels <-> model domain -------------------------------------------------------------


def to_model(images: np.ndarray) -> np.ndarray:
    """Linear stamps (n, s, s) → the network's domain: ``2 asinh(y/β)/asinh(1/β) - 1`` with
    ``y`` the stamp over its peak (background ≈ -1, peak 1; noise dips below -1)."""
    images = np.asarray(images, dtype=np.float64)
    peak = images.reshape(len(images), -1).max(axis=1)[:, None, None]
    y = images / np.maximum(peak, 1e-30)
    return (2.0 * np.arcsinh(y / ASINH_BETA) / np.arcsinh(1.0 / ASINH_BETA) - 1.0).astype(
        np.float32
    )


def from_model(x: np.ndarray) -> np.ndarray:
    """The network's domain → linear stamps with peak ≈ 1 (inverse of :func:`to_model`)."""
    t = 0.5 * (np.asarray(x, dtype=np.float64) + 1.0)
    return ASINH_BETA * np.sinh(t * np.arcsinh(1.0 / ASINH_BETA))


# --- measurement ----------------------------------------------------------------------------


def object_mask(image: np.ndarray, noise: float) -> np.ndarray:
    """The central object's pixels: the 3×3-smoothed stamp above 1 σ of its (smoothed) noise,
    the connected part nearest the centre, grown by one pixel."""
    smooth = ndimage.uniform_filter(np.asarray(image, float), 3)
    above = smooth > 1.5 * max(float(noise), 1e-12) / 3.0  # 3×3 mean: noise / 3
    labels, n = ndimage.label(above)
    if n == 0:
        return np.zeros(image.shape, bool)
    c = image.shape[0] // 2
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    near = (yy - c) ** 2 + (xx - c) ** 2 <= 9
    candidates = labels[near & (labels > 0)]
    if len(candidates) == 0:
        return np.zeros(image.shape, bool)
    flux = ndimage.sum(smooth, labels, index=np.unique(candidates))
    keep = np.unique(candidates)[int(np.argmax(flux))]
    return ndimage.binary_dilation(labels == keep)


def measure(image: np.ndarray, noise: float) -> dict[str, float]:
    """Half-light radius (px), ε, θ (deg), flux and S/N of the stamp's central object."""
    image = np.asarray(image, float)
    mask = object_mask(image, noise)
    w = np.where(mask, np.clip(image, 0.0, None), 0.0)
    flux = float(w.sum())
    if flux <= 0.0 or mask.sum() < 3:
        return {"hlr_px": np.nan, "eps": np.nan, "theta_deg": np.nan, "flux": flux,
                "snr": np.nan, "area_pix": int(mask.sum())}  # fmt: skip
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    cx, cy = float((w * xx).sum() / flux), float((w * yy).sum() / flux)
    dx, dy = xx - cx, yy - cy
    mxx, myy, mxy = ((w * dx * dx).sum() / flux, (w * dy * dy).sum() / flux,
                     (w * dx * dy).sum() / flux)  # fmt: skip
    half_diff = np.hypot(0.5 * (mxx - myy), mxy)
    mean = 0.5 * (mxx + myy)
    a2, b2 = mean + half_diff, max(mean - half_diff, 1e-12)
    eps = float(1.0 - np.sqrt(b2 / a2))
    theta = float(np.degrees(0.5 * np.arctan2(2.0 * mxy, mxx - myy)))
    r = np.hypot(dx, dy)[mask]
    order = np.argsort(r)
    cum = np.cumsum(w[mask][order])
    hlr = float(np.interp(0.5 * flux, cum, r[order]))
    snr = flux / (max(float(noise), 1e-12) * np.sqrt(mask.sum()))
    return {"hlr_px": max(hlr, 0.3), "eps": eps, "theta_deg": theta, "flux": flux,
            "snr": float(snr), "area_pix": int(mask.sum())}  # fmt: skip


def conditioning(hlr_px, eps, theta_deg, log_snr, real) -> np.ndarray:
    """The conditioning vectors (n, 5) of :data:`COND_NAMES`."""
    two = np.radians(2.0 * np.asarray(theta_deg, float))
    eps = np.asarray(eps, float)
    columns = np.broadcast_arrays(np.log(np.asarray(hlr_px, float)), eps * np.cos(two),
                                  eps * np.sin(two), np.asarray(log_snr, float),
                                  np.asarray(real, float))  # fmt: skip
    return np.stack(columns, axis=-1).astype(np.float32)


def measured_conditioning(images: np.ndarray, noise: np.ndarray, real: np.ndarray) -> np.ndarray:
    rows = [measure(img, n) for img, n in zip(images, noise, strict=True)]
    log_snr = np.where(np.asarray(real) > 0, np.log10([max(r["snr"], 1.0) for r in rows]),
                       CLEAN_LOG_SNR)  # fmt: skip
    return conditioning([r["hlr_px"] for r in rows], [r["eps"] for r in rows],
                        [r["theta_deg"] for r in rows], log_snr, real)  # fmt: skip


def dihedral(images: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th (0-7) of the eight rotations by 90° and flips of ``(..., s, s)`` stamps."""
    out = np.rot90(images, k % 4, axes=(-2, -1))
    return np.ascontiguousarray(out[..., ::-1] if k >= 4 else out)


def dihedral_cond(cond: np.ndarray, k: int) -> np.ndarray:
    """The conditioning of :func:`dihedral` ``k`` of stamps whose conditioning is ``cond``.

    ``np.rot90`` by 90° turns ``image[y, x]`` so that a direction at θ goes to θ - 90°
    (θ counter-clockwise from +x, y = row); mirroring columns sends θ to 180° - θ. In
    e1, e2 (angles doubled): -90° flips both signs, the mirror flips e2.
    """
    out = np.array(cond, dtype=np.float32, copy=True)
    if (k % 4) % 2 == 1:
        out[..., 1:3] *= -1.0
    if k >= 4:
        out[..., 2] *= -1.0
    return out


# --- the HDF ---------------------------------------------------------------------------------


def hdf_image() -> np.ndarray:
    """The picture as one float channel (sum of R, G, B, 0-765)."""
    from skimage import data

    return data.hubble_deep_field().astype(np.float64).sum(axis=2)


def hdf_stamps(seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Real galaxy stamps (n, :data:`STAMP`, :data:`STAMP`), background-subtracted, their
    table and what the picture's limits are (see module docs)."""
    import sep
    from skimage import data

    rgb = data.hubble_deep_field()
    image = rgb.astype(np.float64).sum(axis=2)
    bkg = sep.Background(np.ascontiguousarray(image), bw=64, bh=64)
    sub = image - bkg.back()
    rms = float(bkg.globalrms)
    objects, seg = sep.extract(sub, DETECT_SIGMA, err=rms, minarea=10,
                               deblend_cont=DEBLEND_CONT, segmentation_map=True)  # fmt: skip
    rng = np.random.default_rng([seed, 0x4DF])
    ny, nx = image.shape
    stamps, rows = [], []
    saturated_rgb = (rgb >= 255).all(axis=2)
    for k, obj in enumerate(objects):
        label = k + 1
        cx, cy = _pix(obj["x"]), _pix(obj["y"])
        box = seg[int(obj["ymin"]) : int(obj["ymax"]) + 1, int(obj["xmin"]) : int(obj["xmax"]) + 1]
        area = int(np.count_nonzero(box == label))
        snr = float(obj["flux"]) / (rms * np.sqrt(max(area, 1)))
        extent = max(obj["xmax"] - obj["xmin"], obj["ymax"] - obj["ymin"]) + 1
        factor = next((f for f in range(1, MAX_FACTOR + 1)
                       if extent / f <= FIT_FRACTION * STAMP), None)  # fmt: skip
        reason = ""
        if area < MIN_AREA_PIX:
            reason = "small"
        elif snr < MIN_SNR:
            reason = "faint"
        elif factor is None:
            reason = "too large"
        elif saturated_rgb[cy, cx]:
            reason = "saturated (star)"
        if reason:
            continue
        side = STAMP * factor
        x0, y0 = cx - side // 2, cy - side // 2
        if x0 < 0 or y0 < 0 or x0 + side > nx or y0 + side > ny:
            continue
        cut = sub[y0 : y0 + side, x0 : x0 + side].copy()
        labels = seg[y0 : y0 + side, x0 : x0 + side]
        others = (labels > 0) & (labels != label)
        others = ndimage.binary_dilation(others, iterations=2) & (labels != label)
        cut[others] = rng.normal(0.0, rms, int(others.sum()))
        sky = labels == 0
        noise_fine = float(1.4826 * np.median(np.abs(cut[sky] - np.median(cut[sky]))))
        stamp = cut.reshape(STAMP, factor, STAMP, factor).mean(axis=(1, 3))
        stamps.append(stamp)
        rows.append({
            "hdf_id": k, "x": float(obj["x"]), "y": float(obj["y"]), "factor": factor,
            "area_pix": area, "flux": float(obj["flux"]), "snr_sep": snr,
            "noise": max(noise_fine, 0.3 * rms) / factor,
            "peak_saturated": bool((rgb[cy, cx] >= 255).any()),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    info = {
        "source": "skimage.data.hubble_deep_field() (XDF press picture, public domain)",
        "shape": list(image.shape), "background_adu": float(bkg.globalback),
        "noise_rms_adu": rms, "detected": len(objects), "kept": len(table),
        "zero_clipped_fraction": float((image == 0).mean()),
        "saturated_pixels_any_channel": int((rgb >= 255).any(axis=2).sum()),
        "jpeg": "8-bit per channel (sum of 3: steps of 1 in 0-765), 8×8 DCT blocks; "
                "black point clips the sky noise at 0",
        "factors": {str(f): int((table["factor"] == f).sum()) for f in range(1, 5)},
    }  # fmt: skip
    return np.asarray(stamps, dtype=np.float64), table, info


# --- parametric galaxies --------------------------------------------------------------------


def parametric_stamps(n: int, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """``n`` noise-free twin galaxies (bulge + disk + knots) on stamps, unit flux."""
    import galsim

    from twin.imaging.catalog import _galaxy_attributes
    from twin.imaging.galaxies import galaxy_profile

    rng = np.random.default_rng([seed, 0x9A4])
    i_mag = rng.uniform(17.0, 24.0, n)
    attrs = _galaxy_attributes(rng, i_mag)
    target = np.exp(rng.uniform(*np.log(PARAMETRIC_HLR_PX), n))
    psf = galsim.Gaussian(fwhm=HDF_PSF_FWHM_PX)
    stamps, rows = [], []
    for k in range(n):
        g = {key: v[k] for key, v in attrs.items()}
        bt = float(g["bulge_frac"])
        hlr_eff = (1 - bt) * float(g["hlr_disk_arcsec"]) + bt * float(g["hlr_bulge_arcsec"])
        ratio = target[k] / hlr_eff  # px per arcsec: the stamp scale is 1 "arcsec" per px
        g["hlr_disk_arcsec"] = float(g["hlr_disk_arcsec"]) * ratio
        g["hlr_bulge_arcsec"] = float(g["hlr_bulge_arcsec"]) * ratio
        g["flux_e"] = 1.0
        g["pa_deg"] = float(rng.uniform(0.0, 180.0))
        image = galsim.Convolve(galaxy_profile(g), psf).drawImage(
            nx=STAMP, ny=STAMP, scale=1.0, method="auto",
            offset=(0.5, 0.5)).array  # fmt: skip
        stamps.append(image)
        rows.append({"hlr_target_px": float(target[k]), "bulge_frac": bt,
                     "q_disk": float(g["q_disk"]), "pa_deg": g["pa_deg"],
                     "n_knots": int(g["n_knots"])})  # fmt: skip
    return np.asarray(stamps), pd.DataFrame(rows)


# --- the data set on disk --------------------------------------------------------------------


def build(out: Path, *, seed: int = 0, n_parametric: int = 3000) -> dict:
    """Write ``OUT/generative.npz`` (stamps, conditioning, split) and ``generative.json``."""
    t0 = time.perf_counter()
    real, table, info = hdf_stamps(seed)
    n_real = len(real)
    held = np.zeros(n_real, bool)
    order = np.random.default_rng([seed, 0x5E7]).permutation(n_real)
    held[order[: round(HELD_OUT_FRACTION * n_real)]] = True
    par, _ = parametric_stamps(n_parametric, seed)
    par_noise = par.reshape(len(par), -1).max(axis=1) * 1e-3
    images = np.concatenate([real, par])
    noise = np.concatenate([table["noise"].to_numpy(), par_noise])
    is_real = np.r_[np.ones(n_real), np.zeros(len(par))]
    cond = measured_conditioning(images, noise, is_real)
    split = np.where(np.r_[held, np.zeros(len(par), bool)], "test", "train")
    good = np.isfinite(cond).all(axis=1)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "generative.npz", images=images[good].astype(np.float32),
                        x=to_model(images[good]), cond=cond[good], noise=noise[good],
                        real=is_real[good], split=split[good])  # fmt: skip
    counts = {
        "real_train": int(((split == "train") & (is_real > 0) & good).sum()),
        "real_test": int(((split == "test") & good).sum()),
        "parametric_train": int(((is_real == 0) & good).sum()),
        "dropped_unmeasurable": int((~good).sum()),
    }
    real_cond = cond[:n_real][good[:n_real]]
    meta = {"seed": seed, "stamp": STAMP, "counts": counts, "hdf": info,
            "n_parametric": n_parametric, "cond_names": list(COND_NAMES),
            "augmentation": "8 rotations/flips at training time",
            "seconds": round(time.perf_counter() - t0, 1),
            "real_hlr_px_percentiles": _percentiles(np.exp(real_cond[:, 0]), (5, 50, 95)),
            "real_log_snr_percentiles": _percentiles(real_cond[:, 3], (5, 50, 90, 95))}  # fmt: skip
    (out / "generative.json").write_text(json.dumps(meta, indent=2))
    table.assign(split=split[:n_real]).to_csv(out / "hdf_galaxies.csv", index=False)
    return meta


def _percentiles(values: np.ndarray, q: Sequence[float]) -> list[float]:
    return [round(float(v), 3) for v in np.percentile(values, q)]


def load(data_dir: Path) -> dict[str, np.ndarray]:
    """The arrays of ``generative.npz`` (no pickle)."""
    with np.load(Path(data_dir) / "generative.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="skytwin models dataset generative",
                                description=__doc__.split("\n")[0])  # fmt: skip
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-parametric", type=int, default=3000)
    args = p.parse_args(argv)
    meta = build(args.out, seed=args.seed, n_parametric=args.n_parametric)
    print(json.dumps(meta["counts"]), f"in {meta['seconds']} s -> {args.out}")
