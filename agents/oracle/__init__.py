"""The offline oracle: an upper bound on one night's science value, and a policy that
replays the bound's plan.

Description
-----------
With the night's true weather, dome closures and failures known in advance (the
:class:`~twin.ops.world.World` draws them all before the first SimPy step), a MILP
bounds the science value that *any* scheduler could be credited with that night, the
twin's value being ``priority x quality / n_exposures`` per exposure
(:func:`twin.ops.exposures.exposure_truth`). Schedulers are compared with it as a
fraction of the attainable; :class:`OraclePolicy` follows its plan in the twin.

Formulation (solved with HiGHS through :func:`scipy.optimize.milp`)
--------------------------------------------------------------------
Each telescope's night window is cut into slots of ``slot_min``. A binary
``x[t, r, s, p]`` says: at telescope ``t`` a visit of request ``r`` whose *first
exposure starts* in slot ``s`` completes its first ``p`` exposures (a visit cut by a
dome closure, a failure, the night's end or a constraint still earns its finished
exposures and counts as a visit, so cut visits get variables of their own).

- Feasibility is checked on the truth at sub-slot samples (every ``sample_min``) of the
  first exposure's start, as the twin checks it. The visit must pass the constraint
  engine's check when it starts (horizon mask, airmass and sun at both ends of the
  visit, the moon at the decision, windows, the night's end, the release: alert
  requests are available from the alert's issue, before any link could bring them);
  each exposure is then cut by a dome closure, a failure or the night's end, or stopped
  by the true seeing (at the visit's worse airmass) or transparency as its shutter
  opens. The engine's own seeing and transparency test at the decision is left out. A
  sample stands for the starts within half a step of it: optimistic margins (the
  Earth's rotation in that time, weather extremes at the truth grid's knots) decide the
  longest prefix of exposures that may complete, pessimistic ones the shortest that may
  be cut, and every prefix length between gets a variable.
- The value of ``x`` is ``priority / n_exposures x`` the sum over its exposures of an
  upper bound on their true quality in the slot: the best airmass, darkest sky, best
  seeing, highest transparency and throughput, least defocus that any start in the slot
  meets, combined (quality rises monotonically with each).
- Time: a visit occupies its telescope from its first exposure's start to the end of its
  last finished exposure's readout, and is charged its *changeover* besides: the least
  time (slew, settle, filter change) any next visit must wait after it, by the band it
  ends in (:mod:`agents.oracle.transitions`, which says why it is a lower bound; with
  ``slews=False`` it is 0, the first bound). Visits starting in a run of consecutive slots
  ``[a, b)`` are disjoint with their changeovers and all begin in it, so their loads sum
  to at most the time from the earliest start to the latest end of a visit in the run,
  plus the largest changeover. A visit starts no earlier than its slot and its window
  and ends no later than its slot's end plus its length, its window's end (the engine
  starts a visit only if it ends inside its window) and the night's end (bar the last
  readout). These rows are written for runs of 1, 2, 3, 4, 6, 8, ... slots from every
  slot, through one continuous load variable per slot.
- Requests: at most the visits still wanted (all of them: the oracle does not know
  earlier nights); first-exposure starts of one request at least ``cadence_days`` apart
  (one row per window of that length, over all telescopes; one visit a night when the
  cadence exceeds the network's night).
- Alerts: each alert issued before the night's end adds its follow-up request (from the
  issue time, any site) and, optimistically, its confirmation request (one visit, any
  site, any time after the issue) unless the transient is never bright enough for the
  deepest exposure the network could take that night to detect it.

Every relaxation above only adds schedules, so the MILP optimum is an upper bound on the
twin's credited value that night under any policy; the reported ``upper_bound`` is the
lower of HiGHS's dual bound (the optimum when solved, more when the time limit stops it)
and the LP relaxation's optimum. What remains approximate is the sampled geometry
(margins of 0.145 deg against the 0.125 deg the sky turns in half a minute) and the sky
brightness sampled at the same times (0.02 mag of margin).

Arguments of :func:`oracle_bound`
---------------------------------

| name           | unit | default | meaning                                            |
|----------------|------|---------|----------------------------------------------------|
| world          |      |         | the drawn world (truth) of the run                 |
| night          |      | 0       | night index of every site's window list            |
| slot_min       | min  | 5       | slot length                                        |
| time_limit_s   | s    | 60      | budget of the call (build, LP, then MILP)          |
| sample_min     | min  | 1       | sub-slot sampling of first-exposure starts         |
| mip_rel_gap    |      | 1e-4    | HiGHS stops when the gap is below this             |
| confirmations  |      | True    | include optimistic confirmation requests           |
| slews          |      | True    | charge each visit its changeover (slew-aware)      |
"""

from agents.oracle.milp import (
    OracleResult,
    build_model,
    oracle_bound,
    oracle_value_for_scenario,
    visit_variables,
)
from agents.oracle.policy import OraclePolicy
from agents.oracle.requests import oracle_requests

__all__ = [
    "OraclePolicy",
    "OracleResult",
    "build_model",
    "oracle_bound",
    "oracle_requests",
    "oracle_value_for_scenario",
    "visit_variables",
]
