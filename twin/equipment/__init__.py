"""Equipment drift and faults of one telescope: focus, mirror throughput, pointing, detector
defects, tracking faults, failures with MTBF/MTTR and stale calibration.

Each process is a seeded function of time (MJD, UTC) precomputed over a span; the
:class:`EquipmentModel` bundles them and answers what an exposure would record
(:class:`EquipmentState`). Default figures and their sources: :mod:`twin.equipment.config`.
"""

from twin.equipment.calibration import CalibrationModel
from twin.equipment.config import EquipmentConfig, ReliabilityConfig, load_equipment_config
from twin.equipment.defects import DefectModel
from twin.equipment.failures import COMPONENTS, FailureModel, failure_process
from twin.equipment.focus import FocusModel, TemperatureFn, constant_temperature
from twin.equipment.plot import plot_timeline
from twin.equipment.pointing import PointingModel
from twin.equipment.state import EquipmentModel, EquipmentState
from twin.equipment.throughput import ThroughputModel
from twin.equipment.tracking import TrackingModel

__all__ = [
    "COMPONENTS",
    "CalibrationModel",
    "DefectModel",
    "EquipmentConfig",
    "EquipmentModel",
    "EquipmentState",
    "FailureModel",
    "FocusModel",
    "PointingModel",
    "ReliabilityConfig",
    "TemperatureFn",
    "ThroughputModel",
    "TrackingModel",
    "constant_temperature",
    "failure_process",
    "load_equipment_config",
    "plot_timeline",
]
