"""Targets of opportunity: transient light curves and the alert stream that follows them up.

``lightcurves`` holds the physics (AB magnitudes of supernovae, kilonovae and GRB
afterglows against time); ``stream`` draws alerts from a Poisson process and turns them
into :class:`~twin.programme.requests.Request` objects for the schedulers.
"""

from twin.alerts.lightcurves import (
    BANDS,
    KINDS,
    LIGHT_CURVES,
    LightCurve,
    apparent_mag,
    days_brighter_than,
    fade_days,
    light_curve,
)
from twin.alerts.stream import (
    Alert,
    AlertSpec,
    FollowupSpec,
    alerts_frame,
    confirmation_request,
    followup_end_mjd,
    followup_request,
    generate_alerts,
)

__all__ = [
    "BANDS",
    "KINDS",
    "LIGHT_CURVES",
    "Alert",
    "AlertSpec",
    "FollowupSpec",
    "LightCurve",
    "alerts_frame",
    "apparent_mag",
    "confirmation_request",
    "days_brighter_than",
    "fade_days",
    "followup_end_mjd",
    "followup_request",
    "generate_alerts",
    "light_curve",
]
