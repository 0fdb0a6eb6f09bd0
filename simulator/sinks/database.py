"""Load the run's tables into SQLite or PostgreSQL, all tables in one transaction.

The DDL is the SQL under ``schema/`` (the files docker-compose mounts), applied in the
order ``schema/00_init.sql`` includes them; SQLite gets the same files with PostgreSQL-only
types mapped to its affinities. Columns that a YAML world adds (a new column, an
``effect_<type>`` for a new intervention type) are added to the table in the same
transaction. PostgreSQL is loaded with COPY from the CSV files (never row inserts),
parents before children; ``mode: replace`` first empties the simulator's tables.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ..spec import DbSpec, Domain
from .files import csv_rows

log = logging.getLogger(__name__)

SQL_TYPES = {"float": "DOUBLE PRECISION", "int": "BIGINT", "bool": "BOOLEAN", "datetime": "TIMESTAMP",
             "category": "TEXT", "str": "TEXT", "any": "TEXT"}
_SQLITE = [(r"--[^\n]*", ""),   # comments first: the statements are split at ';'
           (r"\bUUID\b", "TEXT"), (r"\s+DEFAULT gen_random_uuid\(\)", ""), (r"\bNOW\(\)", "CURRENT_TIMESTAMP"),
           (r"\bJSONB\b", "TEXT"), (r"\bDOUBLE PRECISION\b", "REAL")]


class DatabaseError(Exception):
    """A load that could not happen; the message is one line with the target, password masked."""


def schema_dir() -> Path:
    """The SQL files: <pkg>/schema in a wheel, <repo>/schema in a checkout."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "schema", here.parent / "schema"):
        if (candidate / "00_init.sql").is_file():
            return candidate
    raise FileNotFoundError(f"no schema/00_init.sql beside {here}")


def ddl_files(directory: Path | None = None) -> list[Path]:
    """The table files in dependency order, as 00_init.sql includes them."""
    directory = directory or schema_dir()
    init = (directory / "00_init.sql").read_text()
    return [directory / name for name in re.findall(r"^\\ir\s+(\S+)", init, flags=re.M)]


def table_of(path: Path | str) -> str:
    """The table a DDL file (or DDL text) creates."""
    text = path.read_text() if isinstance(path, Path) else path
    return re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", text).group(1)


DDL_KEY = "partner_id"                        # the key column's name in schema/*.sql


def names(spec) -> dict[str, str]:
    """schema/ name -> this world's name: each stage's tables (from YAML) and the key column."""
    out = {ddl: table for s in spec.stages for table, ddl in s.ddl().items()}
    out[DDL_KEY] = spec.key
    return out


def ddl_texts(renames: Mapping[str, str] | None = None) -> list[str]:
    """The DDL of every table in dependency order, with schema/'s table and key names
    replaced by this world's (``renames``: old -> new, whole identifiers only)."""
    texts = [f.read_text() for f in ddl_files()]
    moved = {old: new for old, new in (renames or {}).items() if old != new}
    if moved:
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, moved)) + r")\b")
        texts = [pattern.sub(lambda m: moved[m.group(1)], t) for t in texts]
    return texts


def sqlite_ddl(sql: str) -> str:
    """PostgreSQL DDL -> the SQLite equivalent (types mapped to SQLite's affinities)."""
    for pattern, repl in _SQLITE:
        sql = re.sub(pattern, repl, sql)
    return sql


def mask(url: str) -> str:
    """The text with every URL password replaced by ***: the userinfo form
    (``://user:secret@``) and the query-string form (``?password=secret``)."""
    text = re.sub(r"(:\\?//[^:/@\s\\]+\\?:)[^@\s]*@", r"\1***@", url)   # Hydra's echo escapes ':' as '\:'
    return re.sub(r"([?&;]password=)[^&\s'\"]*", r"\1***", text, flags=re.IGNORECASE)


def describe(db: DbSpec) -> str:
    """Where a load goes, safe to print."""
    return f"{db.kind} {mask(db.target)}" if db.target else db.kind


def _order(tables: Mapping[str, pd.DataFrame], renames: Mapping[str, str] | None) -> tuple[list[str], list[str]]:
    """(DDL statements in dependency order, tables to load in that order). A table that no
    schema/ file describes (a stage kind of your own) gets a plain CREATE TABLE from its
    columns' dtypes, after the others."""
    files = ddl_texts(renames)
    known = [table_of(f) for f in files]
    for name in [t for t in tables if t not in known]:
        cols = ",\n    ".join(f'"{c}" {SQL_TYPES[_dtype_kind(tables[name][c])]}' for c in tables[name].columns)
        files.append(f"CREATE TABLE IF NOT EXISTS {name} (\n    {cols}\n);")
        known.append(name)
    return files, [t for t in known if t in tables]


def primary_keys(files: list[str]) -> dict[str, str]:
    """Table -> its single-column primary key, from the DDL."""
    out = {}
    for f in files:
        found = re.search(r"^\s*(\w+)\s+[^,\n]*\bPRIMARY KEY\b", f, re.MULTILINE)
        if found:
            out[table_of(f)] = found.group(1)
    return out


def _extra_columns(existing: set[str], frame: pd.DataFrame, domains: Mapping[str, Domain]) -> list[tuple[str, str]]:
    return [(c, SQL_TYPES[domains[c].dtype if c in domains else _dtype_kind(frame[c])])
            for c in frame.columns if c not in existing]


def _dtype_kind(series: pd.Series) -> str:
    kind = series.dtype.kind if hasattr(series.dtype, "kind") else "O"
    if isinstance(series.dtype, pd.CategoricalDtype):
        kind = "O"
    return {"f": "float", "i": "int", "u": "int", "b": "bool", "M": "datetime"}.get(kind, "str")


# ----------------------------------------------------------------------------- PostgreSQL

def _defer_indexes_and_foreign_keys(cur, tables: list[str]) -> list[str]:
    """Drop the secondary indexes and foreign keys of the (just emptied) tables and return
    the statements that restore them: building an index once and checking a foreign key
    in one pass after COPY beats maintaining both row by row. All in the load's transaction."""
    cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)", (tables,))
    fks = cur.fetchall()
    cur.execute("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid::regclass::text = ANY(%s) AND NOT indisprimary AND NOT indisunique", (tables,))
    indexes = cur.fetchall()
    for table, name, _ in fks:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f"DROP INDEX {name}")
    return [definition for _, definition in indexes] + \
        [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, definition in fks]


def _connect_postgres(db: DbSpec):
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(db.target)
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}, database {url.database}"
    options = {k: v for k, v in url.query.items()}        # libpq options; a password may be one
    password = url.password if url.password is not None else options.pop("password", None)
    options.pop("password", None)
    try:
        conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=password,
                                dbname=url.database, connect_timeout=10, **options)
    except psycopg2.OperationalError as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        reason = lines[0] if lines else "connection failed"
        raise DatabaseError(f"cannot connect to {where} as {url.username}: {mask(reason)}") from None
    return conn, where


def _csv_bytes(table: pa.Table | pd.DataFrame) -> bytes:
    """A block as CSV rows without a header (what COPY reads)."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    return csv_rows(table)


class _PostgresLoad:
    """One transaction on PostgreSQL: DDL, then each block COPYed as it comes, then the
    deferred indexes and foreign keys, then the commit."""

    def __init__(self, db: DbSpec, first: Mapping[str, pd.DataFrame], domains: Mapping[str, Domain],
                 renames: Mapping[str, str] | None):
        import psycopg2

        self.errors = psycopg2.Error
        self.conn, self.where = _connect_postgres(db)
        files, self.order = _order(first, renames)
        self.rows = {name: 0 for name in self.order}
        self.columns = {name: list(first[name].columns) for name in self.order}
        self.deferred: list[str] = []
        with _guard(self):
            self.cur = self.conn.cursor()
            for f in files:
                self.cur.execute(f)
            for name in self.order:
                self.cur.execute("SELECT column_name FROM information_schema.columns "
                                 "WHERE table_schema = current_schema() AND table_name = %s", (name,))
                for col, sql_type in _extra_columns({r[0] for r in self.cur.fetchall()}, first[name], domains):
                    log.info("adding column %s.%s %s (declared in YAML)", name, col, sql_type)
                    self.cur.execute(f'ALTER TABLE {name} ADD COLUMN "{col}" {sql_type}')
            if db.mode == "replace":
                # every simulator table, also those this world does not write
                self.cur.execute(f"TRUNCATE TABLE {', '.join(table_of(f) for f in files)} CASCADE")
                self.deferred = _defer_indexes_and_foreign_keys(self.cur, self.order)

    def failed(self, exc: BaseException) -> str:
        first = (getattr(exc, "pgerror", None) or str(exc)).strip().splitlines()[0]
        return f"load into {self.where} failed and was rolled back: {first}"

    def insert(self, name: str, table: pa.Table | pd.DataFrame, csv: bytes | None = None) -> None:
        if name not in self.rows:
            return
        cols = ", ".join(f'"{c}"' for c in self.columns[name])
        with _guard(self):
            self.cur.copy_expert(f"COPY {name} ({cols}) FROM STDIN WITH (FORMAT csv)",
                                 io.BytesIO(_csv_bytes(table) if csv is None else csv))
        self.rows[name] += len(table)

    def commit(self) -> dict[str, int]:
        with _guard(self):
            for statement in self.deferred:   # one index build, one foreign-key check per table
                self.cur.execute(statement)
            self.conn.commit()
        self.conn.close()
        return self.rows

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except self.errors:
            pass
        self.conn.close()


@contextlib.contextmanager
def _guard(load: "_PostgresLoad | _SqliteLoad"):
    """A database error inside the block becomes one DatabaseError line (the load's
    ``failed``), after the transaction is rolled back."""
    try:
        yield
    except load.errors as exc:
        load.rollback()
        raise DatabaseError(load.failed(exc)) from None


# ----------------------------------------------------------------------------- SQLite

SQLITE_CACHE_KIB = 256 * 1024               # page cache for a load (SQLite's default: 2 MiB)
SQLITE_CHUNK = 100_000                        # rows converted to Python values at a time


def _sqlite_rows(frame: pd.DataFrame):
    """Rows as tuples of Python values SQLite stores, a chunk of columns at a time (memory
    stays bounded whatever the table's size)."""
    for start in range(0, len(frame), SQLITE_CHUNK):
        yield from _sqlite_chunk(frame.iloc[start:start + SQLITE_CHUNK])


def _sqlite_chunk(frame: pd.DataFrame):
    """Text for labels and timestamps, None for nulls. sqlite3 only takes Python tuples; the
    columns are converted whole, then zipped."""
    cols = []
    for name in frame.columns:
        s = frame[name]
        if s.dtype.kind == "M":
            s = s.dt.strftime("%Y-%m-%d %H:%M:%S")
        has_nulls = bool(s.isna().any())
        if s.dtype.kind in "biuf" and not has_nulls:
            cols.append(s.to_numpy().tolist())          # numpy -> Python numbers in C
            continue
        values = s.astype(object)
        cols.append((values.where(s.notna(), None) if has_nulls else values).tolist())
    return zip(*cols)


def local_file(db: DbSpec, out_dir: Path) -> Path | None:
    """The SQLite file a load writes (relative paths are inside the run directory)."""
    if db.kind != "sqlite":
        return None
    path = Path(db.target)
    return path if path.is_absolute() else out_dir / path


def _timestamp_text(col: pa.ChunkedArray) -> pa.Array:
    """Timestamps as 'YYYY-MM-DD HH:MM:SS' text, formatted once per distinct value (dates
    repeat: a few thousand distinct days among millions of rows; strftime is the slow part)."""
    import pyarrow.compute as pc

    seconds = pc.cast(col, pa.timestamp("s"), safe=False).combine_chunks()
    coded = pc.dictionary_encode(seconds)
    return pc.take(pc.strftime(coded.dictionary, format="%Y-%m-%d %H:%M:%S"), coded.indices)


def _arrow_for_sqlite(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """The table as Arrow columns SQLite stores as the row loader does: text for labels and
    timestamps (to the second), integers for booleans, nulls as NULL."""
    table = pa.Table.from_pandas(frame, preserve_index=False) if isinstance(frame, pd.DataFrame) else frame
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


class _SqliteSession:
    """One transaction on a SQLite file: through ADBC's SQLite driver when it is installed
    (rows ingested as Arrow, several times faster), else the standard library's sqlite3
    (rows as Python tuples). The statements are the same either way."""

    def __init__(self, target: Path, fresh: bool):
        try:
            import adbc_driver_sqlite.dbapi as adbc
        except ImportError:
            adbc = None
        self.adbc = adbc is not None
        if self.adbc:
            self.conn = adbc.connect(str(target))      # not autocommit: one implicit transaction
            self.cur = self.conn.cursor()
        else:
            self.conn = sqlite3.connect(target, isolation_level=None)
            if fresh:                                  # a temporary file: no journal needed
                self.conn.execute("PRAGMA journal_mode = OFF")
                self.conn.execute("PRAGMA synchronous = OFF")
            self.conn.execute("BEGIN")

    def run(self, sql: str) -> list:
        if self.adbc:
            self.cur.execute(sql)
            return self.cur.fetchall() if self.cur.description else []
        return self.conn.execute(sql).fetchall()

    def insert(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        if self.adbc:
            self.cur.adbc_ingest(name, _arrow_for_sqlite(frame), mode="append")
            return
        if isinstance(frame, pa.Table):
            frame = frame.to_pandas()
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        marks = ", ".join("?" * len(frame.columns))
        self.conn.executemany(f"INSERT INTO {name} ({cols}) VALUES ({marks})", _sqlite_rows(frame))

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


def _sqlite_errors() -> tuple[type[BaseException], ...]:
    try:
        from adbc_driver_manager import dbapi
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, dbapi.Error)


class _SqliteLoad:
    """One transaction on a SQLite file: DDL without the indexes, each block ingested as it
    comes, then one sort per index and one foreign-key check, then the commit. A new
    database file is built under a temporary name and renamed when complete, so it needs
    no rollback journal; an existing one is changed in a normal transaction."""

    def __init__(self, db: DbSpec, first: Mapping[str, pd.DataFrame], out_dir: Path,
                 domains: Mapping[str, Domain], renames: Mapping[str, str] | None, checked: bool = False):
        self.path, self.checked = local_file(db, out_dir), checked
        self.fresh = not self.path.exists()
        self.target = self.path.with_name(f".{self.path.name}.partial") if self.fresh else self.path
        files, self.order = _order(first, renames)
        self.keys = primary_keys(files)
        self.rows = {name: 0 for name in self.order}
        self.errors = _sqlite_errors()
        try:
            if self.fresh:
                self.target.unlink(missing_ok=True)
            self.session = _SqliteSession(self.target, self.fresh)
        except (*self.errors, OSError) as exc:
            raise DatabaseError(f"cannot open SQLite database {self.path}: {exc}") from None
        with _guard(self):
            self.session.run(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")   # the key B-trees of a large load
            statements = [st for f in files for st in sqlite_ddl(f).split(";") if st.strip()]
            self.indexes = [st for st in statements if "CREATE INDEX" in st]
            for statement in statements:
                if statement not in self.indexes:
                    self.session.run(statement)
            for name in self.order:
                existing = {row[1] for row in self.session.run(f"PRAGMA table_info({name})")}
                for col, sql_type in _extra_columns(existing, first[name], domains):
                    self.session.run(f'ALTER TABLE {name} ADD COLUMN "{col}" {sql_type}')
            if db.mode == "replace":           # every simulator table, children first
                for name in reversed([table_of(f) for f in files]):
                    self.session.run(f"DELETE FROM {name}")

    def failed(self, exc: BaseException) -> str:
        return f"load into SQLite database {self.path} failed and was rolled back: {exc}"

    def insert(self, name: str, table: pa.Table | pd.DataFrame, csv: bytes | None = None) -> None:
        if name not in self.rows:
            return
        key = self.keys.get(name)
        if key is not None:                    # a block in key order: B-tree inserts near each other
            if isinstance(table, pd.DataFrame):
                table = pa.Table.from_pandas(table, preserve_index=False)
            import pyarrow.compute as pc

            table = table.take(pc.sort_indices(table[key]))
        with _guard(self):
            self.session.insert(name, table)
        self.rows[name] += len(table)

    def commit(self) -> dict[str, int]:
        with _guard(self):
            for statement in self.indexes:     # one sort per index, after the rows are in
                self.session.run(statement)
            # foreign keys checked once over the whole load rather than row by row, unless
            # the schemas checked every block's keys against its partners already (a run)
            broken = [] if self.checked else self.session.run("PRAGMA foreign_key_check")[:3]
            if broken:
                raise sqlite3.IntegrityError(f"foreign key violations, e.g. (table, rowid, parent) {broken}")
            self.session.commit()
        self.session.close()
        if self.fresh:
            os.replace(self.target, self.path)
        return self.rows

    def rollback(self) -> None:
        try:
            self.session.rollback()
        except self.errors:
            pass
        self.session.close()
        if self.fresh:
            self.target.unlink(missing_ok=True)


def open_load(db: DbSpec, first: Mapping[str, pd.DataFrame], out_dir: Path, domains: Mapping[str, Domain],
              renames: Mapping[str, str] | None = None, checked: bool = False):
    """Begin the run's one load transaction (None for db=none): ``first`` is the first
    block's tables (their columns make the DDL); then ``insert(name, table)`` each block,
    ``commit()`` (rows per table) or ``rollback()``. ``checked``: every block's keys were
    validated against its partners (the run's schemas), so SQLite skips its foreign-key
    scan (PostgreSQL checks its constraints itself)."""
    if db.kind == "none":
        return None
    if db.kind == "postgres":
        return _PostgresLoad(db, first, domains, renames)
    return _SqliteLoad(db, first, out_dir, domains, renames, checked)


def load(db: DbSpec, tables: Mapping[str, pd.DataFrame], out_dir: Path, csv_files: Mapping[str, Path],
         domains: Mapping[str, Domain], renames: Mapping[str, str] | None = None) -> dict[str, int]:
    """Load whole tables into the configured database in one transaction; rows per table.
    ``renames`` (see :func:`names`) maps schema/'s table and key names to the world's.
    ``csv_files`` is kept for callers of the whole-table form; the rows come from ``tables``."""
    session = open_load(db, tables, out_dir, domains, renames)
    if session is None:
        return {}
    for name in session.order:
        session.insert(name, tables[name])
    return session.commit()
