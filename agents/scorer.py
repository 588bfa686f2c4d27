"""A learned candidate scorer: greedy's score plus a trained linear correction.

Greedy ranks the feasible candidates by ``log(value x share_factor / (slew_s + visit_s))``,
the expected value per second of telescope time now. It is strong locally but blind to
what a choice costs later: a survey field or a monitoring target taken at poor quality is
used up (its cadence keeps it away for a day or two) when it could have been taken at
better quality later or by another site. The scorer keeps greedy's score and adds
``features @ weights``, per-candidate features that carry that look-ahead (the quality
itself, time to set, hour angle, the rest of the night...). With zero weights it *is*
greedy, decision for decision (a test checks it), so training starts from the baseline
and every change is a measured improvement on it.

The weights are trained by policy search on the twin (:mod:`agents.es_train`, CMA-ES):
a handful of numbers, whole nights as the objective (the delivered science value, not a
shaped reward), no gradient through the simulation. A saved scorer is a small JSON file
(``scorer.json``) that ``skytwin run --policy PATH`` and ``skytwin evaluate`` load.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from agents.baselines import greedy_rate, share_factor
from agents.lookahead import LOOKAHEAD_FEATURES, Lookahead
from agents.safe_files import excerpt, finite_number, read_json
from twin.errors import ConfigError
from twin.ops.conditions import Conditions, Observe, Wait
from twin.ops.world import World

FORMAT = "skytwin-scorer-v1"
"""``format`` field of a saved scorer."""

SCORER_FEATURES = (
    "log_quality",  # ln(expected quality): values quality beyond greedy's linear term
    "log_priority",  # ln(priority)
    "slew_fraction",  # slew_s / (slew_s + visit_s)
    "abs_hour_angle",  # |HA| / 6 h: distance from transit
    "hour_angle",  # HA / 6 h: rising (< 0) targets get better, setting ones worse
    "setting_soon",  # exp(-hours to the airmass limit / 1 h) if before the night's end
    "is_alert",  # follows an alert
    "airmass_excess",  # airmass - 1, clipped to [0, 2]
    "moon_closeness",  # 1 - moon separation / 180 deg
    "log_share",  # ln(share_factor): the programme-balance term of greedy's score
    "limited_visits",  # the request wants a finite number of visits
    "night_left_x_log_quality",  # hours left in the night / 12 x ln(quality)
    "alert_first_visit",  # an alert (follow-up or confirmation) not yet observed
    *LOOKAHEAD_FEATURES,  # better airmass later tonight here / elsewhere (agents.lookahead)
)
"""Per-candidate features the learned weights multiply, each of order one."""
BASE_FEATURES = SCORER_FEATURES[: -len(LOOKAHEAD_FEATURES)]
"""The features of scorers trained before the look-ahead: a saved scorer must weigh each
of these; a look-ahead weight it does not name is 0."""


def greedy_score(conditions: Conditions, feasible: np.ndarray,
                 share: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Greedy's ranking of the ``feasible`` rows as a log (agents/baselines.greedy_rate)."""
    return np.log(np.maximum(greedy_rate(conditions, feasible, share), 1e-12))


def scorer_features(conditions: Conditions, feasible: np.ndarray,
                    share: np.ndarray | None = None,
                    lookahead: Lookahead | None = None) -> np.ndarray:  # fmt: skip
    """Float64 features of the ``feasible`` rows, one column per :data:`SCORER_FEATURES`:
    the :data:`BASE_FEATURES`, then the look-ahead's when ``lookahead`` is given (without
    it they are left out, not computed as zeros: their weights multiply nothing).
    ``share``: the rows' share factors, if already computed."""
    c = conditions.candidates
    i = feasible
    log_q = np.log(np.maximum(c.quality[i], 1e-3))
    time_s = c.slew_s[i] + c.visit_s[i]
    end = conditions.site.night_end_mjd
    hours_left = max(0.0, (end - conditions.mjd) * 24.0) if math.isfinite(end) else 0.0
    setting_h = np.minimum(c.setting_h[i], 48.0)
    cols = [
        log_q,
        np.log(np.maximum(c.priority[i], 1e-6)),
        c.slew_s[i] / np.maximum(time_s, 1e-9),
        np.abs(c.hour_angle_h[i]) / 6.0,
        c.hour_angle_h[i] / 6.0,
        np.where(setting_h < hours_left, np.exp(-setting_h), 0.0),
        c.is_alert[i].astype(float),
        np.clip(c.airmass[i] - 1.0, 0.0, 2.0),
        1.0 - c.moon_sep_deg[i] / 180.0,
        np.log(share if share is not None else share_factor(conditions, c.program_index[i])),
        (c.visits_left[i] >= 0).astype(float),
        hours_left / 12.0 * log_q,
        (c.is_alert[i] & (c.visits_done[i] == 0)).astype(float),
    ]
    base = np.stack(cols, axis=1)
    if lookahead is None:
        return base
    return np.concatenate([base, lookahead.features(conditions, i)], axis=1)


class ScorerPolicy:
    """Greedy's score plus ``scorer_features @ weights``; the best feasible candidate.

    | name        | default  | meaning                                             |
    |-------------|----------|-----------------------------------------------------|
    | weights     |          | one per SCORER_FEATURES (a mapping or a sequence)    |
    | name        | "scorer" | the policy's name in run metadata                    |
    | idle_wait_s | 300      | wait when nothing is feasible (as the baselines do)  |
    | alert_guard | False    | take greedy's choice when it is an alert's first     |
    |             |          | visit: the correction never postpones a follow-up    |

    The guard is an operations rule, not a learned one: alert follow-up is what a
    network is for, and a learned correction that waits for an alert to rise can lose it
    when the weather turns or the target sets (measured: without the guard the search
    trades alerts followed for science value unless alerts weigh heavily).

    The look-ahead features need the run's site geometry: the twin calls :meth:`bind`
    with its World; a scorer whose look-ahead weights are not 0 refuses to decide
    unbound, rather than score without them.
    """

    def __init__(self, weights: Mapping[str, float] | np.ndarray, name: str = "scorer",
                 idle_wait_s: float = 300.0, alert_guard: bool = False) -> None:  # fmt: skip
        self.weights = _weight_vector(weights)
        self.name = name
        self.idle_wait_s = idle_wait_s
        self.alert_guard = alert_guard
        self.looks_ahead = bool(self.weights[len(BASE_FEATURES) :].any())
        self.lookahead: Lookahead | None = None

    def bind(self, world: World) -> None:
        """Take the run's sites (coordinates, night windows) for the look-ahead."""
        self.lookahead = Lookahead(world) if self.looks_ahead else None

    def reset(self, seed: np.random.SeedSequence) -> None:
        pass  # deterministic

    def decide(self, conditions: Conditions) -> Observe | Wait:
        feasible = np.flatnonzero(conditions.candidates.feasible)
        if feasible.size == 0:
            return Wait(self.idle_wait_s)
        c = conditions.candidates
        share = share_factor(conditions, c.program_index[feasible])
        score = greedy_score(conditions, feasible, share)
        if self.alert_guard:
            pick = feasible[int(np.argmax(score))]
            if c.is_alert[pick] and c.visits_done[pick] == 0:
                return Observe(int(pick))
        if self.looks_ahead and self.lookahead is None:
            raise RuntimeError(f"{self.name}: call bind(world) before deciding (the twin does):"
                               " the look-ahead features need the run's sites")  # fmt: skip
        if self.weights.any():
            features = scorer_features(conditions, feasible, share, self.lookahead)
            score = score + features @ self.weights[: features.shape[1]]
        return Observe(int(feasible[int(np.argmax(score))]))


def _weight_vector(weights: Mapping[str, float] | np.ndarray) -> np.ndarray:
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(SCORER_FEATURES))
        if unknown:
            raise ValueError(f"unknown scorer feature(s) {unknown}; allowed: "
                             f"{', '.join(SCORER_FEATURES)}")  # fmt: skip
        return np.array([float(weights.get(k, 0.0)) for k in SCORER_FEATURES])
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(SCORER_FEATURES),):
        raise ValueError(f"expected {len(SCORER_FEATURES)} weights ({', '.join(SCORER_FEATURES)}),"
                         f" got shape {w.shape}")  # fmt: skip
    return w


def save_scorer(path: str | Path, weights: np.ndarray, **manifest) -> Path:
    """Write ``scorer.json``: the weights by feature name and ``manifest`` (how they were
    trained, the command that reproduces them)."""
    if not np.all(np.isfinite(np.asarray(weights, dtype=float))):
        raise ValueError(f"scorer weights must be finite, got {list(weights)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT,
              "weights": dict(zip(SCORER_FEATURES, map(float, weights), strict=True)),
              **manifest}  # fmt: skip
    path.write_text(json.dumps(record, indent=2, allow_nan=False))
    return path


def load_scorer(path: str | Path, **kwargs) -> ScorerPolicy:
    """A :class:`ScorerPolicy` from ``scorer.json`` (or a folder holding one).

    The file is plain JSON, checked field by field: ``format`` must be :data:`FORMAT`,
    ``weights`` one finite number per :data:`SCORER_FEATURES` (by name, or a list in that
    order), ``alert_guard`` (optional) true or false. Anything else raises
    ConfigError(file, field, ...)."""
    path = Path(path)
    if path.is_dir():
        path = path / "scorer.json"
    source = str(path)
    record = read_json(path, "scorer file")
    if record.get("format") != FORMAT or "weights" not in record:
        raise ConfigError(source, "format", f"must be {FORMAT!r}, with 'weights'; train one "
                          "with `skytwin train --algo cma-es`")  # fmt: skip
    weights = _checked_weights(record["weights"], source)
    guard = record.get("alert_guard", False)
    if not isinstance(guard, bool):
        raise ConfigError(source, "alert_guard", f"must be true or false, got "
                          f"{excerpt(str(guard))}")  # fmt: skip
    kwargs.setdefault("alert_guard", guard)
    return ScorerPolicy(weights, name=f"scorer:{path.resolve().parent.name}", **kwargs)


def _checked_weights(weights: object, source: str) -> np.ndarray:
    """The weight vector of a scorer file's ``weights`` field (a mapping or a list)."""
    n = len(SCORER_FEATURES)
    if isinstance(weights, list):
        if len(weights) not in (n, len(BASE_FEATURES)):
            raise ConfigError(source, "weights", f"expected {n} numbers "
                              f"({', '.join(SCORER_FEATURES)}), or the first "
                              f"{len(BASE_FEATURES)}, got {len(weights)}")  # fmt: skip
        w = [finite_number(w, source, f"weights[{i}]") for i, w in enumerate(weights)]
        return np.array(w + [0.0] * (n - len(w)))
    if not isinstance(weights, dict):
        raise ConfigError(source, "weights", f"must map each feature to its weight, got "
                          f"{type(weights).__name__}")  # fmt: skip
    unknown = sorted(set(weights) - set(SCORER_FEATURES))
    if unknown:
        names = excerpt(", ".join(unknown))
        raise ConfigError(source, "weights", f"unknown feature(s) {names}; allowed: "
                          f"{', '.join(SCORER_FEATURES)}")  # fmt: skip
    missing = [k for k in BASE_FEATURES if k not in weights]
    if missing:
        raise ConfigError(source, "weights", f"missing feature(s) {', '.join(missing)}: a "
                          f"{FORMAT} file has a weight for each of the {len(BASE_FEATURES)} "
                          f"base features ({', '.join(LOOKAHEAD_FEATURES)} may be left out: "
                          "0)")  # fmt: skip
    return np.array([finite_number(weights.get(k, 0.0), source, f"weights.{k}")
                     for k in SCORER_FEATURES])  # fmt: skip
