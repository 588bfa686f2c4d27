"""Observation features built from :class:`~twin.ops.conditions.Conditions` only.

Shared by the single-agent and multi-agent envs and by a trained policy running inside
the twin (``skytwin run --policy PATH``), so the network sees the same numbers in
training and in use. Every feature is scaled to roughly [-1, 1] or [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from twin.ops.conditions import Conditions
from twin.ops.measured import frame_ratio
from twin.ops.nights import NightWindow
from twin.pipeline.stage import FLAG_NAMES

CANDIDATE_FEATURES = (
    "priority",  # priority / 10
    "quality",  # expected effective-time ratio 0..1
    "value",  # priority x quality / 10
    "rate",  # value per second of telescope time x 600 (the greedy score)
    "slew",  # slew_s / 120
    "visit",  # visit_s / 600
    "airmass",  # airmass - 1 (clipped at 2)
    "setting",  # hours until the airmass limit / 12 (1: never)
    "moon_sep",  # deg / 180
    "is_alert",
    "share",  # programme target share / used share, clipped 0.5..2, minus 1
    "hour_angle",  # h / 12
    "visits_left",  # 1 when unlimited, else min(n, 10) / 10
)
TIME_FEATURES = ("sin_day", "cos_day", "hours_left", "night_fraction_left")
SITE_FEATURES = ("seeing", "transparency", "cloud_cover", "sun_alt", "moon_alt", "moon_illum")
FORECAST_LEADS_H = (1.0, 2.0, 4.0)
FORECAST_FIELDS = ("seeing_fwhm_arcsec", "transparency")
NETWORK_FEATURES = ("is_night", "dome_open", "transparency")
MEASURED_FEATURES = (
    "measured",  # 1 once the centre has a measurement of this telescope's frames
    "age",  # hours since it was received / MEASURED_AGE_H, clipped at 1 (1: none)
    "score",  # quality score / 100 (0: none)
    "seeing",  # measured image FWHM / 2" (0: none)
    "quality_ratio",  # measured / expected quality - 1 (twin.ops.measured.frame_ratio)
    *(f"flag_{name}" for name in FLAG_NAMES),  # 1 where the stage raised the flag
)
"""Per telescope, what the pipeline measured on its latest frame (envs with a pipeline)."""
MEASURED_AGE_H = 2.0


def rank_candidates(conditions: Conditions, k: int) -> np.ndarray:
    """Indices into ``conditions.candidates`` of up to ``k`` feasible candidates, best
    greedy rate first: the agent chooses among the few that matter."""
    c = conditions.candidates
    feasible = np.flatnonzero(c.feasible)
    if feasible.size == 0:
        return feasible
    rate = c.value[feasible] / (c.slew_s[feasible] + c.visit_s[feasible])
    order = np.argsort(-rate, kind="stable")[:k]
    return feasible[order]


def candidate_matrix(conditions: Conditions, chosen: np.ndarray, k: int) -> np.ndarray:
    """(k, len(CANDIDATE_FEATURES)) float32; rows past ``len(chosen)`` are zeros."""
    c = conditions.candidates
    out = np.zeros((k, len(CANDIDATE_FEATURES)), dtype=np.float32)
    if chosen.size == 0:
        return out
    i = chosen
    target = conditions.program_share_target[c.program_index[i]]
    used = np.maximum(conditions.program_share_used[c.program_index[i]], 1e-3)
    visits = c.visits_left[i]
    rate = c.value[i] / (c.slew_s[i] + c.visit_s[i])
    cols = [
        c.priority[i] / 10.0, c.quality[i], c.value[i] / 10.0, rate * 600.0,
        c.slew_s[i] / 120.0, c.visit_s[i] / 600.0, np.clip(c.airmass[i] - 1.0, 0.0, 2.0),
        np.minimum(c.setting_h[i], 12.0) / 12.0, c.moon_sep_deg[i] / 180.0,
        c.is_alert[i].astype(float), np.clip(target / used, 0.5, 2.0) - 1.0,
        c.hour_angle_h[i] / 12.0, np.where(visits < 0, 1.0, np.minimum(visits, 10) / 10.0),
    ]  # fmt: skip
    out[: i.size] = np.stack(cols, axis=1)
    return out


def time_vector(conditions: Conditions, night_start_mjd: float) -> np.ndarray:
    mjd = conditions.mjd
    end = conditions.site.night_end_mjd
    hours_left = max(0.0, (end - mjd) * 24.0) if math.isfinite(end) else 0.0
    length = max(end - night_start_mjd, 1e-6) if math.isfinite(end) else 1.0
    phase = 2.0 * math.pi * (mjd % 1.0)
    return np.array([math.sin(phase), math.cos(phase), hours_left / 12.0,
                     min(1.0, max(0.0, (end - mjd) / length))], dtype=np.float32)  # fmt: skip


def site_vector(conditions: Conditions) -> np.ndarray:
    s = conditions.site
    return np.array([s.seeing_zenith_arcsec / 2.0, s.transparency, s.cloud_cover,
                     s.sun_alt_deg / 90.0, s.moon_alt_deg / 90.0, s.moon_illum],
                    dtype=np.float32)  # fmt: skip


_FORECAST_FIELDS = ("seeing_fwhm_arcsec", "transparency")


def forecast_vector(conditions: Conditions) -> np.ndarray:
    when = conditions.mjd + np.asarray(FORECAST_LEADS_H) / 24.0
    try:
        f = conditions.forecast(conditions.site.name, when, fields=_FORECAST_FIELDS)
    except ValueError:  # past the forecast's reach: fall back to persistence
        return np.tile([conditions.site.seeing_zenith_arcsec / 2.0, conditions.site.transparency],
                       len(FORECAST_LEADS_H)).astype(np.float32)  # fmt: skip
    seeing = np.asarray(f["seeing_fwhm_arcsec"]) / 2.0
    return np.stack([seeing, np.asarray(f["transparency"])], axis=1).ravel().astype(np.float32)


def network_vector(conditions: Conditions) -> np.ndarray:
    rows = [[float(s.is_night), float(s.dome_open), s.transparency] for s in conditions.sites]
    return np.asarray(rows, dtype=np.float32).ravel()


def telescope_vector(conditions: Conditions, index: int, n_telescopes: int) -> np.ndarray:
    onehot = np.zeros(n_telescopes, dtype=np.float32)
    onehot[index] = 1.0
    t = conditions.telescope
    return np.concatenate([onehot, [t.alt_deg / 90.0, t.az_deg / 360.0]]).astype(np.float32)


def measured_matrix(conditions: Conditions, telescope_names: Sequence[str]) -> np.ndarray:
    """(n_telescopes, len(MEASURED_FEATURES)) float32: every telescope's latest
    measurement as the centre received it (``Conditions.measured``: pixels, not truth)."""
    out = np.zeros((len(telescope_names), len(MEASURED_FEATURES)), dtype=np.float32)
    out[:, 1] = 1.0
    for i, name in enumerate(telescope_names):
        m = conditions.measured.get(name)
        if m is None:
            continue
        age_h = max(conditions.mjd - m.mjd, 0.0) * 24.0
        score = m.score / 100.0 if math.isfinite(m.score) else 0.0
        seeing = m.seeing_arcsec / 2.0 if math.isfinite(m.seeing_arcsec) else 0.0
        flags = [float(f in m.active_flags) for f in FLAG_NAMES]
        out[i] = [1.0, min(age_h / MEASURED_AGE_H, 1.0), score, min(seeing, 5.0),
                  frame_ratio(m) - 1.0, *flags]  # fmt: skip
    return out


def night_start_mjd(nights: Sequence[NightWindow], mjd: float) -> float:
    """Start of the latest of a site's night windows begun by ``mjd`` (``mjd`` if none)."""
    return max((n.start_mjd for n in nights if n.start_mjd <= mjd), default=mjd)


def action_mask(n_offered: int, k: int) -> np.ndarray:
    """(k + 1,) int8: 1 for the ``n_offered`` candidates offered and for waiting (last)."""
    mask = np.zeros(k + 1, dtype=np.int8)
    mask[:n_offered] = 1
    mask[-1] = 1
    return mask


def observation(conditions: Conditions, unit_index: int, n_telescopes: int, k: int,
                night_start_mjd: float, chosen: np.ndarray | None = None,
                measured_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """The ``skytwin/Network-v0`` observation of a decision, from its Conditions only.

    ``unit_index`` is the deciding telescope's index in the scenario's order,
    ``night_start_mjd`` the start of its site's current night window (see
    :func:`night_start_mjd`); ``chosen`` the candidates offered (default
    :func:`rank_candidates`). ``measured_names`` (the telescopes in order; envs with a
    pipeline) adds the ``measured`` key (:func:`measured_matrix`). A trained policy
    running in the twin builds its input here, exactly as the env does in training.
    """
    if chosen is None:
        chosen = rank_candidates(conditions, k)
    out = {
        "time": time_vector(conditions, night_start_mjd),
        "site": site_vector(conditions),
        "forecast": forecast_vector(conditions),
        "network": network_vector(conditions),
        "telescope": telescope_vector(conditions, unit_index, n_telescopes),
        "candidates": candidate_matrix(conditions, chosen, k),
        "action_mask": action_mask(chosen.size, k),
    }
    if measured_names is not None:
        out["measured"] = measured_matrix(conditions, measured_names)
    return out
