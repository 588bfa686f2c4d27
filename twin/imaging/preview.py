"""PNG previews of frames: a stretch that shows both the sky noise and the stars.

The display is bias-subtracted (``BIASLEV`` from the header, else the frame's 0.5th
percentile), limited below by the z-scale lower limit (IRAF's ``zscale``, astropy's
:class:`~astropy.visualization.ZScaleInterval`) and above by the larger of its upper
limit and the 99.8th percentile, and stretched by an asinh softened at three times the
sky noise (robust MAD): linear through the noise, logarithmic for stars (Lupton et al.
2004, PASP 116, 133). Frames larger than ``max_pixels`` are block-averaged for display; markers and
scale stay in the frame's own pixels.

North is up and east left when the WCS says so (as :mod:`twin.imaging.fits` writes it):
the compass is drawn from the header's WCS, not assumed. Figures are made without pyplot
(no global state) and rendered with the Agg backend.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

TRUTH_COLOURS = {
    "star": "#4fc3f7",
    "galaxy": "#ffb74d",
    "transient": "#ff1744",
    "cosmic_ray": "#76ff03",
}
"""Marker colour per truth ``type``; other types are not marked."""
MAX_MARKERS = 400
"""The brightest sources marked (by ``mag``; cosmic rays by charge), to keep it legible."""
_NICE_ARCSEC = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def write_preview(
    path_png: str | Path,
    data_adu: np.ndarray,
    header=None,
    truth: pd.DataFrame | None = None,
    mark_truth: bool = False,
    title: str | None = None,
    *,
    compass: bool = True,
    scale_bar: bool = True,
    max_pixels: int = 1024,
    size_in: float = 6.0,
) -> Path:
    """Write a PNG preview of ``data_adu``; return its path.

    ``header``: the FITS header (bias level, WCS for the compass, pixel scale for the bar,
    image FWHM for the marker size, default title). ``mark_truth``: circle the ``truth``
    sources, coloured by type (:data:`TRUTH_COLOURS`).
    """
    figure, canvas = _figure(size_in, size_in * 1.05)
    ax = figure.add_subplot(1, 1, 1)
    draw_frame(ax, data_adu, header, truth if mark_truth else None, title,
               compass=compass, scale_bar=scale_bar, max_pixels=max_pixels)  # fmt: skip
    figure.tight_layout()
    return _save(figure, canvas, path_png)


def write_gallery(
    paths: Sequence[str | Path],
    titles: Sequence[str] | None,
    out_png: str | Path,
    *,
    ncols: int | None = None,
    mark_truth: bool = False,
    max_pixels: int = 512,
    panel_in: float = 4.0,
) -> Path:
    """A grid of previews of the FITS files ``paths`` (e.g. moonlit vs dark) in one PNG."""
    from twin.imaging.fits import read_frame

    n = len(paths)
    if n == 0:
        raise ValueError("write_gallery needs at least one FITS path")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} frames; give one per frame or None")
    ncols = int(ncols or math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    figure, canvas = _figure(panel_in * ncols, panel_in * 1.05 * nrows)
    for i, path in enumerate(paths):
        data, header, truth = read_frame(path)
        ax = figure.add_subplot(nrows, ncols, i + 1)
        draw_frame(ax, data, header, truth if mark_truth else None,
                   titles[i] if titles is not None else None, max_pixels=max_pixels)  # fmt: skip
    figure.tight_layout()
    return _save(figure, canvas, out_png)


def draw_frame(ax, data_adu: np.ndarray, header=None, truth: pd.DataFrame | None = None,
               title: str | None = None, *, compass: bool = True, scale_bar: bool = True,
               max_pixels: int = 1024) -> None:  # fmt: skip
    """Draw one frame into a matplotlib ``ax`` (stretch, markers, compass, scale bar)."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    data = np.asarray(data_adu, dtype=float)
    ny, nx = data.shape
    bias = _card(header, "BIASLEV")
    image = data - (bias if bias is not None else np.percentile(data, 0.5))
    shown, factor = _block_mean(image, max_pixels)
    vmin, vmax = ZScaleInterval().get_limits(shown)
    vmax = max(vmax, float(np.percentile(shown, 99.8)), vmin + 1.0)
    # Soften the asinh at a few times the sky noise: the noise shows, stars do not burn.
    sky = shown[(shown > vmin) & (shown < np.percentile(shown, 90))]
    noise = 1.4826 * float(np.median(np.abs(sky - np.median(sky)))) if sky.size else 1.0
    softening = float(np.clip(3.0 * noise / (vmax - vmin), 1e-4, 1.0))
    norm = ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch(a=softening), clip=True)
    height, width = shown.shape[0] * factor, shown.shape[1] * factor
    ax.imshow(shown, origin="lower", cmap="gray", norm=norm, interpolation="nearest",
              extent=(-0.5, width - 0.5, -0.5, height - 0.5))  # fmt: skip
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if truth is not None and len(truth):
        _mark(ax, truth, header)
    wcs = _wcs(header)
    if compass and wcs is not None:
        _compass(ax, wcs, nx, ny)
    scale = _pixel_scale_arcsec(header, wcs)
    if scale_bar and scale:
        _scale_bar(ax, scale, nx, ny)
    ax.set_title(title if title is not None else _default_title(header), fontsize=9)


def _mark(ax, truth: pd.DataFrame, header) -> None:
    from matplotlib.collections import PatchCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    fwhm, scale = _card(header, "IMGFWHM"), _card(header, "PIXSCALE")
    radius = max(6.0, 2.5 * fwhm / scale) if fwhm and scale else 8.0
    handles = []
    for kind, colour in TRUTH_COLOURS.items():
        rows = truth[truth["type"] == kind]
        if rows.empty:
            continue
        order = "flux_e" if kind == "cosmic_ray" or "mag" not in rows else "mag"
        if order in rows:
            rows = rows.sort_values(order, ascending=order == "mag")
        rows = rows.head(MAX_MARKERS)
        r = radius * (0.5 if kind == "cosmic_ray" else 1.0)
        circles = [Circle((x, y), r) for x, y in zip(rows["x_pix"], rows["y_pix"], strict=True)]
        ax.add_collection(PatchCollection(circles, facecolor="none", edgecolor=colour,
                                          linewidth=0.8, alpha=0.9))  # fmt: skip
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none",
                              markeredgecolor=colour, label=kind))  # fmt: skip
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.5)


def _compass(ax, wcs, nx: int, ny: int) -> None:
    """N and E arrows from the WCS at the top-right, a tenth of the frame long."""
    length = 0.1 * min(nx, ny)
    x0, y0 = 0.85 * nx, 0.8 * ny
    ra, dec = wcs.all_pix2world([[x0, y0]], 0)[0]
    step_deg = 1.0 / 3600.0
    ends = wcs.all_world2pix([[ra, dec + step_deg],
                              [ra + step_deg / max(math.cos(math.radians(dec)), 1e-6), dec]],
                             0)  # fmt: skip
    for (x1, y1), label in zip(ends, ("N", "E"), strict=True):
        dx, dy = x1 - x0, y1 - y0
        norm = math.hypot(dx, dy) or 1.0
        dx, dy = dx / norm * length, dy / norm * length
        ax.annotate("", xy=(x0 + dx, y0 + dy), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "->", "color": "yellow", "lw": 1.2})  # fmt: skip
        ax.text(x0 + 1.25 * dx, y0 + 1.25 * dy, label, color="yellow", fontsize=8,
                ha="center", va="center")  # fmt: skip


def _scale_bar(ax, scale_arcsec: float, nx: int, ny: int) -> None:
    """A bar of a round length near a fifth of the width, bottom left."""
    target = 0.2 * nx * scale_arcsec
    arcsec = min(_NICE_ARCSEC, key=lambda a: abs(math.log(a / target)))
    length = arcsec / scale_arcsec
    x0, y0 = 0.05 * nx, 0.06 * ny
    ax.plot([x0, x0 + length], [y0, y0], color="white", lw=2)
    label = f"{arcsec // 60}′" if arcsec >= 60 and arcsec % 60 == 0 else f"{arcsec}″"
    ax.text(x0 + length / 2, y0 + 0.02 * ny, label, color="white", fontsize=8, ha="center")


def _block_mean(image: np.ndarray, max_pixels: int) -> tuple[np.ndarray, int]:
    """Average ``factor × factor`` blocks so the longer side is at most ``max_pixels``."""
    factor = max(1, math.ceil(max(image.shape) / max(int(max_pixels), 1)))
    if factor == 1:
        return image, 1
    ny, nx = (s // factor for s in image.shape)
    trimmed = image[: ny * factor, : nx * factor]
    return trimmed.reshape(ny, factor, nx, factor).mean(axis=(1, 3)), factor


def _wcs(header):
    if header is None or "CTYPE1" not in header:
        return None
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def _pixel_scale_arcsec(header, wcs) -> float | None:
    scale = _card(header, "PIXSCALE")
    if scale:
        return scale
    if wcs is not None:
        from astropy.wcs.utils import proj_plane_pixel_scales

        return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)
    return None


def _card(header, key: str) -> float | None:
    if header is None or key not in header:
        return None
    value = header[key]
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _default_title(header) -> str:
    if header is None:
        return ""
    parts = [str(header.get(k, "")) for k in ("TELESCOP", "FILTER")]
    if "EXPTIME" in header:
        parts.append(f"{float(header['EXPTIME']):g} s")
    if header.get("OBS_ID", -1) != -1:
        parts.append(f"obs {header['OBS_ID']}")
    return " ".join(p for p in parts if p)


def _figure(width_in: float, height_in: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("previews need matplotlib: pip install matplotlib") from err
    figure = Figure(figsize=(width_in, height_in), dpi=100)
    return figure, FigureCanvasAgg(figure)


def _save(figure, canvas, path_png: str | Path) -> Path:
    path = Path(path_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    figure.clear()
    return path
