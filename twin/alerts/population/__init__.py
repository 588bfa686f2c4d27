"""Transients nobody announced: the sky's own supernovae, fast transients, variable stars,
AGN and asteroids, with truth.

The external alert stream (:mod:`twin.alerts.stream`) announces one transient per alert;
this population is what a survey frame shows besides, and what a discovery pipeline
must find on its own. It is placed in the static sky (:mod:`twin.imaging.catalog`) as
the stars and galaxies are: a function of the sky position, ``sky_seed`` and time only,
so every frame of a field, at any site, in any run with the same ``sky_seed``, sees the
same members at the same magnitudes.

Configured by the scenario's ``imaging.population`` (:class:`PopulationSpec`, rates and
their sources in :mod:`~twin.alerts.population.spec`); absent (the default), nothing
changes. Modules: ``explosive`` (supernovae in host galaxies, fast transients),
``persistent`` (variable stars, AGN), ``asteroids``, ``frame`` (what a frame renders),
``members`` (listing).

API, for measurements against truth:

- :func:`population_members` ``(ra_deg, dec_deg, radius_deg, mjd0, mjd1, population,
  sky_seed=0, *, band="r", at_mjd=None, kinds=POP_KINDS, static_faint_mag=21.0)`` →
  DataFrame of every member that may be seen in the circle during [mjd0, mjd1]:
  ``pop_id``, ``pop_kind``, ``curve``, ``source_id``, ``ra_deg``, ``dec_deg``,
  ``t0_mjd``, ``peak_mag_r``, ``mean_mag``, ``host_id``, ..., ``mag`` at ``at_mjd``.
  E.g. completeness vs peak magnitude of unannounced transients: list the members of
  ``kinds=("sn_ia", "sn_cc", "fast")`` over the run's fields and nights, match found
  candidates by ``pop_id`` (or position), bin by ``peak_mag_r``.
- :func:`member_mags` ``(members, mjd, population, sky_seed=0)`` → their magnitudes at
  another time.
- :func:`population_in_frame` ``(spec, sky_seed=0, population=None)`` → the members a
  frame renders, as rows of its truth table (``x_pix``, ``y_pix``, ``mag`` at
  mid-exposure in the frame's band, ``flux_e``, ``in_frame``, ``pop_kind``, ``pop_id``).

In a frame's truth (:mod:`twin.imaging.scene`): ``pop_kind`` (:data:`POP_KINDS`; '' for
the static sky, announced transients and trails) and ``pop_id``. The deep reference
template (:mod:`models.transient.reference`) shows variables and AGN at their mean and no
transients or asteroids.
"""

from __future__ import annotations

import pandas as pd

from twin.alerts.population.keys import EXPLOSIVE_KINDS, PERSISTENT_KINDS, POP_KINDS
from twin.alerts.population.members import MEMBER_COLUMNS, member_mags, population_members
from twin.alerts.population.spec import PopulationSpec


def population_in_frame(spec, sky_seed: int = 0, population: PopulationSpec | None = None
                        ) -> pd.DataFrame:  # fmt: skip
    """The population members frame ``spec`` renders (its truth rows with a ``pop_kind``).

    ``population`` overrides ``spec.population`` (None: the spec's; neither: no rows).
    Trails are left out (they are not population members).
    """
    from dataclasses import replace

    from twin.imaging.catalog import TrailModel, sky_catalog
    from twin.imaging.scene import TRUTH_COLUMNS, build_scene, sky_level_e

    if population is not None:
        spec = replace(spec, population=population)
    catalog = sky_catalog(spec, sky_seed=sky_seed, trails=TrailModel(rate_per_hour_deg2=0.0))
    truth = build_scene(spec, catalog, sky_level_e(spec)).truth
    return truth[truth["pop_kind"] != ""].reset_index(drop=True)[list(TRUTH_COLUMNS)]


__all__ = [
    "EXPLOSIVE_KINDS",
    "MEMBER_COLUMNS",
    "PERSISTENT_KINDS",
    "POP_KINDS",
    "PopulationSpec",
    "member_mags",
    "population_in_frame",
    "population_members",
]
