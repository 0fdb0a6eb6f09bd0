"""The contract every sink kind fulfils: where a run's checked blocks go, all or nothing.

A run hands each sink the same checked blocks in block order. A sink is opened with the
first block (its tables' columns make a database's DDL), writes every block as it comes,
and then either commits or aborts. A *staged* sink (the files) writes into the run's
staging directory, which the run publishes with one switch; its commit only finishes its
files, before the switch. Every other sink (a database) commits after the switch, so a
database that refuses the load leaves the published files complete: its failure is a
:class:`SinkError`, raised once the files are out. Any other exception from any sink aborts
the whole run.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd
import pyarrow as pa

from .encode import arrow_table, csv_rows

if TYPE_CHECKING:
    from ..errors import Problems
    from ..spec import DbSpec


class SinkError(Exception):
    """A sink that could not take the run (a database that refused the load): one line
    naming the target, password hidden. The files are complete whatever it says."""


# The name the error had before sinks were kinds (evaluate, the CLI and tests catch it).
DatabaseError = SinkError


@dataclass(frozen=True)
class SinkContext:
    """What a database sink is opened with."""

    db: "DbSpec"                              # the db group
    out_dir: Path                             # the run directory (a relative database path is inside it)
    renames: Mapping[str, str]                # schema/ table and key names -> this world's
    skip: frozenset[str] = frozenset()        # tables written as files only, never loaded
    checked: bool = True                      # every block's keys were checked against its partners


class Block:
    """One checked block of the world's tables. Each table is turned into Arrow, and its
    CSV rows encoded, at most once, by whichever sink asks first (the files write the
    rows, a COPY reuses them); different tables convert in parallel. ``keys``: the key
    columns, plain strings in Arrow whatever their dtype in memory (:func:`arrow_table`)."""

    def __init__(self, index: int, tables: Mapping[str, "pa.Table | pd.DataFrame"],
                 csv: Mapping[str, bytes] | None = None, keys: frozenset[str] = frozenset()):
        self.index, self.names, self.keys = index, list(tables), keys
        self._tables, self._csv = dict(tables), dict(csv or {})
        self._locks = {name: threading.Lock() for name in tables}

    def table(self, name: str) -> pa.Table:
        """Table ``name`` as Arrow."""
        with self._locks[name]:
            t = self._tables[name]
            if not isinstance(t, pa.Table):
                t = self._tables[name] = arrow_table(t, self.keys)
            return t

    def csv(self, name: str) -> bytes:
        """Table ``name``'s rows as CSV, without the header."""
        table = self.table(name)
        with self._locks[name]:
            if name not in self._csv:
                self._csv[name] = csv_rows(table)
            return self._csv[name]


class Sink(Protocol):
    """An open sink of one run."""

    kind: str
    staged: bool                              # writes into the staging directory (committed before the switch)

    def open(self, first: Block) -> None:
        """Prepare for the world's tables (``first``: block 0, whose columns every block has)."""

    def write(self, block: Block) -> None:
        """Take one checked block."""

    def commit(self) -> dict[str, int]:
        """Make everything written durable; rows per table."""

    def abort(self) -> None:
        """Undo everything written (safe to call at any point, also before ``open``)."""

    def describe(self) -> str:
        """Where it writes, safe to print (no password)."""

    def outputs(self) -> list[Path]:
        """Regular files of the run directory it keeps outside the switch (a database file)."""

    def files(self) -> dict[str, list[Path]]:
        """A staged sink's files in the staging directory, per table (hashed into the
        manifest); only staged sinks are asked."""


class SinkKind(Protocol):
    """A kind of database sink, named by YAML as ``db.kind``."""

    name: str
    shape: Mapping[str, None]                 # the keys of its db group

    def parse(self, p: "Problems", config: Mapping) -> "DbSpec | None":
        """Its db group as a DbSpec, or None after adding its problems (each with a path)."""

    def sink(self, ctx: SinkContext) -> Sink:
        """A sink for one run."""

    def locate(self, db: "DbSpec", run_dir: Path, url: str | None = None) -> str:
        """Where a finished run's database is, safe to print (a file path, a hidden URL)."""

    def read(self, db: "DbSpec", run_dir: Path, table: str, url: str | None = None) -> "pa.Table":
        """A table of the run's database (``url``: the connection, if the run's is hidden);
        refused (SinkError) when the database does not exist: never creates one."""

    def update(self, db: "DbSpec", run_dir: Path, table: str, match: Mapping[str, str], rows: "pa.Table",
               url: str | None = None) -> int:
        """Set the other columns of ``rows`` on the rows of ``table`` where each ``match``
        column (table column -> the column of ``rows`` holding its value) is equal (NULL
        equals NULL), in one transaction; the rows given."""
