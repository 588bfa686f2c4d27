"""What a galaxy looks like on the detector: its profile and its PSF-convolved stamp.

A galaxy (one row of the truth table, :mod:`twin.imaging.scene`) is a de Vaucouleurs
bulge (Sérsic n = 4) plus an exponential disk (n = 1) plus star-forming knots: point
sources (clumps of 0.1-1 kpc, unresolved from the ground) scattered over the disk with the
radial distribution of its light (radius ~ Gamma(2) × scale length, uniform azimuth). The
knots sit in the disk's plane (they take its shear); bulge and disk share the position
angle. Knot positions come from a counter-based hash of the galaxy's ``knot_seed``
(:func:`knot_offsets`), so every renderer places them identically, in any order.
:func:`galaxy_profile` builds the galaxy as a GalSim object; the plain renderer convolves
that with the PSF and draws it.

Stamps go through the small :class:`GalaxyStampSource` protocol, so a learned generator
can supply them instead: :func:`galaxy_stamp_source` picks one by the scenario's
``imaging.galaxies`` name — ``parametric`` (the default, below) or a source registered
under the ``skytwin.galaxy_sources`` entry points, such as ``diffusion``
(``models/generative``: stamps drawn by a diffusion model trained on the Hubble Deep
Field). The twin never imports ``models``, so it runs without torch; asking for a source
whose package cannot be imported is a :class:`~twin.errors.ConfigError` saying what to
install. Two built-in implementations:

- :class:`FourierGalaxyStamps` (the fast default): the profile evaluated in Fourier space
  with numpy — exponential ``(1 + k² r_s²)^-3/2``, knots ``exp(-i k·x_j)``, the de
  Vaucouleurs transform tabulated once from GalSim, shears as ``K(Aᵀ k)`` with GalSim's
  shear matrix ``A`` — times the PSF ⊗ pixel transform computed once per frame, folded
  back beyond the Nyquist frequency where the PSF is undersampled (as GalSim's ``drawFFT``
  does), inverse-FFT'd on a small grid, many galaxies per call.
- :class:`GalSimGalaxyStamps`: any GalSim profile (``galaxy_profile`` by default) drawn with
  ``drawKImage`` on the same grid: slower, but takes whatever profile you give it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Protocol

import galsim
import numpy as np

from twin.errors import ConfigError
from twin.imaging.psf import image_angle_deg

ProfileFn = Callable[[Mapping], galsim.GSObject]
SOURCES_GROUP = "skytwin.galaxy_sources"
GALAXY_SOURCES = ("parametric", "diffusion")
"""Names ``imaging.galaxies`` accepts; all but ``parametric`` come from entry points."""
STAMP_SIZES = (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512)
ALIAS_TOLERANCE = 0.01
_EXP_HLR_PER_SCALE = 1.6783469900166605  # half-light radius / scale length of an exponential


def _hash_uniforms(seeds: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1): splitmix64 of ``seed + counter × golden`` (no generator state)."""
    z = np.asarray(seeds, dtype=np.int64).astype(np.uint64) + (
        np.asarray(counters, dtype=np.uint64) + np.uint64(1)
    ) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return ((z >> np.uint64(11)).astype(float) + 0.5) / 2.0**53


def knot_counts(galaxies: list[Mapping]) -> np.ndarray:
    """Knots per galaxy (none where ``knot_frac`` is 0)."""
    n = _column(galaxies, "n_knots").astype(int)
    return np.where(_column(galaxies, "knot_frac") > 0.0, n, 0)


def knot_positions(galaxies: list[Mapping]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All knots of ``galaxies``: owner index, and x, y (arcsec) in the face-on disk.

    Radii are Gamma(2) (a sum of two exponentials) in units of the disk's scale length,
    azimuths uniform; the uniforms come from a hash of the galaxy's ``knot_seed`` and the
    knot's rank, so a knot's place does not depend on which other galaxies are drawn.
    """
    counts = knot_counts(galaxies)
    owner = np.repeat(np.arange(len(galaxies)), counts)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    seeds = _column(galaxies, "knot_seed").astype(np.int64)[owner]
    u1, u2, u3 = (_hash_uniforms(seeds, 3 * rank + j) for j in range(3))
    scale_length = _column(galaxies, "hlr_disk_arcsec")[owner] / _EXP_HLR_PER_SCALE
    radius = -np.log(u1 * u2) * scale_length
    angle = 2.0 * math.pi * u3
    return owner, radius * np.cos(angle), radius * np.sin(angle)


def knot_offsets(galaxy: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """One galaxy's knot positions (arcsec) in its face-on disk (:func:`knot_positions`)."""
    _, x, y = knot_positions([galaxy])
    return x, y


def _shears(galaxy: Mapping) -> tuple[galsim.Shear, galsim.Shear]:
    beta = float(image_angle_deg(galaxy["pa_deg"])) * galsim.degrees
    return (galsim.Shear(q=float(galaxy["q_disk"]), beta=beta),
            galsim.Shear(q=float(galaxy["q_bulge"]), beta=beta))  # fmt: skip


def galaxy_profile(galaxy: Mapping) -> galsim.GSObject:
    """Bulge + disk + knots with total flux ``galaxy['flux_e']``, arcsec, centred on 0."""
    flux, bulge_frac = float(galaxy["flux_e"]), float(galaxy["bulge_frac"])
    disk_flux = flux * (1.0 - bulge_frac)
    kx, ky = knot_offsets(galaxy)
    knot_frac = float(galaxy["knot_frac"]) if len(kx) else 0.0
    parts = [galsim.Exponential(half_light_radius=float(galaxy["hlr_disk_arcsec"]),
                                flux=disk_flux * (1.0 - knot_frac))]  # fmt: skip
    knot = galsim.DeltaFunction(flux=disk_flux * knot_frac / max(len(kx), 1))
    parts += [knot.shift(float(x), float(y)) for x, y in zip(kx, ky, strict=True)]
    disk_shear, bulge_shear = _shears(galaxy)
    disk = galsim.Sum(parts).shear(disk_shear)
    if bulge_frac <= 0.0:
        return disk
    bulge = galsim.DeVaucouleurs(half_light_radius=float(galaxy["hlr_bulge_arcsec"]),
                                 flux=flux * bulge_frac)  # fmt: skip
    return disk + bulge.shear(bulge_shear)


class GalaxyStampSource(Protocol):
    """Anything that turns a galaxy's truth row into a PSF-convolved, pixelised stamp.

    A source may also offer ``stamps(galaxies, psf, pixel_scale_arcsec, offsets_pix)`` (a
    list of rows and of offsets; returns the list of stamps): the renderer then hands it
    all the frame's galaxies at once.
    """

    def stamp(self, galaxy: Mapping, psf: galsim.GSObject, pixel_scale_arcsec: float,
              rng: np.random.Generator, offset_pix: tuple[float, float] = (0.0, 0.0),
              ) -> np.ndarray:  # fmt: skip
        """Electrons per pixel on an odd square whose central pixel is the galaxy's nearest.

        The galaxy's centre is ``offset_pix`` (each in [-0.5, 0.5]) from that pixel's centre;
        the stamp sums to about ``galaxy['flux_e']``. ``rng`` is the galaxy's own generator
        (seeded by its ``knot_seed``, so a stamp does not depend on drawing order), for
        sources that need randomness; the built-in ones are deterministic without it.
        """
        ...


def stamp_size(galaxy: Mapping, psf_fwhm_arcsec: float, pixel_scale_arcsec: float) -> int:
    """FFT grid side holding 4 disk half-light radii plus 3 PSF FWHM either side."""
    hlr = max(float(galaxy["hlr_disk_arcsec"]), 2.0 * float(galaxy["hlr_bulge_arcsec"]))
    need = 2.0 * (4.0 * hlr + 3.0 * psf_fwhm_arcsec) / pixel_scale_arcsec
    return next((n for n in STAMP_SIZES if n >= need), STAMP_SIZES[-1])


@dataclass(frozen=True)
class KGrid:
    """A k-space grid for stamps of side ``n`` pixels and the PSF ⊗ pixel transform on it.

    With ``fold == 1`` the grid is the half plane of a real FFT (``kx >= 0``); otherwise it
    spans ``fold`` Nyquist zones in full FFT order, folded back before the inverse FFT.
    """

    n: int
    fold: int
    scale: float
    bounds: galsim.BoundsI  # GalSim k-image bounds, in units of dk
    kx: np.ndarray  # 1-D, the grid's columns
    ky: np.ndarray  # 1-D, its rows (FFT order)
    kernel: np.ndarray  # PSF ⊗ pixel at (ky, kx)

    @property
    def dk(self) -> float:
        return 2.0 * math.pi / (self.n * self.scale)

    @classmethod
    def build(cls, psf: galsim.GSObject, n: int, scale: float) -> KGrid:
        effective = galsim.Convolve(psf, galsim.Pixel(scale))
        fold = fold_for(effective, scale)
        nf, dk = n * fold, 2.0 * math.pi / (n * scale)
        lo, hi = -(nf // 2), nf - nf // 2 - 1
        bounds = galsim.BoundsI(0 if fold == 1 else lo, n // 2 if fold == 1 else hi, lo, hi)
        drawn = effective.drawKImage(bounds=bounds, scale=dk, recenter=False).array
        ky = dk * np.fft.ifftshift(np.arange(lo, hi + 1))
        if fold == 1:
            return cls(n, fold, scale, bounds, dk * np.arange(n // 2 + 1), ky,
                       np.fft.ifftshift(drawn, axes=0))  # fmt: skip
        return cls(n, fold, scale, bounds, ky, ky, np.fft.ifftshift(drawn))

    def reorder(self, k_image: np.ndarray) -> np.ndarray:
        """A GalSim k-image drawn on :attr:`bounds` in this grid's (FFT) order."""
        return np.fft.ifftshift(k_image, axes=(0,) if self.fold == 1 else (0, 1))

    def to_pixels(self, k_product: np.ndarray) -> np.ndarray:
        """Invert ``(..., rows, cols)`` transforms to odd stamps ``(..., n-1, n-1)``.

        Sampling the pixel-convolved image at pixel centres folds k beyond Nyquist back.
        """
        n = self.n
        if self.fold == 1:
            pixels = np.fft.irfft2(k_product, s=(n, n))
        else:
            lead = k_product.shape[:-2]
            folded = k_product.reshape(*lead, self.fold, n, self.fold, n).sum(axis=(-4, -2))
            pixels = np.fft.ifft2(folded).real
        return np.fft.fftshift(pixels, axes=(-2, -1))[..., 1:, 1:]


def fold_for(effective_psf: galsim.GSObject, scale: float) -> int:
    """How many Nyquist zones of k to fold back: 1 if the PSF ⊗ pixel is band-limited enough.

    Sampling at pixel centres aliases everything beyond the Nyquist frequency π / scale.
    Where the effective PSF's transform there is below :data:`ALIAS_TOLERANCE` (at most that
    fraction of any source's light is misplaced) one zone suffices; otherwise up to 3.
    """
    nyquist = math.pi / scale
    edge = max(abs(effective_psf.kValue(galsim.PositionD(kx, ky)))
               for kx, ky in ((nyquist, 0.0), (0.0, nyquist), (nyquist, nyquist)))  # fmt: skip
    if edge < ALIAS_TOLERANCE:
        return 1
    return max(1, min(3, math.ceil(effective_psf.maxk * scale / math.pi)))


class _FourierStamps:
    """Shared machinery: one :class:`KGrid` per stamp size for the current PSF."""

    def __init__(self, psf_fwhm_arcsec: float) -> None:
        self.psf_fwhm_arcsec = float(psf_fwhm_arcsec)
        self._psf: galsim.GSObject | None = None
        self._grids: dict[tuple[int, float], KGrid] = {}

    def grid(self, psf: galsim.GSObject, n: int, scale: float) -> KGrid:
        if psf is not self._psf:
            self._psf, self._grids = psf, {}
        if (n, scale) not in self._grids:
            self._grids[n, scale] = KGrid.build(psf, n, scale)
        return self._grids[n, scale]


class GalSimGalaxyStamps(_FourierStamps):
    """Stamps of any GalSim profile (``profile(galaxy)``) via ``drawKImage``."""

    def __init__(self, psf_fwhm_arcsec: float, profile: ProfileFn = galaxy_profile) -> None:
        super().__init__(psf_fwhm_arcsec)
        self.profile = profile

    def stamp(self, galaxy, psf, pixel_scale_arcsec, rng, offset_pix=(0.0, 0.0)) -> np.ndarray:
        n = stamp_size(galaxy, self.psf_fwhm_arcsec, pixel_scale_arcsec)
        grid = self.grid(psf, n, pixel_scale_arcsec)
        dx, dy = (float(o) * pixel_scale_arcsec for o in offset_pix)
        drawn = self.profile(galaxy).shift(dx, dy).drawKImage(
            bounds=grid.bounds, scale=grid.dk, recenter=False)  # fmt: skip
        return grid.to_pixels(grid.reorder(drawn.array) * grid.kernel)


@lru_cache(maxsize=1)
def _devaucouleurs_transform() -> tuple[np.ndarray, np.ndarray]:
    """K(k) of a unit-flux, unit half-light-radius de Vaucouleurs profile, from GalSim."""
    profile = galsim.DeVaucouleurs(half_light_radius=1.0)
    k = np.concatenate([[0.0], np.geomspace(1e-3, 2e3, 800)])
    return k, np.array([profile.kValue(galsim.PositionD(float(v), 0.0)).real for v in k])


def shear_matrix(q, beta_deg) -> np.ndarray:
    """GalSim's ``Shear(q, beta).getMatrix()`` for arrays: shape ``(..., 2, 2)``, det 1."""
    g = (1.0 - np.asarray(q, dtype=float)) / (1.0 + np.asarray(q, dtype=float))
    two_beta = 2.0 * np.radians(beta_deg)
    g1, g2 = g * np.cos(two_beta), g * np.sin(two_beta)
    norm = 1.0 / np.sqrt(1.0 - g**2)
    return norm[..., None, None] * np.stack([np.stack([1 + g1, g2], -1),
                                             np.stack([g2, 1 - g1], -1)], -2)  # fmt: skip


def _column(galaxies: list[Mapping], key: str) -> np.ndarray:
    return np.array([float(g[key]) for g in galaxies])


def _sheared_k2(matrix: np.ndarray, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
    """|Aᵀ k|² on the grid for each galaxy's shear matrix A (``(B, 2, 2)``): (B, ny, nx)."""
    a = matrix[:, None, None]
    return (a[..., 0, 0] * kx + a[..., 1, 0] * ky) ** 2 + (
        a[..., 0, 1] * kx + a[..., 1, 1] * ky
    ) ** 2


class FourierGalaxyStamps(_FourierStamps):
    """The fast default: :func:`galaxy_profile` evaluated analytically in Fourier space.

    Besides the protocol's ``stamp`` it offers ``stamps(galaxies, psf, scale, offsets)`` for
    a batch, which the renderer prefers: galaxies sharing a grid size are one array.
    """

    batch_elements = 1_000_000  # k-grid points per vectorised batch

    def stamp(self, galaxy, psf, pixel_scale_arcsec, rng, offset_pix=(0.0, 0.0)) -> np.ndarray:
        return self.stamps([galaxy], psf, pixel_scale_arcsec, [offset_pix])[0]

    def stamps(self, galaxies: list[Mapping], psf: galsim.GSObject, pixel_scale_arcsec: float,
               offsets_pix: list[tuple[float, float]]) -> list[np.ndarray]:  # fmt: skip
        """Stamps of many galaxies (same conventions as ``stamp``), in input order."""
        sizes = np.array([stamp_size(g, self.psf_fwhm_arcsec, pixel_scale_arcsec)
                          for g in galaxies])  # fmt: skip
        offsets = np.asarray(offsets_pix, dtype=float).reshape(-1, 2)
        out: list[np.ndarray] = [np.empty((0, 0))] * len(galaxies)
        for n in np.unique(sizes):
            grid = self.grid(psf, int(n), pixel_scale_arcsec)
            members = np.flatnonzero(sizes == n)
            per_batch = max(1, self.batch_elements // grid.kernel.size)
            for start in range(0, len(members), per_batch):
                sel = members[start : start + per_batch]
                k_gal = galaxy_transform([galaxies[i] for i in sel], offsets[sel], grid)
                for i, image in zip(sel, grid.to_pixels(k_gal * grid.kernel), strict=True):
                    out[i] = image
        return out


def galaxy_transform(galaxies: list[Mapping], offsets_pix: np.ndarray, grid: KGrid) -> np.ndarray:
    """Fourier transforms of :func:`galaxy_profile` on ``grid``, shape (B, rows, cols).

    ``offsets_pix`` (B, 2) moves each galaxy from the grid's centre, in pixels.
    """
    kx, ky = grid.kx[None, None, :], grid.ky[None, :, None]
    flux, bulge_frac = _column(galaxies, "flux_e"), _column(galaxies, "bulge_frac")
    beta = image_angle_deg(_column(galaxies, "pa_deg"))
    counts = knot_counts(galaxies)
    knot_frac = np.where(counts > 0, _column(galaxies, "knot_frac"), 0.0)
    disk_flux = flux * (1.0 - bulge_frac)
    disk_shear = shear_matrix(_column(galaxies, "q_disk"), beta)
    k2 = _sheared_k2(disk_shear, kx, ky)
    r_s = _column(galaxies, "hlr_disk_arcsec")[:, None, None] / _EXP_HLR_PER_SCALE
    k_gal = (disk_flux * (1.0 - knot_frac))[:, None, None] * (1.0 + k2 * r_s**2) ** -1.5
    kb = np.sqrt(_sheared_k2(shear_matrix(_column(galaxies, "q_bulge"), beta), kx, ky))
    kb *= _column(galaxies, "hlr_bulge_arcsec")[:, None, None]
    table_k, table_v = _devaucouleurs_transform()
    k_gal += (flux * bulge_frac)[:, None, None] * np.interp(kb, table_k, table_v, right=0.0)
    shift = offsets_pix * grid.scale
    phase_y = np.exp(-1j * shift[:, 1, None] * grid.ky)
    phase_x = np.exp(-1j * shift[:, 0, None] * grid.kx)
    k_gal = k_gal * (phase_y[:, :, None] * phase_x[:, None, :])
    if counts.any():
        knot_flux = disk_flux * knot_frac / np.maximum(counts, 1)
        k_gal += _knot_transform(galaxies, disk_shear, shift, grid) * knot_flux[:, None, None]
    return k_gal


def _knot_transform(galaxies, shears: np.ndarray, shifts: np.ndarray, grid: KGrid) -> np.ndarray:
    """Σ_j exp(-i k·(A x_j + shift)) per galaxy, (B, rows, cols): unit point knots."""
    owner, x, y = knot_positions(galaxies)
    a = shears[owner]
    xs = a[:, 0, 0] * x + a[:, 0, 1] * y + shifts[owner, 0]
    ys = a[:, 1, 0] * x + a[:, 1, 1] * y + shifts[owner, 1]
    phase_y, phase_x = np.exp(-1j * np.outer(ys, grid.ky)), np.exp(-1j * np.outer(xs, grid.kx))
    counts = np.bincount(owner, minlength=len(galaxies))
    out = np.zeros((len(galaxies), len(grid.ky), len(grid.kx)), dtype=complex)
    # Each knot's phase factors into a ky and a kx part. Galaxies with c knots at a time:
    # einsum sums the c outer products per galaxy in numpy's own loop (a BLAS product this
    # small can stall for milliseconds on thread start-up).
    order = np.argsort(owner, kind="stable")
    for c in np.unique(counts[counts > 0]):
        members = np.flatnonzero(counts == c)
        knots = order[np.isin(owner[order], members)].reshape(len(members), c)
        out[members] = np.einsum("bky,bkx->byx", phase_y[knots], phase_x[knots])
    return out


def galaxy_stamp_source(kind: str, psf_fwhm_arcsec: float, *, sky_seed: int = 0,
                        bank_dir: str | None = None) -> GalaxyStampSource:  # fmt: skip
    """The stamp source named ``kind`` for a frame whose PSF FWHM is ``psf_fwhm_arcsec``.

    ``parametric`` is :class:`FourierGalaxyStamps` itself (the frames of a scenario that
    does not say otherwise are those of the code before this option existed). Other names
    are looked up in the :data:`SOURCES_GROUP` entry points and called as
    ``factory(psf_fwhm_arcsec, sky_seed=..., bank_dir=...)``: ``sky_seed`` is the sky the
    frame shows (a source may cache per sky cell), ``bank_dir`` where it may cache.
    """
    if kind == "parametric":
        return FourierGalaxyStamps(psf_fwhm_arcsec)
    eps = {ep.name: ep for ep in entry_points(group=SOURCES_GROUP)}
    if kind not in eps:
        allowed = ", ".join(["parametric", *sorted(eps)])
        raise ConfigError("imaging", "galaxies", f"unknown galaxy source {kind!r}; allowed: "
                          f"{allowed}")  # fmt: skip
    try:
        factory = eps[kind].load()
    except ImportError as err:
        raise ConfigError("imaging", "galaxies", f"galaxy source {kind!r} cannot be loaded "
                          f"({err.name} is not installed: pip install torch, or use "
                          "'parametric')") from None  # fmt: skip
    return factory(psf_fwhm_arcsec, sky_seed=sky_seed, bank_dir=bank_dir)
