"""The camera: from the noise-free expected electrons to the raw 16-bit frame.

The input is the expected number of photo-electrons per pixel (sky and sources, no
noise), the output the integers the ADC writes. The steps, in the order the charge meets
them:

1. **Flat field** (:func:`flat_field`), multiplying the light only: vignetting × dust
   shadows × pixel response non-uniformity (PRNU).
2. **Dark current**: ``dark_current_e_per_s × exptime_s`` everywhere, plus hot pixels
   with dark rates of :data:`HOT_PIXEL_DARK_E_PER_S` (log-uniform).
3. **Shot noise**: Poisson on light + dark.
4. **Cosmic rays** (:func:`cosmic_ray_rate_per_cm2_s`): muon tracks and compact blobs
   of thousands of electrons, recorded in :attr:`DetectorResult.cosmic_rays`.
5. **Full well and bleeding** (:func:`bleed`): charge above ``full_well_e`` spills half
   up and half down its column into the next pixels with room, conserving charge (what
   runs off the ends of the column is lost and reported).
6. **Bad columns**: stuck low (no charge) or stuck high (a full well) along the column.
7. **Readout**: ``ADU = e / gain + bias image + N(0, read_noise_e / gain)``, rounded and
   clipped by the 16-bit ADC to ``0..65535``. The bias image (:func:`bias_image`) is
   ``bias_adu`` plus a fixed row ramp and column pattern; a master bias removes both. A
   frame with the rare ``banding`` fault gets its pattern noise here, before the ADC
   (:mod:`twin.imaging.faults`).

Persistence. Everything fixed in the hardware (flat field, bias pattern, hot-pixel and
bad-column positions and their rates/states) depends only on the telescope name and the
detector geometry, never on the frame seed, so calibration frames taken on any night
share it with the science frames. Per-pixel values come from a counter-based hash of the
pixel's detector coordinates, so any window of the detector gets the same numbers as the
full frame. The noise and the cosmic rays come from ``rng``, nothing else does.

Windows. A frame smaller than the detector (``spec.nx < nx_pix``) is its centred window
(:func:`detector_window`); defect positions from the equipment model are on the full
detector (numpy ``(row, col)``, :mod:`twin.equipment.defects`) and are shifted into it.

Figures and their sources:

- Vignetting: a quadratic fall-off to :data:`VIGNETTING_AT_CORNER` (4 %) at the corner
  of the full detector, about an optical axis offset by up to 2 % of the detector size:
  typical of a corrected Cassegrain field (e.g. LCO 1-m sky flats fall by a few percent
  to the corners).
- Dust shadows (:data:`DUST_SPOTS_PER_CM2`, ~10 on a 4k×4k 15 µm CCD): out-of-focus
  images of the pupil cast by dust on the filter or dewar window ``d`` mm in front of
  the focal plane: annuli of outer diameter ``d / N`` (``N`` the focal ratio) with the
  central obstruction's hole, 0.3–1.5 % deep; ``d`` 5–40 mm.
- PRNU: 0.5 % rms per pixel (e2v/Fairchild data sheets quote 0.5–1 %).
- Hot pixels: dark rates 0.5–50 e-/s, i.e. 10²–10⁴ × a cooled CCD's median dark
  current.
- Cosmic rays: 1.5 cm⁻² min⁻¹ at sea level (Groom 2004, Exp. Astron. 14, 45:
  ~1 muon cm⁻² min⁻¹ plus gammas and other secondaries), rising with height as the
  overlying atmosphere thins (:func:`cosmic_ray_rate_per_cm2_s`). Muons deposit a
  Landau-distributed charge of most probable 75 e-/µm of path in silicon (mean energy
  loss of a minimum-ionising particle 1.66 MeV cm² g⁻¹ × 2.33 g cm⁻³ / 3.65 eV per pair
  = 106 e-/µm; the most probable value in thin layers is ~0.7 of it, Bichsel 1988, Rev.
  Mod. Phys. 60, 663) through a :data:`DEPLETION_DEPTH_UM` (30 µm) deep collection
  region, with the zenith-angle distribution ``∝ cos³θ`` of muons crossing a plane.
- Bias pattern: a 1.5 ADU top-to-bottom ramp and 0.7 ADU rms column-to-column offsets.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.stats import poisson

from twin.imaging.faults import readout_faults_adu
from twin.imaging.spec import FrameSpec

ADC_MAX_ADU = 65535
"""The 16-bit ADC's largest code."""

VIGNETTING_AT_CORNER = 0.04
"""Fractional loss of light at the corner of the full detector relative to the axis."""
OPTICAL_AXIS_OFFSET_FRAC = 0.02
"""Largest offset of the optical axis from the detector centre, per axis, per size."""
DUST_SPOTS_PER_CM2 = 0.25
"""Mean number of dust shadows per cm² of detector (about 10 on a 6 cm 4k×4k CCD)."""
DUST_DISTANCE_MM = (5.0, 40.0)
"""Distance of the dust in front of the focal plane (filter, dewar window)."""
DUST_DEPTH = (0.003, 0.015)
"""Fractional depth of a dust shadow."""
PRNU_RMS = 0.005
"""Pixel-to-pixel response non-uniformity (rms)."""

HOT_PIXEL_DARK_E_PER_S = (0.5, 50.0)
"""Range of hot-pixel dark rates, drawn log-uniform."""

BIAS_ROW_RAMP_ADU = 1.5
"""Top-to-bottom change of the bias level across the full detector."""
BIAS_COLUMN_RMS_ADU = 0.7
"""Column-to-column offsets of the bias level (rms)."""

COSMIC_RAY_RATE_SEA_LEVEL_PER_CM2_S = 1.5 / 60.0
"""Cosmic-ray events per cm² per second at sea level (Groom 2004)."""
COSMIC_RAY_ATTENUATION_G_CM2 = 400.0
"""Effective attenuation length of the ionising flux in air: between the muons' (longer)
and the nucleons' (~130 g/cm²); doubles the rate at 2.7 km, ×2.8 at 4.2 km."""
SEA_LEVEL_ATMOSPHERIC_DEPTH_G_CM2 = 1033.0
ATMOSPHERE_SCALE_HEIGHT_M = 8400.0
DEPLETION_DEPTH_UM = 30.0
"""Thickness of the charge-collecting silicon: a muon's track length is ``t tan θ``."""
MUON_E_PER_UM = 75.0
"""Most probable ionisation of a minimum-ionising particle in thin silicon (e-/µm)."""
COSMIC_BLOB_FRACTION = 0.2
"""Fraction of events that are compact blobs (soft electrons, gammas, alphas)."""
COSMIC_BLOB_E = (2000.0, 20000.0)
"""Range of a blob's charge, drawn log-uniform."""
COSMIC_MAX_TAN_THETA = 10.0
"""Cap on the track's slope (θ < 84°): longer tracks are rare and clipped."""

# Salts of the per-telescope hash streams (one per persistent quantity).
_SALT_AXIS, _SALT_DUST, _SALT_PRNU, _SALT_BIAS = 1, 2, 3, 4
_SALT_HOT_POS, _SALT_HOT_RATE, _SALT_COL_POS, _SALT_COL_STATE = 5, 6, 7, 8


@dataclass(frozen=True)
class DetectorResult:
    """The raw frame and the truth of what the detector added to it.

    ``cosmic_rays``: one row per event: ``cr_id``, ``kind`` (``track`` | ``blob``),
    ``x_pix``, ``y_pix`` (0-based centre), ``length_pix``, ``angle_deg`` (from +x towards
    +y), ``electrons`` (deposited inside the frame).
    ``hot_pixels``: ``x_pix``, ``y_pix``, ``dark_e_per_s``, ``electrons`` (expected dark
    charge in this exposure, before shot noise).
    ``bad_columns``: ``x_pix``, ``state`` (``high`` | ``low``).
    ``saturated``: pixels whose charge reached the full well (bleed trails included,
    bad columns not) or whose ADU hit the ADC ceiling.
    ``bled_off_e``: charge lost off the ends of columns by bleeding.
    """

    raw_adu: np.ndarray
    saturated: np.ndarray
    cosmic_rays: pd.DataFrame
    hot_pixels: pd.DataFrame
    bad_columns: pd.DataFrame
    saturate_adu: float
    bled_off_e: float

    @property
    def hot_pixel_mask(self) -> np.ndarray:
        mask = np.zeros(self.raw_adu.shape, dtype=bool)
        mask[self.hot_pixels["y_pix"].to_numpy(), self.hot_pixels["x_pix"].to_numpy()] = True
        return mask

    @property
    def bad_column_mask(self) -> np.ndarray:
        mask = np.zeros(self.raw_adu.shape, dtype=bool)
        mask[:, self.bad_columns["x_pix"].to_numpy()] = True
        return mask


def apply_detector(
    expected_e: np.ndarray,
    spec: FrameSpec,
    rng: np.random.Generator,
    *,
    flat: np.ndarray | float | None = None,
    cosmic_rays: bool = True,
) -> DetectorResult:
    """Read out ``expected_e`` (noise-free electrons, shape ``(spec.ny, spec.nx)``).

    ``flat``: the response to multiply the light by; ``None`` uses :func:`flat_field`,
    ``1.0`` switches it off. ``cosmic_rays=False`` leaves them out (for tests).
    """
    expected_e = np.asarray(expected_e, dtype=float)
    if expected_e.shape != (spec.ny, spec.nx):
        raise ValueError(
            f"expected_e has shape {expected_e.shape} but the spec is (ny, nx) = "
            f"({spec.ny}, {spec.nx}); render the scene at the spec's size or resize the spec"
        )
    det = spec.telescope.detector
    response = flat_field(spec) if flat is None else flat
    hot = hot_pixels(spec)
    dark_e = np.full(expected_e.shape, det.dark_current_e_per_s * spec.exptime_s)
    hot_e = hot["dark_e_per_s"].to_numpy() * spec.exptime_s
    dark_e[hot["y_pix"].to_numpy(), hot["x_pix"].to_numpy()] += hot_e
    charge = rng.poisson(np.clip(expected_e * response, 0.0, None) + dark_e).astype(float)
    cr_table = _empty_cosmic_rays()
    if cosmic_rays:
        cr_table = add_cosmic_rays(charge, spec, rng)
    bled_off_e = bleed(charge, det.full_well_e)
    saturated = charge >= det.full_well_e
    columns = bad_columns(spec)
    x_bad = columns["x_pix"].to_numpy()
    charge[:, x_bad] = np.where(columns["state"].to_numpy() == "high", det.full_well_e, 0.0)
    adu = charge / det.gain_e_per_adu + bias_image(spec)
    if spec.faults:  # rare readout faults (twin.imaging.faults): pattern noise
        adu += readout_faults_adu(spec)
    adu += rng.normal(0.0, det.read_noise_e / det.gain_e_per_adu, adu.shape)
    raw = np.clip(np.rint(adu), 0, ADC_MAX_ADU).astype(np.uint16)
    saturated |= raw >= ADC_MAX_ADU
    saturated[:, x_bad] = False
    hot = hot.assign(electrons=hot_e)
    return DetectorResult(
        raw_adu=raw, saturated=saturated, cosmic_rays=cr_table, hot_pixels=hot,
        bad_columns=columns, saturate_adu=saturate_adu(spec), bled_off_e=bled_off_e,
    )  # fmt: skip


def saturate_adu(spec: FrameSpec) -> float:
    """The level above which a pixel cannot be trusted: ``min(full well / gain + bias, 65535)``."""
    det = spec.telescope.detector
    return float(min(det.full_well_e / det.gain_e_per_adu + det.bias_adu, ADC_MAX_ADU))


def detector_window(spec: FrameSpec) -> tuple[int, int]:
    """``(row0, col0)`` of the frame's pixel (0, 0) on the full detector (centred window)."""
    det = spec.telescope.detector
    return (det.ny_pix - spec.ny) // 2, (det.nx_pix - spec.nx) // 2


# --- persistent hardware: flat field, bias pattern, defects ---------------------------


def flat_field(spec: FrameSpec) -> np.ndarray:
    """The per-pixel response (read-only float32), ≈ 1 on average over the full detector.

    Deterministic in the telescope (name, detector, optics) and the frame's window, and
    independent of the band and the frame seed: calibration flats and science frames share
    it. The normalisation divides out the vignetting's mean over the full detector (dust
    and PRNU average to within 0.1 % of 1), so a frame divided by it keeps the
    electrons-per-magnitude scale of the exposure-time calculator.
    """
    t = spec.telescope
    return _flat_field(t.name, t.detector.nx_pix, t.detector.ny_pix, t.detector.pixel_size_um,
                       t.focal_ratio, t.obscuration, spec.nx, spec.ny)  # fmt: skip


@lru_cache(maxsize=4)
def _flat_field(name: str, nx_pix: int, ny_pix: int, pixel_um: float, focal_ratio: float,
                obscuration: float, nx: int, ny: int) -> np.ndarray:  # fmt: skip
    key = telescope_key(name)
    row0, col0 = (ny_pix - ny) // 2, (nx_pix - nx) // 2
    rows = np.arange(row0, row0 + ny, dtype=float)[:, None]
    cols = np.arange(col0, col0 + nx, dtype=float)[None, :]
    # Vignetting about an optical axis near the centre, normalised to mean 1 over the
    # detector: <r²> = (W² + H²) / 12 + offset².
    ax, ay = (2.0 * _uniform(key, _SALT_AXIS, np.arange(2)) - 1.0) * OPTICAL_AXIS_OFFSET_FRAC
    x_axis, y_axis = (nx_pix - 1) / 2.0 + ax * nx_pix, (ny_pix - 1) / 2.0 + ay * ny_pix
    r_corner2 = (nx_pix / 2.0) ** 2 + (ny_pix / 2.0) ** 2
    r2 = (cols - x_axis) ** 2 + (rows - y_axis) ** 2
    mean_r2 = (nx_pix**2 + ny_pix**2) / 12.0 + (ax * nx_pix) ** 2 + (ay * ny_pix) ** 2
    response = (1.0 - VIGNETTING_AT_CORNER * r2 / r_corner2) / (
        1.0 - VIGNETTING_AT_CORNER * mean_r2 / r_corner2
    )
    _apply_dust(response, key, (row0, col0), (ny_pix, nx_pix), pixel_um, focal_ratio,
                obscuration)  # fmt: skip
    response *= 1.0 + PRNU_RMS * _gaussian(key, _SALT_PRNU, _pixel_index(rows, cols))
    response = response.astype(np.float32)  # 1e-7 precision; halves the cached memory
    response.flags.writeable = False
    return response


def _apply_dust(response: np.ndarray, key: int, origin: tuple[int, int],
                detector_shape: tuple[int, int], pixel_um: float, focal_ratio: float,
                obscuration: float) -> None:  # fmt: skip
    """Multiply in the dust donuts (each evaluated in its bounding box only)."""
    ny_pix, nx_pix = detector_shape
    mean = DUST_SPOTS_PER_CM2 * nx_pix * ny_pix * (pixel_um * 1e-4) ** 2
    n = int(poisson.ppf(_uniform(key, _SALT_DUST, np.array([0]))[0], mean))
    u = _uniform(key, _SALT_DUST, np.arange(1, 1 + 4 * n)).reshape(n, 4) if n else np.empty((0, 4))
    row0, col0 = origin
    ny, nx = response.shape
    for ux, uy, ud, udepth in u:
        distance_um = 1000.0 * (DUST_DISTANCE_MM[0] + ud * np.ptp(DUST_DISTANCE_MM))
        r_out = distance_um / focal_ratio / 2.0 / pixel_um
        r_in = obscuration * r_out
        depth = DUST_DEPTH[0] + udepth * np.ptp(DUST_DEPTH)
        xc, yc = ux * nx_pix - col0, uy * ny_pix - row0  # in the window's pixels
        x_lo, x_hi = max(int(xc - r_out - 3), 0), min(int(xc + r_out + 4), nx)
        y_lo, y_hi = max(int(yc - r_out - 3), 0), min(int(yc + r_out + 4), ny)
        if x_lo >= x_hi or y_lo >= y_hi:
            continue
        yy, xx = np.mgrid[y_lo:y_hi, x_lo:x_hi]
        r = np.hypot(xx - xc, yy - yc)
        edge = 1.5  # pixels: the soft edge of a defocused shadow
        shadow = 0.25 * (1 + np.tanh((r_out - r) / edge)) * (1 + np.tanh((r - r_in) / edge))
        response[y_lo:y_hi, x_lo:x_hi] *= 1.0 - depth * shadow


def bias_image(spec: FrameSpec) -> np.ndarray:
    """The noise-free bias level in ADU (read-only float32): ``bias_adu`` + ramp + columns."""
    t = spec.telescope
    return _bias_image(t.name, t.detector.nx_pix, t.detector.ny_pix, t.detector.bias_adu,
                       spec.nx, spec.ny)  # fmt: skip


@lru_cache(maxsize=4)
def _bias_image(name: str, nx_pix: int, ny_pix: int, bias_adu: float, nx: int,
                ny: int) -> np.ndarray:  # fmt: skip
    key = telescope_key(name)
    row0, col0 = (ny_pix - ny) // 2, (nx_pix - nx) // 2
    rows = np.arange(row0, row0 + ny, dtype=float)
    ramp = BIAS_ROW_RAMP_ADU * ((rows + 0.5) / ny_pix - 0.5)
    cols = np.arange(col0, col0 + nx)
    column = BIAS_COLUMN_RMS_ADU * _gaussian(key, _SALT_BIAS, cols.astype(np.int64))
    image = (bias_adu + ramp[:, None] + column[None, :]).astype(np.float32)
    image.flags.writeable = False
    return image


def hot_pixels(spec: FrameSpec) -> pd.DataFrame:
    """Hot pixels inside the frame: ``x_pix``, ``y_pix`` (0-based), ``dark_e_per_s``.

    Positions from ``spec.hot_pixels`` (full-detector ``(row, col)``), else the first
    ``spec.n_hot_pixels`` of the telescope's fixed sequence of positions (so a defect,
    once there, stays). The rate of each depends on its detector position only.
    """
    det = spec.telescope.detector
    key = telescope_key(spec.telescope.name)
    if spec.hot_pixels is not None:
        positions = np.asarray(spec.hot_pixels, dtype=np.int64).reshape(-1, 2)
    else:
        flat = _distinct_draws(key, _SALT_HOT_POS, spec.n_hot_pixels, det.ny_pix * det.nx_pix)
        positions = np.stack([flat // det.nx_pix, flat % det.nx_pix], axis=1)
    lo, hi = np.log(HOT_PIXEL_DARK_E_PER_S)
    u = _uniform(key, _SALT_HOT_RATE, _pixel_index(positions[:, 0], positions[:, 1]))
    rate = np.exp(lo + u * (hi - lo))
    row0, col0 = detector_window(spec)
    y, x = positions[:, 0] - row0, positions[:, 1] - col0
    inside = (y >= 0) & (y < spec.ny) & (x >= 0) & (x < spec.nx)
    return pd.DataFrame({"x_pix": x[inside], "y_pix": y[inside], "dark_e_per_s": rate[inside]})


def bad_columns(spec: FrameSpec) -> pd.DataFrame:
    """Bad columns inside the frame: ``x_pix`` (0-based) and ``state`` (high | low).

    Positions from ``spec.bad_columns`` (full-detector columns), else the first
    ``spec.n_bad_columns`` of the telescope's fixed sequence; the state depends on the
    column only.
    """
    det = spec.telescope.detector
    key = telescope_key(spec.telescope.name)
    if spec.bad_columns is not None:
        columns = np.unique(np.asarray(spec.bad_columns, dtype=np.int64).ravel())
    else:
        columns = _distinct_draws(key, _SALT_COL_POS, spec.n_bad_columns, det.nx_pix)
    high = _uniform(key, _SALT_COL_STATE, columns) < 0.5
    x = columns - detector_window(spec)[1]
    inside = (x >= 0) & (x < spec.nx)
    state = np.where(high, "high", "low")[inside]
    return pd.DataFrame({"x_pix": x[inside], "state": state.astype(object)})


# --- cosmic rays ----------------------------------------------------------------------


def cosmic_ray_rate_per_cm2_s(height_m: float) -> float:
    """Cosmic-ray events per cm² of detector per second at a site ``height_m`` high.

    ``R = R0 exp((X0 - X(h)) / Λ)`` with the atmospheric depth ``X(h) = X0 exp(-h / H)``
    (``X0`` = 1033 g cm⁻², ``H`` = 8.4 km), ``R0`` = 1.5 cm⁻² min⁻¹ and ``Λ`` = 400 g cm⁻².
    """
    depth = SEA_LEVEL_ATMOSPHERIC_DEPTH_G_CM2 * math.exp(-height_m / ATMOSPHERE_SCALE_HEIGHT_M)
    above = SEA_LEVEL_ATMOSPHERIC_DEPTH_G_CM2 - depth
    return COSMIC_RAY_RATE_SEA_LEVEL_PER_CM2_S * math.exp(above / COSMIC_RAY_ATTENUATION_G_CM2)


def expected_cosmic_rays(spec: FrameSpec) -> float:
    """Mean number of cosmic-ray events in the frame: rate × frame area × exposure time."""
    pixel_cm = spec.telescope.detector.pixel_size_um * 1e-4
    area_cm2 = spec.nx * spec.ny * pixel_cm**2
    return cosmic_ray_rate_per_cm2_s(spec.site_height_m) * area_cm2 * spec.exptime_s


def add_cosmic_rays(charge: np.ndarray, spec: FrameSpec, rng: np.random.Generator) -> pd.DataFrame:
    """Add a Poisson number of events to ``charge`` (in place); return their table.

    Tracks: a straight segment of projected length ``t tan θ`` (``cos θ`` drawn from
    ``∝ cos³θ``), charge ``75 e-/µm × t / cos θ`` times a Moyal (Landau-like) factor.
    Blobs: a Gaussian of σ 0.5–1.2 pixel. Charge is spread by bilinear weights of points
    sampled every 1/4 pixel (tracks) or from the Gaussian (blobs).
    """
    ny, nx = charge.shape
    n = int(rng.poisson(expected_cosmic_rays(spec)))
    if n == 0:
        return _empty_cosmic_rays()
    x0, y0 = rng.uniform(-0.5, nx - 0.5, n), rng.uniform(-0.5, ny - 0.5, n)
    is_blob = rng.uniform(size=n) < COSMIC_BLOB_FRACTION
    cos_theta = rng.uniform(size=n) ** 0.25
    tan_theta = np.minimum(np.sqrt(1.0 - cos_theta**2) / cos_theta, COSMIC_MAX_TAN_THETA)
    pixel_um = spec.telescope.detector.pixel_size_um
    length = np.where(is_blob, 0.0, DEPLETION_DEPTH_UM * tan_theta / pixel_um)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    landau = np.clip(_moyal(rng, n, scale=0.15), 0.3, None)
    track_e = MUON_E_PER_UM * DEPLETION_DEPTH_UM * np.sqrt(1.0 + tan_theta**2) * landau
    lo, hi = np.log(COSMIC_BLOB_E)
    blob_e = np.exp(rng.uniform(lo, hi, n))
    electrons = np.where(is_blob, blob_e, track_e)
    sigma = rng.uniform(0.5, 1.2, n)
    # Sample points: tracks every 1/4 pixel along the segment, blobs 64 Gaussian points.
    n_points = np.where(is_blob, 64, np.maximum(2, np.ceil(4.0 * length).astype(int) + 1))
    event = np.repeat(np.arange(n), n_points)
    first = np.repeat(np.cumsum(n_points) - n_points, n_points)
    frac = (np.arange(event.size) - first) / np.maximum(n_points[event] - 1, 1) - 0.5
    gx, gy = rng.normal(size=(2, event.size))
    blob = is_blob[event]
    px = x0[event] + np.where(blob, sigma[event] * gx, frac * length[event] * np.cos(angle[event]))
    py = y0[event] + np.where(blob, sigma[event] * gy, frac * length[event] * np.sin(angle[event]))
    q = electrons[event] / n_points[event]
    deposited = _deposit_bilinear(charge, px, py, q, event, n)
    return pd.DataFrame({
        "cr_id": np.arange(n), "kind": np.where(is_blob, "blob", "track").astype(object),
        "x_pix": x0, "y_pix": y0, "length_pix": length, "angle_deg": np.degrees(angle),
        "electrons": deposited,
    })  # fmt: skip


def _moyal(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Moyal's approximation to the Landau distribution, most probable value 1.

    If ``g ~ Gamma(1/2, 2)`` (a χ² with one degree of freedom), ``-ln g`` is Moyal.
    """
    return 1.0 - scale * np.log(rng.chisquare(1.0, n))


def _deposit_bilinear(charge: np.ndarray, px: np.ndarray, py: np.ndarray, q: np.ndarray,
                      event: np.ndarray, n_events: int) -> np.ndarray:  # fmt: skip
    """Add charge ``q`` at points ``(px, py)`` with bilinear weights; return per-event sums."""
    ny, nx = charge.shape
    ix, iy = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = px - ix, py - iy
    deposited = np.zeros(n_events)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        x, y = ix + dx, iy + dy
        inside = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
        np.add.at(charge, (y[inside], x[inside]), (q * w)[inside])
        deposited += np.bincount(event[inside], (q * w)[inside], minlength=n_events)
    return deposited


def _empty_cosmic_rays() -> pd.DataFrame:
    return pd.DataFrame({
        "cr_id": np.empty(0, int), "kind": np.empty(0, object), "x_pix": np.empty(0),
        "y_pix": np.empty(0), "length_pix": np.empty(0), "angle_deg": np.empty(0),
        "electrons": np.empty(0),
    })  # fmt: skip


# --- full well ------------------------------------------------------------------------


def bleed(charge: np.ndarray, full_well_e: float) -> float:
    """Spill charge above ``full_well_e`` along its column (in place); return charge lost.

    Each run of over-full pixels in a column is set to the full well and its excess split
    in two: one half fills the pixels below it, the other those above it, each pixel up to
    the full well, in order away from the run. Charge is conserved except what runs off
    the ends of the column (returned).
    """
    lost = 0.0
    for c in np.unique(np.nonzero(charge > full_well_e)[1]):
        column = charge[:, c]
        over = np.concatenate([[False], column > full_well_e, [False]])
        starts = np.flatnonzero(~over[:-1] & over[1:])
        ends = np.flatnonzero(over[:-1] & ~over[1:])
        for a, b in zip(starts, ends, strict=True):
            excess = column[a:b].sum() - full_well_e * (b - a)
            column[a:b] = full_well_e
            lost += _spill(column, a - 1, -1, excess / 2.0, full_well_e)
            lost += _spill(column, b, +1, excess / 2.0, full_well_e)
        charge[:, c] = column
    return lost


def _spill(column: np.ndarray, start: int, step: int, q: float, full_well_e: float) -> float:
    """Fill pixels from ``start`` in direction ``step`` with ``q``; return what is left."""
    idx = np.arange(start, -1 if step < 0 else column.size, step)
    if idx.size == 0:
        return q
    room = np.cumsum(np.clip(full_well_e - column[idx], 0.0, None))
    k = int(np.searchsorted(room, q))
    if k >= idx.size:
        column[idx] = np.maximum(column[idx], full_well_e)
        return q - room[-1]
    column[idx[:k]] = np.maximum(column[idx[:k]], full_well_e)
    column[idx[k]] += q - (room[k - 1] if k else 0.0)
    return 0.0


# --- counter-based hashing: persistent per-pixel randomness ---------------------------


def telescope_key(name: str) -> int:
    """A stable 32-bit key of the telescope (``hash()`` is salted per process)."""
    return zlib.crc32(name.encode("utf-8"))


def _pixel_index(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A unique non-negative integer per detector pixel (negative coordinates allowed)."""
    r = np.asarray(rows).astype(np.int64) + (1 << 20)
    c = np.asarray(cols).astype(np.int64) + (1 << 20)
    return (r << 22) + c


def _splitmix64(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The splitmix64 finaliser of ``x ^ seed`` (a new array; uint64 arithmetic wraps)."""
    z = np.asarray(x).astype(np.uint64)
    z ^= np.uint64(seed)
    z += np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _stream_hash(key: int, salt: int, index: np.ndarray) -> np.ndarray:
    """64 random bits per index, a pure function of (telescope key, salt, index)."""
    seed = int(_splitmix64(np.array([(key << 8) | salt]))[0])
    return _splitmix64(index, seed)


def _uniform(key: int, salt: int, index: np.ndarray) -> np.ndarray:
    """Uniform numbers in (0, 1), 53-bit, a pure function of (key, salt, index)."""
    z = _stream_hash(key, salt, index)
    return ((z >> np.uint64(11)).astype(float) + 0.5) * 2.0**-53


def _gaussian(key: int, salt: int, index: np.ndarray) -> np.ndarray:
    """Standard normal numbers (Box–Muller on the two 32-bit halves of one hash)."""
    z = _stream_hash(key, salt, index)
    u1 = ((z >> np.uint64(32)).astype(float) + 0.5) * 2.0**-32
    u2 = ((z & np.uint64(0xFFFFFFFF)).astype(float) + 0.5) * 2.0**-32
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _distinct_draws(key: int, salt: int, n: int, size: int) -> np.ndarray:
    """The first ``n`` distinct integers of the telescope's sequence of draws in ``[0, size)``.

    Prefix-stable: asking for more keeps the earlier ones, as defects accumulate.
    """
    n = min(int(n), size)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    m = n + 16
    while True:
        draws = np.floor(_uniform(key, salt, np.arange(m)) * size).astype(np.int64)
        _, first = np.unique(draws, return_index=True)
        if first.size >= n:
            return draws[np.sort(first)[:n]]
        m *= 2
