"""The diffusion stamp source in the renderer: per-cell banks deterministic from the sky seed
and cached on disk, stamps with the requested flux, the parametric default untouched, the
scenario's ``imaging.galaxies`` validated, and a clear error where torch is missing."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import twin  # noqa: F401  (offline astropy)
from models.generative.source import (
    CellBanks,
    DiffusionGalaxyStamps,
    galaxy_conditioning,
    truth_hlr_arcsec,
)
from twin.errors import ConfigError
from twin.imaging.catalog import cell_galaxies, cell_of, sky_catalog
from twin.imaging.galaxies import FourierGalaxyStamps, galaxy_stamp_source
from twin.imaging.psf import psf_for
from twin.imaging.render import psf_fwhm_px, render_expected

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "twin" / "imaging"))
from test_imaging_measured import make_spec  # noqa: E402


def small_spec(size=256):
    return make_spec().resized(size, size)


def source_for(spec, generator, bank_dir, limit=21.0, sky_seed=0):
    fwhm = psf_fwhm_px(spec) * spec.pixel_scale_arcsec
    return DiffusionGalaxyStamps(fwhm, sky_seed=sky_seed, bank_dir=bank_dir,
                                 generator=generator, mag_limit_i=limit)  # fmt: skip


def test_cell_galaxies_are_the_frames_galaxies():
    spec = small_spec(512)
    galaxies = sky_catalog(spec).galaxies
    i_dec, i_ra = cell_of(galaxies["source_id"])
    cell = (int(i_dec[0]), int(i_ra[0]))
    drawn = cell_galaxies(*cell, 30.0).set_index("source_id")
    mine = galaxies[(i_dec == cell[0]) & (i_ra == cell[1])].set_index("source_id")
    assert len(mine) and set(mine.index) <= set(drawn.index)
    for column in ("ra_deg", "hlr_disk_arcsec", "q_disk", "pa_deg", "bulge_frac"):
        np.testing.assert_array_equal(drawn.loc[mine.index, column], mine[column])


def test_stamps_carry_the_requested_flux(blob_generator, tmp_path):
    spec = small_spec()
    psf = psf_for(spec)
    source = source_for(spec, blob_generator, tmp_path)
    table = cell_galaxies(*[int(v[0]) for v in cell_of(sky_catalog(spec).galaxies["source_id"])],
                          21.0)  # fmt: skip
    rows = [dict(r, flux_e=1e5 * (k + 1)) for k, r in enumerate(table.head(6).to_dict("records"))]
    found = source.lookup(rows)
    assert all(f is not None for f in found)
    stamps = source.stamps(rows, psf, spec.pixel_scale_arcsec, [(0.3, -0.2)] * len(rows))
    for row, stamp in zip(rows, stamps, strict=True):
        assert stamp.shape[0] % 2 == 1
        assert stamp.sum() == pytest.approx(row["flux_e"], rel=0.01)


def test_bank_is_deterministic_cached_and_independent_of_the_asker(blob_generator, tmp_path):
    spec = small_spec()
    cat = sky_catalog(spec)
    a = render_expected(spec, catalog=cat, stamp_source=source_for(spec, blob_generator,
                                                                   tmp_path / "a"))  # fmt: skip
    calls = blob_generator.calls
    assert calls >= 1 and list((tmp_path / "a").rglob("cell_*.npz"))
    # Another process or frame: a fresh source reads the bank from disk, samples nothing.
    from models.generative import source as module

    module._CACHES.clear()
    b = render_expected(spec, catalog=cat, stamp_source=source_for(spec, blob_generator,
                                                                   tmp_path / "a"))  # fmt: skip
    assert blob_generator.calls == calls
    np.testing.assert_array_equal(a.image_e, b.image_e)
    # Built afresh elsewhere, from a field that only overlaps: the same stamps.
    module._CACHES.clear()
    shifted = replace(spec, ra_deg=150.02)
    render_expected(shifted, stamp_source=source_for(shifted, blob_generator, tmp_path / "c"))
    c = render_expected(spec, catalog=cat, stamp_source=source_for(spec, blob_generator,
                                                                   tmp_path / "c"))  # fmt: skip
    np.testing.assert_array_equal(a.image_e, c.image_e)
    plain = render_expected(spec, catalog=cat)
    assert not np.array_equal(a.image_e, plain.image_e)  # some galaxies did change
    total = (a.image_e - a.sky_e_per_pix).sum() / (plain.image_e - plain.sky_e_per_pix).sum()
    assert total == pytest.approx(1.0, rel=0.01)


def test_parametric_is_the_default_and_unchanged():
    spec = small_spec(128)
    source = galaxy_stamp_source("parametric", 1.3)
    assert type(source) is FourierGalaxyStamps
    a = render_expected(spec)
    b = render_expected(spec, galaxies="parametric", galaxy_bank_dir="/nonexistent")
    np.testing.assert_array_equal(a.image_e, b.image_e)


def test_truth_half_light_radius_is_galsims():
    galsim = pytest.importorskip("galsim")
    table = {"bulge_frac": np.array([0.0, 0.6]), "hlr_disk_arcsec": np.array([1.0, 6.0]),
             "hlr_bulge_arcsec": np.array([0.3, 1.8])}  # fmt: skip
    both = galsim.Exponential(half_light_radius=6.0, flux=0.4) + galsim.DeVaucouleurs(
        half_light_radius=1.8, flux=0.6
    )
    expected = [1.0, both.calculateHLR(scale=0.02, size=2048)]
    np.testing.assert_allclose(truth_hlr_arcsec(table), expected, rtol=2e-3)


def test_conditioning_follows_the_truth_shape():
    table = {"bulge_frac": np.array([0.0, 0.5]), "hlr_disk_arcsec": np.array([0.28, 5.0]),
             "hlr_bulge_arcsec": np.array([0.1, 1.0]), "q_disk": np.array([0.5, 1.0]),
             "q_bulge": np.array([0.8, 0.8]), "pa_deg": np.array([0.0, 45.0])}  # fmt: skip
    cond, scale = galaxy_conditioning(table, {"log_snr": 2.0, "hlr_px_range": [1.2, 4.7]}, 0.14)
    assert np.exp(cond[0, 0]) == pytest.approx(2.0)  # 0.28" / 0.14" per HDF pixel
    assert np.exp(cond[1, 0]) == pytest.approx(4.7)  # clipped to the real set's range
    assert scale[1] * 4.7 == pytest.approx(truth_hlr_arcsec(table)[1])  # keeps its radius
    # PA 0 (north) is +y in the image: 2θ = 180°, e1 = -ε.
    assert cond[0, 1] == pytest.approx(-0.5, abs=1e-6) and cond[0, 2] == pytest.approx(0, abs=1e-6)
    assert list(cond[:, 4]) == [1.0, 1.0]


def test_unknown_or_unloadable_source_is_a_config_error(monkeypatch):
    with pytest.raises(ConfigError, match="allowed: parametric"):
        galaxy_stamp_source("spirals", 1.0)

    class Broken:
        name, value = "diffusion", "x:y"

        def load(self):
            err = ImportError("No module named 'torch'")
            err.name = "torch"
            raise err

    import twin.imaging.galaxies as galaxies

    monkeypatch.setattr(galaxies, "entry_points", lambda group: [Broken()])
    with pytest.raises(ConfigError, match="torch is not installed"):
        galaxy_stamp_source("diffusion", 1.0)


def test_scenario_galaxies_field_is_validated(tmp_path):
    from twin.scenario import load_scenario

    text = (ROOT / "scenarios" / "single-site.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\nimaging:\n  galaxies: spirals\n")
    with pytest.raises(ConfigError, match=r"imaging\.galaxies.*'parametric' or 'diffusion'"):
        load_scenario(bad)
    good = tmp_path / "good.yaml"
    good.write_text(text + "\nimaging:\n  galaxies: diffusion\n")
    assert load_scenario(good).imaging.galaxies == "diffusion"
    assert load_scenario(ROOT / "scenarios" / "single-site.yaml").imaging.galaxies is None


def test_cell_banks_skip_faint_galaxies(blob_generator, tmp_path):
    banks = CellBanks(blob_generator, 0, tmp_path, mag_limit_i=19.0)
    bank = banks.get(300, 100)
    full = cell_galaxies(300, 100, 19.0)
    assert set(bank["source_id"]) == set(full.loc[full["i_mag"] <= 19.0, "source_id"])
    assert banks.path(300, 100).is_file()


def test_command_line_galaxies_option_is_checked():
    from twin.imaging.frames import check_galaxies

    assert check_galaxies("diffusion", "--galaxies") == "diffusion"
    with pytest.raises(ConfigError, match=r"--galaxies.*allowed: parametric, diffusion"):
        check_galaxies("spiral", "--galaxies")
