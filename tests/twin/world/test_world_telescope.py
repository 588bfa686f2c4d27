"""Telescope model: derived quantities checked by hand, validation of bad values."""

import math

import pytest
from pydantic import ValidationError

from twin.world.telescope import TELESCOPE_PRESETS, Telescope


def test_zeropoint_by_hand_for_the_1m_in_r():
    tel = TELESCOPE_PRESETS["1m"]
    area_cm2 = math.pi / 4 * 100.0**2 * (1 - 0.4**2)  # 6597.3 cm^2
    throughput = 0.9**2 * 0.93 * 0.90  # two mirrors, r filter, r QE
    photons = 3631e-23 / 6.62607015e-27  # AB=0 photons / s / cm^2 / unit ln(lambda)
    expected = 2.5 * math.log10(photons * area_cm2 * throughput * 140.0 / 622.0)
    assert tel.zeropoint_mag("r") == pytest.approx(expected, abs=1e-9)
    assert tel.zeropoint_mag("r") == pytest.approx(24.354, abs=0.001)


def test_field_of_view_and_area():
    tel = TELESCOPE_PRESETS["1m"]
    assert tel.fov_deg[0] == pytest.approx(4096 * 0.389 / 3600)
    assert tel.collecting_area_m2 == pytest.approx(math.pi / 4 * (1 - 0.16))


def test_bigger_aperture_deeper_zeropoint():
    one, four = TELESCOPE_PRESETS["1m"], TELESCOPE_PRESETS["4m"]
    area_ratio = four.collecting_area_m2 / one.collecting_area_m2
    assert four.zeropoint_mag("g") - one.zeropoint_mag("g") == pytest.approx(
        2.5 * math.log10(area_ratio), abs=1e-9
    )


def test_negative_aperture_is_rejected_with_the_field_name():
    data = TELESCOPE_PRESETS["1m"].model_dump() | {"aperture_m": -1.0}
    with pytest.raises(ValidationError, match="aperture_m"):
        Telescope.model_validate(data)


def test_unknown_band_lists_the_telescope_bands():
    with pytest.raises(ValueError, match=r"allowed: \['u', 'g', 'r', 'i', 'z', 'y'\]"):
        TELESCOPE_PRESETS["2m"].zeropoint_mag("Halpha")
