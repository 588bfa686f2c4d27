"""The picture of tonight: per site, target altitudes with twilight and the forecast."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_tonight(rows: list, curves: dict[str, dict], path: Path) -> Path:
    """One panel per site: altitude of each target (solid), moon (dashed), twilight shading,
    and underneath the forecast cloud cover and seeing for the night."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(rows)
    fig = Figure(figsize=(11, 3.6 * n), constrained_layout=True)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2 * n, 1, height_ratios=[3, 1] * n)
    for i, row in enumerate(rows):
        c = curves[row.site]
        hours = (c["mjd"] - c["mjd"][0]) * 24.0
        ax = fig.add_subplot(grid[2 * i])
        for level, shade in ((-0.833, 0.05), (-6, 0.08), (-12, 0.11), (-18, 0.15)):
            ax.fill_between(
                hours, 0, 90, where=c["sun_alt"] < level, color="navy", alpha=shade, lw=0
            )
        for name, alt in c["targets"].items():
            ax.plot(hours, np.where(alt > 0, alt, np.nan), lw=1.4, label=name)
        ax.plot(hours, np.where(c["moon_alt"] > 0, c["moon_alt"], np.nan), "k--", lw=1,
                label=f"moon ({row.moon_illum:.0%})")  # fmt: skip
        ax.axhline(c["horizon"], color="grey", lw=0.8, ls=":")
        ax.set(ylim=(0, 90), xlim=(hours[0], hours[-1]), ylabel="altitude (deg)",
               title=f"{row.site} — night of {row.night_date}: {row.dark_hours:.1f} h dark, "
               f"dusk {row.dusk_astro_local} dawn {row.dawn_astro_local} local")  # fmt: skip
        ax.legend(fontsize=7, ncol=5, loc="upper right")
        wx = fig.add_subplot(grid[2 * i + 1], sharex=ax)
        wx.fill_between(
            hours, 0, c["cloud"], color="slategray", alpha=0.6, label="cloud (forecast)"
        )
        wx.fill_between(
            hours, 0, 1, where=c["closed"], color="red", alpha=0.15, lw=0, label="dome closed"
        )
        wx.set(ylim=(0, 1), ylabel="cloud", xlabel="hours since local noon")
        sx = wx.twinx()
        sx.plot(hours, c["seeing"], color="darkorange", lw=1)
        sx.set_ylabel('seeing (")', color="darkorange")
        wx.legend(fontsize=7, loc="upper left")
    fig.savefig(path, dpi=90)
    return path
