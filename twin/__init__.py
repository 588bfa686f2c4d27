"""skytwin: a digital twin of a global network of optical telescopes.

Importing the package configures astropy to run offline (see :mod:`twin.offline`).
"""

from twin.offline import configure_astropy_offline

configure_astropy_offline()

__version__ = "0.1.0"
__all__ = ["__version__"]
