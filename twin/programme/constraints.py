"""The request's limit rules, each declared once.

Why one table: a rule such as "airmass at most ``max_airmass``" is read from the scenario
(:class:`~twin.programme.requests.Constraints`), stored as a queue column, checked by the
constraint engine before a visit (:mod:`twin.ops.candidates`), re-checked as each
exposure's shutter opens (:mod:`twin.ops.network`), written to ``requests.parquet``,
audited against the log (:mod:`twin.reports.rule_checks`) and bounded by the offline
oracle (:mod:`agents.oracle`). All of them iterate over :data:`RULES`, so a rule changed
or added here reaches every one of them, and the oracle's bound and the audit cannot
drift from what the engine enforces.

What a rule says
----------------

| attribute      | meaning                                                               |
|----------------|-----------------------------------------------------------------------|
| name           | the rule's name in the audit (``constraint_violations``'s ``rule``)     |
| field          | the ``Constraints`` field, also the queue column and the requests column |
| quantity       | what is compared, a key of :data:`QUANTITIES`                           |
| sense          | ``"max"`` (value <= limit) or ``"min"`` (value >= limit)                |
| ends           | the ends of an exposure it holds at: ``("start", "end")`` or ``("start",)`` |
| moon_up_only   | waived while the moon is below the horizon                              |
| no_limit       | the limit stored when the field is ``None`` (+inf for a max, -inf for a min) |

A quantity is either *geometric* (it follows from where the target and the sun and moon
are, so the engine checks it for the whole visit before the slew) or *measured* (the
site's monitors measure it as each exposure's shutter opens; the engine checks the
measurement at the decision, the loop re-checks each exposure). Its logged columns are
those of ``observations.parquet`` at each end.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Quantity:
    """A compared quantity: its logged column at the start and at the end, and its kind."""

    start_column: str
    end_column: str | None
    kind: Literal["geometric", "measured"]

    def column(self, end: str) -> str:
        column = self.start_column if end == "start" else self.end_column
        if column is None:
            raise ValueError(f"{self.start_column!r} is logged at the start only")
        return column


QUANTITIES: dict[str, Quantity] = {
    "airmass": Quantity("airmass", "airmass_end", "geometric"),
    "alt_deg": Quantity("alt_deg", "alt_end_deg", "geometric"),
    "sun_alt_deg": Quantity("sun_alt_deg", "sun_alt_end_deg", "geometric"),
    "moon_sep_deg": Quantity("moon_sep_deg", None, "geometric"),
    "moon_illum": Quantity("moon_illum", None, "geometric"),
    "seeing_fwhm_arcsec": Quantity("seeing_fwhm_arcsec", None, "measured"),
    "transparency": Quantity("transparency", None, "measured"),
}
"""Every quantity a rule may compare. The engine, the loop and the oracle each know how
to compute these (``alt_deg`` is there for rules a scenario does not use yet)."""


@dataclass(frozen=True)
class Rule:
    """One limit a request sets (see the module docstring)."""

    name: str
    field: str
    quantity: str
    sense: Literal["max", "min"]
    ends: tuple[str, ...] = ("start",)
    moon_up_only: bool = False

    @property
    def no_limit(self) -> float:
        return np.inf if self.sense == "max" else -np.inf

    @property
    def columns(self) -> tuple[str, ...]:
        """The logged columns it is judged on, one per end."""
        q = QUANTITIES[self.quantity]
        return tuple(q.column(end) for end in self.ends)

    @property
    def kind(self) -> str:
        return QUANTITIES[self.quantity].kind

    def limit_of(self, constraints: object) -> float:
        """The limit ``constraints`` (a :class:`Constraints`) sets; ``no_limit`` for None
        or for constraints without the field (requests made before the rule existed)."""
        value = getattr(constraints, self.field, None)
        return self.no_limit if value is None else float(value)

    def holds(self, value: float, limit: float) -> bool:
        """:meth:`ok` for one pair of plain floats (the loop's per-exposure check)."""
        return value <= limit if self.sense == "max" else value >= limit

    def ok(self, value: np.ndarray | float, limit: np.ndarray | float) -> np.ndarray:
        """Where ``value`` meets ``limit`` (NaN never does)."""
        if self.sense == "max":
            return np.asarray(value) <= limit
        return np.asarray(value) >= limit


RULES: tuple[Rule, ...] = (
    Rule("airmass", "max_airmass", "airmass", "max", ("start", "end")),
    Rule("moon_sep", "min_moon_sep_deg", "moon_sep_deg", "min", moon_up_only=True),
    Rule("moon_illum", "max_moon_illum", "moon_illum", "max", moon_up_only=True),
    Rule("seeing", "max_seeing_arcsec", "seeing_fwhm_arcsec", "max"),
    Rule("transparency", "min_transparency", "transparency", "min"),
    Rule("sun_alt", "max_sun_alt_deg", "sun_alt_deg", "max", ("start", "end")),
)
"""Every limit rule, in the order of the requests table's columns and of the audit's
report. Read it through :func:`rules` (a test may extend it with :func:`extra_rules`)."""

_extra: list[Rule] = []


def rules() -> tuple[Rule, ...]:
    """The rules in force: :data:`RULES` and any added by :func:`extra_rules`."""
    return (*RULES, *_extra)


def limit_fields() -> tuple[str, ...]:
    """The ``Constraints`` fields of the rules in force (queue and requests columns)."""
    return tuple(rule.field for rule in rules())


def rule(name: str) -> Rule:
    for r in rules():
        if r.name == name:
            return r
    raise KeyError(f"no rule {name!r}; rules: {', '.join(r.name for r in rules())}")


def limit_columns(constraints: Sequence[object]) -> dict[str, np.ndarray]:
    """``{field: limits}`` of every rule for a list of ``Constraints``."""
    return {
        r.field: np.asarray([r.limit_of(c) for c in constraints], dtype=float).reshape(-1)
        for r in rules()
    }


@contextmanager
def extra_rules(*new: Rule) -> Iterator[None]:
    """Rules added for the duration of a ``with`` block (tests and experiments: a rule
    meant to stay belongs in :data:`RULES`). Its field must exist on the requests'
    ``Constraints`` (a subclass may add it) and its quantity in :data:`QUANTITIES`."""
    for r in new:
        if r.quantity not in QUANTITIES:
            raise ValueError(f"rule {r.name!r}: unknown quantity {r.quantity!r}")
        if r.name in {x.name for x in rules()}:
            raise ValueError(f"rule {r.name!r} exists already")
        try:  # an end the quantity is not logged at could be neither checked nor audited
            r.columns  # noqa: B018
        except ValueError as err:
            raise ValueError(f"rule {r.name!r}: {err}; ends allowed: ('start',)") from None
    _extra.extend(new)
    try:
        yield
    finally:
        del _extra[len(_extra) - len(new) :]
