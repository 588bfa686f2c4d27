"""Registration: a known shift recovered exactly; a rendered frame's pointing error removed."""

import numpy as np
import pandas as pd
import pytest
from astropy.wcs import WCS

from models.transient.difference import register
from models.transient.image import header_wcs
from models.transient.registration import refine_wcs
from twin.imaging.scene import frame_wcs

SCALE_DEG = 0.389 / 3600.0


def tan_wcs(ra_deg: float, dec_deg: float, size: int, rotation_deg: float = 0.0) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    wcs.wcs.cd = SCALE_DEG * np.array([[-c, s], [s, c]])
    return wcs


def test_registration_recovers_a_known_shift_and_rotation():
    rng = np.random.default_rng(0)
    size = 1024
    header = tan_wcs(150.0, 2.0, size)
    true = tan_wcs(150.0 + 7.1 / 3600.0, 2.0 - 3.3 / 3600.0, size, rotation_deg=0.02)
    n = 150
    ra, dec = header.all_pix2world(
        rng.uniform(-40, size + 40, n), rng.uniform(-40, size + 40, n), 0
    )
    catalogue = pd.DataFrame(
        {"source_id": np.arange(n), "ra_deg": ra, "dec_deg": dec, "mag": rng.uniform(14.0, 20.0, n)}
    )
    x, y = true.all_world2pix(ra, dec, 0)
    inside = (x > 0) & (x < size - 1) & (y > 0) & (y < size - 1)
    sources = pd.DataFrame(
        {
            "x_pix": x[inside] + rng.normal(0, 0.03, inside.sum()),
            "y_pix": y[inside] + rng.normal(0, 0.03, inside.sum()),
            "flux_e": 10 ** (-0.4 * (catalogue["mag"][inside] - 30)),
        }
    )
    reg = refine_wcs(header, sources, catalogue, shape=(size, size))
    # The offset voted for: where the header puts the star that lands on the centre, minus
    # the centre (about -18 and +8.5 pixels: east is left).
    expected = header.all_world2pix([true.wcs.crval], 0)[0] - (size - 1) / 2
    assert reg.offset_pix == pytest.approx(tuple(expected), abs=0.6)
    grid = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1], [511.5, 511.5]])
    error = true.all_world2pix(reg.wcs.all_pix2world(grid, 0), 0) - grid
    assert np.abs(error).max() < 0.02
    assert reg.n_matched >= 0.9 * inside.sum()
    assert reg.rms_pix == pytest.approx(0.03, rel=0.3)


def test_too_few_matches_name_the_likely_cause():
    wcs = tan_wcs(150.0, 2.0, 256)
    catalogue = pd.DataFrame(
        {
            "source_id": [1, 2, 3],
            "ra_deg": [10.0, 10.1, 10.2],
            "dec_deg": [0.0, 0.0, 0.0],
            "mag": [15.0, 16.0, 17.0],
        }
    )
    sources = pd.DataFrame(
        {"x_pix": [10.0, 50.0, 90.0], "y_pix": [20.0, 60.0, 70.0], "flux_e": [1e5, 1e4, 1e3]}
    )
    with pytest.raises(ValueError, match="max_offset_arcsec"):
        refine_wcs(wcs, sources, catalogue)


def test_refined_wcs_puts_the_frame_where_the_sky_really_is(pair):
    spec, new, _, _, _ = pair
    reg, _, _ = register(new, spec.band)
    truth = frame_wcs(spec)  # the true pointing: what the solver must find without reading it
    n = spec.nx
    grid = np.array([[(n - 1) / 2, (n - 1) / 2], [0, 0], [n - 1, 0], [0, n - 1], [n - 1, n - 1]])
    before = truth.all_world2pix(new.wcs.all_pix2world(grid, 0), 0) - grid
    after = truth.all_world2pix(reg.wcs.all_pix2world(grid, 0), 0) - grid
    assert np.hypot(*before[0]) > 15.0  # (6, -4) arcsec of pointing error
    assert np.hypot(*after[0]) < 0.05  # the centre, in pixels
    assert np.abs(after).max() < 0.1  # the corners
    assert reg.n_matched >= 10


def test_the_solver_never_reads_the_truth_cards(pair):
    spec, new, header, _, _ = pair
    lying = dict(header, PNTERRRA=0.0, PNTERRDE=0.0, TRUERA=0.0, TRUEDEC=0.0)
    assert np.allclose(header_wcs(lying).wcs.crval, new.wcs.wcs.crval)
    reg_a, _, _ = register(new, spec.band)
    reg_b, _, _ = register(new.with_wcs(header_wcs(lying)), spec.band)
    assert np.allclose(reg_a.wcs.wcs.crval, reg_b.wcs.wcs.crval, atol=1e-12, rtol=0)
