"""The noise-free frame: expected electrons per pixel for one exposure, and its truth.

:func:`render_expected` returns the sky plus every source, in electrons, as an
``(ny, nx)`` float64 array; the detector model adds the flat, dark, noise, defects and
readout on top. The sky is flat: ``sky_electrons_per_pixel`` with the exposure's sky
brightness, exposure time and transparency × throughput (a moonlight gradient would need
the Moon's position angle, which :class:`~twin.imaging.spec.FrameSpec` does not carry).

Two ways to draw the same scene:

- ``method="fast"``: stars and the transient are bilinear interpolations of the effective
  PSF sampled 8× finer than the pixels (:class:`~twin.imaging.psf.PixelPsfTable`), cut in
  vectorised batches and added as slices. A star's stamp grows with its flux until the
  light it leaves out is below 1 % of the sky noise per pixel (never less than the radius
  holding 99.5 % of the light); beyond the 8×-sampled core, bright stars' wings come from
  a table sampled at the pixel scale. Galaxies go through a
  :class:`~twin.imaging.galaxies.GalaxyStampSource`; the default,
  :class:`~twin.imaging.galaxies.FourierGalaxyStamps`, evaluates the galaxy ⊗ PSF in
  Fourier space on small grids, many galaxies per numpy call.
- ``method="plain"``: the reference. Every source is drawn by GalSim's ``drawImage`` (the
  PSF, or galaxy ⊗ PSF, convolved with the pixel) with ``add_to_image=True`` onto the view
  of the full image that covers GalSim's own choice of stamp size. Drawing onto the whole
  frame instead would make GalSim FFT a grid at least twice the frame per object
  (``GSObject.drawFFT_makeKImage``), ~1.5 s each for a 2k frame.

Trails are drawn the same way by both: a line whose cross-section is the projection of
PSF ⊗ out-of-focus pupil ⊗ pixel across the track, with the electrons per arcsec of track
of the trail's magnitude. Their ``flux_e`` in the truth is what lands in the frame.

Last, a frame with rare faults (``spec.faults``) gets their light: a satellite glint, a
dew halo and glow, a shifted vignetting (:mod:`twin.imaging.faults`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import galsim
import numpy as np
import pandas as pd
from astropy.wcs import WCS

from twin.imaging.catalog import SkyCatalog, TrailModel, sky_catalog
from twin.imaging.faults import apply_light_faults
from twin.imaging.galaxies import GalaxyStampSource, galaxy_profile, galaxy_stamp_source
from twin.imaging.psf import PixelPsfTable, add_stamp, defocus_profile, image_angle_deg, psf_for
from twin.imaging.scene import Scene, build_scene, sky_level_e
from twin.imaging.spec import FrameSpec

METHODS = ("fast", "plain")
CORE_OVERSAMPLE = 8
MIN_ENCIRCLED = 0.995
WING_NOISE_FRACTION = 0.01
MAX_STAR_RADIUS_PX = 256
_BATCH_PIXELS = 2_000_000


@dataclass(frozen=True)
class RenderResult:
    """Expected electrons per pixel (sky included), the sky level, truth and true WCS."""

    image_e: np.ndarray
    sky_e_per_pix: float
    truth: pd.DataFrame
    wcs_true: WCS
    psf: galsim.GSObject


def psf_fwhm_px(spec: FrameSpec) -> float:
    """Rough PSF FWHM in pixels (seeing ⊕ defocus ⊕ trail length), for sizing stamps."""
    return math.hypot(spec.image_fwhm_arcsec, spec.tracking_error_arcsec) / spec.pixel_scale_arcsec


def render_expected(spec: FrameSpec, *, catalog: SkyCatalog | None = None, method: str = "fast",
                    stamp_source: GalaxyStampSource | None = None, sky_seed: int = 0,
                    trails: TrailModel | None = None,
                    defocus_model: str = "gaussian", galaxies: str = "parametric",
                    galaxy_bank_dir: str | None = None) -> RenderResult:  # fmt: skip
    """Render the noise-free frame of ``spec`` (see module docs).

    ``catalog`` defaults to :func:`~twin.imaging.catalog.sky_catalog` of the spec (with
    ``sky_seed`` and ``trails``); pass one to draw the same scene several ways.
    ``galaxies`` names the stamp source of the fast path when ``stamp_source`` is not
    given (:func:`~twin.imaging.galaxies.galaxy_stamp_source`; ``galaxy_bank_dir`` is
    where a learned source caches its stamps).
    """
    if method not in METHODS:
        raise ValueError(f"render method {method!r}; allowed: {METHODS}")
    if catalog is None:
        catalog = sky_catalog(spec, sky_seed=sky_seed, trails=trails)
    sky = sky_level_e(spec)
    scene = build_scene(spec, catalog, sky)
    psf = psf_for(spec, defocus_model=defocus_model)
    image = np.full((spec.ny, spec.nx), sky, dtype=np.float64)
    truth = scene.truth
    points = truth[truth["type"].isin(("star", "transient"))]
    galaxy_rows = truth[truth["type"] == "galaxy"]
    if method == "fast":
        _PointDrawer(psf, spec, sky).draw(image, points)
        source = stamp_source or galaxy_stamp_source(
            galaxies, psf_fwhm_px(spec) * spec.pixel_scale_arcsec, sky_seed=sky_seed,
            bank_dir=galaxy_bank_dir)  # fmt: skip
        _draw_galaxy_stamps(image, galaxy_rows, psf, spec.pixel_scale_arcsec, source)
    else:
        _draw_plain(image, points, galaxy_rows, psf, spec.pixel_scale_arcsec)
    truth = truth.copy()
    _draw_trails(image, scene, psf, truth)
    if spec.faults:  # rare faults (twin.imaging.faults): light through fogged or vignetted optics
        apply_light_faults(image, spec, sky)
    return RenderResult(image, sky, truth, scene.wcs, psf)


# --- fast path: stars ------------------------------------------------------------------------


class _PointDrawer:
    """Adds point sources with stamps cut from pixel-sampled effective-PSF tables."""

    def __init__(self, psf: galsim.GSObject, spec: FrameSpec, sky_e: float) -> None:
        self._psf, self._scale = psf, spec.pixel_scale_arcsec
        fwhm = psf_fwhm_px(spec)
        self.core = PixelPsfTable(psf, self._scale, int(min(64, max(12, math.ceil(10 * fwhm)))),
                                  CORE_OVERSAMPLE)  # fmt: skip
        first = max(2, math.ceil(2 * fwhm))
        enough = (
            r for r in range(first, self.core.radius_px) if self.core.encircled(r) >= MIN_ENCIRCLED
        )
        self.r0 = next(enough, self.core.radius_px)
        self.threshold_e = WING_NOISE_FRACTION * math.sqrt(max(sky_e, 1.0))
        self._wide: PixelPsfTable | None = None

    def _table(self, radius: int) -> PixelPsfTable:
        if radius <= self.core.radius_px:
            return self.core
        if self._wide is None:
            self._wide = PixelPsfTable(self._psf, self._scale, MAX_STAR_RADIUS_PX, oversample=1)
        return self._wide

    def _ring(self, radius: int) -> float:
        """Largest unit-flux pixel value on the edge of a centred stamp of ``radius``."""
        s = self._table(radius).stamps(np.zeros(1), np.zeros(1), radius)[0]
        return float(max(s[0].max(), s[-1].max(), s[:, 0].max(), s[:, -1].max()))

    def ladder(self) -> list[int]:
        """Stamp radii on offer: r0, 2 r0, ... up to the core table, then doubling to the max."""
        radii = [self.r0]
        while 2 * radii[-1] < self.core.radius_px:
            radii.append(2 * radii[-1])
        radii.append(self.core.radius_px)
        while radii[-1] < MAX_STAR_RADIUS_PX:
            radii.append(min(2 * radii[-1], MAX_STAR_RADIUS_PX))
        return sorted(set(radii))

    def radii(self, flux: np.ndarray) -> np.ndarray:
        """Stamp radius per star: the smallest on the ladder whose edge is below threshold."""
        ladder = self.ladder()
        brightest = float(flux.max()) if len(flux) else 0.0
        if brightest * self._ring(self.core.radius_px) < self.threshold_e:
            ladder = [r for r in ladder if r <= self.core.radius_px]  # no wide table needed
        radius = np.full(len(flux), ladder[-1])
        for r in reversed(ladder):
            radius = np.where(flux * self._ring(r) < self.threshold_e, r, radius)
        return radius

    def stamps(self, fx: np.ndarray, fy: np.ndarray, radius: int) -> np.ndarray:
        core_r = self.core.radius_px
        if radius <= core_r:
            return self.core.stamps(fx, fy, radius)
        out = self._table(radius).stamps(fx, fy, radius)
        inner = slice(radius - core_r, radius + core_r + 1)
        out[:, inner, inner] = self.core.stamps(fx, fy, core_r)
        return out

    def draw(self, image: np.ndarray, points: pd.DataFrame) -> None:
        if points.empty:
            return
        x, y = points["x_pix"].to_numpy(float), points["y_pix"].to_numpy(float)
        flux = points["flux_e"].to_numpy(float)
        ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
        radius = self.radii(flux)
        for r in np.unique(radius):
            members = np.flatnonzero(radius == r)
            batch = max(1, _BATCH_PIXELS // (2 * int(r) + 1) ** 2)
            for start in range(0, len(members), batch):
                sel = members[start : start + batch]
                unit = self.stamps(x[sel] - ix[sel], y[sel] - iy[sel], int(r))
                for k, values in zip(sel, unit * flux[sel, None, None], strict=True):
                    add_stamp(image, values, ix[k], iy[k])


def _draw_galaxy_stamps(image, galaxies, psf, scale, source: GalaxyStampSource) -> None:
    rows = galaxies.to_dict("records")
    centres = [(round(r["x_pix"]), round(r["y_pix"])) for r in rows]
    offsets = [
        (r["x_pix"] - ix, r["y_pix"] - iy) for r, (ix, iy) in zip(rows, centres, strict=True)
    ]
    batch = getattr(source, "stamps", None)  # optional vectorised form of ``stamp``
    if batch is not None:
        stamps = batch(rows, psf, scale, offsets)
    else:
        stamps = [source.stamp(r, psf, scale, np.random.default_rng(int(r["knot_seed"])), o)
                  for r, o in zip(rows, offsets, strict=True)]  # fmt: skip
    for stamp, (ix, iy) in zip(stamps, centres, strict=True):
        add_stamp(image, stamp, ix, iy)


# --- plain path ------------------------------------------------------------------------------


def _draw_plain(image, points, galaxies, psf, scale) -> None:
    """Every source with GalSim ``drawImage`` onto the full frame (its natural stamp)."""
    ny, nx = image.shape
    full = galsim.ImageD(nx, ny, xmin=0, ymin=0, scale=scale)
    objects = [(psf.withFlux(float(r["flux_e"])), r) for r in points.to_dict("records")]
    objects += [(galsim.Convolve(galaxy_profile(r), psf), r)
                for r in galaxies.to_dict("records")]  # fmt: skip
    for obj, row in objects:
        x, y = float(row["x_pix"]), float(row["y_pix"])
        n = obj.getGoodImageSize(scale)
        ix, iy = round(x), round(y)
        bounds = galsim.BoundsI(ix - n // 2, ix + n // 2, iy - n // 2, iy + n // 2) & full.bounds
        if bounds.isDefined():
            obj.drawImage(image=full[bounds], add_to_image=True, center=galsim.PositionD(x, y))
    image += full.array


# --- trails ------------------------------------------------------------------------------------


def _line_profile(psf, width_arcsec, obscuration, theta_deg, scale) -> tuple[np.ndarray, ...]:
    """Across-track profile (per arcsec, unit integral) of PSF ⊗ pupil ⊗ pixel: (d, p).

    The projection of a profile along the track is the inverse 1-D transform of its
    Fourier transform on the perpendicular axis (projection-slice theorem).
    """
    parts = [psf, galsim.Pixel(scale)]
    pupil = defocus_profile(width_arcsec, obscuration, "annulus")
    if pupil is not None:
        parts.append(pupil)
    rotated = galsim.Convolve(parts).rotate(-theta_deg * galsim.degrees)  # track along x
    step = scale / 4.0
    n = 2 * math.ceil((2.0 * width_arcsec + 50.0 * psf.calculateFWHM() + 20 * scale) / step)
    k_axis = rotated.drawKImage(bounds=galsim.BoundsI(0, 0, -n // 2, n // 2 - 1),
                                scale=2.0 * math.pi / (n * step), recenter=False)  # fmt: skip
    profile = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(k_axis.array[:, 0])).real) / step
    return (np.arange(n) - n // 2) * step, profile


def _draw_trails(image: np.ndarray, scene: Scene, psf, truth: pd.DataFrame) -> None:
    spec = scene.spec
    scale = spec.pixel_scale_arcsec
    ny, nx = image.shape
    trails = np.flatnonzero((truth["type"] == "trail").to_numpy())
    yy, xx = np.mgrid[0:ny, 0:nx] if len(trails) else (None, None)
    for k in trails:
        row = truth.iloc[k]
        theta = float(image_angle_deg(row["pa_deg"]))
        d, p = _line_profile(psf, float(row["width_arcsec"]), spec.telescope.obscuration, theta,
                             scale)  # fmt: skip
        t = math.radians(theta)
        across = (-(xx - row["x_pix"]) * math.sin(t) + (yy - row["y_pix"]) * math.cos(t)) * scale
        per_arcsec = float(row["flux_e"]) / float(row["length_arcsec"])
        trail = per_arcsec * scale**2 * np.interp(across, d, p, left=0.0, right=0.0)
        image += trail
        truth.iloc[k, truth.columns.get_loc("flux_e")] = float(trail.sum())
