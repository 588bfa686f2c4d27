"""The constraint engine's implementations, by name (``engine=`` of a run or a twin).

All three give the same candidates bit for bit (``tests/twin/ops/test_ops_engine_paths.py``):
``reference`` (:mod:`twin.ops.candidates`) is the readable numpy statement of the rules;
``incremental`` (:mod:`twin.ops.candidates_fast`) keeps per-request state; ``compiled``
(:mod:`twin.ops.candidates_compiled`, the default) runs the incremental path's
per-decision work in numba kernels.
"""

from __future__ import annotations

from twin.ops.candidates import CandidateBuilder
from twin.ops.candidates_compiled import CompiledCandidateBuilder
from twin.ops.candidates_fast import IncrementalCandidateBuilder

ENGINES = {
    "compiled": CompiledCandidateBuilder,
    "incremental": IncrementalCandidateBuilder,
    "reference": CandidateBuilder,
}
DEFAULT_ENGINE = "compiled"
