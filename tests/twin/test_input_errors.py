"""Every bad input is a clear ConfigError at load time: no traceback, hang or nonsense run.

One test per defect found by feeding malformed scenarios to ``skytwin run`` (652 inputs:
48 tracebacks, 18 hangs or memory exhaustion, 3 nonsense runs). Each asserts the error
type, the file, the field it names, and that the message is one short line.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from pathlib import Path

import pytest
import yaml

from twin.errors import EXCERPT_CHARS, ConfigError, excerpt, from_pydantic
from twin.scenario import MAX_DEPTH, MAX_FILE_BYTES, Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FAILOVER = SCENARIOS / "teaching" / "failover.yaml"

BASE = {
    "name": "t", "start": "2027-03-10", "nights": 1, "seed": 1,
    "sites": [{"site": "cerro-pachon", "telescopes": [{"name": "a", "preset": "1m"}]}],
    "programmes": [{"name": "tc", "plan": [{"band": "r", "exptime_s": 60}],
                    "requests": [{"request_id": "x", "ra_deg": 10, "dec_deg": -30}]}],
}  # fmt: skip
MAX_MESSAGE_CHARS = 1000


def _write_text(tmp_path: Path, text: str | bytes, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _with(**changes) -> dict:
    """BASE with dotted paths replaced, e.g. ``_with(**{"programmes.0.visits": 3})``."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


def _error(path: Path, **overrides) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_scenario(path, **overrides)
    message = str(info.value)
    assert "\n" not in message and len(message) < MAX_MESSAGE_CHARS, message
    return info.value


def _error_for(tmp_path: Path, data: dict, **overrides) -> ConfigError:
    path = _write_text(tmp_path, yaml.safe_dump(data))
    err = _error(path, **overrides)
    assert str(path) in str(err)
    return err


# --- Reading the file -------------------------------------------------------------------


def test_binary_scenario_file_is_a_config_error(tmp_path):
    err = _error(_write_text(tmp_path, b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 20))
    assert err.field == "(file)" and "not UTF-8" in err.problem


def test_latin1_scenario_file_is_a_config_error(tmp_path):
    err = _error(_write_text(tmp_path, "name: caf\xe9\n".encode("latin-1")))
    assert "not UTF-8" in err.problem and "offset 9" in err.problem


def test_nul_bytes_are_a_yaml_error(tmp_path):
    err = _error(_write_text(tmp_path, b"name: t\x00\n"))
    assert err.field == "(yaml)"


def test_deeply_nested_yaml_is_refused_without_recursion_error(tmp_path):
    for text in ("a: " + "[" * 5000 + "]" * 5000, "a:\n" + "".join(
            "  " * i + f"k{i}:\n" for i in range(1, 400)) + "  " * 400 + "x: 1\n"):  # fmt: skip
        err = _error(_write_text(tmp_path, text))
        assert err.field == "(yaml)" and f"deeper than {MAX_DEPTH}" in err.problem


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = _write_text(tmp_path, "name: t\nsites: [\n  {site: x\nnights: 1\n")
    err = _error(path)
    assert "<unicode string>" not in str(err) and str(path) in str(err)
    assert err.field == "(yaml)" and "line " in err.problem


def test_duplicate_yaml_key_is_refused_naming_the_key(tmp_path):
    text = yaml.safe_dump(BASE) + "seed: 7\n"
    err = _error(_write_text(tmp_path, text))
    assert err.field == "seed" and "given twice" in err.problem and "line " in err.problem


def test_duplicate_key_in_a_nested_mapping(tmp_path):
    text = yaml.safe_dump(BASE).replace("name: a", "name: a\n    name: b")
    err = _error(_write_text(tmp_path, text))
    assert err.field == "name" and "given twice" in err.problem


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in itertools.pairwise("abcdefghi")]
)


@pytest.mark.parametrize("where", ["unknown key", "known field"])
def test_alias_bomb_is_refused_fast(tmp_path, where):
    text = yaml.safe_dump(BASE) + BILLION_LAUGHS + "\n"
    if where == "known field":
        text = text.replace("\ni: &i", "\ndescription: &i")
    assert len(BILLION_LAUGHS) < 500
    t0 = time.perf_counter()
    err = _error(_write_text(tmp_path, text))
    assert time.perf_counter() - t0 < 2.0
    assert err.field == "(yaml)" and "aliases" in err.problem


def test_recursive_alias_is_refused(tmp_path):
    err = _error(_write_text(tmp_path, yaml.safe_dump(BASE) + "extra: &x [1, *x]\n"))
    assert "refers to itself" in err.problem


def test_file_larger_than_the_limit(tmp_path):
    text = yaml.safe_dump(BASE) + "# " + "x" * MAX_FILE_BYTES + "\n"
    err = _error(_write_text(tmp_path, text))
    assert err.field == "(file)" and str(MAX_FILE_BYTES) in err.problem


@pytest.mark.parametrize("text", ["start: 2027-13-45\n", f"seed: {'9' * 5000}\n"])
def test_value_yaml_cannot_construct(tmp_path, text):
    err = _error(_write_text(tmp_path, yaml.safe_dump(_without("start", "seed")) + text))
    assert err.field == "(yaml)"


def _without(*keys: str) -> dict:
    return {k: v for k, v in copy.deepcopy(BASE).items() if k not in keys}


def test_not_a_file_and_a_directory(tmp_path):
    assert _error(tmp_path / "missing.yaml").field == "(file)"
    assert _error(tmp_path).field == "(file)"


# --- Messages ---------------------------------------------------------------------------


def test_error_quotes_only_a_short_escaped_excerpt(tmp_path):
    err = _error_for(tmp_path, _with(start="x\n" * 10_000))
    assert err.field == "start" and len(err.problem) < 200 and "\\n" in err.problem


def test_excerpt_of_a_huge_structure_is_short_and_fast():
    nested: list = ["lol"]
    for _ in range(9):
        nested = [nested] * 9
    t0 = time.perf_counter()
    text = excerpt(nested)
    assert time.perf_counter() - t0 < 0.1 and len(text) <= EXCERPT_CHARS


def test_from_pydantic_of_a_huge_list_input_is_short():
    nested: list = [1.5]
    for _ in range(9):
        nested = [nested] * 9
    with pytest.raises(Exception) as info:
        Scenario.model_validate({**BASE, "nights": nested})
    assert len(str(from_pydantic("s.yaml", info.value))) < MAX_MESSAGE_CHARS


def test_control_characters_in_a_key_stay_on_one_line(tmp_path):
    err = _error_for(tmp_path, {**BASE, "bad\nkey\x1b[31m": 1})
    assert "unknown field" in err.problem and "\n" not in err.field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**BASE, "sites": BASE["sites"] * 2}, "sites.1.site"),
        (_with(**{"sites.0.telescopes": [{"name": "a"}] * 2}), "sites.0.telescopes.1.name"),
        (_with(**{"programmes": BASE["programmes"] * 2}), "programmes.1.name"),
        (_with(**{"programmes.0.survey": {"dec_min_deg": 10, "dec_max_deg": 0}},
               **{"programmes.0.requests": []}), "programmes.0.survey.dec_max_deg"),
        (_with(weather={"model": "replay"}), "weather.log"),
        (_with(**{"sites.0.custom": {}}), "sites.0.custom.name"),
        (_with(**{"sites.0.site": None}), "sites.0.site"),
        (_with(**{"programmes.0.targets": [{"name": "m", "ra_deg": 1, "dec_deg": 1}]}),
         "programmes.0.requests"),
        (_with(**{"programmes.0.requests.0.windows_after_start_days": [[2, 1]]}),
         "programmes.0.requests.0.windows_after_start_days.0"),
        (_with(alerts={"dec_range_deg": [10, -10]}), "alerts.dec_range_deg"),
        (_with(alerts={"peak_mag_range_r": [20, 10]}), "alerts.peak_mag_range_r"),
        (_with(weather={"dome": {"cloud_max": 0.2, "cloud_reopen_margin": 0.3}}),
         "weather.dome.cloud_reopen_margin"),
    ],
)  # fmt: skip
def test_checks_across_fields_name_a_real_field(tmp_path, data, field):
    err = _error_for(tmp_path, data)
    assert err.field == field and "?" not in err.field, str(err)


# --- Values that used to break the run --------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", 2**64),
        ("seed", 2**32),
        ("nights", 2**63),
        ("alerts.rate_per_day", 1e308),
        ("alerts.peak_mag_range_r", [-1e308, 1e308]),
        ("alerts.peak_mag_range_r", [15.0, 1e308]),
        ("programmes.0.requests.0.visits", 2**63),
        ("programmes.0.visits", 2**63),
        ("programmes.0.requests.0.cadence_days", float("inf")),
        ("programmes.0.cadence_days", float("nan")),
        ("programmes.0.plan.0.exptime_s", 1e308),
        ("programmes.0.plan.0.exptime_s", 1e-9),
        ("programmes.0.plan.0.exptime_s", float("inf")),
        ("programmes.0.priority", float("inf")),
        ("programmes.0.requests.0.windows_after_start_days", [[0, float("inf")]]),
        ("links.default.outage_sigma_ln", 1000),
        ("links.default.mtbf_h", 1e-9),
        ("links.default.latency_ms", 1e308),
        ("operations.idle_wait_s", 1e-9),
        ("operations.bias_frames", 2**63),
        ("weather.correlation_length_km", float("inf")),
        ("imaging.sky_seed", 2**64),
        ("sites.0.telescopes.0.overrides.readout_s", 1e308),
        ("sites.0.telescopes.0.overrides.mirror_reflectivity", 1e-300),
        ("sites.0.telescopes.0.overrides.aperture_m", 1e-200),
    ],
)
def test_out_of_bounds_numbers_are_refused_at_load(tmp_path, field, value):
    err = _error_for(tmp_path, _with(**{field: value}))
    assert err.field.startswith(field), str(err)


@pytest.mark.parametrize("weight", [".inf", ".nan", "-1"])
def test_infinite_alert_kind_weight(tmp_path, weight):
    text = yaml.safe_dump(_without("alerts")) + f"alerts: {{kinds: {{sn_ia: {weight}}}}}\n"
    err = _error(_write_text(tmp_path, text))
    assert err.field == "alerts.kinds.sn_ia"


def test_scenario_without_start_runs_tonight(tmp_path):
    scenario = load_scenario(_write_text(tmp_path, yaml.safe_dump(_without("start"))))
    assert scenario.start != "tonight" and scenario.start_mjd > 60000


def test_empty_filters_override(tmp_path):
    err = _error_for(tmp_path, _with(**{"sites.0.telescopes.0.overrides": {"filters": []}}))
    assert err.field == "sites.0.telescopes.0.overrides.filters"


def test_repeated_filter_name_override(tmp_path):
    g = {"name": "r", "center_nm": 622.0, "width_nm": 140.0}
    err = _error_for(tmp_path, _with(**{"sites.0.telescopes.0.overrides": {"filters": [g, g]}}))
    assert err.field == "sites.0.telescopes.0.overrides.filters.1.name"


def test_survey_with_ra_min_360(tmp_path):
    survey = {"ra_min_deg": 360, "dec_min_deg": 0, "dec_max_deg": 5}
    data = _with(**{"programmes.0.requests": [], "programmes.0.survey": survey})
    assert _error_for(tmp_path, data).field == "programmes.0.survey.ra_min_deg"


def test_survey_with_an_empty_ra_range(tmp_path):
    survey = {"ra_min_deg": 10, "ra_max_deg": 10, "dec_min_deg": 0, "dec_max_deg": 5}
    data = _with(**{"programmes.0.requests": [], "programmes.0.survey": survey})
    assert _error_for(tmp_path, data).field == "programmes.0.survey.ra_max_deg"


@pytest.mark.parametrize(
    "survey",
    [
        {"fov_deg": 1e-6},
        {"fov_deg": 0.01, "overlap": 0.9},
        {"overlap": 0.999},
    ],
)
def test_survey_tiled_too_finely_is_refused_fast(tmp_path, survey):
    region = {"ra_min_deg": 0, "ra_max_deg": 360, "dec_min_deg": -90, "dec_max_deg": 90}
    data = _with(**{"programmes.0.requests": [], "programmes.0.survey": {**region, **survey}})
    t0 = time.perf_counter()
    err = _error_for(tmp_path, data)
    assert time.perf_counter() - t0 < 2.0
    assert err.field.startswith("programmes.0.survey")


def test_small_fov_survey_message_says_what_to_do(tmp_path):
    survey = {"ra_min_deg": 0, "ra_max_deg": 360, "dec_min_deg": -90, "dec_max_deg": 90,
              "fov_deg": 1e-6}  # fmt: skip
    data = _with(**{"programmes.0.requests": [], "programmes.0.survey": survey})
    err = _error_for(tmp_path, data)
    assert "larger fov_deg" in err.problem and "at most" in err.problem


def test_duplicate_request_ids(tmp_path):
    request = BASE["programmes"][0]["requests"][0]
    err = _error_for(tmp_path, _with(**{"programmes.0.requests": [request, request]}))
    assert err.field == "programmes.0.requests.1.request_id" and "'x'" in err.problem


def test_duplicate_request_ids_across_programmes(tmp_path):
    other = {"name": "mon", "cadence_days": 1, "visits": 0,
             "targets": [{"name": "00000", "ra_deg": 1, "dec_deg": 1}]}  # fmt: skip
    survey = {"name": "mon", "survey": {"dec_min_deg": 0, "dec_max_deg": 1}}
    data = _with(programmes=[{**other, "name": "sv-mon"}, {**survey, "name": "sv"}])
    data["programmes"][0]["targets"][0]["name"] = "x"
    data["programmes"].append({"name": "tc", "requests": [{"request_id": "sv-mon-x",
                                                          "ra_deg": 1, "dec_deg": 1}]})  # fmt: skip
    err = _error_for(tmp_path, data)
    assert err.field == "programmes.2.requests.0.request_id" and "sv-mon-x" in err.problem


def test_repeated_monitoring_target_names(tmp_path):
    target = {"name": "M83", "ra_deg": 204.25, "dec_deg": -29.87}
    data = _with(programmes=[{"name": "mon", "cadence_days": 1, "targets": [target, target]}])
    assert _error_for(tmp_path, data).field == "programmes.0.targets.1.name"


def test_request_id_in_the_alert_streams_namespace(tmp_path):
    data = _with(alerts={"rate_per_day": 1.0, "followup": {"confirm": False}},
                 **{"programmes.0.requests.0.request_id": "alert-0000-fu"})  # fmt: skip
    assert _error_for(tmp_path, data).field == "programmes.0.requests.0.request_id"


def test_programme_named_like_the_alert_programme(tmp_path):
    data = _with(alerts={"rate_per_day": 1.0}, **{"programmes.0.name": "alerts"})
    assert _error_for(tmp_path, data).field == "programmes.0.name"


# --- Replayed weather -------------------------------------------------------------------

LOG_HEADER = "time_utc,site,cloud_cover,seeing_fwhm_arcsec,humidity_pct,wind_m_s,temperature_c\n"


def _replay(tmp_path: Path, log_text: str | bytes, **changes) -> ConfigError:
    """The error of a scenario replaying ``log_text``; it names the log or the scenario."""
    log = _write_text(tmp_path, log_text, "log.csv")
    data = _with(weather={"model": "replay", "log": "log.csv"}, **changes)
    err = _error(_write_text(tmp_path, yaml.safe_dump(data)))
    assert err.source in (str(log), str(tmp_path / "s.yaml"))
    return err


def test_replay_log_with_a_header_only(tmp_path):
    err = _replay(tmp_path, LOG_HEADER)
    assert err.field == "file" and "no data rows" in err.problem


def test_run_longer_than_the_replayed_log_fails_at_load():
    with pytest.raises(ConfigError) as info:
        load_scenario(FAILOVER, nights=6)
    err = info.value
    assert err.field == "weather.log" and "2027-04-06T00:00 to 2027-04-14T00:00" in err.problem
    assert "shorten 'nights'" in err.problem
    assert load_scenario(FAILOVER, nights=5).nights == 5


def test_replay_log_starting_after_the_run(tmp_path):
    rows = [f"2027-03-{d:02d}T00:00:00,cerro-pachon,0.1,0.8,20,3,5\n" for d in range(10, 20)]
    err = _replay(tmp_path, LOG_HEADER + "".join(rows))
    assert err.field == "weather.log" and "2027-03-09T00:00" in err.problem


SECRET = "AWS_SECRET_ACCESS_KEY=" + "s3cr3t" * 40


@pytest.mark.parametrize(
    "content",
    [
        (SECRET + "\x00HOME=/root\x00").encode(),  # like /proc/self/environ
        (SECRET + "\n" + SECRET + "\n").encode(),  # a one-column "CSV"
        ("site,mjd\n" + SECRET + ",1\n").encode(),
        b"\x7fELF\x02\x01\x01" + bytes(range(256)),
    ],
)
def test_non_csv_weather_log_is_not_echoed(tmp_path, content):
    err = _replay(tmp_path, content)
    assert "s3cr3t" * 3 not in str(err)


def test_weather_log_pointing_at_proc_self_environ(tmp_path):
    environ = Path("/proc/self/environ")
    if not environ.is_file():
        pytest.skip("no /proc")
    data = _with(weather={"model": "replay", "log": str(environ)})
    err = _error(_write_text(tmp_path, yaml.safe_dump(data)))
    assert "PATH=" not in str(err) and "HOME=" not in str(err)


def test_replay_log_with_a_long_cell_quotes_an_excerpt(tmp_path):
    rows = "2027-03-09T00:00:00,cerro-pachon," + "9" * 100_000 + "x,0.8,20,3,5\n"
    err = _replay(tmp_path, LOG_HEADER + rows)
    assert err.field == "cloud_cover" and len(err.problem) < 300


# --- Names that become paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "../../x"),
        ("name", "a/b"),
        ("name", ".hidden"),
        ("name", "a..b"),
        ("name", ""),
        ("name", "x" * 65),
        ("name", "ok\n"),
        ("sites.0.telescopes.0.name", "../x"),
        ("sites.0.telescopes.0.name", "/etc/x"),
    ],
)
def test_names_that_become_paths_must_be_safe(tmp_path, field, value):
    err = _error_for(tmp_path, _with(**{field: value}))
    assert err.field == field and "A-Za-z0-9" in err.problem


def test_custom_site_name_must_be_safe(tmp_path):
    from twin.world.sites import SITES

    custom = SITES["cerro-pachon"].model_dump(mode="json") | {"name": "../../etc"}
    data = _with(**{"sites.0": {"custom": custom, "telescopes": [{"name": "a"}]}})
    assert _error_for(tmp_path, data).field == "sites.0.custom.name"


def test_filter_name_override_must_be_safe(tmp_path):
    bad = {"name": "../r", "center_nm": 622.0, "width_nm": 140.0}
    data = _with(**{"sites.0.telescopes.0.overrides": {"filters": [bad]}})
    assert _error_for(tmp_path, data).field == "sites.0.telescopes.0.overrides.filters.0.name"


# --- Programmatic overrides -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"nights": 0}, "nights"),
        ({"nights": 10**6}, "nights"),
        ({"nights": 1.5}, "nights"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**70}, "seed"),
        ({"start": "not a date"}, "start"),
        ({"start": "3000-01-01"}, "start"),
        ({"start": 12}, "start"),
        ({"name": "../x"}, "name"),
        ({"seeed": 3}, "seeed"),
    ],
)
def test_programmatic_overrides_get_the_same_validation(tmp_path, overrides, field):
    err = _error_for(tmp_path, BASE, **overrides)
    assert err.field == field


def test_override_nights_checked_against_the_replayed_log():
    with pytest.raises(ConfigError, match=r"weather\.log"):
        load_scenario(FAILOVER, nights=30)


def test_valid_overrides_are_applied(tmp_path):
    path = _write_text(tmp_path, yaml.safe_dump(BASE))
    scenario = load_scenario(path, nights=2, seed=9, start="2027-05-01")
    assert (scenario.nights, scenario.seed, scenario.start) == (2, 9, "2027-05-01")


def test_replay_log_holding_other_sites_too_runs(tmp_path):
    """The failover log has rows for Sutherland and Cerro Pachon; a scenario of Cerro Pachon
    alone loads (other built-in sites may share a log) and so must build its world."""
    from twin.ops.world import World

    data = yaml.safe_load(FAILOVER.read_text())
    data["sites"] = [s for s in data["sites"] if s["site"] == "cerro-pachon"]
    data["weather"]["log"] = str(FAILOVER.parent / data["weather"]["log"])
    scenario = load_scenario(_write_text(tmp_path, yaml.safe_dump(data)))
    assert [s.name for s in World(scenario).scenario.network] == ["cerro-pachon"]


def test_telescope_without_a_band_of_a_plan_it_may_take(tmp_path):
    """Found by the fuzz test: a telescope whose filters lack a band of a programme's plan
    broke the run with a KeyError in the scheduler; now refused at load."""
    only_i = [{"name": "i", "center_nm": 755.0, "width_nm": 150.0}]
    telescopes = [{"name": "a"}, {"name": "b", "overrides": {"filters": only_i}}]
    data = _with(**{"sites.0.telescopes": telescopes})
    err = _error_for(tmp_path, data)
    assert err.field == "programmes.0.plan.0.band" and "'b'" in err.problem


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("horizon_az_deg", [0.0, math.nan, 360.0], "sites.0.custom.horizon_az_deg.1"),
        ("climate.seeing_timescale_min", math.inf, "sites.0.custom.climate.seeing_timescale_min"),
    ],
)
def test_custom_site_numbers_must_be_finite(tmp_path, key, value, field):
    from twin.world.sites import SITES

    custom = SITES["cerro-pachon"].model_dump(mode="json") | {"name": "pachon-copy"}
    if key.startswith("climate."):
        custom["climate"][key.split(".")[1]] = value
    else:
        custom[key] = value
        custom["horizon_alt_deg"] = [15.0, 15.0, 15.0]
    data = _with(**{"sites.0": {"custom": custom, "telescopes": [{"name": "a"}]}})
    assert _error_for(tmp_path, data).field.startswith(field)


def test_run_exactly_as_long_as_the_replayed_log_runs(tmp_path):
    """The load-time span check is not laxer than the run: the longest run the failover log
    allows (5 nights) runs to the end without an OutOfSpanError."""
    from twin.ops.run import run_scenario

    scenario = load_scenario(FAILOVER, nights=5)
    result = run_scenario(scenario, tmp_path / "run", policy="greedy", progress=False, plots=False)
    assert result.metrics["run"]["nights"] == 5


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00binary", BILLION_LAUGHS.encode(), b"name: ../../x\nsites: []\n"],
)
def test_cli_prints_one_line_and_exits_2(tmp_path, capsys, content):
    from twin.cli import main

    path = _write_text(tmp_path, content)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and len(err) < MAX_MESSAGE_CHARS
    assert not out.exists()
