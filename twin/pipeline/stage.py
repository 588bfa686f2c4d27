"""The pipeline seam: what a stage at a site receives, what it returns, how it is found.

A :class:`PipelineStage` is to frames what a :class:`~twin.ops.conditions.Policy` is to
decisions: the twin hands it one :class:`Frame` (the pixels and header of one exposure,
with the exposure's :class:`~twin.ops.exposures.Exposure` record) and gets back a
:class:`StageResult`, typed, with no truth in it. Results travel to the centre over the
site's link and the centre acts on them (:mod:`twin.pipeline.loop`,
:mod:`twin.pipeline.discovery`). Stages register under the ``skytwin.stages`` entry-point
group, as policies do, so the twin never imports ``models``.

A stage that finds transients returns :class:`Candidate` s and says so with a class
attribute ``produces_candidates = True``: the centre then takes the detections of alerts
from pixels instead of the ``m5`` threshold on the truth magnitude
(``pipeline.detection``). A stage that needs survey products beside the frame (a
reference image of the field, the static-sky catalogue) gets them once through an
optional ``bind(context)`` with a :class:`StageContext`, as an offline policy's ``bind``
gets the world.

A stage that makes products at the centre from *groups* of frames (multi-site fusion)
says so with ``centre_products = True`` and works in two halves. At the site its
``process`` is called like any stage's (it may measure nothing). At the centre the loop
(:mod:`twin.pipeline.fusion`) does what only the twin knows: it sends each frame over
the site's link (bandwidth and outages decide when it arrives), keeps a
:class:`FrameAtCentre` of every frame that arrived, groups them by field and band in the
time window of ``pipeline.fusion`` and decides *when* a group can be fused (its window
has closed and its last input has arrived). The stage decides *how*: the loop calls

- ``configure(spec)`` with the run's :class:`~twin.pipeline.spec.PipelineSpec` before
  anything runs (the out directory is not touched yet): the stage refuses what it cannot
  do (a fusion method whose model is missing) with a :class:`~twin.errors.ConfigError`;
- ``fuse(group)`` with a :class:`FusionGroup`, once per group: the stage writes the
  product under ``<run_dir>/fused/`` (``run_dir`` from ``bind``) and returns the
  measured columns of its ``fusion.parquet`` row (:data:`FUSED_COLUMNS`), or raises
  :class:`GroupSkipped` with the reason when the group cannot be fused.

Why this split: the grouping and timing are the network's (links, windows, the run's
clock) and must run without torch; the coadd is the model's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from twin.ops.exposures import Exposure
from twin.ops.records import FLAG_NAMES  # noqa: F401  (the flags, declared with the table)

FLAG_THRESHOLD = 0.5
"""A flag is *active* when its probability is at least this."""


@dataclass(frozen=True)
class Frame:
    """One exposure's frame as a site pipeline sees it: pixels, header, the record.

    ``data_adu`` is the raw frame (the detector's ADU, as written to FITS); ``header``
    the FITS header cards as a mapping (WCS, exposure time, filter, gain, read noise,
    zero point: what the site knows, never the truth table). ``reference_spec``: the
    field as the reference survey observed it (the frame's telescope, believed pointing,
    band and size under the survey's conditions, :func:`twin.pipeline.survey.reference_spec`),
    from which a stage renders or loads the template; no truth of this exposure is in it.
    ``calibration``: the night's master bias, flat and defect map
    (:func:`twin.pipeline.survey.site_calibration`), keyword arguments of
    :func:`models.transient.image.calibrate`; empty: calibrate from the header alone.
    """

    exposure: Exposure
    data_adu: np.ndarray
    header: Mapping[str, Any]
    reference_spec: Any = None
    calibration: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One source in a frame's difference image, as the site's pipeline measured it.

    | field        | unit     | meaning                                                    |
    |--------------|----------|------------------------------------------------------------|
    | ra_deg, dec_deg | deg   | ICRS, through the frame's *refined* WCS                    |
    | x_pix, y_pix | pixel    | 0-based position in the frame                               |
    | mag, mag_err | AB mag   | from the difference flux and the header zero point (NaN if ≤ 0) |
    | flux_e, flux_err_e | e- | point-source flux in the difference image                  |
    | scorr        | σ        | signed peak of ZOGY's Scorr                                 |
    | sign         | ±1       | +1 brighter than the reference, −1 fainter                  |
    | real_prob    | 0..1     | the real/bogus classifier's probability of *real*           |
    | is_real      | bool     | ``real_prob`` at or above the stage's threshold             |
    | alert_grade  | bool     | may *raise* an alert (stricter threshold); None: is_real |
    | features     | any      | the scalar features the classifier saw (for the table)      |

    No truth: what the candidate *is* is decided at the centre and matched to the truth
    only when the run is recorded.
    """

    ra_deg: float
    dec_deg: float
    x_pix: float
    y_pix: float
    mag: float = math.nan
    mag_err: float = math.nan
    flux_e: float = math.nan
    flux_err_e: float = math.nan
    scorr: float = math.nan
    sign: int = 1
    real_prob: float = math.nan
    is_real: bool = False
    features: Mapping[str, float] = field(default_factory=dict, compare=False)
    alert_grade: bool | None = None

    @property
    def raises_alert(self) -> bool:
        """Whether, unexplained, this candidate may become the network's own alert."""
        return self.is_real if self.alert_grade is None else bool(self.alert_grade)


@dataclass(frozen=True)
class StageContext:
    """What the twin gives a stage besides frames: survey products, not truth.

    ``render_options``: the static sky the reference survey and the astrometric
    catalogue describe (:class:`twin.imaging.frames.RenderOptions`: its ``sky_seed``,
    galaxy source); ``reference``: the depth and seeing of the reference survey
    (:class:`twin.pipeline.spec.ReferenceSpec`); ``run_dir``: where a stage may cache
    products (``<run_dir>/references/``), None for a run with no directory.
    """

    render_options: Any
    reference: Any
    run_dir: Path | None = None


@dataclass(frozen=True)
class StageResult:
    """What one stage found in one frame. Fields a stage does not measure stay NaN/empty.

    | field          | unit    | meaning                                               |
    |----------------|---------|-------------------------------------------------------|
    | score          | 0..100  | 100 x predicted effective-time ratio (the log's quality) |
    | seeing_arcsec  | arcsec  | measured image FWHM                                    |
    | flags          | 0..1    | probability per name of :data:`FLAG_NAMES`             |
    | anomaly        | any     | anomaly score (higher: more unusual)                   |
    | candidates     |         | transient candidates (:class:`Candidate`), all of them  |
    | searched       | bool    | False: the frame could not be searched (no difference) |

    ``searched`` matters to a stage that finds candidates: a frame it could not difference
    (too few stars to register) has no candidates *because nothing was looked at*, and
    must not count as "the source was not there" for candidates held at the centre.
    """

    stage: str
    model_version: str
    score: float = math.nan
    seeing_arcsec: float = math.nan
    flags: Mapping[str, float] = field(default_factory=dict)
    anomaly: float = math.nan
    candidates: tuple[Candidate, ...] = ()
    searched: bool = True

    def active_flags(self) -> tuple[str, ...]:
        return tuple(name for name, p in self.flags.items() if p >= FLAG_THRESHOLD)


@runtime_checkable
class PipelineStage(Protocol):
    """A model (or classical measurement) run at the site on every frame."""

    name: str
    version: str

    def process(self, frame: Frame) -> StageResult:
        """Measure one frame. Must not read the twin's truth: only ``frame``."""
        ...


@dataclass(frozen=True)
class FrameAtCentre:
    """One frame as the centre holds it once it arrived over the site's link.

    ``spec``: the frame's render recipe (:class:`twin.imaging.frames.FrameSpec`, the
    same seed as the site's render): the centre renders the frame's pixels again from it
    rather than holding a day of frames in memory (the same pixels, bit for bit).
    ``seeing_arcsec``: what a site stage measured (NaN if none did), which ranks frames
    when a group has more than ``max_frames``. ``arrival_mjd``: the frame's last byte
    at the centre (the site's :class:`~twin.ops.links.DataUplink`).
    """

    obs_id: int
    site: str
    telescope: str
    target_id: str
    band: str
    mjd_start: float
    mjd_end: float
    arrival_mjd: float
    seeing_arcsec: float
    spec: Any = field(compare=False, repr=False)


@dataclass(frozen=True)
class FusionGroup:
    """Frames of one field and band, from at least ``min_sites`` sites, to fuse as one.

    ``index``: the group's rank among the groups of its field and band in time order
    (the product is ``FIELD_BAND_INDEX``, as :func:`models.fusion.run.find_groups` names
    it); ``frames`` in order of shutter opening; ``closed_mjd``: when the centre closed
    the group (its window ended, or the run did).
    """

    target_id: str
    band: str
    index: int
    frames: tuple[FrameAtCentre, ...]
    window_start_mjd: float
    closed_mjd: float

    @property
    def obs_ids(self) -> tuple[int, ...]:
        return tuple(f.obs_id for f in self.frames)

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(sorted({f.site for f in self.frames}))

    @property
    def fused_mjd(self) -> float:
        """When the centre could fuse: the last input's arrival."""
        return max(f.arrival_mjd for f in self.frames)


FUSED_COLUMNS = ("product", "method", "m5", "m5_best_input", "depth_gain_mag",
                 "registration_rms_pix_max", "coverage_fraction", "n_used")  # fmt: skip
"""What a centre stage's ``fuse`` returns: the product's path relative to the run
directory, the method, the 5σ point-source depth (AB mag) of the coadd and of its best
input, their difference, the worst registration residual (pixels), the fraction of the
grid with data, and the inputs that entered (frames without stars are left out)."""


class GroupSkipped(RuntimeError):
    """A group the stage could not fuse (too few frames registered, no star for a PSF)."""


def makes_centre_products(stage: object) -> bool:
    """Whether ``stage`` fuses groups of frames at the centre (its ``centre_products``)."""
    return bool(getattr(stage, "centre_products", False))


def configure_stages(stages: list, spec: Any) -> None:
    """Let each stage refuse the run's pipeline spec before anything runs (``configure``)."""
    for stage in stages:
        configure = getattr(stage, "configure", None)
        if callable(configure):
            configure(spec)


def produces_candidates(stage: object) -> bool:
    """Whether ``stage`` reports transient candidates (its ``produces_candidates``)."""
    return bool(getattr(stage, "produces_candidates", False))


def bind_stage(stage: object, context: StageContext) -> None:
    """Give ``stage`` the run's survey products, if it asks for them (has ``bind``)."""
    bind = getattr(stage, "bind", None)
    if callable(bind):
        bind(context)
