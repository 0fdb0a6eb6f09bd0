"""The DuckDB sink (``db=duckdb``): every table in ``world.duckdb`` inside the run directory.

Each block goes in as Arrow: DuckDB reads the registered Arrow table in place (no rows
through Python) and inserts it with one ``INSERT ... SELECT``. The DDL is schema/'s (JSONB
becomes JSON), the indexes are built once after the rows are in, and the primary and
foreign keys are DuckDB's own. With ``mode: replace``, or no file yet, the database is
built under a temporary name and renamed into place when complete (a replaced file's
tables are all the simulator's: ``predictions`` is emptied by a replace anyway); with
``mode: append`` an existing file is changed in one transaction. A column that exists
already with a type that would round the world's fractional values refuses the load.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from .base import Block, SinkContext, SinkError
from .sql import (LocalFile, TransactionSink, database_file, existing_file, extra_columns, file_database, locate_file,
                  narrowing, quote)

name = "duckdb"
shape = {"kind": None, "path": None, "mode": None}
locate = locate_file                          # where a finished run's database is: its file
_BLOCK = "_simulator_block"                   # the registered Arrow block (a fixed name, never YAML's)


def parse(p, config: Mapping):
    return file_database(p, name, config, "world.duckdb")


def sink(ctx: SinkContext) -> "DuckDBSink":
    return DuckDBSink(ctx)


def duckdb_ddl(sql: str) -> str:
    """PostgreSQL DDL -> DuckDB's (JSONB is JSON there; the rest is the same)."""
    return re.sub(r"\bJSONB\b", "JSON", re.sub(r"--[^\n]*", "", sql))


def _plain(table: pa.Table) -> pa.Table:
    """Labels as text: a dictionary column would arrive as an ENUM of the block's labels."""
    return pa.table([c.cast(pa.string()) if pa.types.is_dictionary(f.type) else c
                     for f, c in zip(table.schema, table.columns)], names=table.column_names)


class DuckDBSink(TransactionSink):
    """See the module docstring."""

    kind = name

    def __init__(self, ctx: SinkContext):
        super().__init__(ctx)
        import duckdb

        self.duckdb = duckdb
        self.errors = (duckdb.Error,)
        self.path = database_file(ctx.db, ctx.out_dir)
        self.where = f"DuckDB database {self.path}"

    def begin(self, schemas: Mapping[str, pa.Schema]) -> None:
        try:
            self.file = LocalFile(self.path, fresh=self.db.mode == "replace" or not self.path.exists())
            self.conn = self.duckdb.connect(str(self.file.target))
        except (self.duckdb.Error, OSError) as exc:
            raise SinkError(f"cannot open {self.where}: {exc}") from None
        self.conn.begin()
        statements = [st for d in self.ddls for st in duckdb_ddl(d.text).split(";") if st.strip()]
        self.indexes = [st for st in statements if "CREATE INDEX" in st]
        for statement in statements:
            if statement not in self.indexes:
                self.conn.execute(statement)
        for table in self.order:
            existing = {col: (typ, scale) for col, typ, scale in self.conn.execute(
                "SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ?", [table]).fetchall()}
            narrowing(table, schemas[table], existing, self.where)
            for col, sql_type in extra_columns(set(existing), schemas[table]):
                self.conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(col)} {sql_type}")

    def insert(self, table: str, block: Block) -> None:
        data = _plain(block.table(table))
        cols = ", ".join(quote(c) for c in data.column_names)
        self.conn.register(_BLOCK, data)
        try:
            self.conn.execute(f"INSERT INTO {quote(table)} ({cols}) SELECT {cols} FROM {_BLOCK}")
        finally:
            self.conn.unregister(_BLOCK)

    def before_commit(self) -> None:
        for statement in self.indexes:         # one index build per index, after the rows are in
            self.conn.execute(statement)

    def outputs(self) -> list[Path]:
        return [self.path]


def _open_existing(db, run_dir: Path, read_only: bool):
    import duckdb

    return duckdb.connect(str(existing_file(db, run_dir, "DuckDB")), read_only=read_only)


def read(db, run_dir: Path, table: str, url: str | None = None) -> pa.Table:
    """Table ``table`` of the run's DuckDB file, as Arrow; never creates the file."""
    import duckdb

    conn = _open_existing(db, run_dir, read_only=True)
    try:
        relation = conn.sql(f"SELECT * FROM {quote(table)}")
        # duckdb 2.x names it to_arrow_table, 1.x arrow (a Table there)
        return (relation.to_arrow_table if hasattr(relation, "to_arrow_table") else relation.arrow)()
    except duckdb.Error as exc:
        raise SinkError(f"cannot read {table} from DuckDB database {database_file(db, run_dir)}: {exc}") from None
    finally:
        conn.close()


def update(db, run_dir: Path, table: str, match: Mapping[str, str], rows: pa.Table, url: str | None = None) -> int:
    """Set ``rows``' other columns on the rows of ``table`` whose ``match`` columns equal
    theirs (NULL equals NULL), in one transaction: one UPDATE ... FROM the Arrow rows."""
    import duckdb

    conn = _open_existing(db, run_dir, read_only=False)
    cols = [c for c in rows.column_names if c not in match.values()]
    t = quote(table)
    try:
        conn.begin()
        conn.register(_BLOCK, _plain(rows))
        conn.execute(f"UPDATE {t} SET " + ", ".join(f"{quote(c)} = {_BLOCK}.{quote(c)}" for c in cols)
                     + f" FROM {_BLOCK} WHERE "
                     + " AND ".join(f"{t}.{quote(c)} IS NOT DISTINCT FROM {_BLOCK}.{quote(v)}" for c, v in match.items()))
        conn.commit()
    except duckdb.Error as exc:
        conn.rollback()
        raise SinkError(f"cannot record into {table} of DuckDB database {database_file(db, run_dir)}: {exc}") from None
    finally:
        conn.close()
    return rows.num_rows
