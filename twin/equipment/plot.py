"""A one-page picture of an equipment timeline, for run reports and for teaching.

Draws on a bare Agg canvas (no pyplot, no global backend switch), so it is safe inside
servers, tests and Ray workers. Panels: focus offset, throughput, pointing error, hot
pixels (present and known to the calibration) and one band per component while it is down.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from twin.equipment.failures import COMPONENTS


def plot_timeline(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` (from :meth:`EquipmentModel.timeline`) as a PNG at ``path``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("plot_timeline needs matplotlib: pip install matplotlib") from error
    mjd = frame["mjd"].to_numpy()
    figure = Figure(figsize=(10, 11), layout="constrained")
    FigureCanvasAgg(figure)
    focus, throughput, pointing, defects, downtime = figure.subplots(5, 1, sharex=True)
    focus.plot(mjd, frame["focus_offset_um"], lw=0.8)
    focus.set_ylabel("focus offset [µm]")
    throughput.plot(mjd, frame["throughput"], lw=0.8)
    throughput.set_ylabel("throughput")
    pointing.plot(mjd, frame["pointing_error_ra_arcsec"], lw=0.8, label="dRA cos(dec)")
    pointing.plot(mjd, frame["pointing_error_dec_arcsec"], lw=0.8, label="dDec")
    pointing.set_ylabel("pointing [arcsec]")
    pointing.legend(loc="upper left", fontsize="small")
    defects.plot(mjd, frame["n_hot_pixels"], lw=0.8, label="present")
    defects.plot(mjd, frame["n_hot_pixels_known"], lw=0.8, label="known to calibration")
    defects.set_ylabel("hot pixels")
    defects.legend(loc="upper left", fontsize="small")
    for row, name in enumerate(COMPONENTS):
        down = frame[f"{name}_down"].to_numpy(dtype=bool)
        downtime.fill_between(mjd, row, row + 0.8, where=down, step="post", color=f"C{row + 3}")
    downtime.set_yticks([row + 0.4 for row in range(len(COMPONENTS))], COMPONENTS)
    downtime.set_ylim(-0.1, len(COMPONENTS))
    downtime.set_ylabel("down")
    downtime.set_xlabel("MJD (UTC)")
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path
