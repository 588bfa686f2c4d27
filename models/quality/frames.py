"""Render one exposure's frame in memory: raw ADU, header and truth, no FITS on disk.

The same three steps as :func:`twin.imaging.frames.render_frame` (scene → expected
electrons → detector) called in the same way, so a frame made here is the frame
``skytwin frame`` would write for the same spec and options; only the last step (write a
FITS file) is replaced by returning the arrays. Training data is made by the thousand, so
the disk round trip is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from twin.imaging.frames import RenderOptions
from twin.imaging.spec import FrameSpec


@dataclass(frozen=True)
class RenderedFrame:
    """``data_adu`` (uint16, as FITS would hold it), the header cards, the truth table."""

    data_adu: np.ndarray
    header: dict
    truth: pd.DataFrame
    n_hot_pixels_in_frame: int
    n_bad_columns_in_frame: int


def render_in_memory(spec: FrameSpec, options: RenderOptions | None = None,
                     trail_rate_per_hour_deg2: float | None = None) -> RenderedFrame:  # fmt: skip
    """Render ``spec`` as :func:`~twin.imaging.frames.render_frame` does, without the file.

    ``trail_rate_per_hour_deg2`` overrides the options' trail rate (to force trails).
    """
    from twin.imaging.fits import frame_header, truth_table
    from twin.imaging.frames import render_arrays

    options = options or RenderOptions()
    if trail_rate_per_hour_deg2 is not None:
        options = replace(options, trail_rate_per_hour_deg2=trail_rate_per_hour_deg2)
    detector, truth = render_arrays(spec, options)
    header = dict(frame_header(spec))
    return RenderedFrame(
        data_adu=np.asarray(detector.raw_adu, dtype=np.uint16),
        header=header,
        truth=truth_table(truth, detector, spec),
        n_hot_pixels_in_frame=len(detector.hot_pixels),
        n_bad_columns_in_frame=len(detector.bad_columns),
    )
