"""Replay a recorded weather log instead of the stochastic model.

A planner with a site's own weather archive trusts it more than any model
(DESIGN.md "Seams"): this source reads such a log and interpolates it linearly in time,
per site. It is also the counterpart of :func:`write_csv`, so a stochastic run can be
saved, inspected and replayed exactly.

Log format (CSV, one row per site and time; extra columns are ignored):

| column             | required | allowed                                        |
|--------------------|----------|------------------------------------------------|
| mjd or time_utc    | yes      | MJD (UTC) number, or ISO 8601 UTC time         |
| site               | yes      | a known site name                              |
| cloud_cover        | yes      | 0..1                                           |
| seeing_fwhm_arcsec | yes      | 0 < value <= 10 (zenith, 500 nm)               |
| humidity_pct       | yes      | 0..100                                         |
| wind_m_s           | yes      | 0..100                                         |
| temperature_c      | yes      | -90..60                                        |
| transparency       | no       | 0..1; derived from cloud_cover when absent     |

Bad input (a missing column, an unknown site, a value that is not a number or out of
range, a site with fewer than two rows or a repeated time, no data rows at all, a file
that is not CSV text or larger than :data:`MAX_LOG_BYTES`) raises
:class:`twin.errors.ConfigError` naming the file, the column and what is allowed, when
the log is read, before it is used. A message quotes the file only as short escaped
excerpts (a cell, a few column names): a log path pointed at a file that is no weather
log, such as ``/proc/self/environ``, must not echo that file's contents.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from twin.errors import ConfigError, excerpt, shorten
from twin.weather.fields import transparency_from_cloud
from twin.weather.state import WEATHER_FIELDS, WeatherState, check_span, state_at
from twin.world.sites import SITES, Site

RowName = Callable[[int], str]


class Allowed(NamedTuple):
    low: float
    high: float
    low_open: bool = False

    def __str__(self) -> str:
        return f"{self.low:g} {'<' if self.low_open else '<='} value <= {self.high:g}"

    def contains(self, values: np.ndarray) -> np.ndarray:
        above = values > self.low if self.low_open else values >= self.low
        return above & (values <= self.high)


ALLOWED: dict[str, Allowed] = {
    "mjd": Allowed(0.0, 1e6),
    "cloud_cover": Allowed(0.0, 1.0),
    "transparency": Allowed(0.0, 1.0),
    "seeing_fwhm_arcsec": Allowed(0.0, 10.0, low_open=True),
    "humidity_pct": Allowed(0.0, 100.0),
    "wind_m_s": Allowed(0.0, 100.0),
    "temperature_c": Allowed(-90.0, 60.0),
}
REQUIRED_COLUMNS = ("site", *(f for f in WEATHER_FIELDS if f != "transparency"))
TIME_COLUMNS = ("mjd", "time_utc")

MAX_LOG_BYTES = 200_000_000
"""Largest log read: ten years of 10-minute rows for eight sites are ~200 MB of CSV.
Read as text the log takes several times that in memory; larger archives: resample."""


class ReplayWeather:
    """Linear interpolation of a validated weather log, per site."""

    def __init__(self, log: pd.DataFrame, source: str = "weather log") -> None:
        """``log``: validated columns mjd, site and every weather field (see from_frame)."""
        self.source = source
        self._times: dict[str, np.ndarray] = {}
        self._values: dict[str, dict[str, np.ndarray]] = {}
        for site_name, rows in log.sort_values(["site", "mjd"]).groupby("site", sort=False):
            self._times[str(site_name)] = rows["mjd"].to_numpy(dtype=float)
            self._values[str(site_name)] = {
                f: rows[f].to_numpy(dtype=float) for f in WEATHER_FIELDS
            }

    @classmethod
    def from_csv(cls, path: str | Path, sites: Sequence[Site] | None = None) -> ReplayWeather:
        """Read and validate a log; ``sites`` limits the allowed names (default: built-ins)."""
        source = str(path)
        raw = _read_csv(source)
        return cls(validate_log(raw, source, _site_names(sites), lambda i: f"line {i + 2}"), source)

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, source: str = "weather frame", sites: Sequence[Site] | None = None
    ) -> ReplayWeather:
        """Validate an in-memory log (e.g. ``StochasticWeather.to_frame()``)."""
        log = validate_log(frame, source, _site_names(sites), lambda i: f"row {i}")
        return cls(log, source)

    @property
    def site_names(self) -> tuple[str, ...]:
        return tuple(self._times)

    def times_mjd(self, site_name: str) -> np.ndarray:
        """The recorded times of a site."""
        return self._site(site_name)[0]

    def sample(self, site_name: str, mjd: np.ndarray) -> dict[str, np.ndarray]:
        times, values = self._site(site_name)
        mjd = np.asarray(mjd, dtype=float)
        check_span(site_name, mjd, float(times[0]), float(times[-1]))
        flat = mjd.ravel()
        return {f: np.interp(flat, times, values[f]).reshape(mjd.shape) for f in WEATHER_FIELDS}

    def at(self, site_name: str, mjd: float) -> WeatherState:
        return state_at(self.sample(site_name, np.array([mjd], dtype=float)))

    def _site(self, site_name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if site_name not in self._times:
            allowed = ", ".join(self._times)
            raise ConfigError(
                self.source, "site", f"no rows for site {site_name!r}; the log has: {allowed}"
            )
        return self._times[site_name], self._values[site_name]


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write weather in the log format :meth:`ReplayWeather.from_csv` reads (full precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.loc[:, ["mjd", "site", *WEATHER_FIELDS]].to_csv(path, index=False)
    return path


def validate_log(
    raw: pd.DataFrame, source: str, allowed_sites: Iterable[str], row_name: RowName
) -> pd.DataFrame:
    """Check a raw log and return it as numbers: mjd, site and every weather field."""
    _check_columns(raw, source)
    sites = raw["site"].astype(str).str.strip().to_numpy()
    _check_sites(sites, source, sorted(allowed_sites), row_name)
    log = pd.DataFrame({"mjd": _times_mjd(raw, source, row_name), "site": sites})
    for column in WEATHER_FIELDS:
        if column in raw.columns:
            log[column] = _numbers(raw[column], column, source, row_name)
    if "transparency" not in raw.columns:
        log["transparency"] = transparency_from_cloud(log["cloud_cover"].to_numpy())
    _check_times(log, source)
    return log


def _site_names(sites: Sequence[Site] | None) -> list[str]:
    return [site.name for site in sites] if sites is not None else list(SITES)


def _read_csv(source: str) -> pd.DataFrame:
    """The log as text cells, read at most :data:`MAX_LOG_BYTES` (``/proc`` files and pipes
    report no size, so the limit is on what is read, not on ``stat``)."""
    try:
        with open(source, "rb") as stream:
            raw = stream.read(MAX_LOG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(source, "file", "not found; give the path of a weather log CSV") from None
    except OSError as error:
        raise ConfigError(source, "file", f"cannot be read ({error.strerror})") from None
    if len(raw) > MAX_LOG_BYTES:
        raise ConfigError(source, "file", f"larger than {MAX_LOG_BYTES} bytes; resample the log")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(source, "file", f"not UTF-8 text (byte {raw[error.start]:#04x} at "
                          f"offset {error.start}); give a weather log CSV") from None  # fmt: skip
    if "\x00" in text:
        raise ConfigError(source, "file", "holds NUL bytes: not a text CSV; give a weather log CSV")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                           skipinitialspace=True)  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        problem = shorten(str(error).strip(), 120)
        raise ConfigError(source, "file", f"not a readable CSV ({problem})") from None


def _check_columns(raw: pd.DataFrame, source: str) -> None:
    required = f"required columns: mjd (or time_utc), {', '.join(REQUIRED_COLUMNS)}"
    names = [excerpt(str(column), 24) for column in raw.columns[:10]]
    more = f" and {len(raw.columns) - 10} more" if len(raw.columns) > 10 else ""
    found = f"found: {shorten(', '.join(names), 120) or 'none'}{more}"
    if not any(column in raw.columns for column in TIME_COLUMNS):
        raise ConfigError(source, "mjd", f"column missing; {required}; {found}")
    for column in REQUIRED_COLUMNS:
        if column not in raw.columns:
            raise ConfigError(source, column, f"column missing; {required}; {found}")
    if raw.empty:
        raise ConfigError(source, "file", "no data rows, only a header; each site needs at "
                          "least two rows to interpolate")  # fmt: skip


def _check_sites(sites: np.ndarray, source: str, allowed: list[str], row_name: RowName) -> None:
    unknown = np.flatnonzero(~np.isin(sites, allowed))
    if unknown.size:
        i = int(unknown[0])
        raise ConfigError(
            source,
            "site",
            f"{row_name(i)}: unknown site {excerpt(sites[i])}; allowed: {', '.join(allowed)}",
        )


def _numbers(column: pd.Series, name: str, source: str, row_name: RowName) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    allowed = ALLOWED[name]
    not_number = np.flatnonzero(~np.isfinite(values))
    if not_number.size:
        i = int(not_number[0])
        problem = f"{row_name(i)}: {excerpt(column.iloc[i])} is not a number; required: {allowed}"
        raise ConfigError(source, name, problem)
    outside = np.flatnonzero(~allowed.contains(values))
    if outside.size:
        i = int(outside[0])
        raise ConfigError(
            source, name, f"{row_name(i)}: {values[i]:g} out of range; allowed: {allowed}"
        )
    return values


def _times_mjd(raw: pd.DataFrame, source: str, row_name: RowName) -> np.ndarray:
    if "mjd" in raw.columns:
        return _numbers(raw["mjd"], "mjd", source, row_name)
    from astropy.time import Time

    texts = raw["time_utc"].astype(str).str.strip()
    try:
        mjd = np.asarray(Time(texts.tolist(), scale="utc").mjd, dtype=float)
    except ValueError:
        # Locate the bad row with one vectorised parse, not one Time() per row.
        parsed = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        i = int(bad[0]) if bad.size else 0
        required = "ISO 8601 UTC, e.g. 2025-03-01T04:30:00"
        raise ConfigError(
            source,
            "time_utc",
            f"{row_name(i)}: {excerpt(texts.iloc[i])} is not a time; required: {required}",
        ) from None
    outside = np.flatnonzero(~ALLOWED["mjd"].contains(mjd))
    if outside.size:
        i = int(outside[0])
        raise ConfigError(source, "time_utc", f"{row_name(i)}: {excerpt(texts.iloc[i])} is "
                          f"out of range; allowed: MJD {ALLOWED['mjd']}")  # fmt: skip
    return mjd


def _check_times(log: pd.DataFrame, source: str) -> None:
    for site_name, rows in log.groupby("site"):
        mjd = np.sort(rows["mjd"].to_numpy())
        if mjd.size < 2:
            raise ConfigError(
                source, "mjd", f"site {site_name!r} needs at least two rows to interpolate"
            )
        repeated = np.flatnonzero(np.diff(mjd) == 0)
        if repeated.size:
            raise ConfigError(
                source,
                "mjd",
                f"site {site_name!r} has two rows at MJD {mjd[repeated[0]]!r}; "
                "give each time once per site",
            )
