"""The ``fusion`` pipeline stage: the centre's multi-site coadd of each group, in the run.

``skytwin run SCENARIO --pipeline quality,fusion`` (or ``pipeline.stages`` in the
scenario). A stage with ``centre_products`` (:mod:`twin.pipeline.stage`): the twin sends
every frame over its site's link, groups the frames that arrived by field and band and
decides when a group can be fused (:mod:`twin.pipeline.fusion`); this stage does the
fusion itself, as ``skytwin fuse`` does after a run (:func:`models.fusion.run.fuse_group`:
render and calibrate each input, register it against the catalogue, resample onto the
best-seeing frame's grid, measure PSFs, coadd with ``pipeline.fusion.method``), and
writes the product where ``skytwin fuse`` writes it (``RUN/fused/FIELD_BAND_N.fits``,
:func:`models.fusion.run.write_fused`: the coadd with its WCS, ``VARIANCE``, ``MASK``,
``COVERAGE``, ``PSF``, ``INPUTS`` and, for ``learned``, ``FLAGS``). Why the same code: a
product fused in the loop and one fused after the run from the same frames are the same
file, so the in-loop timing is the only thing the loop adds.

At the site the stage measures nothing (its ``process`` returns an empty result): its
work is at the centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twin.errors import ConfigError
from twin.pipeline.stage import Frame, FusionGroup, GroupSkipped, StageContext, StageResult

VERSION = "fusion-1"


class _GroupFrames:
    """What :func:`~models.fusion.run.fuse_group` reads of a run's frames: each input's
    :class:`~twin.imaging.frames.FrameSpec` by ``obs_id``, and the render options."""

    def __init__(self, group: FusionGroup, options) -> None:
        self._specs = {f.obs_id: f.spec for f in group.frames}
        self.options = options

    def spec(self, obs_id: int):
        return self._specs[int(obs_id)]


class FusionStage:
    """Fuses each group the centre closes (see the module docstring)."""

    name = "fusion"
    version = VERSION
    centre_products = True

    def __init__(self) -> None:
        self.method = "proper"
        self.min_sites = 2
        self.options = None
        self.run_dir: Path | None = None

    def configure(self, spec) -> None:
        """Take ``pipeline.fusion``; refuse ``learned`` when its model cannot run here."""
        fusion = spec.fusion
        if fusion.method == "learned":
            check_learned()
        self.method = fusion.method
        self.min_sites = fusion.min_sites

    def bind(self, context: StageContext) -> None:
        self.options = context.render_options
        self.run_dir = context.run_dir

    def process(self, frame: Frame) -> StageResult:
        """Nothing to measure at the site: the frame itself goes to the centre."""
        return StageResult(self.name, self.version)

    def fuse(self, group: FusionGroup) -> dict:
        """Fuse ``group``, write its product, return its measured columns
        (:data:`twin.pipeline.stage.FUSED_COLUMNS`); :class:`GroupSkipped` if it cannot."""
        from models.fusion.photometry import coadd_flux_sigma, frame_flux_sigma, limiting_mag
        from models.fusion.run import (
            FUSED_DIR,
            MAGZERO_OUT,
            FusionSkipped,
            Group,
            fuse_group,
            write_fused,
        )

        named = Group(group.target_id, group.band, group.index, group.obs_ids, group.sites,
                      group.fused_mjd)  # fmt: skip
        try:
            coadd, wcs, inputs, aligned = fuse_group(_GroupFrames(group, self.options), named,
                                                     self.method, self.min_sites)  # fmt: skip
        except FusionSkipped as why:
            raise GroupSkipped(str(why)) from None
        inputs["m5"] = [limiting_mag(frame_flux_sigma(f), MAGZERO_OUT) for f in aligned]
        m5 = limiting_mag(coadd_flux_sigma(coadd, aligned), MAGZERO_OUT)
        product = ""
        if self.run_dir is not None:
            path = write_fused(self.run_dir / FUSED_DIR / f"{named.name}.fits", coadd, wcs,
                               inputs, named, self.method)  # fmt: skip
            product = f"{FUSED_DIR}/{path.name}"
        best = float(inputs["m5"].max())
        return {
            "product": product,
            "method": self.method,
            "m5": m5,
            "m5_best_input": best,
            "depth_gain_mag": m5 - best,
            "registration_rms_pix_max": float(inputs["registration_rms_pix"].max()),
            "coverage_fraction": float(1.0 - np.mean(coadd.mask)),
            "n_used": len(inputs),
        }


def check_learned() -> None:
    """Raise a :class:`ConfigError` unless the learned fusion can run: its module
    imports (torch installed), provides ``learned_coadd`` and has its shipped weights."""
    where, field = "pipeline.fusion", "method"
    try:
        from models.fusion import learned
    except ImportError as err:
        raise ConfigError(where, field, f"'learned' needs {err.name or 'torch'}, which is not "
                          "installed (pip install skytwin[models]); or use ivw, psf-matched "
                          "or proper") from None  # fmt: skip
    if not callable(getattr(learned, "learned_coadd", None)):
        raise ConfigError(where, field, "'learned': models.fusion.learned provides no "
                          "learned_coadd in this version; use ivw, psf-matched or "
                          "proper")  # fmt: skip
    weights = Path(learned.WEIGHTS_DIR) / learned.WEIGHTS_NAME
    if not weights.exists():
        raise ConfigError(where, field, f"'learned' needs its weights ({weights} is "
                          "missing: skytwin models train fusion); or use ivw, psf-matched "
                          "or proper")  # fmt: skip
