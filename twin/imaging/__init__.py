"""Frames: every simulated exposure rendered as the raw FITS a camera would write.

Pipeline (DESIGN.md step 9): :mod:`spec` (what one exposure needs) → :mod:`catalog`
(stars, galaxies, transients, trails) → :mod:`psf` (atmosphere ⊗ optics ⊗ defocus ⊗
tracking) → :mod:`render` (expected electrons) → :mod:`detector` (flat, dark, noise,
defects, saturation, cosmic rays, gain, bias) → :mod:`fits` (header, WCS, truth table).
:mod:`calibration` makes biases, darks and twilight flats; :mod:`preview` PNGs;
:mod:`frames` renders a run's exposures with a pool of processes.
"""
