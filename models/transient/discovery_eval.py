"""How well a run's pipeline found the sky's own transients: completeness, false alerts,
latencies (issue 12, "discovery in the loop"), measured against the population's truth.

Why a separate measurement and not the run's summary: the centre never sees the truth,
and completeness needs what it could not see — every unannounced transient that lay on
a frame of the run. This module lists them from :mod:`twin.alerts.population` (the same
function of sky position, time and ``sky_seed`` the frames were rendered from) and
compares with what the run recorded (``candidates.parquet``, ``alerts.parquet``).

Definitions (each figure in the JSON says which):

- **sighting**: an explosive member (``sn_ia``, ``sn_cc``, ``fast``) inside a frame
  (the frame's *true* footprint, at ``pipeline.frame_size_pix``) and brighter than the
  frame's 5σ depth (``observations.m5``) at mid-exposure;
- **eligible**: a member with a sighting; **eligible twice**: sightings in two frames of
  one field less than ``pipeline.discovery.hold_max_s`` apart (what the desk needs to
  raise an alert: a candidate waits for the field's next frame). A generous
  denominator: the desk decides at the *first* later frame covering the position, which
  may be a shallower one in another band;
- **discovered**: a ``network`` alert whose candidates' truth is that member
  (``candidates.truth_id``; the broker announces none of the population, so every
  such alert is the network's own find);
- **false network alert**: a ``network`` alert whose candidates match no explosive
  member or announced transient (an asteroid, a variable star, an AGN, an artefact);
  per night of the run (the scenario's ``nights``, as the run's summary counts);
- **latencies** (seconds): shutter close → candidate at the centre (every candidate);
  shutter close of the first frame → the network alert raised; → confirmed at a second
  site (``alerts.confirmed_mjd``).

    .venv/bin/python -m models.transient.discovery_eval RUN [--out DIR]

writes ``DIR/discovery_eval.json`` and ``DIR/discovery_completeness.png`` (default DIR:
RUN) and prints the table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from twin.pipeline.discovery import TRUE_DISCOVERY_TRUTH

S_PER_DAY = 86400.0
TRANSIENT_TRUTH = TRUE_DISCOVERY_TRUTH
PEAK_BINS = (15.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0)


def sightings(run_dir: Path) -> pd.DataFrame:
    """One row per (frame, explosive member inside it): ``obs_id``, ``pop_id``,
    ``pop_kind``, ``peak_mag_r``, ``mag``, ``m5``, ``field``, ``mjd_mid``, ``bright``."""
    from twin.alerts.population import EXPLOSIVE_KINDS, member_mags, population_members
    from twin.imaging.frames import RunFrames
    from twin.imaging.scene import frame_wcs

    frames = RunFrames(run_dir)
    scenario = frames.scenario
    population = scenario.imaging.population
    obs = frames.observations
    if population is None or obs.empty:
        return pd.DataFrame(columns=["obs_id", "pop_id", "pop_kind", "peak_mag_r", "mag", "m5",
                                     "field", "mjd_mid", "bright"])  # fmt: skip
    size = scenario.pipeline.frame_size_pix
    sky_seed = scenario.imaging.sky_seed
    mjd0, mjd1 = float(obs["mjd_start"].min()), float(obs["mjd_end"].max())
    rows = []
    for (ra, dec), field in obs.groupby(["ra_deg", "dec_deg"], sort=True):
        first = frames.spec(int(field["obs_id"].iloc[0])).resized(size, size)
        radius_deg = (math.sqrt(2) * 0.5 * size * first.pixel_scale_arcsec + 60.0) / 3600.0
        members = population_members(ra, dec, radius_deg, mjd0, mjd1, population, sky_seed,
                                     kinds=EXPLOSIVE_KINDS)  # fmt: skip
        if members.empty:
            continue
        for row in field.itertuples():
            spec = frames.spec(int(row.obs_id))
            spec = spec.resized(min(size, spec.nx), min(size, spec.ny))
            x, y = frame_wcs(spec).all_world2pix(members["ra_deg"], members["dec_deg"], 0)
            inside = (x > -0.5) & (x < spec.nx - 0.5) & (y > -0.5) & (y < spec.ny - 0.5)
            if not inside.any():
                continue
            here = members[inside].copy()
            here["band"] = row.band
            mid = 0.5 * (row.mjd_start + row.mjd_end)
            mags = member_mags(here, mid, population, sky_seed)
            rows.append(pd.DataFrame({
                "obs_id": row.obs_id, "pop_id": here["pop_id"].to_numpy(),
                "pop_kind": here["pop_kind"].to_numpy(),
                "peak_mag_r": here["peak_mag_r"].to_numpy(), "mag": mags, "m5": row.m5,
                "field": f"{ra:.4f}_{dec:+.4f}", "mjd_mid": mid,
            }))  # fmt: skip
    if not rows:
        return sightings_empty()
    out = pd.concat(rows, ignore_index=True)
    out["bright"] = np.isfinite(out["mag"]) & (out["mag"] <= out["m5"])
    return out


def sightings_empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (
        ("obs_id", "int64"), ("pop_id", "str"), ("pop_kind", "str"), ("peak_mag_r", "float64"),
        ("mag", "float64"), ("m5", "float64"), ("field", "str"), ("mjd_mid", "float64"),
        ("bright", "bool"))})  # fmt: skip


def eligible_twice(seen: pd.DataFrame, hold_max_s: float) -> set[str]:
    """Members bright in two frames of one field less than ``hold_max_s`` apart."""
    out = set()
    bright = seen[seen["bright"]].sort_values("mjd_mid")
    for (pop_id, _), group in bright.groupby(["pop_id", "field"]):
        t = group["mjd_mid"].to_numpy()
        if len(t) > 1 and (np.diff(t) * S_PER_DAY < hold_max_s).any():
            out.add(pop_id)
    return out


def sighting_outcomes(cands: pd.DataFrame, seen: pd.DataFrame) -> dict[str, int]:
    """What became of each *bright* sighting (a member above its frame's m5): the desk's
    classes of the member's candidates on that frame, or why there was none. Where
    completeness goes, per sighting rather than per member.

    ``no candidate on the frame`` counts frames that gave no candidate at all: nearly
    always a frame the stage could not difference (a differenced frame has bogus ones),
    which the tables do not record per frame (the run's metrics count them)."""
    bright = seen[seen["bright"]]
    framed = set(cands["obs_id"])
    known = cands[cands["truth_id"] != ""]
    classes = known.groupby(["obs_id", "truth_id"])["centre_class"].agg(
        lambda k: ",".join(sorted(set(k)))
    )
    out: dict[str, int] = {}
    for obs_id, pop_id in zip(bright["obs_id"], bright["pop_id"], strict=True):
        if (obs_id, pop_id) in classes.index:
            key = f"candidate: {classes[(obs_id, pop_id)]}"
        elif obs_id in framed:
            key = "no candidate of it (the frame had others)"
        else:
            key = "no candidate on the frame"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _median_s(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else math.nan


def evaluate_run(run_dir: str | Path) -> dict:
    """The figures of the module docstring for one run directory."""
    from twin.scenario import load_scenario

    run_dir = Path(run_dir)
    scenario = load_scenario(run_dir / "scenario.yaml")
    obs = pd.read_parquet(run_dir / "observations.parquet")
    result = summarise(
        pd.read_parquet(run_dir / "candidates.parquet"),
        pd.read_parquet(run_dir / "alerts.parquet"),
        sightings(run_dir),
        nights=int(scenario.nights),
        hold_max_s=scenario.pipeline.discovery.hold_max_s,
    )
    return {"run": str(run_dir), "frames": len(obs), **result}


def summarise(cands: pd.DataFrame, alerts: pd.DataFrame, seen: pd.DataFrame, *, nights: int,
              hold_max_s: float) -> dict:  # fmt: skip
    """The figures from the run's tables and the sightings (:func:`sightings`)."""
    eligible = seen[seen["bright"]].drop_duplicates("pop_id").set_index("pop_id")
    twice = eligible_twice(seen, hold_max_s)
    network = alerts[alerts["source"] == "network"]
    raised = cands[cands["alert_id"].isin(network["alert_id"])]
    truth_of = raised.groupby("alert_id")["truth_kind"].agg(lambda k: set(k) - {""})
    ids_of = raised.groupby("alert_id")["truth_id"].agg(lambda k: set(k) - {""})
    true_alerts = [a for a, kinds in truth_of.items() if kinds & set(TRANSIENT_TRUTH)]
    false_alerts = sorted(set(network["alert_id"]) - set(true_alerts))
    false_kinds = pd.Series([",".join(sorted(truth_of.get(a, set()))) or "artefact"
                             for a in false_alerts]).value_counts().to_dict()  # fmt: skip
    found = set().union(*[ids_of[a] for a in true_alerts]) if true_alerts else set()
    found_eligible = found & set(eligible.index)

    table = []
    peaks = eligible["peak_mag_r"]
    for lo, hi in itertools.pairwise(PEAK_BINS):
        ids = set(peaks[(peaks >= lo) & (peaks < hi)].index)
        two = ids & twice
        table.append({
            "peak_mag_r": f"{lo:g}-{hi:g}", "eligible": len(ids),
            "discovered": len(ids & found),
            "completeness": len(ids & found) / len(ids) if ids else math.nan,
            "eligible_twice": len(two),
            "completeness_twice": len(two & found) / len(two) if two else math.nan,
        })  # fmt: skip

    first_shutter = network["detected_shutter_mjd"]
    return {
        "nights": int(nights),
        "candidates": len(cands),
        "real_candidates": int(cands["is_real"].sum()),
        "classes": {str(k): int(v) for k, v in cands["centre_class"].value_counts().items()},
        "eligible_members": len(eligible),
        "eligible_twice": len(twice),
        "discovered_members": len(found_eligible),
        "completeness": len(found_eligible) / len(eligible) if len(eligible) else math.nan,
        "completeness_twice": len(found & twice) / len(twice) if twice else math.nan,
        "by_peak_mag": table,
        "network_alerts": len(network),
        "true_network_alerts": len(true_alerts),
        "false_network_alerts": len(false_alerts),
        "false_network_alerts_per_night": len(false_alerts) / max(nights, 1),
        "false_alert_truth": {str(k): int(v) for k, v in false_kinds.items()},
        "confirmed_network_alerts": int(np.isfinite(network["confirmed_mjd"]).sum()),
        "median_s_shutter_to_centre": _median_s(
            (cands["mjd_received"] - cands["mjd_shutter_close"]) * S_PER_DAY),
        "median_s_shutter_to_network_alert": _median_s(
            (network["detected_mjd"] - first_shutter) * S_PER_DAY),
        "median_s_shutter_to_confirmation": _median_s(
            (network["confirmed_mjd"] - first_shutter) * S_PER_DAY),
        "asteroids_recognised": int((cands["centre_class"] == "asteroid").sum() // 2),
        "bright_sightings": int(seen["bright"].sum()),
        "bright_sightings_outcome": sighting_outcomes(cands, seen),
    }  # fmt: skip


def plot_completeness(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["by_peak_mag"]
    centres = [np.mean([float(v) for v in r["peak_mag_r"].split("-")]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(centres, [r["completeness"] for r in rows], "o-", label="of eligible (1 frame)")
    ax.plot(centres, [r["completeness_twice"] for r in rows], "s--",
            label="of eligible twice (2 frames)")  # fmt: skip
    for c, r in zip(centres, rows, strict=True):
        ax.annotate(f"{r['discovered']}/{r['eligible']}", (c, 0.02), ha="center", fontsize=8)
    ax.set(xlabel="peak r (AB)", ylabel="completeness", ylim=(0, 1.05),
           title=f"Discoveries in the loop: {result['nights']} nights")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    import twin  # noqa: F401  (offline astropy)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="default: the run directory")
    args = parser.parse_args(argv)
    out = args.out or args.run
    out.mkdir(parents=True, exist_ok=True)
    result = evaluate_run(args.run)
    (out / "discovery_eval.json").write_text(json.dumps(result, indent=2, default=float))
    plot_completeness(result, out / "discovery_completeness.png")
    print(pd.DataFrame(result["by_peak_mag"]).to_string(index=False))
    for key, value in result.items():
        if key not in ("by_peak_mag",):
            print(f"{key}: {value}")
    return result


if __name__ == "__main__":
    main()
