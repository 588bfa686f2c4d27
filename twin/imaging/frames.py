"""Render a run's exposures: specs from the run directory, a pool of processes, FITS out.

A run directory is self-contained (``scenario.yaml``, ``observations.parquet``), so
frames can be rendered after the run, on another machine: the World is rebuilt from the
resolved scenario and its seed (the equipment's hot-pixel and bad-column positions, the
alerts' light curves), and each exposure's frame is seeded from ``(run seed, obs_id)`` —
the same frame whatever the order or the number of processes.

Parallelism: local processes (``concurrent.futures.ProcessPoolExecutor``) by default;
``ray_address`` runs the same function as Ray tasks on a local Ray or an existing
cluster (``"auto"``, or ``"ray://host:10001"``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import ConfigError, excerpt
from twin.imaging.faults import draw_faults
from twin.imaging.spec import FrameSpec, Transient, frame_spec

FRAME_DIR = "frames"
CALIBRATION_DIR = "calibration"
GALAXY_BANK_DIR = "galaxy_bank"


@dataclass(frozen=True)
class RenderOptions:
    """The scenario's ``imaging`` settings, passed to every render."""

    trail_rate_per_hour_deg2: float = 0.5
    defocus_model: str = "gaussian"
    sky_seed: int = 0
    galaxies: str = "parametric"
    galaxy_bank_dir: str | None = None  # a learned galaxy source's cache (None: its default)


@dataclass(frozen=True)
class RenderJob:
    spec: FrameSpec
    path: Path
    options: RenderOptions = RenderOptions()


def frame_seed(run_seed: int, obs_id: int) -> int:
    """A 63-bit seed for one exposure's frame, independent of the others."""
    return int(np.random.SeedSequence([int(run_seed), int(obs_id)]).generate_state(1, np.uint64)[0]
               >> np.uint64(1))  # fmt: skip


class RunFrames:
    """The run's exposures as frame specs (the World rebuilt from the run's scenario)."""

    def __init__(self, run_dir: str | Path, size: int | None = None,
                 galaxies: str | None = None) -> None:  # fmt: skip
        from twin.ops.world import World
        from twin.scenario import load_scenario

        self.run_dir = Path(run_dir)
        scenario_path = self.run_dir / "scenario.yaml"
        obs_path = self.run_dir / "observations.parquet"
        for path in (scenario_path, obs_path):
            if not path.exists():
                raise ConfigError(str(self.run_dir), path.name,
                                  "not a run directory: run `skytwin run` first")  # fmt: skip
        self.scenario = load_scenario(scenario_path)
        self.world = World(self.scenario)
        self.observations = pd.read_parquet(obs_path)
        self.telescopes = {t.name: t for t in self.world.telescopes}
        self.alerts = {a.alert_id: a for a in self.world.alerts}
        self.size = size
        # A learned galaxy source caches its stamps per sky cell in the run directory.
        self.options = replace(options_for(self.scenario.imaging),
                               galaxy_bank_dir=str(self.run_dir / GALAXY_BANK_DIR))  # fmt: skip
        if galaxies is not None:
            self.options = replace(self.options, galaxies=check_galaxies(galaxies, "--galaxies"))

    def spec(self, obs_id: int) -> FrameSpec:
        rows = self.observations[self.observations["obs_id"] == int(obs_id)]
        if rows.empty:
            lo, hi = self.observations["obs_id"].min(), self.observations["obs_id"].max()
            raise ConfigError(str(self.run_dir), "obs_id",
                              f"no exposure {obs_id}; this run has {lo}..{hi}")  # fmt: skip
        return self._spec(rows.iloc[0].to_dict())

    def specs(self, sites: Sequence[str] | None = None, max_frames: int | None = None
              ) -> list[FrameSpec]:  # fmt: skip
        obs = self.observations.sort_values("obs_id")
        if sites:
            unknown = sorted(set(sites) - set(obs["site"]))
            if unknown:
                raise ConfigError("--sites", "site", f"{unknown} observed nothing in this run; "
                                  f"allowed: {', '.join(sorted(set(obs['site'])))}")  # fmt: skip
            obs = obs[obs["site"].isin(sites)]
        if max_frames is not None:
            obs = obs.head(int(max_frames))
        return [self._spec(row) for row in obs.to_dict("records")]

    def _spec(self, row: dict) -> FrameSpec:
        return spec_for_row(row, self.telescopes[row["telescope"]], self.alerts,
                            self.world.seed, self.scenario.imaging, self.size)  # fmt: skip


def spec_for_row(row: dict, tw, alerts: dict, run_seed: int, imaging, size: int | None = None
                 ) -> FrameSpec:  # fmt: skip
    """The frame spec of the exposure in ``row`` (an ``observations`` row as a dict), at
    telescope world ``tw``: one function for frames rendered after the run and in the
    loop (:mod:`twin.pipeline.loop`), so both give the same frame."""
    defects = tw.equipment.defects
    transient = None
    if row.get("alert_id"):
        alert = alerts.get(row["alert_id"])
        if alert is not None:
            transient = Transient(alert.alert_id, alert.ra_deg, alert.dec_deg,
                                  float(alert.mag(row["band"], row["mjd_start"])))  # fmt: skip
    hot = np.asarray(defects.hot_pixels_at(row["mjd_start"]))
    bad = np.asarray(defects.bad_columns_at(row["mjd_start"]))
    spec = frame_spec(row, tw.telescope, frame_seed(run_seed, row["obs_id"]), transient=transient)
    faults = draw_faults(imaging.faults, spec.seed)
    m5_ref = tw.quality.m5_ref(row["band"], float(row["exptime_s"]))
    spec = replace(spec, hot_pixels=hot, bad_columns=bad, faults=faults, m5_ref_mag=m5_ref,
                   population=getattr(imaging, "population", None))  # fmt: skip
    if size:
        spec = spec.resized(min(size, spec.nx), min(size, spec.ny))
    return spec


def options_for(imaging) -> RenderOptions:
    """The render options of a scenario's ``imaging`` section."""
    return RenderOptions(imaging.trail_rate_per_hour_deg2, imaging.defocus_model,
                         imaging.sky_seed, imaging.galaxies or "parametric")  # fmt: skip


def check_galaxies(kind: str, source: str) -> str:
    """``kind`` if it names a galaxy source (:data:`~twin.imaging.galaxies.GALAXY_SOURCES`)."""
    from twin.imaging.galaxies import GALAXY_SOURCES

    if kind not in GALAXY_SOURCES:
        raise ConfigError(source, "galaxies", f"{excerpt(kind)} is not a galaxy source; "
                          f"allowed: {', '.join(GALAXY_SOURCES)}")  # fmt: skip
    return kind


def frame_path(run_dir: Path, spec: FrameSpec) -> Path:
    return run_dir / FRAME_DIR / spec.site / f"{spec.telescope.name}_{spec.obs_id:07d}.fits"


def render_frame(spec: FrameSpec, path: str | Path, options: RenderOptions | None = None) -> Path:
    """Scene → expected electrons → detector → FITS (+ truth parquet)."""
    from twin.imaging.fits import write_frame

    detector, truth = render_arrays(spec, options)
    return write_frame(path, detector.raw_adu, spec, truth, detector=detector,
                       header_extra=source_cards(options))  # fmt: skip


def source_cards(options: RenderOptions | None) -> dict[str, tuple[str, str]]:
    """Header cards naming how the frame was drawn where the spec does not say it: the
    galaxy source (a frame with model galaxies looks like any other)."""
    galaxies = (options or RenderOptions()).galaxies
    return {"GALAXIES": (galaxies, "truth: galaxy stamp source")}


def render_arrays(spec: FrameSpec, options: RenderOptions | None = None):
    """Scene → expected electrons → detector, in memory: ``(DetectorResult, truth)``."""
    from twin.imaging.catalog import TrailModel
    from twin.imaging.detector import apply_detector
    from twin.imaging.render import render_expected

    options = options or RenderOptions()
    rendered = render_expected(
        spec, sky_seed=options.sky_seed, defocus_model=options.defocus_model,
        trails=TrailModel(rate_per_hour_deg2=options.trail_rate_per_hour_deg2),
        galaxies=options.galaxies, galaxy_bank_dir=options.galaxy_bank_dir,
    )  # fmt: skip
    rng = np.random.default_rng(spec.seed)
    return apply_detector(rendered.image_e, spec, rng), rendered.truth


def _render_job(job: RenderJob) -> str:
    return str(render_frame(job.spec, job.path, job.options))


def render_many(jobs: Sequence[RenderJob], processes: int | None = None,
                ray_address: str | None = None, progress: bool = True) -> list[Path]:  # fmt: skip
    """Render ``jobs`` with a process pool (or Ray tasks); returns the paths in order."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), unit="frame", desc="frames", disable=not progress)
    out: list[Path] = []
    try:
        if ray_address:
            out = _render_ray(jobs, ray_address, bar)
        elif (processes or os.cpu_count() or 1) <= 1 or len(jobs) <= 1:
            for job in jobs:
                out.append(Path(_render_job(job)))
                bar.update(1)
        else:
            workers = processes or os.cpu_count() or 1
            # Contiguous chunks: a worker renders runs of one telescope's frames, so its
            # cached flat field and bias (per telescope, ~130 MB at 4k) are reused.
            chunk = max(1, len(jobs) // (4 * workers))
            pool = ProcessPoolExecutor(max_workers=workers)
            try:
                for path in pool.map(_render_job, jobs, chunksize=chunk):
                    out.append(Path(path))
                    bar.update(1)
            finally:  # stopped: drop what has not started rather than wait for it
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
    return out


def _render_ray(jobs: Sequence[RenderJob], address: str, bar) -> list[Path]:
    import ray

    ray.init(address=None if address == "local" else address, ignore_reinit_error=True,
             include_dashboard=False, log_to_driver=False)  # fmt: skip
    task = ray.remote(_render_job)
    pending = [task.remote(job) for job in jobs]
    paths = []
    for ref in pending:
        paths.append(Path(ray.get(ref)))
        bar.update(1)
    return paths


def render_run(
    run_dir: str | Path, *, sites: Sequence[str] | None = None, max_frames: int | None = None,
    size: int | None = None, processes: int | None = None, ray_address: str | None = None,
    calibrations: bool = True, progress: bool = True, galaxies: str | None = None,
) -> dict[str, list[Path]]:  # fmt: skip
    """Render the run's exposures (and each night's calibration frames) into the run dir.

    ``galaxies`` overrides the scenario's ``imaging.galaxies`` (``parametric``, ``diffusion``).
    """
    from twin.imaging.calibration import write_calibrations

    frames = RunFrames(run_dir, size=size, galaxies=galaxies)
    specs = frames.specs(sites, max_frames)
    # By telescope, then time: consecutive frames share the detector's cached flat/bias.
    order = sorted(range(len(specs)), key=lambda i: (specs[i].telescope.name, specs[i].obs_id))
    paths = [frame_path(frames.run_dir, spec) for spec in specs]
    # A FITS file is renamed into place only once complete (write_frame): the frames of a
    # stopped render that are on disk are done and are not rendered again.
    todo = [i for i in order if not paths[i].is_file()]
    for folder in {paths[i].parent for i in todo}:  # what a killed render left half-written
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink()
    jobs = [RenderJob(specs[i], paths[i], frames.options) for i in todo]
    rendered = render_many(jobs, processes, ray_address, progress)
    for i, path in zip(todo, rendered, strict=True):
        paths[i] = path
    cal_paths: list[Path] = []
    if calibrations:
        for (_telescope, night_index), group in _by_night(frames, specs):
            first = group[0]
            bands = sorted({s.band for s in group})
            cal_paths += write_calibrations(
                frames.run_dir / CALIBRATION_DIR / first.site, first.telescope, night_index,
                bands, frames.world.seed, like=first,
                mjd=first.mjd_start - 2.0 / 24.0,
            )  # fmt: skip
    return {"frames": paths, "calibration": cal_paths}


def _by_night(frames: RunFrames, specs: Iterable[FrameSpec]):
    nights = frames.observations.set_index("obs_id")["night"]
    groups: dict[tuple[str, int], list[FrameSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.telescope.name, int(nights.loc[spec.obs_id])), []).append(spec)
    return groups.items()
