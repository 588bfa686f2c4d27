"""The point-spread function of one exposure, and its pixel-sampled tables for fast drawing.

PSF = atmosphere ⊗ telescope optics ⊗ defocus ⊗ trailing (:func:`psf_for`), all GalSim
profiles in arcsec:

- **Atmosphere**: ``galsim.Kolmogorov`` with FWHM ``spec.seeing_fwhm_arcsec`` (the seeing
  already scaled to the exposure's airmass and band, :func:`twin.physics.etc.
  delivered_seeing_arcsec`).
- **Optics**: ``galsim.Airy`` at the band centre with the telescope's aperture and linear
  central obscuration (diffraction only; aberrations other than defocus are left out).
- **Defocus**: a blur of FWHM ``spec.defocus_fwhm_arcsec``. Default ``"gaussian"``: a
  Gaussian of that FWHM, the form the equipment model and the exposure-time calculator
  assume when they add the defocus to the seeing in quadrature
  (:mod:`twin.equipment.focus`), so photometric depth and image agree. ``"annulus"``: the
  geometric out-of-focus pupil image, a uniform annulus of outer diameter equal to the
  blur and inner diameter ``obscuration`` times that (a donut once it exceeds the seeing).
- **Trailing**: a line (``galsim.Box`` of length ``spec.tracking_error_arcsec`` and
  negligible width) along ``spec.tracking_pa_deg``, east of north. With north up and east
  left on the detector, a position angle ``pa`` points at ``90° + pa`` counter-clockwise
  from the +x axis.

FWHM. :func:`fwhm_arcsec` measures the FWHM of a finely sampled image as the diameter of
the circle with the area of the half-maximum isophote, ``2 sqrt(A / π)``: the usual FWHM
for a round profile, the geometric mean of the major- and minor-axis FWHM for an elongated
one. :func:`expected_fwhm_arcsec` applies it to the drawn PSF: the FWHM this exposure
delivers, the reference for "measured FWHM matches the delivered seeing" (with
``include_pixel=True`` when measuring on pixels, e.g. with :func:`star_fwhm_arcsec`).
``spec.image_fwhm_arcsec`` (seeing ⊕ defocus, the log's and the ETC's value) leaves out
diffraction, trailing and pixels. With no trailing the PSF's FWHM exceeds it by 3-9 % on
the 1-m preset (1.6"-0.6" seeing), 1-5 % on the 2-m and 1-4 % on the 4-m (the Airy core,
and Kolmogorov ⊗ Gaussian being a little wider than quadrature); the pixel adds
more on the 1-m's 0.389" pixels (2-11 %, 1.6"-0.6").

Fast drawing. :class:`PixelPsfTable` samples the *effective* PSF (PSF ⊗ pixel, so a
sample is the fraction of a star's light in a whole pixel) on a grid ``oversample`` times
finer than the pixels and cuts from it, once, the pixel stamp at every sub-pixel phase
``k / oversample``. A star anywhere is a bilinear blend of four of them: no FFT per star.
"""

from __future__ import annotations

import math

import galsim
import numpy as np

from twin.imaging.spec import FrameSpec

DEFOCUS_MODELS = ("gaussian", "annulus")
_LINE_WIDTH_ARCSEC = 1e-3  # width of the Box standing for a trail line: far below any PSF
_FWHM_SAMPLES = 100  # samples across the FWHM when measuring it on a drawn image


def image_angle_deg(pa_deg):
    """Counter-clockwise angle from +x of a position angle east of north (north up, east left)."""
    return 90.0 + np.asarray(pa_deg, dtype=float)


def defocus_profile(fwhm_arcsec: float, obscuration: float, model: str = "gaussian"):
    """The out-of-focus blur (unit flux), or None when there is none."""
    if model not in DEFOCUS_MODELS:
        raise ValueError(f"defocus model {model!r}; allowed: {DEFOCUS_MODELS}")
    if fwhm_arcsec <= 0.0:
        return None
    if model == "gaussian":
        return galsim.Gaussian(fwhm=fwhm_arcsec)
    outer = 0.5 * fwhm_arcsec
    disc = galsim.TopHat(radius=outer, flux=outer**2)
    if obscuration <= 0.0:
        return disc.withFlux(1.0)
    inner = obscuration * outer
    return (disc - galsim.TopHat(radius=inner, flux=inner**2)).withFlux(1.0)


def trailing_profile(length_arcsec: float, pa_deg: float):
    """A uniform line of ``length_arcsec`` along ``pa_deg`` (unit flux), or None if ~0."""
    if length_arcsec <= 10.0 * _LINE_WIDTH_ARCSEC:
        return None
    line = galsim.Box(width=length_arcsec, height=_LINE_WIDTH_ARCSEC)
    return line.rotate(float(image_angle_deg(pa_deg)) * galsim.degrees)


def psf_for(spec: FrameSpec, *, defocus_model: str = "gaussian") -> galsim.GSObject:
    """The exposure's PSF (unit flux, arcsec): atmosphere ⊗ optics ⊗ defocus ⊗ trailing."""
    telescope = spec.telescope
    parts: list[galsim.GSObject] = [
        galsim.Airy(
            lam=telescope.filter(spec.band).center_nm,
            diam=telescope.aperture_m,
            obscuration=telescope.obscuration,
            scale_unit=galsim.arcsec,
        )
    ]
    if spec.seeing_fwhm_arcsec > 0.0:
        parts.insert(0, galsim.Kolmogorov(fwhm=spec.seeing_fwhm_arcsec))
    defocus = defocus_profile(spec.defocus_fwhm_arcsec, telescope.obscuration, defocus_model)
    trail = trailing_profile(spec.tracking_error_arcsec, spec.tracking_pa_deg)
    parts += [p for p in (defocus, trail) if p is not None]
    return galsim.Convolve(parts)


def fwhm_arcsec(array: np.ndarray, scale_arcsec: float) -> float:
    """FWHM of a finely sampled, noise-free image: ``2 sqrt(area above half max / π)``."""
    array = np.asarray(array, dtype=float)
    above = np.count_nonzero(array > 0.5 * array.max())
    return 2.0 * math.sqrt(above / math.pi) * scale_arcsec


def expected_fwhm_arcsec(
    spec: FrameSpec, *, include_pixel: bool = False, defocus_model: str = "gaussian"
) -> float:
    """FWHM of :func:`psf_for` drawn finely (optionally convolved with the pixel)."""
    psf = psf_for(spec, defocus_model=defocus_model)
    if include_pixel:
        psf = galsim.Convolve(psf, galsim.Pixel(spec.pixel_scale_arcsec))
    guess = math.hypot(spec.image_fwhm_arcsec, spec.tracking_error_arcsec)
    guess = max(guess, spec.pixel_scale_arcsec if include_pixel else 0.0, 0.05)
    scale = guess / _FWHM_SAMPLES
    n = 4 * _FWHM_SAMPLES + 1
    image = psf.drawImage(nx=n, ny=n, scale=scale, method="no_pixel")
    return fwhm_arcsec(image.array, scale)


class PixelPsfTable:
    """The effective PSF (PSF ⊗ pixel, unit flux) sampled ``oversample`` times per pixel.

    ``stamps(fx, fy, radius)`` gives, for stars whose centres sit ``(fx, fy)`` pixels
    (each in [-0.5, 0.5]) from their nearest pixel centre, the ``(2 radius + 1)²`` pixel
    values around that pixel: the fraction of the star's light in each pixel. The stamps
    at every sub-pixel phase ``k / oversample`` are cut from the fine table once (float32);
    a star's stamp interpolates bilinearly between the four phases around its own.
    """

    def __init__(
        self, psf: galsim.GSObject, pixel_scale_arcsec: float, radius_px: int, oversample: int = 8
    ) -> None:
        self.radius_px = r = int(radius_px)
        self.oversample = n_over = int(oversample)
        half = (r + 1) * n_over  # one spare pixel for the interpolation
        effective = galsim.Convolve(psf, galsim.Pixel(pixel_scale_arcsec))
        size, fine_scale = 2 * half + 1, pixel_scale_arcsec / n_over
        fine = effective.drawImage(nx=size, ny=size, scale=fine_scale, method="no_pixel")
        # drawImage gives surface brightness × fine-pixel area; a whole pixel is N² of them.
        table = fine.array.astype(np.float64) * n_over**2
        # Pixel offset d from a star's pixel samples the PSF at d - f, i.e. at fine index
        # centre + d N + k with k = -f N; tabulate the stamps for integer k in [-K, K].
        self._k = n_over // 2 + 1
        index = half + np.arange(-self._k, self._k + 1)[:, None] + n_over * np.arange(-r, r + 1)
        self.phases = table[index[:, None, :, None], index[None, :, None, :]].astype(np.float32)

    def encircled(self, radius_px: int) -> float:
        """Fraction of the light in the (2 r + 1)² pixel box around a centred star."""
        return float(self.stamps(np.zeros(1), np.zeros(1), radius_px)[0].sum())

    def stamps(self, fx: np.ndarray, fy: np.ndarray, radius_px: int) -> np.ndarray:
        """Pixel values of unit-flux stars at sub-pixel offsets, shape ``(n, 2r+1, 2r+1)``."""
        r, big = int(radius_px), self.radius_px
        if r > big:
            raise ValueError(f"stamp radius {r} px exceeds the table's {big} px")
        tx = -np.asarray(fx, dtype=float) * self.oversample
        ty = -np.asarray(fy, dtype=float) * self.oversample
        kx, ky = np.floor(tx).astype(int), np.floor(ty).astype(int)
        wx = (tx - kx).astype(np.float32)[:, None, None]
        wy = (ty - ky).astype(np.float32)[:, None, None]
        ix, iy = kx + self._k, ky + self._k
        sub = self.phases[:, :, big - r : big + r + 1, big - r : big + r + 1]
        low = sub[iy, ix]
        low += wx * (sub[iy, ix + 1] - low)
        high = sub[iy + 1, ix]
        high += wx * (sub[iy + 1, ix + 1] - high)
        return low + wy * (high - low)


def add_stamp(image: np.ndarray, stamp: np.ndarray, ix: int, iy: int) -> None:
    """Add an odd-sided square ``stamp`` centred on pixel (ix, iy), clipped to ``image``."""
    ny, nx = image.shape
    h = stamp.shape[0] // 2
    x0, x1, y0, y1 = max(ix - h, 0), min(ix + h + 1, nx), max(iy - h, 0), min(iy + h + 1, ny)
    if x0 < x1 and y0 < y1:
        image[y0:y1, x0:x1] += stamp[y0 - iy + h : y1 - iy + h, x0 - ix + h : x1 - ix + h]


def isolated_stars(truth, nx: int, ny: int, radius_px: float, min_flux_e: float = 0.0):
    """Stars of ``truth`` at least ``radius_px`` from the edges and from any other source
    holding more than 1 % of their flux (trails excluded), brighter than ``min_flux_e``."""
    points = truth[truth["type"] != "trail"]
    x, y, flux = (points[c].to_numpy(float) for c in ("x_pix", "y_pix", "flux_e"))
    is_star = (points["type"] == "star").to_numpy()
    inside = (x > radius_px) & (x < nx - 1 - radius_px) & (y > radius_px) & (y < ny - 1 - radius_px)
    keep = np.flatnonzero(is_star & inside & (flux >= min_flux_e))
    near = np.hypot(x[keep, None] - x[None, :], y[keep, None] - y[None, :]) < radius_px
    near &= flux[None, :] > 0.01 * flux[keep, None]
    alone = near.sum(axis=1) == 1  # only itself
    return points.iloc[keep[alone]]


def star_fwhm_arcsec(image: np.ndarray, x: float, y: float, scale_arcsec: float,
                     background: float = 0.0, radius_px: int = 12,
                     method: str = "halfmax") -> float:  # fmt: skip
    """FWHM (arcsec) of the star at (x, y) in a noise-free (or high-SNR) image.

    ``"halfmax"``: the half-maximum area (:func:`fwhm_arcsec`) of the cut-out upsampled 8×
    by cubic splines; it recovers :func:`expected_fwhm_arcsec` with ``include_pixel=True``
    to 1-2 % when the FWHM spans 2.5 pixels or more (up to 13 % high at 1.5 pixels).
    ``"hsm"``: ``2.355 σ`` of GalSim's adaptive moments, exact for a Gaussian but 3-6 %
    above the FWHM of Kolmogorov-like profiles, whose wings widen the moments.
    """
    from scipy import ndimage

    ix, iy, r = round(x), round(y), int(radius_px)
    cut = np.asarray(image[iy - r : iy + r + 1, ix - r : ix + r + 1], dtype=float) - background
    if method == "hsm":
        moments = galsim.hsm.FindAdaptiveMom(galsim.Image(cut, scale=scale_arcsec), strict=False)
        if moments.moments_status != 0:
            return float("nan")
        return 2.0 * math.sqrt(2.0 * math.log(2.0)) * moments.moments_sigma * scale_arcsec
    if method != "halfmax":
        raise ValueError(f"FWHM method {method!r}; allowed: 'halfmax', 'hsm'")
    fine = ndimage.zoom(cut, 8, order=3)
    return fwhm_arcsec(fine, scale_arcsec * (cut.shape[0] - 1) / (fine.shape[0] - 1))
