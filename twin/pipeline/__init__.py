"""Models in the loop: frames rendered as exposures end, site stages, the centre's response.

DESIGN.md step 10. Nothing here imports torch: a stage that needs it (``models/``)
imports it itself, so the twin runs without it.
"""
