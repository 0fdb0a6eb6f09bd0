"""The SQLite sink (``db=sqlite``, the default): every table in a file inside the run directory.

One transaction: the DDL without its indexes, each block ingested as it comes (through
ADBC's SQLite driver as Arrow when it is installed, else the standard library's sqlite3 as
rows), then one sort per index and, unless the run checked every block's keys, one
foreign-key scan, then the commit. A new database file is built under a temporary name and
renamed when complete, so it needs no rollback journal; an existing one is changed in a
normal transaction (``mode: replace`` first empties every simulator table, children first).
SQLite stores what it is given whatever a column's declared type, so no load can round a
value here.
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .base import Block, SinkContext, SinkError
from .sql import (LocalFile, TransactionSink, database_file, existing_file, extra_columns, file_database, locate_file,
                  primary_keys, quote)

SQLITE_CACHE_KIB = 256 * 1024               # page cache for a load (SQLite's default: 2 MiB)
SQLITE_CHUNK = 100_000                        # rows converted to Python values at a time
_DIALECT = [(r"--[^\n]*", ""),   # comments first: the statements are split at ';'
            (r"\bUUID\b", "TEXT"), (r"\s+DEFAULT gen_random_uuid\(\)", ""), (r"\bNOW\(\)", "CURRENT_TIMESTAMP"),
            (r"\bJSONB\b", "TEXT"), (r"\bDOUBLE PRECISION\b", "REAL")]

name = "sqlite"
shape = {"kind": None, "path": None, "mode": None}
locate = locate_file                          # where a finished run's database is: its file


def parse(p, config: Mapping):
    return file_database(p, name, config, "world.sqlite")


def sink(ctx: SinkContext) -> "SqliteSink":
    return SqliteSink(ctx)


def sqlite_ddl(sql: str) -> str:
    """PostgreSQL DDL -> the SQLite equivalent (types mapped to SQLite's affinities)."""
    for pattern, repl in _DIALECT:
        sql = re.sub(pattern, repl, sql)
    return sql


def _errors() -> tuple[type[BaseException], ...]:
    try:
        from adbc_driver_manager import dbapi
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, dbapi.Error)


def _timestamp_text(col: pa.ChunkedArray) -> pa.Array:
    """Timestamps as 'YYYY-MM-DD HH:MM:SS' text, formatted once per distinct value (dates
    repeat: a few thousand distinct days among millions of rows; strftime is the slow part)."""
    seconds = pc.cast(col, pa.timestamp("s"), safe=False).combine_chunks()
    coded = pc.dictionary_encode(seconds)
    return pc.take(pc.strftime(coded.dictionary, format="%Y-%m-%d %H:%M:%S"), coded.indices)


def for_sqlite(table: pa.Table) -> pa.Table:
    """The table as Arrow columns SQLite stores as the row loader does: text for labels and
    timestamps (to the second), integers for booleans, nulls as NULL."""
    cols = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_dictionary(field.type):
            col = col.cast(pa.string())
        elif pa.types.is_timestamp(field.type):
            col = _timestamp_text(col)
        elif pa.types.is_boolean(field.type):
            col = col.cast(pa.int64())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _rows(table: pa.Table):
    """Rows as tuples of Python values SQLite stores, a chunk at a time (memory stays
    bounded whatever the table's size): the columns are converted whole, then zipped."""
    for start in range(0, table.num_rows, SQLITE_CHUNK):
        chunk = for_sqlite(table.slice(start, SQLITE_CHUNK))
        yield from zip(*(col.to_pylist() for col in chunk.columns))


class Session:
    """One transaction on a SQLite file: through ADBC's SQLite driver when it is installed
    (rows ingested as Arrow, several times faster), else the standard library's sqlite3
    (rows as Python tuples). The statements are the same either way."""

    def __init__(self, target: Path, fresh: bool, read_only: bool = False):
        try:
            import adbc_driver_sqlite.dbapi as adbc
        except ImportError:
            adbc = None
        self.adbc = adbc is not None and not read_only
        if self.adbc:
            self.conn = adbc.connect(str(target))      # not autocommit: one implicit transaction
            self.cur = self.conn.cursor()
        else:
            uri = f"{target.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
            self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            if fresh:                                  # a temporary file: no journal needed
                self.conn.execute("PRAGMA journal_mode = OFF")
                self.conn.execute("PRAGMA synchronous = OFF")
            self.conn.execute("BEGIN")

    def run(self, sql: str, params: tuple = ()) -> list:
        if self.adbc:
            self.cur.execute(sql, params) if params else self.cur.execute(sql)
            return self.cur.fetchall() if self.cur.description else []
        return self.conn.execute(sql, params).fetchall()

    def insert(self, table: str, data: pa.Table) -> None:
        if self.adbc:                          # the driver quotes the table name itself
            self.cur.adbc_ingest(table, for_sqlite(data), mode="append")
            return
        cols = ", ".join(quote(c) for c in data.column_names)
        marks = ", ".join("?" * data.num_columns)
        self.conn.executemany(f"INSERT INTO {quote(table)} ({cols}) VALUES ({marks})", _rows(data))

    def commit(self) -> None:
        self.conn.commit() if self.adbc else self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.adbc:
            self.conn.rollback()
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        if self.adbc:
            self.cur.close()
        self.conn.close()


class SqliteSink(TransactionSink):
    """See the module docstring."""

    kind = name

    def __init__(self, ctx: SinkContext):
        super().__init__(ctx)
        self.path = database_file(ctx.db, ctx.out_dir)
        self.where = f"SQLite database {self.path}"
        self.errors = _errors()

    def begin(self, schemas: Mapping[str, pa.Schema]) -> None:
        self.keys = primary_keys(self.ddls)
        try:
            self.file = LocalFile(self.path, fresh=not self.path.exists())
            self.conn = Session(self.file.target, self.file.fresh)
        except (*self.errors, OSError) as exc:
            raise SinkError(f"cannot open {self.where}: {exc}") from None
        self.conn.run(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")   # the key B-trees of a large load
        statements = [st for d in self.ddls for st in sqlite_ddl(d.text).split(";") if st.strip()]
        self.indexes = [st for st in statements if "CREATE INDEX" in st]
        for statement in statements:
            if statement not in self.indexes:
                self.conn.run(statement)
        for table in self.order:
            existing = {row[1] for row in self.conn.run("SELECT * FROM pragma_table_info(?)", (table,))}
            for col, sql_type in extra_columns(existing, schemas[table]):
                self.conn.run(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(col)} {sql_type}")
        if self.db.mode == "replace":          # every simulator table, children first
            for d in reversed(self.ddls):
                self.conn.run(f"DELETE FROM {quote(d.table)}")

    def insert(self, table: str, block: Block) -> None:
        data = block.table(table)
        key = self.keys.get(table)
        if key is not None:                    # a block in key order: B-tree inserts near each other
            data = data.take(pc.sort_indices(data[key]))
        self.conn.insert(table, data)

    def before_commit(self) -> None:
        for statement in self.indexes:         # one sort per index, after the rows are in
            self.conn.run(statement)
        # foreign keys checked once over the whole load rather than row by row, unless
        # the run's schemas checked every block's keys against its partners already
        broken = [] if self.ctx.checked else self.conn.run("PRAGMA foreign_key_check")[:3]
        if broken:
            raise sqlite3.IntegrityError(f"foreign key violations, e.g. (table, rowid, parent) {broken}")

    def outputs(self) -> list[Path]:
        return [self.path]


def _open_existing(db, run_dir: Path, read_only: bool) -> Session:
    return Session(existing_file(db, run_dir, "SQLite"), fresh=False, read_only=read_only)


def read(db, run_dir: Path, table: str, url: str | None = None) -> pa.Table:
    """Table ``table`` of the run's SQLite file; never creates the file."""
    session = _open_existing(db, run_dir, read_only=True)
    try:
        cur = session.conn.execute(f"SELECT * FROM {quote(table)}")
        cols = [d[0] for d in cur.description]
        frame = pd.DataFrame.from_records(cur.fetchall(), columns=cols)
    except sqlite3.Error as exc:
        raise SinkError(f"cannot read {table} from SQLite database {database_file(db, run_dir)}: {exc}") from None
    finally:
        session.close()
    return pa.Table.from_pandas(frame, preserve_index=False)


def update(db, run_dir: Path, table: str, match: Mapping[str, str], rows: pa.Table, url: str | None = None) -> int:
    """Set ``rows``' other columns on the rows of ``table`` whose ``match`` columns equal
    theirs (``IS``: NULL equals NULL), in one transaction."""
    session = _open_existing(db, run_dir, read_only=False)
    cols = [c for c in rows.column_names if c not in match.values()]
    sql = (f"UPDATE {quote(table)} SET " + ", ".join(f"{quote(c)} = ?" for c in cols)
           + " WHERE " + " AND ".join(f"{quote(c)} IS ?" for c in match))
    values = list(zip(*(c.to_pylist() for c in for_sqlite(rows.select([*cols, *match.values()])).columns)))
    try:
        (session.cur if session.adbc else session.conn).executemany(sql, values)
        session.commit()
    except _errors() as exc:
        session.rollback()
        raise SinkError(f"cannot record into {table} of SQLite database {database_file(db, run_dir)}: {exc}") from None
    finally:
        session.close()
    return rows.num_rows
