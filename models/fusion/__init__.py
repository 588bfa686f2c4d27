"""Multi-site fusion (issue 13): classical coadds of frames already on one pixel grid.

Item 2 of the issue, the baselines a learned fusion has to beat, as a numpy/scipy
library (no torch here, so the twin and the CLI can fuse without it):

- :func:`~models.fusion.ivw.inverse_variance_coadd`: each frame scaled to one flux unit
  and averaged with weights ``F_j² / σ_j²``; the coadd's PSF is the weighted mean PSF.
- :func:`~models.fusion.psf_matched.psf_matched_coadd`: each frame convolved to the
  broadest PSF first, then averaged; one PSF everywhere, at the price of the best seeing.
- :func:`~models.fusion.proper.proper_coadd`: Zackay & Ofek (2017, ApJ 836, 187) proper
  coaddition, the optimal linear coadd for point sources: its point-source SNR² is the
  sum of the inputs'.

All three take :class:`~models.fusion.frame.AlignedFrame` s (pixels in electrons with
their variance, mask, PSF stamp, flux scale and background noise) and return a
:class:`~models.fusion.result.Coadd` (image in one flux unit, per-pixel variance, PSF,
mask, coverage). The shared machinery — per-frame kernels applied by convolution,
masks widened by each kernel's footprint, the coadd of the frames left where some are
masked — is :mod:`.combine`; :mod:`.photometry` measures point-source flux, SNR and 5σ
depth on the results; :mod:`.figures` makes the issue's figures on twin stacks.
"""

from models.fusion.frame import AlignedFrame, flux_scale_from_zero_point
from models.fusion.ivw import inverse_variance_coadd
from models.fusion.proper import proper_coadd
from models.fusion.psf_matched import psf_matched_coadd
from models.fusion.result import Coadd

METHODS = {
    "ivw": inverse_variance_coadd,
    "psf-matched": psf_matched_coadd,
    "proper": proper_coadd,
}
"""The baselines by the name ``skytwin fuse --method`` will use."""

__all__ = [
    "METHODS",
    "AlignedFrame",
    "Coadd",
    "flux_scale_from_zero_point",
    "inverse_variance_coadd",
    "proper_coadd",
    "psf_matched_coadd",
]
