"""astropy configured to work offline, set once at the twin's boundary.

With its defaults astropy tries to download IERS-A tables and then raises for any date
past the bundled ones. The twin needs neither: an arcsecond-level UT1 error from the
bundled tables (or from UT1=UTC far in the future) is far below anything a telescope
scheduler or a 1-arcminute visibility check can see.
"""

from __future__ import annotations

import warnings

_CONFIGURED = False


def configure_astropy_offline() -> None:
    """Forbid downloads and degrade gracefully past the bundled Earth-orientation data."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    from astropy.utils import iers
    from astropy.utils.data import conf as data_conf

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    iers.conf.iers_degraded_accuracy = "warn"
    data_conf.allow_internet = False
    # Dates beyond the bundled tables are expected (scenarios run years ahead).
    warnings.filterwarnings("ignore", category=iers.IERSDegradedAccuracyWarning)
    warnings.filterwarnings("ignore", message=".*Tried to get polar motions.*")
    import erfa

    warnings.filterwarnings("ignore", category=erfa.ErfaWarning, message=".*dubious year.*")
    _CONFIGURED = True
