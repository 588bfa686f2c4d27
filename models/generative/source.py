"""``imaging.galaxies: diffusion``: a :class:`~twin.imaging.galaxies.GalaxyStampSource`
whose galaxies come from the diffusion model, through a bank of stamps per sky cell.

Why a bank per cell: the sky is drawn per 0.2° cell from the sky seed
(:mod:`twin.imaging.catalog`), so every exposure of a field must see the same galaxy
shapes, and sampling ~10 stamps/s on a core is far slower than the parametric fast
path. The first frame that touches a cell samples every galaxy of the cell brighter
than ``mag_limit_i`` (:func:`twin.imaging.catalog.cell_galaxies`: the same galaxies and
ids whatever the exposure), in a fixed order and batch, each from its own seed
``(sky seed, source_id)``, and writes them to ``BANK_DIR/<weights>-<steps>/sky<seed>/
cell_<dec>_<ra>_i<limit>.npz`` (arrays only, no pickle; written under a temporary name
and renamed, so parallel renderers are safe). Later frames read the file. Fainter
galaxies — too small (half-light radius ≲ 1″) for their shape to show under ground-based
seeing — and any stamp the model failed to draw stay parametric.

Conditioning of a twin galaxy (:func:`galaxy_conditioning`): its half-light radius
(disk and bulge together, :func:`truth_hlr_arcsec`), ellipticity ``1 - q`` with ``q``
the light-weighted axis ratio, position angle in image coordinates (as :func:`twin.imaging.galaxies.
galaxy_profile` shears), the cleanest real S/N (the manifest's ``render.log_snr``) and
the "real" token. The half-light radius in stamp pixels is the galaxy's own as the HDF
would see it, clipped to the range the real set covers; the stamp's scale in arcsec
per pixel is the truth's radius over the half-light radius measured on the cleaned
sample, so the drawn galaxy is exactly as large on the sky as the truth says.

Drawing (:func:`bank_transform`): as the parametric stamps are, in Fourier space on the
same :class:`~twin.imaging.galaxies.KGrid`: the stamp's transform (a separable DFT of its
pixels about their light centroid, times the transform of linear interpolation between
pixel centres) × the galaxy's sub-pixel shift × flux × PSF ⊗ pixel, inverse-FFT'd. The
orientation is the model's (it was asked for the position angle); the flux is the
truth's ``flux_e`` (the transform at k = 0), so the stamp sums to it up to the light
beyond the grid.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from twin.imaging.catalog import cell_galaxies, cell_of
from twin.imaging.galaxies import STAMP_SIZES, FourierGalaxyStamps, KGrid
from twin.imaging.psf import image_angle_deg

BANK_MAG_I = 20.0
"""Galaxies brighter than this (i band) come from the model; ~130 per 0.2° cell."""
DEFAULT_BANK_DIR = Path(os.environ.get("SKYTWIN_GALAXY_BANK", "~/.cache/skytwin/galaxy-bank"))
_LOADED_CELLS = 256
BANK_VERSION = "v3"
"""Part of a bank's folder name: a change in how banks are made must not reuse old ones."""


def truth_hlr_arcsec(table) -> np.ndarray:
    """A twin galaxy's half-light radius: where the light of its exponential disk and
    de Vaucouleurs bulge together reaches one half (each circularised: the Sérsic
    enclosed fraction ``P(2n, b_n (r/r_e)^(1/n))``, Graham & Driver 2005, eq. 2)."""
    from scipy.special import gammainc, gammaincinv

    bt = np.asarray(table["bulge_frac"], float)[:, None]
    r_d = np.asarray(table["hlr_disk_arcsec"], float)[:, None]
    r_b = np.maximum(np.asarray(table["hlr_bulge_arcsec"], float), 1e-6)[:, None]
    lo, hi = np.minimum(r_d, r_b), np.maximum(r_d, r_b)
    r = lo * (hi / lo) ** np.linspace(0.0, 1.0, 257)[None, :]  # r½ lies between the two
    b1, b4 = gammaincinv(2.0, 0.5), gammaincinv(8.0, 0.5)
    enclosed = (1 - bt) * gammainc(2.0, b1 * r / r_d) + bt * gammainc(8.0, b4 * (r / r_b) ** 0.25)
    return np.array([np.interp(0.5, e, x) for e, x in zip(enclosed, r, strict=True)])


def half_light_px(images: np.ndarray) -> np.ndarray:
    """Circular half-light radius (pixels) of clean stamps about their light centroid."""
    s = images.shape[-1]
    yy, xx = np.mgrid[:s, :s]
    out = np.zeros(len(images))
    for i, img in enumerate(images):
        total = float(img.sum())
        if total <= 0:
            continue
        cx, cy = (img * xx).sum() / total, (img * yy).sum() / total
        r = np.hypot(xx - cx, yy - cy).ravel()
        order = np.argsort(r)
        out[i] = float(np.interp(0.5 * total, np.cumsum(img.ravel()[order]), r[order]))
    return out


def galaxy_conditioning(table, render: Mapping, hdf_pixel_arcsec: float
                        ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Conditioning vectors (n, 5) of twin galaxies (rows of ``table``) and their stamp
    scales (arcsec per stamp pixel)."""
    from models.generative.dataset import conditioning

    bt = np.asarray(table["bulge_frac"], float)
    hlr = truth_hlr_arcsec(table)
    q = (1 - bt) * np.asarray(table["q_disk"], float) + bt * np.asarray(table["q_bulge"], float)
    lo, hi = render["hlr_px_range"]
    hlr_px = np.clip(hlr / hdf_pixel_arcsec, lo, hi)
    theta = image_angle_deg(np.asarray(table["pa_deg"], float))
    cond = conditioning(hlr_px, 1.0 - q, theta, render["log_snr"], 1.0)
    return cond, hlr / hlr_px


def galaxy_seeds(sky_seed: int, source_ids) -> list[int]:
    """One 63-bit sampler seed per galaxy, from the sky seed and its id only."""
    out = []
    for sid in np.asarray(source_ids, dtype=np.int64):
        ss = np.random.SeedSequence([int(sky_seed), int(sid) & 0xFFFFFFFF, int(sid) >> 32])
        out.append(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))
    return out


class CellBanks:
    """Banks of generated stamps, one per sky cell, on disk and in memory."""

    def __init__(self, generator, sky_seed: int, bank_dir: str | Path | None,
                 mag_limit_i: float = BANK_MAG_I) -> None:  # fmt: skip
        from models.generative.dataset import HDF_PIXEL_ARCSEC

        self.generator = generator
        self.sky_seed = int(sky_seed)
        self.mag_limit_i = float(mag_limit_i)
        self.hdf_pixel_arcsec = HDF_PIXEL_ARCSEC
        root = Path(bank_dir).expanduser() if bank_dir else DEFAULT_BANK_DIR.expanduser()
        tag = f"{generator.sha256[:12]}-{generator.steps}steps-{BANK_VERSION}"
        self.folder = root / tag / f"sky{self.sky_seed}"

    def path(self, i_dec: int, i_ra: int) -> Path:
        return self.folder / f"cell_{int(i_dec)}_{int(i_ra)}_i{self.mag_limit_i:g}.npz"

    def build(self, i_dec: int, i_ra: int) -> dict[str, np.ndarray]:
        """Sample the cell's bank (see module docs) and write it."""
        table = cell_galaxies(i_dec, i_ra, self.mag_limit_i, self.sky_seed)
        if not table.empty:
            table = table[table["i_mag"] <= self.mag_limit_i]
        ids = table["source_id"].to_numpy(np.int64) if len(table) else np.zeros(0, np.int64)
        size = self.generator.size
        images, ok = np.zeros((len(ids), size, size), np.float32), np.zeros(len(ids), bool)
        scale = np.zeros(len(ids))
        if len(ids):
            cond, _ = galaxy_conditioning(table, self.generator.manifest["render"],
                                          self.hdf_pixel_arcsec)  # fmt: skip
            images, ok = self.generator.stamps(cond, galaxy_seeds(self.sky_seed, ids))
            # The truth's radius exactly, whatever the sample's own: scale by its measured r½.
            scale = truth_hlr_arcsec(table) / np.maximum(half_light_px(images), 0.3)
        bank = {"source_id": ids, "images": images.astype(np.float32), "ok": ok,
                "scale_arcsec": np.asarray(scale, float)}  # fmt: skip
        path = self.path(i_dec, i_ra)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **bank)
        os.replace(tmp, path)
        return bank

    def get(self, i_dec: int, i_ra: int) -> dict[str, np.ndarray]:
        key = (int(i_dec), int(i_ra))
        cache = _cell_cache(self.folder, self.mag_limit_i)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        path = self.path(*key)
        if path.is_file():
            with np.load(path, allow_pickle=False) as f:
                bank = {k: f[k] for k in f.files}
        else:
            bank = self.build(*key)
        bank["index"] = {int(s): i for i, s in enumerate(bank["source_id"])}
        cache[key] = bank
        while len(cache) > _LOADED_CELLS:
            cache.popitem(last=False)
        return bank


_CACHES: dict[tuple[Path, float], OrderedDict] = {}


def _cell_cache(folder: Path, limit: float) -> OrderedDict:
    return _CACHES.setdefault((folder, limit), OrderedDict())


def bank_transform(images: np.ndarray, scales: np.ndarray, flux: np.ndarray,
                   offsets_pix: np.ndarray, grid: KGrid) -> np.ndarray:  # fmt: skip
    """Fourier transforms (B, rows, cols) on ``grid`` of unit-flux stamps ``images`` (B, s, s)
    with ``scales`` arcsec per stamp pixel, times ``flux``, centred on their light centroid
    and moved by ``offsets_pix`` (B, 2) frame pixels (see module docs)."""
    s = images.shape[-1]
    idx = np.arange(s, dtype=float)
    total = images.sum(axis=(1, 2))
    cx = (images.sum(axis=1) * idx).sum(axis=1) / total
    cy = (images.sum(axis=2) * idx).sum(axis=1) / total
    xs = (idx[None, :] - cx[:, None]) * scales[:, None]  # (B, s) arcsec
    ys = (idx[None, :] - cy[:, None]) * scales[:, None]
    ex = np.exp(-1j * xs[:, :, None] * grid.kx[None, None, :])  # (B, s, nkx)
    ey = np.exp(-1j * ys[:, None, :] * grid.ky[None, :, None])  # (B, nky, s)
    # einsum, not matmul: a stack of small BLAS products can stall on thread start-up
    # (as in twin.imaging.galaxies._knot_transform).
    k = np.einsum("byx,bxk->byk", images.astype(complex), ex)  # (B, s, nkx)
    k = np.einsum("bly,byk->blk", ey, k)  # (B, nky, nkx)
    # Linear interpolation between the stamp's pixel centres: its transform is sinc².
    tx = np.sinc(grid.kx[None, :] * scales[:, None] / (2 * math.pi)) ** 2
    ty = np.sinc(grid.ky[None, :] * scales[:, None] / (2 * math.pi)) ** 2
    k *= (ty[:, :, None] * tx[:, None, :]) * (flux / total)[:, None, None]
    shift = np.asarray(offsets_pix, float).reshape(-1, 2) * grid.scale
    phase_y = np.exp(-1j * shift[:, 1, None] * grid.ky)
    phase_x = np.exp(-1j * shift[:, 0, None] * grid.kx)
    return k * (phase_y[:, :, None] * phase_x[:, None, :])


def extent_arcsec(images: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Largest distance of a lit pixel from each stamp's light centroid, arcsec."""
    s = images.shape[-1]
    yy, xx = np.mgrid[:s, :s]
    total = images.sum(axis=(1, 2))
    cx = (images * xx).sum(axis=(1, 2)) / total
    cy = (images * yy).sum(axis=(1, 2)) / total
    r = np.hypot(xx[None] - cx[:, None, None], yy[None] - cy[:, None, None])
    return (np.where(images > 0, r, 0.0).max(axis=(1, 2)) + 1.0) * scales


class DiffusionGalaxyStamps(FourierGalaxyStamps):
    """Bright galaxies from the generator's cell banks; the rest as the parametric source.

    ``psf_fwhm_arcsec``, ``sky_seed`` and ``bank_dir`` as
    :func:`twin.imaging.galaxies.galaxy_stamp_source` passes them; ``generator`` (a
    :class:`~models.generative.generator.GalaxyGenerator`) defaults to the shipped one.
    """

    def __init__(self, psf_fwhm_arcsec: float, *, sky_seed: int = 0,
                 bank_dir: str | Path | None = None, generator=None,
                 mag_limit_i: float = BANK_MAG_I) -> None:  # fmt: skip
        super().__init__(psf_fwhm_arcsec)
        if generator is None:
            from models.generative.generator import shared_generator

            generator = shared_generator()
        self.banks = CellBanks(generator, sky_seed, bank_dir, mag_limit_i)

    def lookup(self, galaxies: list[Mapping]) -> list[tuple[np.ndarray, float] | None]:
        """Each galaxy's bank stamp and scale, or None where it has none."""
        ids = np.array([int(g["source_id"]) for g in galaxies], dtype=np.int64)
        i_dec, i_ra = cell_of(ids)
        out: list[tuple[np.ndarray, float] | None] = [None] * len(galaxies)
        for cell in sorted(set(zip(i_dec.tolist(), i_ra.tolist(), strict=True))):
            bank = self.banks.get(*cell)
            members = np.flatnonzero((i_dec == cell[0]) & (i_ra == cell[1]))
            for m in members:
                j = bank["index"].get(int(ids[m]))
                if j is not None and bank["ok"][j]:
                    out[m] = (bank["images"][j], float(bank["scale_arcsec"][j]))
        return out

    def stamps(self, galaxies, psf, pixel_scale_arcsec, offsets_pix) -> list[np.ndarray]:
        found = self.lookup(galaxies)
        offsets = np.asarray(offsets_pix, dtype=float).reshape(-1, 2)
        plain = [i for i, f in enumerate(found) if f is None]
        out: list[np.ndarray] = [np.empty((0, 0))] * len(galaxies)
        if plain:
            drawn = super().stamps([galaxies[i] for i in plain], psf, pixel_scale_arcsec,
                                   [tuple(offsets[i]) for i in plain])  # fmt: skip
            for i, image in zip(plain, drawn, strict=True):
                out[i] = image
        banked = [i for i, f in enumerate(found) if f is not None]
        if not banked:
            return out
        images = np.stack([found[i][0] for i in banked]).astype(float)
        scales = np.array([found[i][1] for i in banked])
        flux = np.array([float(galaxies[i]["flux_e"]) for i in banked])
        need = 2.0 * (extent_arcsec(images, scales) + 3.0 * self.psf_fwhm_arcsec)
        sizes = np.array([next((n for n in STAMP_SIZES if n >= v / pixel_scale_arcsec),
                               STAMP_SIZES[-1]) for v in need])  # fmt: skip
        for n in np.unique(sizes):
            grid = self.grid(psf, int(n), pixel_scale_arcsec)
            sel = np.flatnonzero(sizes == n)
            per_batch = max(1, self.batch_elements // grid.kernel.size)
            for start in range(0, len(sel), per_batch):
                part = sel[start : start + per_batch]
                rows = [banked[i] for i in part]
                k = bank_transform(images[part], scales[part], flux[part], offsets[rows], grid)
                for i, image in zip(rows, grid.to_pixels(k * grid.kernel), strict=True):
                    out[i] = image
        return out
