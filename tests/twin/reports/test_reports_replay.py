"""The replay page in a real browser: headless Chromium driven by Selenium.

Why a browser and not just the payload: what breaks a page (a JavaScript error, a request
to a CDN, marks that are drawn but not placed, a state computed in Python and shown
wrong) only shows when the page runs. The driver is Debian's ``chromedriver`` named
explicitly, so Selenium Manager never downloads one; without Chromium the tests skip.

``SKYTWIN_DOCS_SCREENSHOTS=1`` also copies the screenshots of the teaching scenarios to
``docs/`` for the README (off by default, so a test run leaves the tree clean).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twin.reports.replay as replay
from twin.cli import main as skytwin
from twin.ops.run import run_scenario
from twin.reports.replay import build_payload, header_comment, page_html, write_replay
from twin.scenario import load_scenario

try:
    import selenium
except ImportError:  # a dev dependency; the payload tests run without it
    selenium = None

ROOT = Path(__file__).resolve().parents[3]
TEACHING = sorted((ROOT / "scenarios" / "teaching").glob("*.yaml"))
LAND_JS = ROOT / "twin/reports/replay_assets/land.js"
DOCS = ROOT / "docs"
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    selenium is None or CHROMIUM is None or CHROMEDRIVER is None,
    reason="no headless browser: needs selenium (pip install -e '.[dev]') and Debian's "
    "chromium and chromium-driver (make test installs them where it can)",
)
LOAD_LIMIT_S = 3.0
CLICK = "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))"


def _run(scenario_path: Path, out: Path, **overrides) -> Path:
    scenario = load_scenario(scenario_path, **overrides)
    run_scenario(scenario, out, progress=False, plots=False)
    return out


@pytest.fixture(scope="module")
def relay_run(tmp_path_factory) -> Path:
    return _run(ROOT / "scenarios/teaching/relay.yaml", tmp_path_factory.mktemp("relay"))


@pytest.fixture(scope="module")
def teaching_run(tmp_path_factory):
    """``teaching_run(name)``: the run of ``scenarios/teaching/NAME.yaml``, made once."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            out = tmp_path_factory.mktemp(name)
            runs[name] = _run(ROOT / f"scenarios/teaching/{name}.yaml", out / "run")
        return runs[name]

    return get


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1500,1000",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    # browser: console messages; performance: the DevTools Network events of every request.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _open(driver, page: Path) -> float:
    """Load ``page``; the seconds until the page had drawn its first frame."""
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(page.resolve().as_uri())
    return driver.execute_script("return window.replay.readyMs") / 1000.0


def _requests(driver, page: Path) -> list[str]:
    """URLs the page asked for, other than itself and inline data."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    urls += driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return [u for u in urls if u != page.resolve().as_uri() and not u.startswith("data:")]


def _console_problems(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def _move_slider(driver, t_s: float) -> None:
    driver.execute_script(
        "const s = document.getElementById('slider'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input', {bubbles: true}));",
        t_s,
    )


def _site(driver, name: str) -> dict:
    item = driver.find_element("css selector", f'#site-list li[data-site="{name}"]')
    return {name: item.get_attribute(f"data-{name}") for name in ("state", "targets")}


def _site_label(driver, name: str) -> str:
    """What the site list says of a site after its name: "observing M83 (exposing)"."""
    return driver.find_element("css selector", f'#site-list li[data-site="{name}"] .label').text


def _site_colour(driver, name: str) -> str:
    item = f'#site-list li[data-site="{name}"] .dot'
    return driver.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", item
    )


def _t0_mjd(driver) -> float:
    """The page's time origin: slider values are seconds from it."""
    script = "return JSON.parse(document.getElementById('replay-data').textContent).meta.t0_mjd"
    return driver.execute_script(script)


# --------------------------------------------------------------------------- payload


def test_payload_is_compact_columns(relay_run):
    payload = build_payload(relay_run, ROOT / "scenarios/teaching/relay.yaml")
    obs = pd.read_parquet(relay_run / "observations.parquet")
    assert len(payload["obs"]["t"]) == len(obs) == 30
    assert {len(v) for v in payload["obs"].values()} == {30}, "every column one entry per exposure"
    assert [payload["strings"][i] for i in set(payload["obs"]["target"])] == ["M83"]
    hand = payload["handoffs"]
    moves = [
        (payload["sites"][a]["name"], payload["sites"][b]["name"])
        for a, b in zip(hand["from"], hand["to"], strict=True)
    ]
    assert moves == [("siding-spring", "sutherland"), ("sutherland", "cerro-pachon")]
    assert "Look at:" in payload["meta"]["notes"]
    assert payload["previews"] == {}, "no frames were rendered, so none are embedded"


def test_header_comment_reflows_paragraphs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("# title: what.\n# one\n# two\n#\n# Look at: this\n# and that\nname: s\n")
    assert header_comment(path) == "title: what.\n\none two\n\nLook at: this and that"


def _with_frames(relay_run: Path, out: Path) -> Path:
    """A copy of the relay run with a preview PNG for exposure 15 and a bare FITS frame
    for 16 (what ``skytwin frame --png`` and ``skytwin night --frames`` leave)."""
    from astropy.io import fits
    from PIL import Image

    shutil.copytree(relay_run, out)
    noise = np.random.default_rng(0).normal(1000.0, 30.0, (64, 64))
    (out / "frames/single").mkdir(parents=True)
    Image.fromarray(np.clip(noise / 8, 0, 255).astype(np.uint8)).save(
        out / "frames/single/sutherland-1m_0000015.png"
    )
    (out / "frames/sutherland").mkdir()
    fits.writeto(out / "frames/sutherland/sutherland-1m_0000016.fits", noise.astype(np.float32))
    return out


def test_rendered_frames_are_embedded(relay_run, tmp_path):
    previews = build_payload(_with_frames(relay_run, tmp_path / "run"))["previews"]
    assert set(previews) == {"15", "16"}
    assert all(uri.startswith("data:image/jpeg;base64,") for uri in previews.values())


# --------------------------------------------------------------------------- browser


@needs_browser
def test_relay_replay_in_browser(relay_run, browser, tmp_path):
    page = write_replay(relay_run, tmp_path / "relay.html")
    _open(browser, page)
    assert _console_problems(browser) == [], "the page logged errors or warnings"
    assert _requests(browser, page) == [], "the page must not fetch anything"
    n_exposures = len(pd.read_parquet(relay_run / "observations.parquet"))
    marks = browser.find_elements("css selector", "#tl-svg rect.exp")
    assert len(marks) == n_exposures == 30

    nights = pd.read_parquet(relay_run / "nights.parquet").set_index("site")
    middle_mjd = nights.loc["sutherland", ["mjd_start", "mjd_end"]].mean()
    obs = pd.read_parquet(relay_run / "observations.parquet")
    suth = obs[obs["site"] == "sutherland"]
    exposing = ((suth["mjd_start"] <= middle_mjd) & (middle_mjd < suth["mjd_end"])).any()
    assert not exposing, "mid-night falls between two of the 72-min cadence's visits"
    # The check: at Sutherland's mid-night the page shows Sutherland observing M83
    # and the other two sites not. Between two visits it says so, and when the next is due.
    _move_slider(browser, (middle_mjd - _t0_mjd(browser)) * 86400.0)
    assert _site(browser, "sutherland") == {"state": "observing", "targets": "M83"}
    for other in ("siding-spring", "cerro-pachon"):
        assert _site(browser, other)["state"] != "observing", other
        assert "M83" not in _site_label(browser, other), other
    between = _site_label(browser, "sutherland")
    assert between.startswith("observing M83 \u2014 between visits (next exposure in "), between
    between_colour = _site_colour(browser, "sutherland")
    # During Sutherland's exposure nearest its mid-night: plain "observing M83 (exposing)".
    nearest = suth.iloc[int(np.argmin(np.abs(suth["mjd_start"] - middle_mjd)))]
    _move_slider(
        browser, ((nearest["mjd_start"] + nearest["mjd_end"]) / 2 - _t0_mjd(browser)) * 86400
    )
    assert _site(browser, "sutherland") == {"state": "observing", "targets": "M83"}
    assert _site_label(browser, "sutherland") == "observing M83 (exposing)"
    assert _site_colour(browser, "sutherland") not in (between_colour, "rgb(255, 255, 255)")
    for other in ("siding-spring", "cerro-pachon"):
        assert _site(browser, other)["state"] != "observing", other

    # Sutherland's first exposure (marks are in time order); a mark is ~1 px wide, so the
    # click is dispatched on it rather than aimed with the mouse.
    browser.execute_script(CLICK, marks[10])
    detail = browser.find_element("id", "detail-table").text
    assert "M83" in detail and "sutherland" in detail and "airmass" in detail
    assert _console_problems(browser) == []
    shot = tmp_path / "replay-relay.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000


@needs_browser
def test_clicked_exposure_shows_its_frame(relay_run, browser, tmp_path):
    run = _with_frames(relay_run, tmp_path / "run")
    page = write_replay(run, tmp_path / "relay.html")
    _open(browser, page)
    marks = {
        m.get_attribute("data-obs-id"): m for m in browser.find_elements("css selector", "rect.exp")
    }
    for obs_id, has_frame in (("15", True), ("17", False)):
        browser.execute_script(CLICK, marks[obs_id])
        images = browser.find_elements("css selector", "#detail img")
        assert len(images) == has_frame, obs_id
    # Play at 1 h per second for half a second, then pause: the clock moves, then stops.
    slider = browser.find_element("id", "slider")
    before = float(slider.get_attribute("value"))
    browser.execute_script("document.getElementById('speed').value = '3600'")
    browser.find_element("id", "play").click()
    time.sleep(0.5)
    browser.find_element("id", "play").click()
    paused = float(slider.get_attribute("value"))
    time.sleep(0.3)
    assert before + 600 < paused == float(slider.get_attribute("value"))
    assert _console_problems(browser) == [] and _requests(browser, page) == []


@needs_browser
@pytest.mark.parametrize("scenario", TEACHING, ids=lambda p: p.stem)
def test_teaching_screenshots(scenario, browser, teaching_run, tmp_path):
    """Every teaching scenario's page loads cleanly; its screenshot is the README's, taken
    at the moment its README caption describes (checked on the page before the shot)."""
    run = teaching_run(scenario.stem)
    page = write_replay(run, tmp_path / "replay.html", scenario_file=scenario)
    _open(browser, page)
    assert _console_problems(browser) == [] and _requests(browser, page) == []
    notes = browser.find_element("id", "notes").text
    assert notes.startswith(header_comment(scenario)[:40])
    mjd = _teaching_moment(scenario.stem, run)
    browser.execute_script("window.replay.setTime(arguments[0])", _seconds(browser, mjd))
    _check_caption(scenario.stem, run, browser, mjd)
    shot = tmp_path / f"replay-{scenario.stem}.png"
    assert browser.save_screenshot(str(shot))
    assert _console_problems(browser) == []
    if os.environ.get("SKYTWIN_DOCS_SCREENSHOTS") == "1":
        shutil.copy(shot, DOCS / shot.name)


def _seconds(driver, mjd: float) -> float:
    """Page time (seconds from its origin) of ``mjd``."""
    return (mjd - _t0_mjd(driver)) * 86400.0


def _teaching_moment(name: str, run: Path) -> float:
    """The MJD of each README screenshot, the moment its caption points at:

    - relay: 30 s into Cerro Pachon's first M83 exposure, the second handoff, while its
      arrow is on the map (an arrow shows for two hours) and both diamonds are on the top row;
    - failover: the middle of Cerro Pachon's first Centaurus A exposure, the takeover,
      with Sutherland's dome closed in the dark;
    - confirmation: a minute after the confirmation at Cerro Pachon (the star green).
    """
    obs = pd.read_parquet(run / "observations.parquet").sort_values("mjd_start")
    if name == "relay":
        return float(obs[obs["site"] == "cerro-pachon"]["mjd_start"].iloc[0]) + 30 / 86400
    if name == "failover":
        cen_a = obs[obs["target_id"] == "Centaurus A"].iloc[0]
        return float(cen_a["mjd_start"] + cen_a["mjd_end"]) / 2
    if name == "confirmation":
        return float(pd.read_parquet(run / "alerts.parquet")["confirmed_mjd"].iloc[0]) + 60 / 86400
    row = obs.iloc[len(obs) // 2]  # a scenario without a caption yet: its middle exposure
    return float(row["mjd_start"]) + 60 / 86400


def _check_caption(name: str, run: Path, driver, mjd: float) -> None:
    """What the README caption of ``name`` says is on the page at ``mjd``."""
    if name == "relay":
        handoffs = driver.execute_script(
            "const d = JSON.parse(document.getElementById('replay-data').textContent);"
            "return d.handoffs.t.map((t, j) => [t, d.sites[d.handoffs.to[j]].name]);"
        )
        age = _seconds(driver, mjd) - max(t for t, _ in handoffs)
        assert len(handoffs) == 2 and 0 <= age < 7200, "the last handoff's arrow is drawn"
        assert handoffs[-1][1] == "cerro-pachon"
        assert _site(driver, "cerro-pachon") == {"state": "observing", "targets": "M83"}
        assert _site(driver, "siding-spring")["state"] == "day"
    elif name == "failover":
        assert _site(driver, "sutherland") == {"state": "closed", "targets": ""}
        assert _site(driver, "cerro-pachon") == {"state": "observing", "targets": "Centaurus A"}
        assert _site_label(driver, "cerro-pachon") == "observing Centaurus A (exposing)"
    elif name == "confirmation":
        assert driver.execute_script("return window.replay.alertStatus('alert-sched-00')") == (
            "confirmed"
        )
        assert _site(driver, "cerro-pachon")["state"] == "observing"


@needs_browser
def test_dense_week_loads_fast(browser, tmp_path):
    """A week of the 8-site network (~10 000 exposures): ~35 s, most of it the simulation."""
    run = _run(ROOT / "scenarios/dense-8site.yaml", tmp_path / "run", nights=7)
    page = write_replay(run, tmp_path / "dense.html")
    size_mb = page.stat().st_size / 1e6
    start = time.perf_counter()
    ready_s = _open(browser, page)
    wall_s = time.perf_counter() - start
    print(f"dense-8site, 7 nights: {size_mb:.2f} MB, ready {ready_s:.2f} s, get() {wall_s:.2f} s")
    assert ready_s < LOAD_LIMIT_S and wall_s < LOAD_LIMIT_S
    assert _console_problems(browser) == [] and _requests(browser, page) == []
    n_exposures = len(pd.read_parquet(run / "observations.parquet"))
    assert browser.execute_script("return window.replay.exposureMarks()") == n_exposures
    assert size_mb < 5.0


def _slider_at_mjd(driver, mjd: float) -> None:
    _move_slider(driver, (mjd - _t0_mjd(driver)) * 86400.0)


@needs_browser
def test_failover_sutherland_closed_all_night(teaching_run, browser, tmp_path):
    """Weather shuts Sutherland: at its mid-night the page shows its dome closed, while
    Cerro Pachon (6 h west) is still in daylight."""
    run = teaching_run("failover")
    _open(browser, write_replay(run, tmp_path / "failover.html"))
    nights = pd.read_parquet(run / "nights.parquet").set_index("site")
    _slider_at_mjd(browser, nights.loc["sutherland", ["mjd_start", "mjd_end"]].mean())
    assert _site(browser, "sutherland") == {"state": "closed", "targets": ""}
    assert _site(browser, "cerro-pachon")["state"] == "day"
    label = browser.find_element("css selector", '#site-list li[data-site="sutherland"] .state')
    assert label.text == "dome closed (weather)"
    assert _console_problems(browser) == []


@needs_browser
def test_confirmation_alert_received_and_confirmed(teaching_run, browser, tmp_path):
    """The alert desk on the timeline (issued, received 30 s later, requests sent to both
    sites, followed, detected, confirmed) and the alert's state before and after the
    confirmation at Cerro Pachon."""
    run = teaching_run("confirmation")
    _open(browser, write_replay(run, tmp_path / "confirmation.html"))
    alert = pd.read_parquet(run / "alerts.parquet").iloc[0]
    assert alert["alert_id"] == "alert-sched-00" and alert["confirmed_site"] == "cerro-pachon"
    marks = browser.execute_script(
        "return [...document.querySelectorAll('#tl-svg g.ev')].map(g => "
        "[g.dataset.kind, +g.dataset.t, g.querySelector('title').textContent])"
    )
    kinds = [k for k, _, _ in marks]
    assert kinds.count("alert_issued") == kinds.count("alert_received") == 1
    assert kinds.count("request_released") == 3, "follow-up to both sites, then the confirmation"
    t = {k: t for k, t, _ in marks}
    assert t["alert_received"] - t["alert_issued"] == 30, "the scenario's broker latency"
    sent = sorted(text.split(": ", 1)[1] for k, _, text in marks if k == "request_released")
    assert sent == [
        "follow-up request alert-sched-00-confirm sent to site cerro-pachon",
        "follow-up request alert-sched-00-fu sent to site cerro-pachon",
        "follow-up request alert-sched-00-fu sent to site siding-spring",
    ]
    for kind in ("alert_received", "request_released"):  # their own colour in the legend
        colour = browser.execute_script(
            "const g = document.querySelector(`#tl-svg g.ev[data-kind=${arguments[0]}]`);"
            "return getComputedStyle(g.querySelector('circle')).fill",
            kind,
        )
        assert colour not in {"rgb(255, 111, 0)", "rgb(249, 168, 37)", "rgb(216, 27, 96)"}, kind

    status = "return window.replay.alertStatus('alert-sched-00')"
    _slider_at_mjd(browser, alert["issued_mjd"] - 600 / 86400)
    assert browser.execute_script(status) is None
    _slider_at_mjd(browser, alert["detected_mjd"] + 600 / 86400)
    assert browser.execute_script(status) == "detected"
    log = browser.find_element("id", "event-log").text
    assert "alert received by the centre alert-sched-00" in log
    assert "follow-up request alert-sched-00-fu sent to site siding-spring" in log
    _slider_at_mjd(browser, alert["confirmed_mjd"] + 120 / 86400)
    assert browser.execute_script(status) == "confirmed"
    assert browser.find_element("css selector", "#event-log li").text.startswith(
        "04-07 23:27 \u2014 transient confirmed alert-sched-00 at cerro-pachon"
    )
    assert _console_problems(browser) == []


@needs_browser
def test_gap_in_a_cadence_is_observing_between_visits(relay_run, browser, tmp_path):
    """Between two of Sutherland's M83 visits (72-min cadence) the telescope is idle, but
    the site is still observing M83: "between visits", with the time to the next one."""
    _open(browser, write_replay(relay_run, tmp_path / "relay.html"))
    obs = pd.read_parquet(relay_run / "observations.parquet")
    suth = obs[obs["site"] == "sutherland"].sort_values("mjd_start")
    gaps = suth["mjd_start"].to_numpy()[1:] - suth["mjd_end"].to_numpy()[:-1]
    k = int(np.argmax(gaps))
    assert 30 < gaps[k] * 1440 < replay.SPELL_GAP_MIN, "a cadence gap, shorter than the cap"
    _slider_at_mjd(browser, suth["mjd_end"].iloc[k] + gaps[k] / 2)
    assert _site(browser, "sutherland") == {"state": "observing", "targets": "M83"}
    phase = browser.execute_script("return window.replay.siteState('sutherland').phase")
    assert phase == "between visits"
    label = _site_label(browser, "sutherland")
    head = "observing M83 \u2014 between visits (next exposure in "
    assert label.startswith(head) and label.endswith(" min)"), label
    # the slider moves in whole minutes, so the wait is half the gap to within a minute
    assert abs(int(label[len(head) : -len(" min)")]) - gaps[k] * 1440 / 2) <= 1.0, label


# --------------------------------------------------------------------------- land


def _land() -> dict:
    text = LAND_JS.read_text(encoding="utf-8")
    return json.loads(text.split("window.SKYTWIN_LAND =", 1)[1].strip().rstrip(";"))


def test_land_outline_is_small_and_inlined(relay_run):
    land = _land()
    assert "Natural Earth" in land["source"] and land["unit_deg"] == 0.1
    assert len(land["rings"]) == 118, "make_land.py's output: rings of 1:110m land"
    assert all(len(r) >= 6 and len(r) % 2 == 0 for r in land["rings"])
    assert 10_000 < LAND_JS.stat().st_size < 40_000
    page = page_html(build_payload(relay_run))
    assert LAND_JS.read_text(encoding="utf-8") in page


@needs_browser
def test_map_draws_land(relay_run, browser, tmp_path):
    """Pixels of the world map in daylight: land colour over Africa and South America,
    ocean colour over the Atlantic and the Pacific."""
    page = write_replay(relay_run, tmp_path / "relay.html")
    _open(browser, page)
    assert browser.execute_script("return window.SKYTWIN_LAND.rings.length") == 118
    eph = browser.execute_script(
        "return JSON.parse(document.getElementById('replay-data').textContent).ephemeris"
    )
    sun_lon = (np.asarray(eph["sun_lon"]) + 180.0) % 360.0 - 180.0
    t_noon_brazil = eph["t"][int(np.argmin(np.abs(sun_lon + 35.0)))]  # Sun over 35 W
    browser.execute_script("window.replay.setTime(arguments[0])", t_noon_brazil)
    pixel = (
        "const c = document.getElementById('map'), [lon, lat] = arguments;"
        "const x = Math.round((lon + 180) / 360 * c.width);"
        "const y = Math.round((90 - lat) / 180 * c.height);"
        "return [...c.getContext('2d').getImageData(x, y, 1, 1).data].slice(0, 3);"
    )
    land = {"Sahara": (15, 18), "Brazil": (-55, -8)}
    ocean = {"South Atlantic": (-15, -40), "Pacific": (-100, 5)}
    for name, (lon, lat) in land.items():
        assert browser.execute_script(pixel, lon, lat) == [230, 223, 196], name  # LAND_COLOUR
    for name, (lon, lat) in ocean.items():
        assert browser.execute_script(pixel, lon, lat) == [207, 227, 242], name  # OCEAN_COLOUR


# --------------------------------------------------------------------------- previews cap


@needs_browser
def test_frame_left_out_by_the_cap_says_so(relay_run, browser, tmp_path, monkeypatch):
    monkeypatch.setattr(replay, "MAX_PREVIEWS", 1)
    run = _with_frames(relay_run, tmp_path / "run")
    payload = build_payload(run)
    assert set(payload["previews"]) == {"15"}
    assert payload["preview_cap"] == 1 and payload["frames_left_out"] == [16]
    page = write_replay(run, tmp_path / "relay.html")
    _open(browser, page)
    marks = {
        m.get_attribute("data-obs-id"): m for m in browser.find_elements("css selector", "rect.exp")
    }
    notes = {}
    for obs_id in ("15", "16", "17"):
        browser.execute_script(CLICK, marks[obs_id])
        found = browser.find_elements("id", "preview-note")
        notes[obs_id] = found[0].text if found else None
    assert notes["15"] is None, "its preview is embedded"
    assert notes["16"].startswith(
        "A frame was rendered for this exposure but left out of this page"
    )
    assert "the first 1 rendered frames" in notes["16"]
    assert notes["17"].startswith("No frame was rendered for this exposure")


# --------------------------------------------------------------------------- command line


def test_cli_replay_writes_the_page(relay_run, tmp_path, capsys):
    out = tmp_path / "pages" / "relay.html"
    assert skytwin(["replay", str(relay_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    size_mb = out.stat().st_size / 1e6
    assert printed == f"replay: {out} ({size_mb:.2f} MB; open it in a browser)\n"
    page = out.read_text(encoding="utf-8")
    assert "<title>skytwin replay: relay</title>" in page and "window.SKYTWIN_LAND" in page


def test_cli_run_with_replay(tmp_path, capsys):
    out = tmp_path / "run"
    scenario = ROOT / "scenarios/teaching/relay.yaml"
    argv = ["run", str(scenario), "--out", str(out), "--replay", "--no-plots", "--quiet"]
    assert skytwin(argv) == 0
    page = out / "replay.html"
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"replay: {page} ({page.stat().st_size / 1e6:.2f} MB): open it in a browser"
    payload = json.loads(
        page.read_text(encoding="utf-8")
        .split('id="replay-data">', 1)[1]
        .split("</script>", 1)[0]
        .replace("<\\/", "</")
    )
    assert len(payload["obs"]["t"]) == 30
    assert payload["meta"]["notes"].startswith(header_comment(scenario)[:40])
