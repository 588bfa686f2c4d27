"""Reading a run directory's tables: whole, or in bounded batches of the columns needed.

A streamed table (``observations``, ``events``, ``timeline``) is either one Parquet file
(runs written before day parts) or a directory of day parts, ``part-00000.parquet``, …,
whose name order is day order; names starting with ``.`` or ``_`` are temporary files of
a writer and are skipped (``pyarrow.dataset``'s default). Both forms read the same here.

Why batches: a year of a dense network is ~500 000 exposures of ~60 columns, a few GB as
pandas objects; the reports need a third of the columns and can aggregate as they go, so
``iter_frames`` hands them ``batch_rows`` rows at a time, in file order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from twin.errors import ConfigError
from twin.ops.records import (
    ALERT_SCHEMA,
    EVENT_SCHEMA,
    NIGHT_SCHEMA,
    OBSERVATION_SCHEMA,
    REQUEST_SCHEMA,
    TIMELINE_SCHEMA,
)

TABLES: dict[str, pa.Schema] = {
    "observations": OBSERVATION_SCHEMA,
    "events": EVENT_SCHEMA,
    "timeline": TIMELINE_SCHEMA,
    "nights": NIGHT_SCHEMA,
    "alerts": ALERT_SCHEMA,
    "requests": REQUEST_SCHEMA,
}
OPTIONAL_TABLES = ("alerts", "requests")  # a run without alerts or a queue may omit them
BATCH_ROWS = 20_000  # ~5 MB of the metrics' columns; one day of a dense network is ~1 500
READ_ROWS = 16_384  # rows per Parquet read; batches are assembled from these


@contextlib.contextmanager
def system_arrow_memory() -> Iterator[None]:
    """Arrow's allocations on the system allocator while a run is read back.

    pyarrow's default pool (mimalloc here) keeps the pages of freed batches for reuse, so
    reading a run in batches left its peak near the sum of them: over 30 nights of
    ``dense-8site``, ``write_metrics`` rose 75 MB above the run's RSS with it and 39 MB
    with the system allocator (by hand; ``benchmarks/peak_rss.py`` measures the year).
    The previous pool is restored after; buffers remember the pool that made them.
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def table_files(run_dir: str | Path, name: str) -> list[str] | None:
    """The Parquet files of one table in read order; [] for an empty part directory;
    None when the table is absent."""
    path = Path(run_dir) / f"{name}.parquet"
    if not path.exists():
        return None
    if path.is_file():
        return [str(path)]
    return sorted(ds.dataset(path, format="parquet").files)


def require_tables(run_dir: str | Path, names: Sequence[str]) -> None:
    """Raise, naming the first of ``names`` that the run directory lacks."""
    for name in names:
        if table_files(run_dir, name) is None:
            raise ConfigError(
                str(run_dir),
                f"{name}.parquet",
                "missing: is this the output directory of `skytwin run`?",
            )


def _files_or_raise(run_dir: str | Path, name: str) -> list[str] | None:
    if name not in OPTIONAL_TABLES:
        require_tables(run_dir, [name])
    return table_files(run_dir, name)


def read_table(
    run_dir: str | Path, name: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """One table of a run directory, whole (only ``columns`` if given); an optional table
    that is missing reads as empty."""
    files = _files_or_raise(run_dir, name)
    if not files:
        return _empty(name, columns)
    wanted = None if columns is None else list(columns)
    table = ds.dataset(files, format="parquet").to_table(columns=wanted)
    return table.to_pandas()


def iter_frames(
    run_dir: str | Path, name: str, columns: Sequence[str], batch_rows: int = BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """``columns`` of one table as DataFrames of about ``batch_rows`` rows, in table order.

    Small day parts are gathered into one frame (pandas work per frame has a fixed cost);
    a large file is read a few thousand rows at a time, on this thread. Nothing is yielded
    for an empty table; the index of each frame starts at 0.
    """
    files = _files_or_raise(run_dir, name) or []
    pending: list[pa.RecordBatch] = []
    n_pending = 0
    for file in files:
        with pq.ParquetFile(file) as parquet:
            batches = parquet.iter_batches(READ_ROWS, columns=list(columns), use_threads=False)
            for batch in batches:
                pending.append(batch)
                n_pending += batch.num_rows
                if n_pending >= batch_rows:
                    yield _frame(pending)
                    pending, n_pending = [], 0
    if n_pending:
        yield _frame(pending)


def _frame(batches: list[pa.RecordBatch]) -> pd.DataFrame:
    # One thread: the frames are small, and each reader thread keeps its own allocator heap.
    return pa.Table.from_batches(batches).to_pandas(use_threads=False)


def _empty(name: str, columns: Sequence[str] | None) -> pd.DataFrame:
    table = TABLES[name].empty_table()
    return (table.select(list(columns)) if columns is not None else table).to_pandas()


def records_frame(schema: pa.Schema, rows: list[dict]) -> pd.DataFrame:
    """A table with the schema's columns and types from row dicts (notebooks, tests).

    Fields a row leaves out take the type's empty value: NaN, 0, "", False or [].
    """
    blank = {
        pa.types.is_floating: np.nan,
        pa.types.is_integer: 0,
        pa.types.is_string: "",
        pa.types.is_boolean: False,
        pa.types.is_list: [],
    }

    def default(field: pa.Field) -> object:
        return next(v for test, v in blank.items() if test(field.type))

    unknown = {k for row in rows for k in row} - set(schema.names)
    if unknown:
        raise ConfigError("records_frame", sorted(unknown)[0], "not a column of the schema")
    columns = {f.name: [row.get(f.name, default(f)) for row in rows] for f in schema}
    return pa.table(columns, schema=schema).to_pandas()
