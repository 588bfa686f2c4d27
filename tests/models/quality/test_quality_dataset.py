"""The labelled frame set: shapes, dtypes, labels from the truth, splits, no pickle."""

import json

import numpy as np

from models.quality.classical import N_CLASSICAL
from models.quality.dataset import SPLITS, TRUTH_NAMES, UNSEEN_SITE, flags_from_truth, load_split
from models.quality.features import N_SIDE
from twin.pipeline.stage import FLAG_NAMES


def test_shards_shapes_and_dtypes(tiny_dataset):
    out, index = tiny_dataset
    assert index["n"] == 8 and sum(index["splits"].values()) == 8
    data = load_split(out)
    assert data["image"].shape == (8, 48, 48) and data["image"].dtype == np.uint16
    assert data["side"].shape == (8, N_SIDE + N_CLASSICAL) and np.isfinite(data["side"]).all()
    assert data["flags"].shape == (8, len(FLAG_NAMES)) and data["flags"].dtype == np.uint8
    assert data["truth"].shape == (8, len(TRUTH_NAMES))
    assert np.all((data["score"] >= 0) & (data["score"] <= 100))
    assert np.all(data["seeing"] > 0)
    for shard in index["shards"]:  # plain arrays only: loads without pickle
        with np.load(out / shard["file"], allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
            assert z["side"].dtype == np.float16 and z["image"].dtype == np.uint16
    assert json.loads((out / "index.json").read_text())["seed"] == 3


def test_labels_follow_the_truth(tiny_dataset):
    out, _ = tiny_dataset
    data = load_split(out)
    for truth, flags in zip(data["truth"], data["flags"], strict=True):
        row = dict(zip(TRUTH_NAMES, truth.astype(float), strict=True))
        assert np.array_equal(flags_from_truth(row), flags)
    quality = data["truth"][:, TRUTH_NAMES.index("quality")]
    assert np.allclose(data["score"], 100 * quality, atol=1e-3)


def test_unseen_site_only_in_its_split(tiny_dataset):
    out, _ = tiny_dataset
    for split in SPLITS:
        sites = set(load_split(out, split)["sites"])
        assert (UNSEEN_SITE in sites) == (split == "unseen") or not sites
    # Every split has frames, and the unseen site's telescopes never reach the others.
    for split in SPLITS:
        data = load_split(out, split)
        assert len(data["sites"]) > 0, split
        if split != "unseen":
            assert UNSEEN_SITE not in set(data["sites"]), split


def test_flag_thresholds_by_hand():
    clean = {"transparency": 1.0, "seeing_fwhm_arcsec": 0.9, "defocus_fwhm_arcsec": 0.2,
             "tracking_error_arcsec": 0.2, "sky_excess_mag": 0.1, "n_hot_in_frame": 0,
             "n_bad_columns_in_frame": 0, "trail_snr": 0.0}  # fmt: skip
    assert not flags_from_truth(clean).any()
    cloudy = flags_from_truth({**clean, "transparency": 0.5, "n_bad_columns_in_frame": 1})
    assert [FLAG_NAMES[i] for i in np.flatnonzero(cloudy)] == ["cloud", "sensor"]
