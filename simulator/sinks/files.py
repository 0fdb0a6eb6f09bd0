"""The files sink: every table as CSV and/or Parquet, appended block by block into the run's
staging directory (simulator.sinks.publication publishes them with the run).

Each table's formats are ``output.formats`` unless its stage writes it as files only
(``files_only``). The first block of a table fixes its schema; later blocks are cast to it
(a block's labels have fewer categories, so narrower codes). The bytes of a file are the
same whatever the blocks: a CSV is one header then each block's rows, a Parquet file each
block's row groups.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .base import Block
from .encode import csv_table
from .publication import Staging


class _CsvWriter:
    """A CSV file appended block by block: the header once, then each block's rows (the
    bytes are those of one ``write_csv`` of all blocks). ``write`` takes the block's rows
    as a callable: encoded once per block, shared with a PostgreSQL COPY."""

    def __init__(self, path: Path, first: pa.Table):
        self.fh = open(path, "wb")
        buf = pa.BufferOutputStream()
        pacsv.write_csv(csv_table(first.slice(0, 0)), buf)
        self.fh.write(buf.getvalue().to_pybytes())

    def write(self, table: pa.Table, rows) -> None:
        self.fh.write(rows())

    def close(self) -> None:
        self.fh.close()


class _ParquetWriter:
    """A Parquet file with each block's row groups (pyarrow's default row-group size within
    a block, so the file is the same whatever the chunks)."""

    def __init__(self, path: Path, first: pa.Table):
        self.writer = pq.ParquetWriter(path, first.schema)

    def write(self, table: pa.Table, rows) -> None:
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()


WRITERS = {"csv": _CsvWriter, "parquet": _ParquetWriter}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FilesSink:
    """The run's CSV and Parquet files (see the module docstring); staged, so its commit
    finishes the files before the run's switch publishes them."""

    kind = "files"
    staged = True

    def __init__(self, staging: Path, formats: Mapping[str, tuple[str, ...]]):
        self.dir, self.formats = staging, formats
        self.schemas: dict[str, pa.Schema] = {}
        self.writers: dict[str, list] = {}
        self.rows: dict[str, int] = {}
        self.pool = ThreadPoolExecutor(max_workers=2)   # Arrow's writers release the GIL

    def paths(self, name: str) -> list[Path]:
        return [(self.dir / name).with_suffix(f".{fmt}") for fmt in self.formats[name]]

    def open(self, first: Block) -> None:
        return None

    def write(self, block: Block) -> None:
        for future in [self.pool.submit(self._table, block, name) for name in block.names if name in self.formats]:
            future.result()

    def _table(self, block: Block, name: str) -> None:
        table = block.table(name)
        if name not in self.writers:
            self.schemas[name] = table.schema
            self.writers[name] = [WRITERS[p.suffix[1:]](p, table) for p in self.paths(name)]
            self.rows[name] = 0
        elif not table.schema.equals(self.schemas[name], check_metadata=False):
            table = table.cast(self.schemas[name])
        for writer in self.writers[name]:
            writer.write(table, lambda: block.csv(name))
        self.rows[name] += table.num_rows

    def written(self) -> list[str]:
        """The tables with files, in the order ``formats`` declares them (whichever of the
        writer threads opened its files first)."""
        return [name for name in self.formats if name in self.writers]

    def files(self) -> dict[str, list[Path]]:
        """Each written table's staged paths."""
        return {name: self.paths(name) for name in self.written()}

    def commit(self) -> dict[str, int]:
        """Finish every file; rows per table."""
        self.pool.shutdown(wait=True)
        for writers in self.writers.values():
            for writer in writers:
                writer.close()
        return {name: self.rows[name] for name in self.written()}

    def abort(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for writers in self.writers.values():
            for writer in writers:
                try:
                    writer.close()
                except Exception:           # closing a half-written file after a failure
                    pass

    def describe(self) -> str:
        return "files"

    def outputs(self) -> list[Path]:
        return []


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: Path,
                 formats: tuple[str, ...] | Mapping[str, tuple[str, ...]],
                 keep: frozenset[str] = frozenset()) -> dict[str, list[Path]]:
    """Write whole tables in their formats (one tuple for all, or per table) as one block
    and publish them together; returns each table's visible paths. ``keep``: regular files
    of the directory this run owns outside the switch."""
    per_table = formats if isinstance(formats, Mapping) else {name: formats for name in tables}
    staging = Staging(out_dir)
    sink = FilesSink(staging.dir, per_table)
    try:
        sink.write(Block(0, tables))
        staged = sink.commit()
        staging.publish(keep)
        return {name: [out_dir / p.name for p in sink.paths(name)] for name in staged}
    except BaseException:
        sink.abort()
        staging.discard()
        raise
