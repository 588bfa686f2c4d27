"""Write ``land.js``, the land outline of the replay page's world map (development only).

Why a file of our own: the page must open without a network, so the land is inlined into
it; Natural Earth's 1:110m land is ~55 kB as TopoJSON, and simplified here to what a
600-px map shows (~0.2 deg) with coordinates in tenths of a degree, delta-coded, it is
about 20 kB.

Source: Natural Earth 1:110m physical vectors, land (version 4.1.0), as redistributed in
the npm package ``world-atlas`` version 2.0.2, file ``land-110m.json`` (TopoJSON, the
land object; its README: "derived from the Natural Earth's land boundaries, 1:110m").
Licence: Natural Earth data is in the public domain ("Free vector and raster map data",
no permission needed, no attribution required); the world-atlas packaging is ISC
(Copyright 2013-2019 Michael Bostock), which covers its code and file layout, not the
Natural Earth coordinates copied here. The package is used at development time only; it
is not a dependency of skytwin.

Regenerate (no network beyond the npm registry, through the ordinary client)::

    cd /tmp && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python twin/reports/replay_assets/make_land.py /tmp/package/land-110m.json

Steps: 1. decode the TopoJSON arcs (delta-coded, quantised) into the land's rings;
2. make each ring's longitudes continuous across the antimeridian (a ring that crosses it
gets longitudes past +-180; the page draws every ring also shifted by +-360 deg), and
close a ring around a pole (Antarctica) along the pole's latitude; 3. simplify each ring
(Douglas-Peucker, :data:`TOLERANCE_DEG`) and drop rings smaller than :data:`MIN_AREA_DEG2`;
4. write each ring as ``[lon0, lat0, dlon1, dlat1, ...]`` in units of :data:`UNIT_DEG`.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

TOLERANCE_DEG = 0.2  # about one pixel of a 600-px-wide equirectangular map (0.6 deg/px)
MIN_AREA_DEG2 = 0.3  # islands smaller than ~1/2 deg across vanish (Hawaii's main islands stay)
UNIT_DEG = 0.1
SOURCE = "Natural Earth 1:110m land v4.1.0 (public domain), via world-atlas 2.0.2 land-110m.json"
OUT = Path(__file__).with_name("land.js")


def topojson_rings(topology: dict) -> list[list[tuple[float, float]]]:
    """Every ring (outer and hole) of the topology's ``land`` object, in degrees."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    rings = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for ring_arcs in polygon:
                ring: list[tuple[float, float]] = []
                for i in ring_arcs:
                    points = arcs[i] if i >= 0 else arcs[~i][::-1]
                    ring.extend(points if not ring else points[1:])
                rings.append(ring)
    return rings


def continuous(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Longitudes unwrapped along the ring; a ring that winds once around a pole is closed
    through the pole's latitude so that it fills the cap."""
    out = [ring[0]]
    for lon, lat in ring[1:]:
        prev = out[-1][0]
        lon += 360.0 * round((prev - lon) / 360.0)
        out.append((lon, lat))
    winding = out[-1][0] - out[0][0]
    if abs(winding) > 180.0:
        pole = -90.0 if sum(lat for _, lat in out) < 0 else 90.0
        out += [(out[-1][0], pole), (out[0][0], pole)]
    return out


def simplified(ring: list[tuple[float, float]], tol: float) -> list[tuple[float, float]]:
    """Douglas-Peucker on a closed ring (split at the point farthest from the first)."""
    far = max(range(len(ring)), key=lambda i: _dist2(ring[i], ring[0]))
    return _dp(ring[: far + 1], tol) + _dp([*ring[far:], ring[0]], tol)[1:-1]


def _dist2(a, b) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def _dp(points: list, tol: float) -> list:
    keep = [True] + [False] * (len(points) - 2) + [True]
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        (x0, y0), (x1, y1) = points[i], points[j]
        dx, dy = x1 - x0, y1 - y0
        norm = max((dx * dx + dy * dy) ** 0.5, 1e-12)
        best, best_k = 0.0, -1
        for k in range(i + 1, j):
            x, y = points[k]
            d = abs(dy * (x - x0) - dx * (y - y0)) / norm
            if d > best:
                best, best_k = d, k
        if best > tol:
            keep[best_k] = True
            stack += [(i, best_k), (best_k, j)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def area_deg2(ring: list[tuple[float, float]]) -> float:
    pairs = itertools.pairwise([*ring, ring[0]])
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in pairs)) / 2


def encoded(ring: list[tuple[float, float]]) -> list[int]:
    units = [(round(lon / UNIT_DEG), round(lat / UNIT_DEG)) for lon, lat in ring]
    units = [p for n, p in enumerate(units) if n == 0 or p != units[n - 1]]
    flat = list(units[0])
    for (x0, y0), (x1, y1) in itertools.pairwise(units):
        flat += [x1 - x0, y1 - y0]
    return flat


def main(argv: list[str]) -> None:
    topology = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    rings = [simplified(continuous(r), TOLERANCE_DEG) for r in topojson_rings(topology)]
    rings = [encoded(r) for r in rings if len(r) >= 3 and area_deg2(r) >= MIN_AREA_DEG2]
    data = {"source": SOURCE, "unit_deg": UNIT_DEG, "rings": rings}
    OUT.write_text(
        "// The land of the replay page's world map. Written by make_land.py beside this file\n"
        "// (which says how to regenerate it); do not edit.\n// " + SOURCE + ".\n"
        "window.SKYTWIN_LAND =\n" + json.dumps(data, separators=(",", ":")) + ";\n",
        encoding="utf-8",
    )
    points = sum(len(r) // 2 for r in rings)
    print(f"{OUT}: {len(rings)} rings, {points} points, {OUT.stat().st_size / 1e3:.1f} kB")


if __name__ == "__main__":
    main(sys.argv[1:])
