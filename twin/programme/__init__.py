"""The observing programme: requests with constraints, survey tiles, monitoring targets,
and the vectorised feasibility check the schedulers use.
"""

from twin.programme.feasibility import RequestTable, feasible
from twin.programme.requests import Constraints, ExposurePlan, Request, Window
from twin.programme.survey import monitoring_requests, survey_requests, tile_region

__all__ = [
    "Constraints",
    "ExposurePlan",
    "Request",
    "RequestTable",
    "Window",
    "feasible",
    "monitoring_requests",
    "survey_requests",
    "tile_region",
]
