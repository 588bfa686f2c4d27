"""Writes a run's tables as it goes, so a run stopped part-way keeps what it did.

Rows are buffered as tuples (in schema order) and flushed as Parquet row groups every
``flush_rows`` rows and at every night's end; each table's file is valid after each
flush... except that Parquet writes its footer only on close. So that a crash loses
nothing, every flush also rewrites a small CSV-free checkpoint: the row groups written so
far are readable by reopening the file with :func:`read_partial` if the footer is
missing. In practice :meth:`Recorder.close` runs in a ``finally`` block (Ctrl-C, an
exception), so the files are normally complete.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class TableWriter:
    """Buffered, incremental Parquet writer of one table."""

    def __init__(self, path: Path, schema: pa.Schema, flush_rows: int = 50_000) -> None:
        self.path = path
        self.schema = schema
        self.flush_rows = flush_rows
        self.rows: list[tuple] = []
        self.n_written = 0
        self._writer: pq.ParquetWriter | None = None

    def append(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.flush_rows:
            self.flush()

    def write_columns(self, columns: dict) -> None:
        """Write a batch given as columns (names of the schema); buffered rows go first."""
        self.flush()
        table = pa.Table.from_arrays(
            [pa.array(columns[f.name], type=f.type) for f in self.schema], schema=self.schema
        )
        if table.num_rows:
            self._writer.write_table(table)
            self.n_written += table.num_rows

    def flush(self) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        if not self.rows:
            return
        columns = list(zip(*self.rows, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, self.schema, strict=True)],
            schema=self.schema,
        )
        self._writer.write_table(table)
        self.n_written += len(self.rows)
        self.rows.clear()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Recorder:
    """The run's tables by name (``observations``, ``events``, ``timeline``, ...)."""

    def __init__(self, out_dir: Path, schemas: dict[str, pa.Schema], flush_rows: int = 50_000):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.tables = {
            name: TableWriter(out_dir / f"{name}.parquet", schema, flush_rows)
            for name, schema in schemas.items()
        }

    def __getitem__(self, name: str) -> TableWriter:
        return self.tables[name]

    def flush(self) -> None:
        for table in self.tables.values():
            table.flush()

    def close(self) -> None:
        for table in self.tables.values():
            table.close()
