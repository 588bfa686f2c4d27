"""What a sweep found: per layout the mean and 95 % interval of each metric, paired
differences against the baseline layout, and plots.

Why paired differences: every layout runs on the same weather seeds and start dates
(common random numbers), so the difference of two layouts on one seed cancels most of
the weather's variance; its interval is far narrower than the two means' intervals
suggest. Intervals are Student-t on the per-point values (per pair for differences).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from twin.sweeps.metrics import COVERAGE_COLUMNS

GROUP = ("layout", "policy", "variant")
PAIR_KEYS = ("policy", "variant", "start", "seed")


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the mean (NaN values dropped; a single value: no width)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def summary(table: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """One row per (layout, policy, variant): n, and mean/low/high of every metric."""
    rows = []
    for key, part in table.groupby(list(GROUP), sort=False):
        row = dict(zip(GROUP, key, strict=True), n=len(part),
                   n_sites=int(part["n_sites"].iloc[0]))  # fmt: skip
        for m in metrics:
            row[m], row[f"{m}_low"], row[f"{m}_high"] = t_interval(part[m].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def paired(table: pd.DataFrame, metrics: tuple[str, ...], baseline: str) -> pd.DataFrame:
    """Per non-baseline layout: mean and interval of (layout - baseline) over the points
    they share (same policy, variant, start and seed)."""
    base = table.loc[table["layout"] == baseline, [*PAIR_KEYS, *metrics]]
    rows = []
    for layout, part in table[table["layout"] != baseline].groupby("layout", sort=False):
        joined = part.merge(base, on=list(PAIR_KEYS), how="inner", suffixes=("", "_base"))
        for (policy, variant), pair in joined.groupby(["policy", "variant"], sort=False):
            row = {"layout": layout, "vs": baseline, "policy": policy, "variant": variant,
                   "pairs": len(pair)}  # fmt: skip
            for m in metrics:
                d = pair[m].to_numpy() - pair[f"{m}_base"].to_numpy()
                row[f"d_{m}"], row[f"d_{m}_low"], row[f"d_{m}_high"] = t_interval(d)
            rows.append(row)
    return pd.DataFrame(rows)


def coverage_by_layout(table: pd.DataFrame) -> pd.DataFrame:
    """Mean coverage per UTC hour (columns) per layout (rows)."""
    return table.groupby("layout", sort=False)[list(COVERAGE_COLUMNS)].mean()


def _fmt(mean: float, low: float, high: float) -> str:
    if not math.isfinite(mean):
        return "-"
    if not math.isfinite(low):
        return f"{mean:.3g}"
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def text_report(summ: pd.DataFrame, pairs: pd.DataFrame, metrics: tuple[str, ...]) -> str:
    """The terminal tables: means with intervals, then paired differences."""
    from twin.reports.table import format_table

    rows = [{**{k: r[k] for k in (*GROUP, "n")},
             **{m: _fmt(r[m], r[f"{m}_low"], r[f"{m}_high"]) for m in metrics}}
            for _, r in summ.iterrows()]  # fmt: skip
    out = ["Mean [95 % interval] per layout:", format_table(rows)]
    if len(pairs):
        rows = [{"layout": r["layout"], "vs": r["vs"], "policy": r["policy"],
                 "variant": r["variant"], "pairs": r["pairs"],
                 **{f"d {m}": _fmt(r[f"d_{m}"], r[f"d_{m}_low"], r[f"d_{m}_high"])
                    for m in metrics}}
                for _, r in pairs.iterrows()]  # fmt: skip
        out += ["", "Paired difference against the baseline [95 % interval]:",
                format_table(rows)]  # fmt: skip
    return "\n".join(out)


def plots(summ: pd.DataFrame, table: pd.DataFrame, metrics: tuple[str, ...],
          out_dir: Path) -> list[Path]:  # fmt: skip
    """metric vs layout with intervals; duty cycle vs number of sites; coverage by hour."""
    from twin.reports.run_plots import _figure, _save

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with _figure(3.2 * len(metrics), 3.6) as fig:
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        labels = [f"{r.layout}\n{r.policy}" if summ["policy"].nunique() > 1 else r.layout
                  for r in summ.itertuples()]  # fmt: skip
        x = np.arange(len(summ))
        for ax, m in zip(axes, metrics, strict=True):
            mean = summ[m].to_numpy()
            err = np.vstack([mean - summ[f"{m}_low"].to_numpy(),
                             summ[f"{m}_high"].to_numpy() - mean])  # fmt: skip
            ax.errorbar(x, mean, yerr=np.nan_to_num(err), fmt="o", capsize=3)
            ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
            ax.set_title(m.replace("_", " "), fontsize=9)
        paths.append(_save(fig, out_dir / "metrics_by_layout.png"))
    with _figure(5.0, 3.6) as fig:
        ax = fig.subplots()
        cycles = [m for m in ("duty_cycle", "observing_cycle") if m in summ]
        for (policy, variant), part in summ.groupby(["policy", "variant"], sort=False):
            part = part.sort_values("n_sites")
            for m, fmt in zip(cycles, ("o-", "s--"), strict=False):
                y = part[m].to_numpy()
                err = np.vstack([y - part[f"{m}_low"], part[f"{m}_high"] - y])
                ax.errorbar(part["n_sites"], y, yerr=np.nan_to_num(err), fmt=fmt, capsize=3,
                            label=f"{m.replace('_', ' ')}: {policy} / {variant}")  # fmt: skip
        dark = table.groupby("layout", sort=False)[["n_sites", "dark_coverage"]].mean()
        dark = dark.sort_values("n_sites")
        ax.plot(dark["n_sites"], dark["dark_coverage"], "k:", lw=1, label="night at some site")
        ax.set_xlabel("sites in the network")
        ax.set_ylabel("fraction of the 24 h")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        paths.append(_save(fig, out_dir / "duty_cycle_vs_sites.png"))
    with _figure(6.0, 3.6) as fig:
        ax = fig.subplots()
        for layout, row in coverage_by_layout(table).iterrows():
            ax.step(np.arange(25), np.append(row.to_numpy(), row.iloc[-1]), where="post",
                    label=layout)  # fmt: skip
        ax.set_xlabel("UTC hour")
        ax.set_ylabel("fraction of the hour with a shutter open")
        ax.set_xlim(0, 24)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, ncol=2)
        paths.append(_save(fig, out_dir / "coverage_by_hour.png"))
    return paths


def write_report(out_dir: str | Path, metrics: tuple[str, ...], baseline: str
                 ) -> tuple[str, list[Path]]:  # fmt: skip
    """Tables (``report.txt``, ``summary.parquet``, ``paired.parquet``) and plots of a
    sweep directory; returns the text and the files written."""
    out_dir = Path(out_dir)
    table = pd.read_parquet(out_dir / "sweep.parquet")
    summ = summary(table, metrics)
    pairs = paired(table, metrics, baseline)
    text = text_report(summ, pairs, metrics)
    files = [out_dir / "report.txt", out_dir / "summary.parquet", out_dir / "paired.parquet"]
    files[0].write_text(text + "\n")
    summ.to_parquet(files[1], index=False)
    pairs.to_parquet(files[2], index=False)
    files += plots(summ, table, metrics, out_dir / "plots")
    return text, files
