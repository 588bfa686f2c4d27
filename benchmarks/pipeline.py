"""Speed of the models in the loop: stage frames/s on one core, and a night with a pipeline.

Two measurements, in one process:

1. Each stage (``quality``, ``quality-depth``, ``anomaly``, the SEP baseline
   ``quality-sep``) on the same frames of a ``global-3site`` night, rendered once at
   ``--frame-size``, one thread:
   frames per second, and the ratio of each to the SEP baseline (the issue asks ≥ 20
   frames/s of the quality model on one core; a site sees a frame every ~90 s).
2. One night of ``global-3site`` with ``--pipeline quality,anomaly``: wall seconds per
   frame split into render, models and the rest of the twin (the same night's run
   without a pipeline, in the same process, is the twin's own cost).

    .venv/bin/python benchmarks/pipeline.py                 # ~15 min on 2 cores
    .venv/bin/python benchmarks/pipeline.py --frames 20 --no-night   # stages only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

from twin.imaging.fits import frame_header
from twin.imaging.frames import RunFrames, render_arrays
from twin.ops.run import run_scenario
from twin.pipeline.registry import resolve_stages
from twin.pipeline.stage import Frame
from twin.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "global-3site.yaml"
START = "2027-03-10"


def stage_speed(run_dir: Path, n_frames: int, size: int) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    frames = RunFrames(run_dir, size=size)
    specs = frames.specs(max_frames=n_frames)
    t0 = time.perf_counter()
    rendered = []
    for spec in specs:
        detector, _ = render_arrays(spec, frames.options)
        rendered.append(Frame(None, detector.raw_adu, frame_header(spec)))
    render_s = (time.perf_counter() - t0) / len(specs)
    rows = [
        {
            "what": f"render {size}x{size}",
            "frames": len(specs),
            "s_per_frame": round(render_s, 4),
            "frames_per_s": round(1 / render_s, 1),
        }
    ]
    for stage in resolve_stages(["quality-sep", "quality", "quality-depth", "anomaly"]):
        stage.process(rendered[0])  # warm-up (lazy imports, first allocation)
        t0 = time.perf_counter()
        for frame in rendered:
            stage.process(frame)
        s = (time.perf_counter() - t0) / len(rendered)
        rows.append(
            {
                "what": f"stage {stage.name}",
                "frames": len(rendered),
                "s_per_frame": round(s, 4),
                "frames_per_s": round(1 / s, 1),
            }
        )
    sep = next(r["frames_per_s"] for r in rows if r["what"] == "stage quality-sep")
    for row in rows:
        row["vs_sep"] = round(row["frames_per_s"] / sep, 2)
    return rows


def night(size: int) -> list[dict]:
    scenario = load_scenario(SCENARIO, nights=1, start=START)
    with tempfile.TemporaryDirectory() as plain, tempfile.TemporaryDirectory() as piped:
        t0 = time.perf_counter()
        run_scenario(scenario, plain, "greedy", progress=False, plots=False)
        twin_s = time.perf_counter() - t0
        with_pipe = scenario.model_copy(
            update={
                "pipeline": scenario.pipeline.model_copy(
                    update={"stages": ("quality", "anomaly"), "frame_size_pix": size}
                )
            }
        )
        t0 = time.perf_counter()
        result = run_scenario(with_pipe, piped, "greedy", progress=True, plots=False)
        total_s = time.perf_counter() - t0
    pipe = result.metrics["run"]["pipeline"]
    n = pipe["frames"]
    render, models = pipe["render_s_per_frame"], pipe["models_s_per_frame"]
    return [
        {
            "what": f"night, pipeline quality,anomaly at {size}x{size}",
            "frames": n,
            "total_s": round(total_s, 1),
            "render_s_per_frame": render,
            "models_s_per_frame": models,
            "twin_s_per_frame": round(total_s / n - render - models, 4),
            "twin_alone_s_per_frame": round(twin_s / n, 4),
            "rejected": pipe["rejected"],
            "visits_repeated": pipe["visits_repeated"],
        }
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames for the stage speeds")
    parser.add_argument("--frame-size", type=int, default=1024)
    parser.add_argument("--no-night", action="store_true", help="skip the night with a pipeline")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(
            load_scenario(SCENARIO, nights=1, start=START),
            tmp,
            "greedy",
            progress=False,
            plots=False,
        )
        rows = stage_speed(Path(tmp), args.frames, args.frame_size)
    report("pipeline_stages", rows)
    if not args.no_night:
        report("pipeline_night", night(args.frame_size))


if __name__ == "__main__":
    main()
