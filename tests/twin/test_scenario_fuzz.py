"""Property: a shipped scenario with one hostile change either runs cleanly or is refused.

Each example takes a shipped scenario (``scenarios/*.yaml``, ``scenarios/teaching/*.yaml``)
and makes one hostile change: a leaf replaced by a huge, tiny, negative, NaN or infinite
number, 2**63, an empty or path-like string, a value of the wrong type; a key deleted; an
unknown key added; a list emptied. Loading must then either raise
:class:`~twin.errors.ConfigError` (one line, short) or give a scenario that runs one night
(greedy policy) to the end, and every table the run writes must hold finite numbers
wherever :mod:`twin.ops.records` promises a number. Any other exception, or a NaN/inf in
such a column, is a bug: the input should have been refused at load time.

The default-suite test is derandomised (the same 50 examples every time, for CI); the
``slow`` one draws 300 fresh examples (``pytest -m slow``).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from twin.errors import ConfigError
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.yaml")) + sorted((SCENARIOS / "teaching").glob("*.yaml"))
FIXED_START = "2027-04-07"
"""Files that start 'tonight' start on this date here, so an example is the same daily."""

TABLES = ("observations", "events", "timeline", "alerts", "requests", "weather", "nights")
NAN_ALLOWED = {
    "events": {"value"},  # NaN when not meaningful
    "observations": {"transient_mag"},  # NaN if the request follows no alert
    "alerts": {"received_mjd", "first_followup_mjd", "detected_mjd", "confirmed_mjd"},
    "requests": {"cadence_days"},  # NaN: no cadence
}
"""Columns where twin.ops.records documents NaN ("never", "none"); everywhere else a number
is promised."""
INF_ALLOWED = {"requests": {"max_seeing_arcsec"}}  # +inf: no limit

HOSTILE_VALUES = [
    1e308, -1e308, 1e-9, -1e-9, 5e-324, 0.0, -0.0, -1.0, 1.0, 0.999, 1e6, 3660,
    math.nan, math.inf, -math.inf, 2**63, 2**64, -(2**63), 10**30, 0, -1, 1,
    "", " ", "../../x", "../x", "/etc/passwd", "a/b", "..", "x" * 300, "\x00", "\u2028",
    "tonight", "1e308", ".inf", "2027-02-30", True, False, None,
    [], {}, [[]], [None], {"x": 1}, [1e308, -1e308], [math.nan, math.nan],
]  # fmt: skip
SCALES = [0, 1e-6, 1e-3, 0.1, 0.5, 0.9, 1.1, 2, 10, 100, 1e3, 1e6, -1, -0.5]
"""Multipliers of a shipped number: small moves stay valid, big ones probe the bounds."""
hostile = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=12),
    st.lists(st.floats(), max_size=3),
)


OPTIONAL_FIELDS: dict[tuple, object] = {
    ("operations", "idle_wait_s"): 300.0,
    ("operations", "max_sun_alt_deg"): -12.0,
    ("operations", "bias_frames"): 11,
    ("operations", "flat_frames_per_band"): 3,
    ("operations", "flat_bands"): ["g", "r", "i"],
    ("operations", "alert_broker_latency_s"): 30.0,
    ("operations", "detection_processing_s"): 60.0,
    ("weather", "correlation_length_km"): 500.0,
    ("weather", "dome", "humidity_max_pct"): 85.0,
    ("weather", "dome", "wind_max_m_s"): 15.0,
    ("weather", "dome", "cloud_max"): 0.7,
    ("weather", "dome", "cloud_reopen_margin"): 0.1,
    ("weather", "dome", "min_closed_min"): 20.0,
    ("links", "default", "latency_ms"): 150.0,
    ("links", "default", "bandwidth_mbit_s"): 50.0,
    ("links", "default", "mtbf_h"): 72.0,
    ("links", "default", "mttr_h"): 1.0,
    ("links", "default", "outage_sigma_ln"): 0.8,
    ("imaging", "trail_rate_per_hour_deg2"): 0.5,
    ("imaging", "sky_seed"): 0,
    ("sites", 0, "telescopes", 0, "overrides", "aperture_m"): 1.0,
    ("sites", 0, "telescopes", 0, "overrides", "pixel_scale_arcsec"): 0.389,
    ("sites", 0, "telescopes", 0, "overrides", "readout_s"): 28.0,
    ("sites", 0, "telescopes", 0, "overrides", "filter_change_s"): 10.0,
    ("sites", 0, "telescopes", 0, "overrides", "obscuration"): 0.4,
    ("sites", 0, "telescopes", 0, "overrides", "mount"): {"max_speed_alt_deg_s": 3.0,
                                                          "accel_deg_s2": 1.0, "settle_s": 5.0},
    ("sites", 0, "telescopes", 0, "overrides", "dome"): {"rotation_speed_deg_s": 4.0},
    ("sites", 0, "telescopes", 0, "overrides", "detector"): {"nx_pix": 2048, "ny_pix": 2048,
                                                             "pixel_size_um": 15.0},
    ("sites", 0, "telescopes", 0, "overrides", "filters"): [
        {"name": "r", "center_nm": 622.0, "width_nm": 140.0},
        {"name": "i", "center_nm": 755.0, "width_nm": 150.0, "zeropoint_override_mag": 25.0},
    ],
    ("alerts", "rate_per_day"): 2.0,
    ("alerts", "kinds"): {"sn_ia": 0.5, "kilonova": 0.5},
    ("alerts", "peak_mag_range_r"): [15.5, 20.0],
    ("alerts", "dec_range_deg"): [-90.0, 30.0],
    ("alerts", "discovery_delay_days"): {"sn_ia": [8.0, 16.0]},
    ("alerts", "peak_mag_range_r_by_kind"): {"grb_afterglow": [13.0, 16.5]},
    ("alerts", "followup", "limit_mag"): 21.5,
    ("alerts", "followup", "window_days"): 2.0,
    ("alerts", "followup", "cadence_days"): 0.5,
    ("alerts", "followup", "visits"): 3,
    ("alerts", "followup", "confirm"): False,
    ("alerts", "scheduled"): [{"kind": "grb_afterglow", "ra_deg": 200.0, "dec_deg": -30.0,
                               "issued_after_start_days": 0.9, "peak_mag_r": 14.0}],
    ("targets",): [{"name": "M83", "ra_deg": 204.254, "dec_deg": -29.866}],
}  # fmt: skip
"""Optional fields the shipped files leave at their defaults, with plausible values: an
``add_field`` change sets one (plausible, scaled or hostile), so the fuzz reaches them."""


def _raw(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    if data.get("start", "tonight") == "tonight":
        data["start"] = FIXED_START
    return data


RAW = {path: _raw(path) for path in SHIPPED}


def _nodes(node, path=()):
    """Every (path, value) of a YAML tree, the root included, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, (*path, i))


def _parent(data, path):
    node = data
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated_scenarios(draw, max_changes: int = 1):
    """(scenario file, mutated data, description) with 1..max_changes hostile changes."""
    source = draw(st.sampled_from(SHIPPED))
    data = copy.deepcopy(RAW[source])
    changes = [_mutate(draw, data) for _ in range(draw(st.integers(1, max_changes)))]
    return source, data, "; ".join(changes)


def _mutate(draw, data: dict) -> str:
    """Make one hostile change to ``data`` in place; returns what it did."""
    path, node = draw(st.sampled_from(list(_nodes(data))))
    kinds = ["replace", "replace", "replace", "delete", "add_key", "add_field", "add_field"]
    if isinstance(node, list | dict) and node:
        kinds.append("empty")
    if isinstance(node, int | float) and not isinstance(node, bool):
        kinds += ["scale", "scale", "scale"]  # near-valid values, which often load and run
    kind = draw(st.sampled_from(kinds if path else ["add_key", "add_field"]))
    if kind == "add_field":
        return _add_field(draw, data)
    if kind == "scale":
        factor = draw(st.sampled_from(SCALES))
        value = node * factor if isinstance(node, float) else int(node * factor)
        _parent(data, path)[path[-1]] = value
    elif kind == "replace":
        value = draw(hostile)
        _parent(data, path)[path[-1]] = value
    elif kind == "delete":
        del _parent(data, path)[path[-1]]
        value = None
    elif kind == "empty":
        node.clear()
        value = type(node)()
    else:
        value = draw(hostile)
        container = node if isinstance(node, dict) else data
        container[draw(st.sampled_from(["seeed", "extra", "name_", "x" * 80, "1"]))] = value
    return f"{kind} {'.'.join(map(str, path)) or '(root)'} -> {value!r:.60}"


def _add_field(draw, data: dict) -> str:
    """Set one of OPTIONAL_FIELDS (creating the mappings above it) to a drawn value."""
    path = draw(st.sampled_from(sorted(OPTIONAL_FIELDS, key=str)))
    default = OPTIONAL_FIELDS[path]
    how = draw(st.sampled_from(["plausible", "scaled", "hostile"]))
    if how == "hostile":
        value = draw(hostile)
    elif how == "scaled" and isinstance(default, int | float) and not isinstance(default, bool):
        factor = draw(st.sampled_from(SCALES))
        value = default * factor if isinstance(default, float) else int(default * factor)
    else:
        value = copy.deepcopy(default)
    node = data
    for part in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
            if node is None:
                return "add_field skipped (a null on the way)"
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return "add_field skipped (no container)"
    if not isinstance(node, dict):
        return "add_field skipped (not a mapping)"
    node[path[-1]] = value
    return f"add_field {'.'.join(map(str, path))} -> {value!r:.60}"


def _check_tables(run_dir: Path) -> None:
    """Finite numbers wherever records promise one; metrics.json has no NaN/inf at all."""
    for name in TABLES:
        path = run_dir / f"{name}.parquet"
        if not path.exists():
            continue
        frame = pd.read_parquet(path)  # a file, or a directory of part files
        for column in frame.columns:
            values = frame[column]
            if values.dtype.kind != "f":
                continue
            array = values.to_numpy(dtype=float)
            if column not in NAN_ALLOWED.get(name, set()):
                assert not np.isnan(array).any(), f"{name}.{column} holds NaN"
            if column not in INF_ALLOWED.get(name, set()):
                assert not np.isinf(array).any(), f"{name}.{column} holds inf"
    text = (run_dir / "metrics.json").read_text()

    def refuse(constant: str):
        raise AssertionError(f"metrics.json holds {constant}")

    json.loads(text, parse_constant=refuse)


def _outcome(source: Path, data: dict, description: str) -> str:
    """'refused' or 'ran'; any other exception propagates and fails the property."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for log in source.parent.glob("*.csv"):  # relative weather logs travel along
            shutil.copy(log, tmp_dir / log.name)
        path = tmp_dir / source.name
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
        nights_changed = data.get("nights") != RAW[source].get("nights")
        try:
            scenario = load_scenario(path) if nights_changed else load_scenario(path, nights=1)
        except ConfigError as err:
            message = str(err)
            assert "\n" not in message and len(message) < 1500, message
            assert "field '?'" not in message, message
            return "refused"
        if scenario.nights > 1:  # the value was valid; keep the run short
            scenario = scenario.model_copy(update={"nights": 1})
        run_dir = tmp_dir / "run"
        run_scenario(scenario, run_dir, policy="greedy", progress=False, plots=False)
        _check_tables(run_dir)
        return "ran"


FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


@settings(FUZZ, max_examples=50, derandomize=True)
@given(mutated_scenarios())
def test_hostile_scenarios_run_cleanly_or_are_refused(case):
    source, data, description = case
    event(_outcome(source, data, description))


@pytest.mark.slow
@settings(FUZZ, max_examples=300)
@given(mutated_scenarios(max_changes=3))
def test_hostile_scenarios_run_cleanly_or_are_refused_many(case):
    source, data, description = case
    event(_outcome(source, data, description))


def test_unmutated_shipped_scenarios_pass_the_property():
    """The property's baseline: every shipped scenario, unchanged, runs and passes."""
    for source in SHIPPED:
        assert _outcome(source, copy.deepcopy(RAW[source]), "none (root)") == "ran"


@st.composite
def mangled_texts(draw) -> bytes:
    """A shipped scenario's bytes with a few random cuts, insertions and byte flips."""
    text = bytearray(draw(st.sampled_from(SHIPPED)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["cut", "insert", "flip"]))
        if how == "cut":
            del text[at : at + draw(st.integers(1, 40))]
        elif how == "insert":
            text[at:at] = draw(st.sampled_from(YAML_SNIPPETS)) or draw(st.binary(max_size=8))
        elif at < len(text):
            text[at] = draw(st.integers(0, 255))
    return bytes(text)


YAML_SNIPPETS = [
    b"", b":", b"- ", b"&a ", b"*a", b"*nowhere", b"{", b"[", b"]", b"}", b"\n  ", b"\t",
    b"!!python/object:os.system ", b"!!binary ", b"<<: ", b"? ", b"|", b">", b"'", b'"',
    b"%YAML 1.1\n", b"---\n", b"...\n", b"\xef\xbb\xbf", b"\x00", b"\xff", b"2027-13-45",
    b"9" * 5000, b"[" * 100, b"name: dup\nname: dup\n",
]  # fmt: skip


@settings(FUZZ, max_examples=200, derandomize=True)
@given(mangled_texts())
def test_mangled_yaml_text_loads_or_is_refused(content):
    """Byte-level damage to a shipped file: it loads, or a one-line ConfigError says why."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_bytes(content)
        for log in (SCENARIOS / "teaching").glob("*.csv"):
            shutil.copy(log, Path(tmp) / log.name)
        try:
            load_scenario(path, nights=1, start=FIXED_START)
        except ConfigError as err:
            assert "\n" not in str(err) and len(str(err)) < 1500, str(err)
            event("refused")
        else:
            event("loaded")
