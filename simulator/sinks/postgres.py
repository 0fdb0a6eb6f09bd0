"""The PostgreSQL sink (``db=postgres``): every table COPYed in one transaction.

The DDL first (the schema/ files docker-compose mounts, with this world's names), then each
block COPYed as it comes (the CSV rows the files sink wrote, reused), then the deferred
indexes and foreign keys, then the commit. ``mode: replace`` first empties every simulator
table, also those this world does not write, and drops their secondary indexes and foreign
keys until the rows are in: building an index once and checking a foreign key in one pass
after COPY beats maintaining both row by row. A column that exists already with a type
that would round the world's fractional values (an integer, a NUMERIC of scale 0) refuses
the load before any row is written. The URL is parsed by SQLAlchemy's ``make_url``; only
its masked form is ever printed.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from ..secrets import mask, parse_url
from .base import Block, SinkContext, SinkError
from .sql import TransactionSink, extra_columns, mode, narrowing

log = logging.getLogger(__name__)

name = "postgres"
shape = {"kind": None, "url": None, "mode": None}


def parse(p, config: Mapping):
    from ..spec import DbSpec

    url = config.get("url")
    if not isinstance(url, str) or not url:
        p.add("db.url", f"must be a non-empty string, got {url!r}")
        return None
    try:
        parsed = parse_url(url)
    except Exception:                          # ArgumentError: not a URL at all
        parsed = None
    if parsed is None or not parsed.drivername.startswith("postgresql"):
        p.add("db.url", "must be a PostgreSQL URL like postgresql+psycopg2://user:password@host:5432/db")
        return None
    return DbSpec(name, url, mode(p, config))


def _statement(template: str, *names: str | list[str]):
    """``template`` with each ``{}`` an identifier (or a list of them, comma-separated),
    quoted by psycopg2 (``psycopg2.sql``), never formatted into the text."""
    from psycopg2 import sql

    parts = [sql.SQL(", ").join(map(sql.Identifier, n)) if isinstance(n, list) else sql.Identifier(n) for n in names]
    return sql.SQL(template).format(*parts)


def sink(ctx: SinkContext) -> "PostgresSink":
    return PostgresSink(ctx)


def connect(url: str):
    """(a psycopg2 connection, where it goes: safe to print); SinkError if it cannot."""
    import psycopg2

    try:
        parsed = parse_url(url)                # a raw '@', ':' or '/' in the password read right
    except Exception as exc:                   # (a port that is not a number: ValueError)
        raise SinkError(f"{mask(url)}: not a PostgreSQL URL like postgresql+psycopg2://user:password@host:5432/db "
                        f"({type(exc).__name__}: {mask(str(exc))})") from None
    where = f"PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or 5432}, database {parsed.database}"
    # libpq options, keys in any case; a password may be one of them
    options = {k.lower(): v for k, v in parsed.query.items()}
    password = options.pop("password", None)
    password = parsed.password if parsed.password is not None else password
    try:
        conn = psycopg2.connect(host=parsed.host, port=parsed.port, user=parsed.username, password=password,
                                dbname=parsed.database, connect_timeout=10, **options)
    except psycopg2.Error as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        reason = lines[0] if lines else "connection failed"
        raise SinkError(f"cannot connect to {where} as {parsed.username}: {mask(reason)}") from None
    return conn, where


class PostgresSink(TransactionSink):
    """See the module docstring."""

    kind = name

    def __init__(self, ctx: SinkContext):
        super().__init__(ctx)
        import psycopg2

        self.errors = (psycopg2.Error,)
        self.deferred: list = []               # statements (text or psycopg2.sql) run before the commit

    def begin(self, schemas: Mapping[str, pa.Schema]) -> None:
        self.conn, self.where = connect(self.db.target)
        self.cur = self.conn.cursor()
        for d in self.ddls:
            self.cur.execute(d.text)
        for table in self.order:
            self.cur.execute("SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
                             "WHERE table_schema = current_schema() AND table_name = %s", (table,))
            existing = {col: (typ, scale) for col, typ, scale in self.cur.fetchall()}
            narrowing(table, schemas[table], existing, self.where)
            for col, sql_type in extra_columns(set(existing), schemas[table]):
                log.info("adding column %s.%s %s (declared in YAML)", table, col, sql_type)
                self.cur.execute(_statement("ALTER TABLE {} ADD COLUMN {} " + sql_type, table, col))
        self.columns = {table: schemas[table].names for table in self.order}
        if self.db.mode == "replace":
            # every simulator table, also those this world does not write
            self.cur.execute(_statement("TRUNCATE TABLE {} CASCADE", [d.table for d in self.ddls]))
            self.deferred = self._defer_indexes_and_foreign_keys()

    def _defer_indexes_and_foreign_keys(self) -> list:
        """Drop the secondary indexes and foreign keys of the (just emptied) tables and
        return the statements that restore them, all in the load's transaction."""
        from psycopg2 import sql

        cur = self.cur
        cur.execute("SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
                    "JOIN pg_class c ON c.oid = k.conrelid WHERE k.contype = 'f' "
                    "AND c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s)", (self.order,))
        fks = cur.fetchall()
        cur.execute("SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                    "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                    "WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(%s) "
                    "AND NOT x.indisprimary AND NOT x.indisunique", (self.order,))
        indexes = cur.fetchall()
        for table, constraint, _ in fks:
            cur.execute(_statement("ALTER TABLE {} DROP CONSTRAINT {}", table, constraint))
        for index, _ in indexes:
            cur.execute(_statement("DROP INDEX {}", index))
        return [definition for _, definition in indexes] + \
            [_statement("ALTER TABLE {} ADD CONSTRAINT {} ", table, constraint) + sql.SQL(definition)
             for table, constraint, definition in fks]

    def insert(self, table: str, block: Block) -> None:
        self.cur.copy_expert(_statement("COPY {} ({}) FROM STDIN WITH (FORMAT csv)", table, self.columns[table]),
                             io.BytesIO(block.csv(table)))

    def before_commit(self) -> None:
        for statement in self.deferred:        # one index build, one foreign-key check per table
            self.cur.execute(statement)


def _engine_url(db, url: str | None) -> str:
    import os

    return url or os.environ.get("DATABASE_URL") or db.target


def locate(db, run_dir: Path, url: str | None = None) -> str:
    """Where the run's database is, safe to print (the URL ``read`` and ``update`` use)."""
    return mask(_engine_url(db, url))


def _connect_saved(db, url: str | None):
    """A connection for a finished run (``url``, else DATABASE_URL, else the run's saved
    URL, whose password the saved config hides: then the refusal says how to give it)."""
    target = _engine_url(db, url)
    try:
        return connect(target)
    except SinkError as exc:
        hint = " (the run's saved config hides the password: pass --db-url URL or set DATABASE_URL)" \
            if "***" in target else ""
        raise SinkError(f"{exc}{hint}") from None


def read(db, run_dir: Path, table: str, url: str | None = None) -> pa.Table:
    """Table ``table`` of the run's PostgreSQL database (``url``, else DATABASE_URL, else
    the run's saved URL, whose password the saved config hides)."""
    conn, where = _connect_saved(db, url)
    try:
        with conn.cursor() as cur:
            cur.execute(_statement("SELECT * FROM {}", table))
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
    except Exception as exc:
        raise SinkError(f"cannot read {table} from {where}: {mask(str(exc).strip().splitlines()[0])}") from None
    finally:
        conn.close()
    import pandas as pd

    return pa.Table.from_pandas(pd.DataFrame.from_records(rows, columns=cols), preserve_index=False)


def update(db, run_dir: Path, table: str, match: Mapping[str, str], rows: pa.Table, url: str | None = None) -> int:
    """Set ``rows``' other columns on the rows of ``table`` whose ``match`` columns equal
    theirs (``IS NOT DISTINCT FROM``: NULL equals NULL), in one transaction."""
    import psycopg2
    import psycopg2.extras

    conn, where = _connect_saved(db, url)
    cols = [c for c in rows.column_names if c not in match.values()]
    sets = " = %s, ".join(["{}"] * len(cols)) + " = %s"
    where = " IS NOT DISTINCT FROM %s AND ".join(["{}"] * len(match)) + " IS NOT DISTINCT FROM %s"
    statement = _statement("UPDATE {} SET " + sets + " WHERE " + where, table, *cols, *match)
    values = list(zip(*(rows[c].to_pylist() for c in [*cols, *match.values()])))
    try:
        with conn, conn.cursor() as cur:       # one transaction: all rows or none
            psycopg2.extras.execute_batch(cur, statement, values, page_size=1000)
    except psycopg2.Error as exc:
        raise SinkError(f"cannot record into {table} of {where}: {mask(str(exc).strip().splitlines()[0])}") from None
    finally:
        conn.close()
    return rows.num_rows
