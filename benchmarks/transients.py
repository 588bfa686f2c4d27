"""Speed of difference imaging: registration + resampling + PSFs + ZOGY + detection of one
2048² frame pair on one core, against properimage's ZOGY on the same pair, same run.

The pair (issue 12, item 3): a 60 s r-band exposure of the 1 m (0.389"/px) at galactic
latitude 15° with 1.1" seeing, 0.3" defocus, 0.2" tracking error, a pointing error of
(6, -4) arcsec and a transient of r = 19.5 at a sub-pixel position, rendered by the twin
with its detector (cosmic rays included) and calibrated with the detector's bias and
flat; the reference is the deep template of the field (8 exposures, 0.9" seeing, no
pointing error) from :func:`models.transient.reference.render_template`. Rendering is
not timed.

Timed, best of ``--repeats`` per step (the machine may be shared):
``registration`` (SEP background and sources, catalogue stars, WCS fit), ``resample``
(the template onto the refined grid: the exact map on a 32-px grid, a spline between,
bicubic interpolation; :mod:`models.transient.resample`), ``psf`` (template background and
sources, both PSFs), ``zogy`` (D, S, Scorr with source-noise and astrometric terms),
``detect`` (|Scorr| ≥ 5 regions), ``classify`` (63² cut-out triplets, features and the
shipped real/bogus classifier of every candidate, one thread; left out without weights);
the chain total is their sum; then properimage's ``subtract`` (its Gaussian PSFs,
fitted flux ratio, ``beta=True, shift=False``) on the registered pair, timed once. The
ratios compare properimage with our PSF + ZOGY + detect (the same task: a registered
pair in, a difference out) and with our whole chain. ``resample (reproject_interp)`` is
the same resampling by ``reproject`` evaluating the WCS at every pixel (the library
reference, best of ``--repeats``), with its ratio to ours and the largest difference of
the two results in units of the pixels' noise.

Also written, so that speed is never bought with accuracy: registration error of the
frame centre against the truth, Scorr's σ on empty sky (pixels 15 px or more from every
truth source and artefact), false 5σ regions (either sign) per Mpix on the empty sky of
the timed pair and ``--sky-seeds`` more (other noise and cosmic rays), also outside the
bright stars' halos (:func:`models.transient.psf.halo_mask`), and on
``--noise-pairs`` pure-noise pairs of the same size, the transient's position and flux,
and the agreement with properimage on empty sky (Pearson r of D and of Scorr, their σ).

    .venv/bin/python benchmarks/transients.py                  # ~5-10 min on one core
    .venv/bin/python benchmarks/transients.py --size 1024 --no-properimage
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import report  # noqa: E402

import twin  # noqa: E402, F401  (offline astropy)
from models.transient.crosscheck import compare_maps, empty_sky, robust_std  # noqa: E402
from models.transient.detect import count_peaks  # noqa: E402
from models.transient.difference import subtract  # noqa: E402
from models.transient.psf import gaussian_psf  # noqa: E402
from models.transient.reference import render_frame_calibrated, render_template  # noqa: E402
from models.transient.zogy import zogy  # noqa: E402
from twin.imaging.scene import frame_wcs  # noqa: E402
from twin.imaging.spec import FrameSpec, Transient  # noqa: E402
from twin.world.telescope import TELESCOPE_PRESETS  # noqa: E402

STEPS = ("registration", "resample", "psf", "zogy", "detect")


def make_spec(size: int, transient: Transient | None = None) -> FrameSpec:
    return FrameSpec(
        obs_id=5, site="bench", site_height_m=2200.0, telescope=TELESCOPE_PRESETS["1m"],
        band="r", exptime_s=60.0, mjd_start=61000.0, ra_deg=280.867, dec_deg=30.611,
        pointing_error_ra_arcsec=6.0, pointing_error_dec_arcsec=-4.0, airmass=1.3,
        alt_deg=50.0, az_deg=180.0, sky_mag_arcsec2=20.8, seeing_fwhm_arcsec=1.1,
        defocus_fwhm_arcsec=0.3, tracking_error_arcsec=0.2, tracking_pa_deg=90.0,
        transparency=0.8, throughput=0.95, n_hot_pixels=0, n_bad_columns=0, moon_illum=0.0,
        moon_sep_deg=90.0, seed=21, nx=size, ny=size, transient=transient,
    )  # fmt: skip


def render_pair(size: int):
    """``(spec, new, truth, template)`` with the transient at 40 %, 60 % of the frame."""
    x, y = size * 0.4 + 0.3, size * 0.6 - 0.2
    ra, dec = frame_wcs(make_spec(size)).all_pix2world([[x, y]], 0)[0]
    spec = make_spec(size, Transient("AT-bench", float(ra), float(dec), 19.5))
    new, _, truth = render_frame_calibrated(spec)
    template, _ = render_template(spec, seeing_fwhm_arcsec=0.9)
    return spec, new, truth, template


def timed_chain(spec, new, template, repeats: int):
    """The chain ``repeats`` times: the last result and the best seconds per step."""
    best = dict.fromkeys(STEPS, float("inf"))
    best_total = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = subtract(new, template, spec.band)
        best_total = min(best_total, time.perf_counter() - t0)
        for step in STEPS:
            best[step] = min(best[step], result.timings_s[step])
    return result, best, best_total


def resample_reference_row(result, template, repeats: int, ours_s: float) -> tuple[dict, dict]:
    """``reproject_interp`` on the same template and refined grid as the chain's step."""
    from models.transient.resample import resample

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        exact = resample(template, result.registration.wcs, result.new.shape, method="reproject")
        best = min(best, time.perf_counter() - t0)
    good = ~exact.mask
    diff = np.abs(exact.data_e - result.ref_on_new.data_e)[good] / np.sqrt(exact.variance_e2[good])
    row = {"step": "resample (reproject_interp)", "s": round(best, 3),
           "vs_ours_chain": "", "vs_ours_resample": round(best / ours_s, 2)}  # fmt: skip
    same_mask = bool((exact.mask == result.ref_on_new.mask).all())
    same = {"resample_max_diff_over_noise_vs_reproject": float(diff.max()),
            "resample_same_mask_as_reproject": same_mask}  # fmt: skip
    return row, same


def timed_classification(result, repeats: int) -> tuple[float | None, int]:
    """Cut-outs and features of every candidate, then the shipped real/bogus classifier
    (one thread): best seconds of ``repeats`` and the candidates scored; None without
    shipped weights or torch."""
    try:
        import torch

        from models.transient.classifier import load_classifier
        from models.transient.cutouts import candidate_triplets

        classifier = load_classifier()
    except (ImportError, FileNotFoundError) as err:
        print(f"classification not timed: {err}")
        return None, 0
    torch.set_num_threads(1)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        triplets, features = candidate_triplets(result)
        classifier.predict_proba(triplets, features)
        best = min(best, time.perf_counter() - t0)
    return best, len(triplets)


def noise_false_peaks(size: int, pairs: int) -> dict:
    """5σ regions of Scorr for ``pairs`` pure-noise pairs (the sky levels of the pair)."""
    peaks, mpix, std = 0, 0.0, []
    for seed in range(pairs):
        rng = np.random.default_rng(seed)
        new = rng.normal(0.0, 20.0, (size, size))
        ref = rng.normal(0.0, 45.0, (size, size))
        result = zogy(
            new,
            ref,
            gaussian_psf(3.3),
            gaussian_psf(2.8),
            sigma_new_e=20.0,
            sigma_ref_e=45.0,
            flux_ratio=8.0,
        )
        peaks += count_peaks(result.scorr, result.mask)
        mpix += (~result.mask).sum() / 1e6
        std.append(float(np.std(result.scorr[~result.mask])))
    return {
        "pure_noise_pairs": pairs,
        "pure_noise_mpix": mpix,
        "pure_noise_5sigma": peaks,
        "false_5sigma_per_mpix_pure_noise": peaks / mpix,
        "scorr_std_pure_noise": float(np.mean(std)),
    }


def more_sky(size: int, seeds: int) -> list[tuple]:
    """Empty sky of more pairs of the field (other noise): ``(5σ regions, Mpix, Scorr σ,
    5σ regions outside bright-star halos, their Mpix)`` each."""
    out = []
    for k in range(seeds):
        spec = replace(make_spec(size), seed=1000 + k)
        new, _, truth = render_frame_calibrated(spec)
        template, _ = render_template(spec, seeing_fwhm_arcsec=0.9)
        result = subtract(new, template, spec.band)
        empty = empty_sky(truth, new.shape) & ~result.zogy.mask
        outside = empty & ~result.halo
        out.append(
            (
                count_peaks(result.zogy.scorr, ~empty),
                empty.sum() / 1e6,
                float(np.std(result.zogy.scorr[empty])),
                count_peaks(result.zogy.scorr, ~outside),
                outside.sum() / 1e6,
            )
        )
    return out


def figures(spec, truth, result) -> dict:
    """Accuracy of the run (see the module docstring)."""
    n = spec.nx
    centre = np.array([[(n - 1) / 2, (n - 1) / 2]])
    error = frame_wcs(spec).all_world2pix(result.registration.wcs.all_pix2world(centre, 0), 0)
    empty = empty_sky(truth, result.zogy.scorr.shape) & ~result.zogy.mask
    row = truth[truth["type"] == "transient"].iloc[0]
    found = result.candidates[result.candidates["sign"] > 0]
    dist = np.hypot(found["x_pix"] - row["x_pix"], found["y_pix"] - row["y_pix"])
    hit = found[dist < 1.0]
    return (
        {
            "registration_centre_error_pix": float(np.hypot(*(error - centre)[0])),
            "registration_matched_stars": result.registration.n_matched,
            "registration_rms_pix": result.registration.rms_pix,
            "scorr_std_empty_sky": float(np.std(result.zogy.scorr[empty])),
            "scorr_robust_std_empty_sky": robust_std(result.zogy.scorr[empty]),
            "empty_sky_5sigma": count_peaks(result.zogy.scorr, ~empty),
            "empty_sky_mpix": empty.sum() / 1e6,
            "empty_sky_5sigma_outside_halos": count_peaks(result.zogy.scorr, ~empty | result.halo),
            "empty_sky_mpix_outside_halos": (empty & ~result.halo).sum() / 1e6,
            "halo_fraction": float(result.halo.mean()),
            "candidates_5sigma": len(result.candidates),
            "transient_found": bool(len(hit)),
            "transient_position_error_pix": float(dist[dist < 1.0].min()) if len(hit) else None,
            "transient_scorr": float(hit["scorr"].iloc[0]) if len(hit) else None,
            "transient_flux_over_truth": float(hit["flux_e"].iloc[0] / row["flux_e"])
            if len(hit)
            else None,
            "transient_flux_err_over_truth": float(hit["flux_err_e"].iloc[0] / row["flux_e"])
            if len(hit)
            else None,
            "psf_fwhm_pix_new_ref": [result.psf_new.fwhm_pix, result.psf_ref.fwhm_pix],
        },
        empty,
        row,
    )


def properimage_rows(result, empty, transient_row, ours_s: float, chain_s: float):
    from models.transient.crosscheck import properimage_subtract

    t0 = time.perf_counter()
    bad = result.new.mask | result.ref_on_new.mask  # the inputs' own mask, not ours grown
    d, scorr = properimage_subtract(result.new, result.ref_on_new, bad)
    seconds = time.perf_counter() - t0
    d_cmp = compare_maps(result.zogy.d, d, empty)
    s_cmp = compare_maps(result.zogy.scorr, scorr, empty)
    iy, ix = round(transient_row["y_pix"]), round(transient_row["x_pix"])
    box = np.s_[iy - 2 : iy + 3, ix - 2 : ix + 3]
    agreement = {
        "properimage_d_pearson_r_empty_sky": d_cmp["pearson_r"],
        "properimage_scorr_pearson_r_empty_sky": s_cmp["pearson_r"],
        "properimage_d_std_empty_sky": d_cmp["theirs_std"],
        "properimage_scorr_std_empty_sky": s_cmp["theirs_std"],
        "transient_d_peak_ours": float(result.zogy.d[box].max()),
        "transient_d_peak_properimage": float(d[box].max() * d_cmp["theirs_scale"]),
        "transient_scorr_peak_properimage_in_its_sigma": float(
            scorr[box].max() * s_cmp["theirs_scale"]
        ),
    }
    row = {
        "step": "properimage subtract",
        "s": round(seconds, 3),
        "vs_ours_psf_zogy_detect": round(seconds / ours_s, 1),
        "vs_ours_chain": round(seconds / chain_s, 1),
    }
    return row, agreement


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-properimage", action="store_true")
    parser.add_argument("--noise-pairs", type=int, default=4, help="pure-noise pairs")
    parser.add_argument("--sky-seeds", type=int, default=2, help="more pairs for empty sky")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):  # one core, whatever the machine has
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    t0 = time.perf_counter()
    spec, new, truth, template = render_pair(args.size)
    render_s = time.perf_counter() - t0
    result, best, total = timed_chain(spec, new, template, args.repeats)
    classify_s, n_scored = timed_classification(result, args.repeats)
    if classify_s is not None:
        best["classify"] = classify_s
        total += classify_s
    steps = [s for s in (*STEPS, "classify") if s in best]
    rows = [{"step": s, "s": round(best[s], 3), "share": round(best[s] / total, 3)} for s in steps]
    rows.append({"step": "chain total", "s": round(total, 3), "share": 1.0})
    extra, empty, transient_row = figures(spec, truth, result)
    row, same = resample_reference_row(result, template, args.repeats, best["resample"])
    rows.append(row)
    extra.update(same)
    extra.update({"size_pix": args.size, "repeats": args.repeats, "render_pair_s": render_s,
                  "candidates_classified": n_scored})  # fmt: skip
    extra.update(noise_false_peaks(args.size, args.noise_pairs))
    sky = [
        (
            extra["empty_sky_5sigma"],
            extra["empty_sky_mpix"],
            extra["scorr_std_empty_sky"],
            extra["empty_sky_5sigma_outside_halos"],
            extra["empty_sky_mpix_outside_halos"],
        )
    ]
    sky += more_sky(args.size, args.sky_seeds)
    extra["empty_sky_pairs"] = len(sky)
    extra["empty_sky_scorr_std_each"] = [round(s[2], 4) for s in sky]
    extra["false_5sigma_per_mpix_empty_sky"] = sum(s[0] for s in sky) / sum(s[1] for s in sky)
    extra["false_5sigma_per_mpix_empty_sky_outside_halos"] = sum(s[3] for s in sky) / sum(
        s[4] for s in sky
    )
    if not args.no_properimage:
        ours = best["psf"] + best["zogy"] + best["detect"]
        row, agreement = properimage_rows(result, empty, transient_row, ours, total)
        rows.append(row)
        extra.update(agreement)
    for row in rows:
        for key in ("share", "vs_ours_psf_zogy_detect", "vs_ours_chain", "vs_ours_resample"):
            row.setdefault(key, "")
    report("transients", rows, {"figures": extra})
    for key, value in extra.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
