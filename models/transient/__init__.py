"""Transient discovery (issue 12): references, registration and difference imaging.

Item 3 of the issue, as a library the stage and the classifier call (numpy, scipy,
astropy, SEP and reproject only; no torch here):

- :mod:`.image` the calibrated image a step takes and returns (electrons, variance,
  mask, WCS, zero point) and the calibration of a raw frame into one;
- :mod:`.reference` a deep template of the static sky, rendered by the twin;
- :mod:`.stars` star detection and centroids (SEP);
- :mod:`.registration` the astrometric refinement of a frame's WCS against the
  catalogue stars of its field (the header WCS carries the pointing error);
- :mod:`.resample` a frame onto another grid (``reproject``), variance and mask with it;
- :mod:`.psf` each image's PSF measured from its own stars;
- :mod:`.zogy` the proper difference image D, S and Scorr (Zackay, Ofek & Gal-Yam 2016);
- :mod:`.detect` candidates: connected regions of ``|Scorr| ≥ 5``;
- :mod:`.difference` the chain new + reference → candidates, step by step.
"""
