"""The scenario's ``pipeline:`` section: which stages run at the sites, on what frames.

| field             | default | meaning                                                      |
|-------------------|---------|--------------------------------------------------------------|
| stages            | []      | stage names (entry points ``skytwin.stages``); [] = no pipeline |
| frame_size_pix    | 1024    | frames are rendered as this central N x N region             |
| processing_s      | 5.0     | site compute time per frame before its results are sent      |
| min_quality       | 0.0     | a frame whose score is below 100 x this does not count       |
| keep_frames       | false   | also write each frame as FITS under ``frames/``              |
| max_repeats       | 1       | times the centre repeats one visit for rejected frames       |
| refocus_after     | 2       | frames in a row flagged ``focus`` before a refocus (0: never) |
| service_after     | 2       | frames in a row flagged ``tracking`` before a mount service |
| service_min       | 5.0     | minutes from the service order's arrival to the fault cleared |

``min_quality`` is the default of every programme; a programme's own
``min_frame_quality`` overrides it. Why a simulated ``processing_s`` rather than the
stage's wall-clock time: the run must be the same bit for bit on any machine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from twin.errors import SafeName


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    stages: tuple[SafeName, ...] = Field(default=(), max_length=16)
    frame_size_pix: int = Field(default=1024, ge=32, le=8192)
    processing_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    min_quality: float = Field(default=0.0, ge=0.0, le=1.0)
    keep_frames: bool = False
    max_repeats: int = Field(default=1, ge=0, le=10)
    refocus_after: int = Field(default=2, ge=0, le=100)
    service_after: int = Field(default=2, ge=0, le=100)
    service_min: float = Field(default=5.0, ge=0.0, le=1440.0)

    @property
    def enabled(self) -> bool:
        return bool(self.stages)
