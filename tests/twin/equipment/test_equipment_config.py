"""Configuration: defaults are sane, nonsense is rejected naming the field."""

import pytest
from pydantic import ValidationError

from twin.equipment import EquipmentConfig, load_equipment_config
from twin.errors import ConfigError


def _locations(error: ValidationError) -> list[tuple]:
    return [tuple(item["loc"]) for item in error.errors()]


def test_defaults_are_valid_and_frozen():
    config = EquipmentConfig()
    assert config.focus_temp_coeff_um_per_c == pytest.approx(20.0)
    assert config.mount.mtbf_days > 0 and config.camera.mttr_h > 0
    with pytest.raises(ValidationError):
        config.mirror_loss_per_month = 0.5


def test_negative_mtbf_names_the_field():
    with pytest.raises(ValidationError) as caught:
        EquipmentConfig(mount={"mtbf_days": -3.0, "mttr_h": 12.0})
    assert ("mount", "mtbf_days") in _locations(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mirror_loss_per_month", -0.01),
        ("mirror_loss_per_month", 1.0),
        ("cleaning_recovery_fraction", 1.5),
        ("hot_pixel_rate_per_day", -1.0),
        ("bad_column_rate_per_year", -0.1),
        ("tracking_fault_rate_per_night", -0.2),
        ("tracking_fault_mean_duration_min", 0.0),
        ("refocus_interval_h", 0.0),
        ("focus_random_walk_um_per_sqrt_h", -1.0),
        ("pointing_model_update_days", -5.0),
        ("calibration_interval_days", 0.0),
        ("zeropoint_drift_mag_per_day", -0.001),
        ("night_length_h", 30.0),
        ("initial_hot_pixels", -1),
    ],
)
def test_nonsense_values_are_rejected(field, value):
    with pytest.raises(ValidationError) as caught:
        EquipmentConfig(**{field: value})
    assert (field,) in _locations(caught.value)


def test_unknown_field_is_rejected():
    with pytest.raises(ValidationError) as caught:
        EquipmentConfig(mirror_loss_per_year=0.1)
    assert ("mirror_loss_per_year",) in _locations(caught.value)


def test_refocus_cannot_be_faster_than_temperature_checks():
    with pytest.raises(ValidationError, match="focus_check_interval_min"):
        EquipmentConfig(refocus_interval_h=0.05, focus_check_interval_min=10.0)


def test_loader_reports_source_and_field():
    with pytest.raises(ConfigError) as caught:
        load_equipment_config({"dome": {"mtbf_days": 90.0, "mttr_h": -1.0}}, "site.yaml")
    assert caught.value.source == "site.yaml"
    assert caught.value.field == "dome.mttr_h"
    assert "-1.0" in str(caught.value)
