"""Writes a run's tables one simulated day at a time, so a killed run keeps every finished day.

Each streamed table (``observations.parquet``, ``events.parquet``, ``timeline.parquet``) is
a *directory* of Parquet part files, one per simulated day (``part-00000.parquet``, …):
the layout Spark and Hive use, which pandas (``pd.read_parquet(path)``), pyarrow
(``pq.read_table(path)``, ``pyarrow.dataset``) and duckdb
(``read_parquet('path/*.parquet')``) read as one table, in day order.

Why parts and not one growing file: Parquet writes its footer only on close, so a file
open when the process is killed (SIGKILL, a power cut) is unreadable, and everything in
it is lost. A part is written whole under a hidden temporary name (readers skip names
starting with ``.``) and renamed into place, which is atomic on POSIX file systems: a
part either exists complete or not at all. A day's rows stay in memory until the day
ends (a day of the densest network is a few MB).

When a stopped run is resumed (:func:`twin.ops.run.run_scenario` with ``resume=True``),
the twin replays the finished days from the start, and the recorder is told to skip
them (``skip_days``): it checks that the replay reproduces each kept part's row count
(a different code version or a nondeterminism would show here) and writes nothing until
the first day that was not finished.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from twin.errors import ConfigError
from twin.ops import stopping

PART_PREFIX = "part-"


def part_name(day: int) -> str:
    """The file name of a day's part: zero-padded, so name order is day order."""
    return f"{PART_PREFIX}{day:05d}.parquet"


def part_days(table_dir: Path) -> list[int]:
    """The days whose part file is present in ``table_dir`` (sorted)."""
    if not table_dir.is_dir():
        return []
    days = []
    for p in table_dir.glob(f"{PART_PREFIX}*.parquet"):
        stem = p.name[len(PART_PREFIX) : -len(".parquet")]
        if stem.isdigit():
            days.append(int(stem))
    return sorted(days)


def remove_parts_from(table_dir: Path, first_day: int) -> None:
    """Delete parts of days ≥ ``first_day`` and leftover temporary files (before a resume)."""
    if not table_dir.is_dir():
        return
    for day in part_days(table_dir):
        if day >= first_day:
            (table_dir / part_name(day)).unlink()
    for tmp in table_dir.glob(".*.tmp"):
        tmp.unlink()


class ReplayMismatch(ConfigError):
    """A resumed run's replay did not reproduce a kept day: the run cannot be continued."""


class TableWriter:
    """One table's rows of the current day, written as that day's part when it ends."""

    def __init__(self, table_dir: Path, schema: pa.Schema, flush_rows: int = 50_000,
                 skip_days: int = 0) -> None:  # fmt: skip
        self.dir = table_dir
        self.schema = schema
        self.flush_rows = flush_rows
        self.skip_days = skip_days
        self.rows: list[tuple] = []
        self.batches: list[pa.Table] = []
        self.dir.mkdir(parents=True, exist_ok=True)

    def append(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.flush_rows:
            self.flush()

    def write_columns(self, columns: dict) -> None:
        """Add a batch given as columns (names of the schema); buffered rows go first."""
        self.flush()
        table = pa.Table.from_arrays(
            [pa.array(columns[f.name], type=f.type) for f in self.schema], schema=self.schema
        )
        if table.num_rows:
            self.batches.append(table)

    def flush(self) -> None:
        """Turn buffered tuples into an Arrow batch (compact); nothing reaches the disk."""
        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        self.batches.append(
            pa.Table.from_arrays(
                [pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)],
                schema=self.schema,
            )
        )
        self.rows.clear()

    def stage_day(self, day: int) -> Path | None:
        """Write the day's rows under a hidden temporary name; return it (None if skipped)."""
        self.flush()
        table = pa.concat_tables(self.batches) if self.batches else self.schema.empty_table()
        self.batches = []
        if day < self.skip_days:
            self._check_replayed(day, table.num_rows)
            return None
        tmp = self.dir / f".{part_name(day)}.tmp"
        pq.write_table(table, tmp)
        return tmp

    def commit_day(self, day: int, tmp: Path | None) -> None:
        if tmp is not None:
            os.replace(tmp, self.dir / part_name(day))

    def discard(self) -> None:
        """Drop the unfinished day's rows (a stopped run keeps only finished days)."""
        self.rows.clear()
        self.batches = []

    def _check_replayed(self, day: int, n_rows: int) -> None:
        kept = pq.read_metadata(self.dir / part_name(day)).num_rows
        if kept != n_rows:
            raise ReplayMismatch(
                str(self.dir / part_name(day)),
                "rows",
                f"the replay of day {day} gave {n_rows} rows, the stopped run kept {kept}: it "
                "was made by another version or input and cannot be resumed; start it again",
            )


class Recorder:
    """The run's streamed tables by name (``observations``, ``events``, ``timeline``).

    :meth:`end_day` is called by the twin at each simulated day boundary: every table's
    part of that day is staged, then all are renamed into place, then ``on_day_written``
    (the run's progress file) is told. The three steps are one critical section: a
    SIGINT/SIGTERM arriving during them takes effect after them (:mod:`twin.ops.stopping`).
    """

    def __init__(self, out_dir: Path, schemas: dict[str, pa.Schema], flush_rows: int = 50_000,
                 skip_days: int = 0, on_day_written=None) -> None:  # fmt: skip
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.tables = {
            name: TableWriter(out_dir / f"{name}.parquet", schema, flush_rows, skip_days)
            for name, schema in schemas.items()
        }
        self.skip_days = skip_days
        self.on_day_written = on_day_written

    def __getitem__(self, name: str) -> TableWriter:
        return self.tables[name]

    def end_day(self, day: int) -> None:
        with stopping.critical():
            staged = {name: t.stage_day(day) for name, t in self.tables.items()}
            for name, tmp in staged.items():
                self.tables[name].commit_day(day, tmp)
            if self.on_day_written is not None and day >= self.skip_days:
                self.on_day_written(day + 1)

    def discard(self) -> None:
        for table in self.tables.values():
            table.discard()
