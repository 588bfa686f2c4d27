"""What every coadd returns: one image in one flux unit and what is needed to use it.

``image``: flux per pixel in the coadd's unit (the inputs' ``flux_scale_e`` defines it), so
a PSF fit with ``psf`` gives a source's flux in that unit whatever the method.
``variance``: the per-pixel variance of ``image``, propagated exactly from the inputs'
variance maps through each frame's kernel (``Σ_j k_j² ⊗ V_j``), so it holds the shot noise
of stars as well as of the sky. For the PSF-matched and the proper coadd neighbouring
pixels are correlated (the proper coadd's noise is white only where every input's is):
use the kernels for the noise of anything summed over pixels.
``psf``: the coadd's PSF where every frame enters (unit sum). Near a masked pixel of some
input the frames left make the pixel, and their PSF differs (except for the PSF-matched
coadd): ``frames_in`` says which frames entered each pixel (bit j for frame j), ``psfs``
holds the PSF of every such set, and :meth:`Coadd.psf_at` picks the one for a position.
``mask``: True where no frame could enter (image 0, variance inf, never NaN): the edge
band a kernel needs, and pixels every frame masked.
``kernels``: the per-frame kernels of the full set, ``image = Σ_j k_j ⊗ (data_j - bg_j)``
(electrons → coadd unit), from which :mod:`models.fusion.photometry` computes the exact
noise of a PSF-fit flux.
``flux_norm``: Zackay & Ofek's F_R for the proper coadd (``image · F_R`` is their R, of
unit variance on the sky); None for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Coadd:
    """A coadd: image (flux unit), variance, PSF, mask (True = no data), coverage."""

    method: str
    image: np.ndarray
    variance: np.ndarray
    psf: np.ndarray
    frames_in: np.ndarray  # int64 bit mask per pixel: bit j set where frame j entered
    psfs: dict[int, np.ndarray]  # frames_in value → the PSF of that set of frames
    kernels: tuple[np.ndarray, ...]
    flux_norm: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape

    @property
    def mask(self) -> np.ndarray:
        """True where no frame entered."""
        return self.frames_in == 0

    @property
    def n_frames(self) -> np.ndarray:
        """How many frames entered each pixel."""
        count = np.zeros(self.frames_in.shape, np.int16)
        for j in range(int(self.frames_in.max()).bit_length()):
            count += ((self.frames_in >> j) & 1).astype(np.int16)
        return count

    def psf_at(self, x_pix: float, y_pix: float) -> np.ndarray:
        """The PSF of the frames that made the pixel nearest ``(x, y)`` (the full set's if none)."""
        code = int(self.frames_in[round(y_pix), round(x_pix)])
        return self.psfs.get(code, self.psf)

    @property
    def sigma(self) -> np.ndarray:
        """Per-pixel standard deviation (inf where masked)."""
        return np.sqrt(self.variance)
