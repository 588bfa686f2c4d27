"""The scenario's ``pipeline:`` section: which stages run at the sites, on what frames.

| field             | default | meaning                                                      |
|-------------------|---------|--------------------------------------------------------------|
| stages            | []      | stage names (entry points ``skytwin.stages``); [] = no pipeline |
| frame_size_pix    | 1024    | frames are rendered as this central N x N region             |
| processing_s      | 5.0     | site compute time per frame before its results are sent      |
| min_quality       | 0.0     | a frame whose score is below 100 x this does not count       |
| keep_frames       | false   | also write each frame as FITS under ``frames/``              |
| max_repeats       | 1       | times the centre repeats one visit for rejected frames       |
| refocus_after     | 2       | frames in a row flagged ``focus`` before a refocus (0: never) |
| service_after     | 2       | frames in a row flagged ``tracking`` before a mount service |
| service_min       | 5.0     | minutes from the service order's arrival to the fault cleared |
| detection         | auto    | what detects an alert's transient: m5, stage or auto (below) |
| reference         |         | the reference survey's templates (:class:`ReferenceSpec`)   |
| discovery         |         | candidates → alerts, asteroids (:class:`DiscoverySpec`)     |
| fusion            |         | the centre's multi-site coadds (:class:`FusionSpec`)        |

``detection``: ``m5`` is the baseline (the transient's truth magnitude against the
exposure's 5σ depth, a threshold, not a pipeline); ``stage`` takes detections from real
candidates in the pixels (:mod:`twin.pipeline.discovery`); ``auto`` is ``stage`` when a
stage produces candidates (``transient``), else ``m5``.

``min_quality`` is the default of every programme; a programme's own
``min_frame_quality`` overrides it. Why a simulated ``processing_s`` rather than the
stage's wall-clock time: the run must be the same bit for bit on any machine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import FieldProblem, SafeName

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ReferenceSpec(BaseModel):
    """The templates a reference survey supplies, one per field, band and telescope.

    | field          | default | meaning                                                 |
    |----------------|---------|---------------------------------------------------------|
    | n_exposures    | 8       | depth in frame exposures (√8 ≈ 2.8 × a frame's SNR)    |
    | seeing_arcsec  | 0.9     | its seeing (a survey stacks its best-seeing visits)     |

    Defaults as a reference survey would supply: templates of Pan-STARRS1/ZTF/Rubin stack
    the best-seeing visits of a field, several to tens of them; 8 makes the template's
    noise add ~6 % to the difference image's.
    """

    model_config = _STRICT

    n_exposures: int = Field(default=8, ge=1, le=1000)
    seeing_arcsec: float = Field(default=0.9, gt=0.1, le=10.0)


class DiscoverySpec(BaseModel):
    """How the centre turns real candidates into detections, alerts and asteroids.

    | field                    | default | meaning                                       |
    |--------------------------|---------|-----------------------------------------------|
    | match_radius_arcsec      | 2.0     | same source: a candidate and a known alert    |
    | stationary_radius_arcsec | 0.8     | same place in the field's next frame: not moving |
    | asteroid_min_deg_per_day | 0.05    | slowest motion taken for an asteroid          |
    | asteroid_max_deg_per_day | 2.0     | fastest (faster NEOs trail in one exposure)   |
    | hold_max_s               | 3600    | a lone candidate waits this long for a 2nd frame |
    | followup_window_days     | 3.0     | a network alert's follow-up (kind unknown)    |
    | known_star_radius_pix    | 1.5     | this close to a catalogue star: the star varies |

    Why 2″: a few times a 1-m telescope's astrometric error after refinement (~0.1-0.3″)
    and about one seeing FWHM, the radius alert brokers (ZTF, ALeRCE) use to associate
    detections with one object. The asteroid rates span main-belt objects at opposition
    (~0.25 °/day) and most NEOs that do not trail within an exposure. Why 0.8″ for
    "did not move" between two frames of a field: frames of one visit are ~90 s apart,
    in which a main-belt asteroid moves 0.4–1.9″ (:mod:`twin.pipeline.discovery`). Why a
    known-star
    radius: a star that brightens (a variable, a flare) is real new light but not a
    transient; brokers drop candidates on catalogue stars the same way (ZTF's
    ``distpsnr1``/``sgscore``). 1.5 px (~0.6″ on a 1-m) is a few times the registration
    error, well inside a seeing disc: a supernova must sit on the star itself to be lost.
    """

    model_config = _STRICT

    match_radius_arcsec: float = Field(default=2.0, gt=0.0, le=60.0)
    stationary_radius_arcsec: float = Field(default=0.8, gt=0.0, le=60.0)
    asteroid_min_deg_per_day: float = Field(default=0.05, ge=0.0, le=100.0)
    asteroid_max_deg_per_day: float = Field(default=2.0, gt=0.0, le=100.0)
    hold_max_s: float = Field(default=3600.0, ge=0.0, le=30.0 * 86400.0)
    followup_window_days: float = Field(default=3.0, gt=0.0, le=365.0)
    known_star_radius_pix: float = Field(default=1.5, ge=0.0, le=32.0)

    @model_validator(mode="after")
    def _rates(self) -> DiscoverySpec:
        if not self.asteroid_min_deg_per_day < self.asteroid_max_deg_per_day:
            raise FieldProblem(
                "asteroid_min_deg_per_day",
                "asteroid_min_deg_per_day must be below asteroid_max_deg_per_day (got "
                f"{self.asteroid_min_deg_per_day}, {self.asteroid_max_deg_per_day})",
            )
        return self


FUSION_METHODS = ("ivw", "psf-matched", "proper", "learned")
"""``pipeline.fusion.method``: the coadds of :data:`models.fusion.METHODS` and the learned
fusion (the fusion stage refuses ``learned`` before the run when its model is missing)."""


class FusionSpec(BaseModel):
    """How the centre groups the frames that reached it and fuses them (a stage with
    ``centre_products``, such as ``fusion``; ignored without one).

    | field      | default | meaning                                                   |
    |------------|---------|-----------------------------------------------------------|
    | window_h   | 24      | hours: a group's frames began within this of its first    |
    | method     | proper  | ivw, psf-matched, proper or learned                       |
    | min_sites  | 2       | sites a group needs (one site's frames are a stack)       |
    | max_frames | 12      | inputs: each site's sharpest frame, then the sharpest     |

    A group is the frames of one field (target) and band.

    Why 24 h: a field's frames from Chile, South Africa and Australia come in one turn
    of the Earth; a longer window mixes epochs of a changing sky (transients, asteroids)
    into one image. Why a cap: each input is rendered, registered and resampled again at
    the centre, and past about a dozen frames of one field a coadd gains little depth
    (√N) for its cost. The same windows as ``skytwin fuse`` (:func:`models.fusion.run.find_groups`).
    """

    model_config = _STRICT

    window_h: float = Field(default=24.0, gt=0.0, le=24.0 * 30.0)
    method: Literal["ivw", "psf-matched", "proper", "learned"] = "proper"
    min_sites: int = Field(default=2, ge=2, le=64)
    max_frames: int = Field(default=12, ge=2, le=256)

    @model_validator(mode="after")
    def _room_for_sites(self) -> FusionSpec:
        if self.max_frames < self.min_sites:
            raise FieldProblem(
                "max_frames",
                f"max_frames ({self.max_frames}) must be at least min_sites "
                f"({self.min_sites}): a group keeps one frame of each site",
            )
        return self


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    stages: tuple[SafeName, ...] = Field(default=(), max_length=16)
    frame_size_pix: int = Field(default=1024, ge=32, le=8192)
    processing_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    min_quality: float = Field(default=0.0, ge=0.0, le=1.0)
    keep_frames: bool = False
    max_repeats: int = Field(default=1, ge=0, le=10)
    refocus_after: int = Field(default=2, ge=0, le=100)
    service_after: int = Field(default=2, ge=0, le=100)
    service_min: float = Field(default=5.0, ge=0.0, le=1440.0)
    detection: Literal["auto", "m5", "stage"] = "auto"
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    discovery: DiscoverySpec = Field(default_factory=DiscoverySpec)
    fusion: FusionSpec = Field(default_factory=FusionSpec)

    @property
    def enabled(self) -> bool:
        return bool(self.stages)
