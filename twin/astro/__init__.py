"""Almanac and visibility: where the sun, the moon and every target are, fast.

Import from the submodules: :mod:`twin.astro.almanac`, :mod:`twin.astro.orientation`,
:mod:`twin.astro.visibility`.
"""
