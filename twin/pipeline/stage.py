"""The pipeline seam: what a stage at a site receives, what it returns, how it is found.

A :class:`PipelineStage` is to frames what a :class:`~twin.ops.conditions.Policy` is to
decisions: the twin hands it one :class:`Frame` (the pixels and header of one exposure,
with the exposure's :class:`~twin.ops.exposures.Exposure` record) and gets back a
:class:`StageResult`, typed, with no truth in it. Results travel to the centre over the
site's link and the centre acts on them (:mod:`twin.pipeline.centre`). Stages register
under the ``skytwin.stages`` entry-point group, as policies do, so the twin never
imports ``models``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    zero point: what the site knows, never the truth table).
    """

    exposure: Exposure
    data_adu: np.ndarray
    header: Mapping[str, Any]


@dataclass(frozen=True)
class StageResult:
    """What one stage found in one frame. Fields a stage does not measure stay NaN/empty.

    | field          | unit    | meaning                                               |
    |----------------|---------|-------------------------------------------------------|
    | score          | 0..100  | 100 x predicted effective-time ratio (the log's quality) |
    | seeing_arcsec  | arcsec  | measured image FWHM                                    |
    | flags          | 0..1    | probability per name of :data:`FLAG_NAMES`             |
    | anomaly        | any     | anomaly score (higher: more unusual)                   |
    """

    stage: str
    model_version: str
    score: float = math.nan
    seeing_arcsec: float = math.nan
    flags: Mapping[str, float] = field(default_factory=dict)
    anomaly: float = math.nan

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
