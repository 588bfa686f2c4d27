"""Transient discovery (issue 12): references, difference imaging, real/bogus, the stage.

The difference-imaging library the stage and the classifier call (numpy, scipy,
astropy, SEP and reproject only; no torch in these):

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

Real/bogus (torch) and the loop:

- :mod:`.cutouts` 63² (new, reference, D) triplets and scalar features per candidate;
- :mod:`.classifier` the real/bogus CNN and braai's VGG6 baseline, ``load_classifier``;
- :mod:`.dataset`, :mod:`.train`, :mod:`.evaluate`, :mod:`.cli`: ``skytwin models
  dataset|train|evaluate transient`` (weights and their commands in ``weights/``);
- :mod:`.stage` the ``transient`` pipeline stage (calibrate, reference, subtract,
  classify) and its per-field reference cache;
- :mod:`.discovery_eval` a run's completeness, false alerts and latencies against the
  population's truth.
"""
