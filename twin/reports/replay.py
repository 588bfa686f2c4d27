"""A replay page of a run: one self-contained HTML file that plays the run back in time.

Why a page and not more plots: what a teacher wants to show (night sweeping across the
sites, a target handed from one site to the next, a transient confirmed by a second site)
is a sequence, which a static PNG flattens into one dot. A single HTML file opens in any
browser without a server or network, so it works in a classroom and can be mailed.

What the file holds: the page's JavaScript and CSS (``replay_assets/``, inlined) and one
JSON payload of the run, column by column (one array per field, numbers rounded to what
the page shows, strings replaced by indices into small tables), so a week of an 8-site
network stays around a megabyte. Times are whole seconds from the payload's ``t0_mjd``.
Sun and Moon come from :class:`twin.astro.ephemeris.BodyEphemeris` (astropy, offline) as
hourly samples; the page interpolates them.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import ConfigError
from twin.ops.records import TIMELINE_STATES
from twin.reports.run_tables import read_table, require_tables

ASSETS = "replay_assets"
SECONDS_PER_DAY = 86_400.0
EPHEMERIS_STEP_H = 1.0  # the page interpolates linearly; the Moon moves 0.5 deg per hour
SPELL_GAP_MIN = 90.0
"""A telescope idle between two of its exposures less than this apart (same night) is
still observing its target, "between visits": most such gaps are a cadence's wait for its
next visit (relay: 72 min). The page shows it as observing with that qualifier and the
time to the next exposure, in a lighter green than an exposure under way."""
MAX_PREVIEWS = 120  # frame thumbnails embedded at most (10-20 kB each as JPEG)
PREVIEW_PIX = 280  # longest side of an embedded thumbnail (the side panel is 300 px)
EVENT_KINDS_SHOWN = (
    "alert_issued",
    "alert_received",
    "request_released",
    "alert_followed",
    "alert_detected",
    "confirmation_requested",
    "alert_confirmed",
    "dome_close",
    "dome_open",
    "failure",
    "repair",
    "exposure_aborted",
    "frame_rejected",
    "visit_repeated",
)
OBS_COLUMNS = tuple(
    "obs_id visit_id site telescope request_id program target_id alert_id ra_deg dec_deg "
    "band exptime_s mjd_start mjd_end alt_deg az_deg airmass seeing_fwhm_arcsec quality "
    "m5 moon_sep_deg value detected transient_mag".split()
)  # what the page shows of an exposure


def write_replay(
    run_dir: str | Path,
    out_html: str | Path | None = None,
    *,
    scenario_file: str | Path | None = None,
) -> Path:
    """Write the replay page of ``run_dir`` (default ``RUN/replay.html``); return its path.

    ``scenario_file``: the scenario YAML the run came from, whose header comment (what the
    scenario demonstrates, what to look at) the page shows beside the replay; without it
    the file is looked for by the run's scenario name under ``scenarios/``.
    """
    run_dir = Path(run_dir)
    require_tables(run_dir, ["observations", "timeline", "nights"])
    payload = build_payload(run_dir, scenario_file)
    out = Path(out_html) if out_html is not None else run_dir / "replay.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page_html(payload), encoding="utf-8")
    return out


# --------------------------------------------------------------------------- payload


def build_payload(run_dir: Path, scenario_file: str | Path | None = None) -> dict:
    """Everything the page draws, as JSON-ready columns."""
    meta = _run_meta(run_dir, scenario_file)
    sites, telescopes = _network(meta.pop("scenario"))
    obs = read_table(run_dir, "observations", OBS_COLUMNS).sort_values("mjd_start", kind="stable")
    timeline = read_table(run_dir, "timeline")
    nights = read_table(run_dir, "nights")
    events = _events(run_dir)
    alerts = read_table(run_dir, "alerts")
    t0, t1 = _span_mjd(nights, events, obs)
    site_ix = {s["name"]: i for i, s in enumerate(sites)}
    tel_ix = {t["name"]: i for i, t in enumerate(telescopes)}
    strings = _Strings()
    return {
        "meta": {**meta, "t0_mjd": round(t0, 6), "duration_s": _sec(t1, t0)},
        "spell_gap_s": SPELL_GAP_MIN * 60.0,
        "sites": sites,
        "telescopes": telescopes,
        "states": list(TIMELINE_STATES),
        "nights": _nights(nights, site_ix, t0),
        "obs": _observations(obs, tel_ix, strings, t0),
        "timeline": _timeline(timeline, tel_ix, t0),
        "events": _event_columns(events, site_ix, tel_ix, strings, t0),
        "alerts": _alerts(alerts, site_ix, t0),
        "handoffs": _handoffs(obs, site_ix, strings, t0),
        "ephemeris": _ephemeris(t0, t1),
        "strings": strings.values,
        **_previews(run_dir, obs),
    }


class _Strings:
    """One table of the strings the payload refers to by index (targets, bands, ids)."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def ix(self, value: str) -> int:
        if value not in self._index:
            self._index[value] = len(self.values)
            self.values.append(value)
        return self._index[value]

    def column(self, values) -> list[int]:
        return [self.ix(str(v)) for v in values]


def _sec(mjd: float, t0: float) -> int:
    return round((mjd - t0) * SECONDS_PER_DAY)


def _secs(mjd, t0: float) -> list[int]:
    return np.rint((np.asarray(mjd, dtype=float) - t0) * SECONDS_PER_DAY).astype(int).tolist()


def _rounded(values, digits: int) -> list:
    """Rounded floats; NaN and inf become null (JSON has neither)."""
    arr = np.round(np.asarray(values, dtype=float), digits)
    return [float(v) if math.isfinite(v) else None for v in arr]


def _run_meta(run_dir: Path, scenario_file: str | Path | None) -> dict:
    from twin.scenario import Scenario, read_yaml

    scenario = Scenario.model_validate(read_yaml(run_dir / "scenario.yaml"))
    metrics_path = run_dir / "metrics.json"
    run = json.loads(metrics_path.read_text())["run"] if metrics_path.is_file() else {}
    source = (
        Path(scenario_file)
        if scenario_file
        else _find_scenario_file(scenario.name, scenario.description)
    )
    return {
        "name": scenario.name,
        "description": scenario.description,
        "notes": header_comment(source) if source else "",
        "policy": run.get("policy", scenario.operations.policy),
        "seed": scenario.seed,
        "nights": scenario.nights,
        "start": scenario.start,
        "scenario": scenario,
    }


def _find_scenario_file(name: str, description: str) -> Path | None:
    """The shipped scenario file the run came from (the run keeps only the resolved
    scenario, which has lost the comments): named ``name``.yaml under ``scenarios/`` with
    the run's description, so a user's scenario of the same name gets no foreign notes."""
    import twin
    from twin.scenario import read_yaml

    roots = [Path.cwd() / "scenarios", Path(twin.__file__).resolve().parents[1] / "scenarios"]
    for root in roots:
        for path in sorted(root.rglob(f"{name}.yaml")) if root.is_dir() else []:
            try:
                data = read_yaml(path)
            except ConfigError:
                continue
            if isinstance(data, dict) and data.get("description", "") == description:
                return path
    return None


def header_comment(path: str | Path) -> str:
    """The comment block that opens a scenario file, as paragraphs (blank-line separated).

    The lines are wrapped for an 88-column editor; the page reflows them, so lines are
    joined, and a new paragraph starts at the first line, a bare ``#`` or a lead-in such
    as ``Look at:`` or ``Demonstrates:``; a first line that is a sentence is a title.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    paragraphs: list[list[str]] = [[]]
    for n, line in enumerate(text.splitlines()):
        if not line.startswith("#"):
            break
        words = line[1:].strip()
        title_ended = n == 1 and paragraphs[0] and paragraphs[0][0].endswith(".")
        if title_ended or not words or _LEAD_IN.match(words):
            paragraphs.append([])
        if words:
            paragraphs[-1].append(words)
    return "\n\n".join(" ".join(p) for p in paragraphs if p)


_LEAD_IN = re.compile(r"^[A-Z][A-Za-z ]{0,20}:")


def _network(scenario) -> tuple[list[dict], list[dict]]:
    sites, telescopes = [], []
    for k, spec in enumerate(scenario.sites):
        site = spec.resolved
        sites.append(
            {
                "name": site.name,
                "full_name": site.full_name,
                "lat": round(site.lat_deg, 3),
                "lon": round(site.lon_deg, 3),
            }
        )
        telescopes += [{"name": t.name, "site": k} for t in spec.telescopes]
    return sites, telescopes


def _events(run_dir: Path) -> pd.DataFrame:
    if not (run_dir / "events.parquet").exists():
        return pd.DataFrame(columns=["mjd", "kind", "site", "telescope", "ref", "detail"])
    events = read_table(run_dir, "events", ["mjd", "kind", "site", "telescope", "ref", "detail"])
    return events[events["kind"].isin(EVENT_KINDS_SHOWN)].sort_values("mjd", kind="stable")


def _span_mjd(nights: pd.DataFrame, events: pd.DataFrame, obs: pd.DataFrame) -> tuple[float, float]:
    """From an hour before the first night (or event) to an hour after the last night."""
    starts = [nights["mjd_start"].min(), events["mjd"].min(), obs["mjd_start"].min()]
    ends = [nights["mjd_end"].max(), obs["mjd_end"].max()]
    start = min(float(v) for v in starts if pd.notna(v))
    end = max(float(v) for v in ends if pd.notna(v))
    hour = 1.0 / 24.0
    return math.floor((start - hour) * 24.0) / 24.0, math.ceil((end + hour) * 24.0) / 24.0


def _nights(nights: pd.DataFrame, site_ix: dict, t0: float) -> dict:
    known = nights[nights["site"].isin(site_ix)]
    return {
        "site": [site_ix[s] for s in known["site"]],
        "t": _secs(known["mjd_start"], t0),
        "end": _secs(known["mjd_end"], t0),
    }


def _observations(obs: pd.DataFrame, tel_ix: dict, strings: _Strings, t0: float) -> dict:
    """One entry per exposure; the science intervals of the timeline are these."""
    start = _secs(obs["mjd_start"], t0)
    return {
        "id": obs["obs_id"].astype(int).tolist(),
        "visit": obs["visit_id"].astype(int).tolist(),
        "tel": [tel_ix.get(t, -1) for t in obs["telescope"]],
        "target": strings.column(obs["target_id"]),
        "program": strings.column(obs["program"]),
        "request": strings.column(obs["request_id"]),
        "alert": strings.column(obs["alert_id"]),
        "band": strings.column(obs["band"]),
        "t": start,
        "dur": np.maximum(np.array(_secs(obs["mjd_end"], t0)) - start, 1).tolist(),
        "exptime": _rounded(obs["exptime_s"], 1),
        "ra": _rounded(obs["ra_deg"], 3),
        "dec": _rounded(obs["dec_deg"], 3),
        "alt": _rounded(obs["alt_deg"], 1),
        "az": _rounded(obs["az_deg"], 1),
        "airmass": _rounded(obs["airmass"], 3),
        "seeing": _rounded(obs["seeing_fwhm_arcsec"], 2),
        "quality": _rounded(obs["quality"], 3),
        "m5": _rounded(obs["m5"], 2),
        "moon_sep": _rounded(obs["moon_sep_deg"], 1),
        "value": _rounded(obs["value"], 3),
        "detected": obs["detected"].astype(int).tolist(),
        "transient_mag": _rounded(obs["transient_mag"], 2),
    }


def _timeline(timeline: pd.DataFrame, tel_ix: dict, t0: float) -> dict:
    """Timeline intervals except science (drawn from the exposures), runs of one state
    merged: idle comes in ``idle_wait_s`` pieces, which would be most of the payload."""
    states = {s: i for i, s in enumerate(TIMELINE_STATES)}
    tl = timeline[(timeline["state"] != "science") & timeline["telescope"].isin(tel_ix)]
    tl = tl.sort_values(["telescope", "mjd_start"], kind="stable")
    tel = tl["telescope"].map(tel_ix).to_numpy()
    code = tl["state"].map(states).fillna(states["idle"]).astype(int).to_numpy()
    start = np.array(_secs(tl["mjd_start"], t0), dtype=int)
    end = np.array(_secs(tl["mjd_end"], t0), dtype=int)
    if len(tel):
        same = (tel[1:] == tel[:-1]) & (code[1:] == code[:-1]) & (start[1:] - end[:-1] <= 1)
        first = np.concatenate([[True], ~same])
        end = np.maximum.reduceat(end, np.flatnonzero(first))
        tel, code, start = tel[first], code[first], start[first]
    return {
        "tel": tel.tolist(),
        "state": code.tolist(),
        "t": start.tolist(),
        "dur": np.maximum(end - start, 1).tolist(),
    }


def _event_columns(events, site_ix, tel_ix, strings: _Strings, t0: float) -> dict:
    return {
        "t": _secs(events["mjd"], t0),
        "kind": strings.column(events["kind"]),
        "site": [site_ix.get(s, -1) for s in events["site"]],
        "tel": [tel_ix.get(t, -1) for t in events["telescope"]],
        "ref": strings.column(events["ref"]),
        "detail": strings.column(events["detail"]),
    }


def _alerts(alerts: pd.DataFrame, site_ix: dict, t0: float) -> dict:
    def times(column: str) -> list:
        values = alerts[column].to_numpy(dtype=float)
        return [None if not math.isfinite(v) else _sec(v, t0) for v in values]

    return {
        "id": alerts["alert_id"].astype(str).tolist(),
        "kind": alerts["kind"].astype(str).tolist(),
        "ra": _rounded(alerts["ra_deg"], 3),
        "dec": _rounded(alerts["dec_deg"], 3),
        "peak_mag": _rounded(alerts["peak_mag"], 2),
        "issued": times("issued_mjd"),
        "followed": times("first_followup_mjd"),
        "detected": times("detected_mjd"),
        "confirmed": times("confirmed_mjd"),
        "confirmed_site": [site_ix.get(s, -1) for s in alerts["confirmed_site"]],
    }


def _handoffs(obs: pd.DataFrame, site_ix: dict, strings: _Strings, t0: float) -> dict:
    """A request's visit taken at another site than its previous visit: the relay."""
    first = obs.drop_duplicates("visit_id").sort_values(["request_id", "mjd_start"], kind="stable")
    prev_site = first.groupby("request_id")["site"].shift()
    moved = first[prev_site.notna() & (prev_site != first["site"])]
    return {
        "t": _secs(moved["mjd_start"], t0),
        "target": strings.column(moved["target_id"]),
        "from": [site_ix.get(s, -1) for s in prev_site[moved.index]],
        "to": [site_ix.get(s, -1) for s in moved["site"]],
    }


def _ephemeris(t0: float, t1: float) -> dict:
    """Hourly subsolar point (for the terminator), Moon RA/Dec and illumination, and
    Greenwich sidereal time (each site's zenith RA is GAST + longitude)."""
    from twin.astro.ephemeris import BodyEphemeris
    from twin.offline import configure_astropy_offline

    configure_astropy_offline()
    step_d = EPHEMERIS_STEP_H / 24.0
    mjd = t0 + np.arange(math.ceil((t1 - t0) / step_d) + 1) * step_d
    eph = BodyEphemeris(t0 - 0.1, t1 + 0.1)
    sun_ra, sun_dec = _ra_dec(eph.sun(mjd))
    moon_ra, moon_dec = _ra_dec(eph.moon(mjd))
    gast_deg = eph.gast_hours(mjd) * 15.0
    return {
        "t": _secs(mjd, t0),
        "sun_lon": _rounded(np.unwrap(np.radians(sun_ra - gast_deg)) * 180 / np.pi, 3),
        "sun_dec": _rounded(sun_dec, 3),
        "moon_ra": _rounded(np.degrees(np.unwrap(np.radians(moon_ra))), 3),
        "moon_dec": _rounded(moon_dec, 3),
        "moon_illum": _rounded(eph.moon_illumination(mjd), 3),
        "gast": _rounded(gast_deg, 4),
    }


def _ra_dec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    ra = np.mod(np.degrees(np.arctan2(y, x)), 360.0)
    return ra, np.degrees(np.arctan2(z, np.hypot(x, y)))


# --------------------------------------------------------------------------- previews


def _previews(run_dir: Path, obs: pd.DataFrame) -> dict:
    """Small thumbnails (JPEG data URIs) of the frames the run rendered, by obs id
    (``previews``), the cap on their number (``preview_cap``) and the obs ids of the
    rendered frames the cap left out (``frames_left_out``), so the page can tell "not
    rendered" from "rendered, not embedded".

    JPEG because a sky frame is noise, which PNG hardly compresses (3-4x larger).

    Only frames already on disk (``skytwin night --frames``, ``--keep-frames``, ``skytwin
    frame``): a PNG preview is shrunk, else the FITS frame is stretched as
    :mod:`twin.imaging.preview` does. At most :data:`MAX_PREVIEWS`, first in time.
    """
    found = _frame_files(run_dir)
    rendered = [int(i) for i in obs["obs_id"] if int(i) in found]
    previews = {}
    for obs_id in rendered[:MAX_PREVIEWS]:
        uri = _thumbnail_uri(found[obs_id])
        if uri:
            previews[str(obs_id)] = uri
    return {
        "previews": previews,
        "preview_cap": MAX_PREVIEWS,
        "frames_left_out": rendered[MAX_PREVIEWS:],
    }


def _frame_files(run_dir: Path) -> dict[int, Path]:
    """The run's frames on disk by obs id: the PNG preview where there is one, else the FITS."""
    frames_dir = run_dir / "frames"
    found: dict[int, Path] = {}
    if not frames_dir.is_dir():
        return found
    for path in sorted(frames_dir.rglob("*_[0-9][0-9][0-9][0-9][0-9][0-9][0-9].*")):
        if path.suffix in (".png", ".fits"):
            obs_id = int(path.stem.rsplit("_", 1)[1])
            if path.suffix == ".png" or obs_id not in found:
                found[obs_id] = path
    return found


def _thumbnail_uri(path: Path) -> str | None:
    from PIL import Image

    try:
        if path.suffix == ".png":
            image = Image.open(path).convert("L")
        else:
            image = Image.fromarray(_stretched_u8(path))
    except (OSError, ValueError):
        return None
    image.thumbnail((PREVIEW_PIX, PREVIEW_PIX))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _stretched_u8(path: Path) -> np.ndarray:
    """A FITS frame as 8-bit grey: z-scale limits and an asinh stretch, north up."""
    from astropy.io import fits
    from astropy.visualization import AsinhStretch, ZScaleInterval

    with fits.open(path, memmap=False) as hdul:
        data = np.asarray(hdul[0].data, dtype=float)
    factor = max(1, math.ceil(max(data.shape) / (2 * PREVIEW_PIX)))
    ny, nx = (s // factor for s in data.shape)
    data = data[: ny * factor, : nx * factor].reshape(ny, factor, nx, factor).mean(axis=(1, 3))
    vmin, vmax = ZScaleInterval().get_limits(data)
    scaled = np.clip((data - vmin) / max(vmax - vmin, 1e-9), 0.0, 1.0)
    return (AsinhStretch(a=0.1)(scaled)[::-1] * 255).astype(np.uint8)


# --------------------------------------------------------------------------- page


def page_html(payload: dict) -> str:
    """The page: template with the CSS, the payload, the land outline and the JavaScript
    inlined."""
    assets = resources.files("twin.reports").joinpath(ASSETS)
    template = assets.joinpath("replay.html").read_text(encoding="utf-8")
    css = assets.joinpath("replay.css").read_text(encoding="utf-8")
    js = assets.joinpath("replay.js").read_text(encoding="utf-8")
    land = assets.joinpath("land.js").read_text(encoding="utf-8")  # see make_land.py there
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    # "</" cannot end the script element early once escaped; JSON.parse reads "<\/" as "</".
    data = data.replace("</", "<\\/")
    title = html.escape(f"skytwin replay: {payload['meta']['name']}")
    return (
        template.replace("{{TITLE}}", title)
        .replace("{{CSS}}", css)
        .replace("{{DATA}}", data)
        .replace("{{LAND}}", land)
        .replace("{{JS}}", js.replace("</script", "<\\/script"))
    )


# --------------------------------------------------------------------------- command line


def add_replay_command(subparsers) -> argparse.ArgumentParser:
    """``skytwin replay RUN [--out FILE.html] [--scenario FILE.yaml]``."""
    p = subparsers.add_parser("replay", help="write a self-contained HTML page replaying a run")
    p.add_argument("run", help="run directory (the output of skytwin run)")
    p.add_argument("--out", help="HTML file to write (default: RUN/replay.html)")
    p.add_argument("--scenario", help="the scenario file, for its notes (default: found by name)")
    p.set_defaults(func=replay_main)
    return p


def replay_main(args: argparse.Namespace) -> None:
    path = write_replay(args.run, args.out, scenario_file=getattr(args, "scenario", None))
    print(f"replay: {path} ({path.stat().st_size / 1e6:.2f} MB; open it in a browser)")
