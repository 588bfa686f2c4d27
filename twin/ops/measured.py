"""What the network's own frames say about a telescope now, in the scheduler's units.

The constraint engine expects a visit's quality from the site's monitors (seeing monitor,
all-sky camera): it cannot see a drifted focus, a tracking fault, dust on the mirror or a
thin cloud the camera missed. The site pipeline can: its quality stage scores each frame
as 100 × the effective-time ratio it measured. The ratio of that score to what the
scheduler expected of the same frame, :func:`quality_ratio`, is the telescope's
"delivers this much of what its monitors promise" factor; :func:`expected_quality` applies
it to the candidates, and :func:`expected_rejected` says which would come out below their
programme's threshold and be rejected by the centre.

Only a recent measurement counts (:data:`MAX_AGE_MIN`): a fault seen an hour ago may have
been fixed (a refocus or a mount service ordered by the centre) and the weather moves on.
Without a pipeline ``Conditions.measured`` is empty and every function here is neutral.
"""

from __future__ import annotations

import math

import numpy as np

from twin.ops.conditions import Conditions, MeasuredFrame

MAX_AGE_MIN = 30.0
"""A measurement older than this (minutes since the centre received it) is ignored."""
RATIO_BOUNDS = (0.05, 2.0)
"""Clip of the measured/expected ratio: one odd frame cannot zero or double a telescope."""
MIN_EXPECTED = 0.05
"""A frame the scheduler expected below this (twilight, a low target) says too little
about the telescope to scale its other candidates: its ratio is not used."""


def latest(conditions: Conditions, max_age_min: float = MAX_AGE_MIN) -> MeasuredFrame | None:
    """The deciding telescope's latest measurement if it is recent, else None."""
    m = conditions.measured.get(conditions.telescope.name)
    if m is None or (conditions.mjd - m.mjd) * 1440.0 > max_age_min:
        return None
    return m


def frame_ratio(m: MeasuredFrame | None) -> float:
    """Measured score / (100 × expected quality) of one frame, clipped to
    :data:`RATIO_BOUNDS`; 1.0 when there is no frame, it lacks either number or its
    expected quality is below :data:`MIN_EXPECTED`."""
    if m is None or not math.isfinite(m.score) or not m.expected_quality >= MIN_EXPECTED:
        return 1.0
    return float(np.clip(m.score / 100.0 / m.expected_quality, *RATIO_BOUNDS))


def quality_ratio(conditions: Conditions, max_age_min: float = MAX_AGE_MIN) -> float:
    """:func:`frame_ratio` of the deciding telescope's latest recent frame."""
    return frame_ratio(latest(conditions, max_age_min))


def expected_quality(conditions: Conditions, rows: np.ndarray | None = None,
                     max_age_min: float = MAX_AGE_MIN) -> np.ndarray:  # fmt: skip
    """The candidates' (``rows``, default all) expected quality corrected by
    :func:`quality_ratio`, clipped to 0..1."""
    q = conditions.candidates.quality if rows is None else conditions.candidates.quality[rows]
    return np.clip(q * quality_ratio(conditions, max_age_min), 0.0, 1.0)


def expected_rejected(conditions: Conditions, rows: np.ndarray | None = None,
                      max_age_min: float = MAX_AGE_MIN) -> np.ndarray:  # fmt: skip
    """True for candidates (``rows``, default all) whose corrected expected quality is
    below their programme's ``min_frame_quality``: frames the centre would reject."""
    c = conditions.candidates
    idx = np.arange(len(c)) if rows is None else np.asarray(rows)
    floor = getattr(conditions, "program_min_quality", None)  # duck-typed snapshots: none
    if floor is None or not np.any(floor > 0.0) or idx.size == 0:
        return np.zeros(idx.size, dtype=bool)
    return expected_quality(conditions, idx, max_age_min) < floor[c.program_index[idx]]
