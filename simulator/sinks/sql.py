"""What the database sinks share: the DDL from ``schema/``, the world's names in it, quoting.

The DDL is the SQL under ``schema/`` (the files docker-compose mounts), in the order
``schema/00_init.sql`` includes them. A world may rename its tables and key column in YAML;
those names passed the identifier rule at compose time (simulator.identifiers) and are
still quoted here, by SQLAlchemy's identifier preparer, wherever they enter a statement:
no YAML text is formatted into SQL bare. Columns a YAML world adds (a new column, an
``effect_<type>`` for a new intervention type) are added to the table in the load's
transaction; a table no schema/ file describes (a stage kind of your own) gets a plain
CREATE TABLE from its Arrow types.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..secrets import mask
from .base import Block, SinkContext, SinkError

SQL_TYPES = {"float": "DOUBLE PRECISION", "int": "BIGINT", "bool": "BOOLEAN", "datetime": "TIMESTAMP",
             "str": "TEXT"}
# integer types of PostgreSQL and DuckDB as information_schema names them
INTEGER = re.compile(r"u?(tiny|small|big|huge)?int(eger)?\d*")
DDL_KEY = "partner_id"                        # the key column's name in schema/*.sql


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier, by SQLAlchemy's ANSI preparer (double quotes, an
    inner quote doubled: PostgreSQL's, SQLite's and DuckDB's rule alike; the PostgreSQL
    dialect's own import would add 0.05 s to every run)."""
    from sqlalchemy.engine import default

    return default.DefaultDialect().identifier_preparer.quote_identifier(name)


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
    """The table a schema/ DDL file (or its text) creates."""
    text = path.read_text() if isinstance(path, Path) else path
    return re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", text).group(1)


def names(spec) -> dict[str, str]:
    """schema/ name -> this world's name: each stage's tables (from YAML) and the key column."""
    out = {ddl: table for s in spec.stages for table, ddl in s.ddl().items()}
    out[DDL_KEY] = spec.key
    return out


@dataclass(frozen=True)
class Ddl:
    """One table's DDL: its schema/ name, its name in this world, the statements."""

    schema_name: str
    table: str
    text: str


def arrow_kind(typ: pa.DataType) -> str:
    """A column's Arrow type as one of SQL_TYPES' kinds."""
    if pa.types.is_dictionary(typ):
        return "str"
    for test, kind in ((pa.types.is_boolean, "bool"), (pa.types.is_integer, "int"), (pa.types.is_floating, "float"),
                       (pa.types.is_timestamp, "datetime"), (pa.types.is_date, "datetime")):
        if test(typ):
            return kind
    return "str"


def ddl(tables: Mapping[str, pa.Schema], renames: Mapping[str, str]) -> tuple[list[Ddl], list[str]]:
    """(every table's DDL in dependency order, the tables of this world to load in that
    order). ``renames``: schema/ name -> world name (:func:`names`); a renamed identifier is
    replaced whole and quoted."""
    moved = {old: new for old, new in renames.items() if old != new}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, moved)) + r")\b") if moved else None
    out = []
    for f in ddl_files():
        text = f.read_text()
        schema_name = table_of(text)
        if pattern is not None:
            text = pattern.sub(lambda m: quote(moved[m.group(1)]), text)
        out.append(Ddl(schema_name, renames.get(schema_name, schema_name), text))
    known = {d.table for d in out}
    for name in [t for t in tables if t not in known]:
        cols = ",\n    ".join(f"{quote(f.name)} {SQL_TYPES[arrow_kind(f.type)]}" for f in tables[name])
        out.append(Ddl(name, name, f"CREATE TABLE IF NOT EXISTS {quote(name)} (\n    {cols}\n);"))
    return out, [d.table for d in out if d.table in tables]


def primary_keys(ddls: list[Ddl]) -> dict[str, str]:
    """Table -> its single-column primary key, from the DDL."""
    out = {}
    for d in ddls:
        found = re.search(r'^\s*"?(\w+)"?\s+[^,\n]*\bPRIMARY KEY\b', d.text, re.MULTILINE)
        if found:
            out[d.table] = found.group(1)
    return out


def extra_columns(existing: set[str], schema: pa.Schema) -> list[tuple[str, str]]:
    """(column, SQL type) of the block's columns the table does not have yet."""
    return [(f.name, SQL_TYPES[arrow_kind(f.type)]) for f in schema if f.name not in existing]


def narrowing(table: str, schema: pa.Schema, existing: Mapping[str, tuple[str, int | None]],
              where: str) -> None:
    """Refuse a load whose fractional values an existing column would round: an integer
    column, or a NUMERIC/DECIMAL of scale 0. ``existing``: column -> (SQL type, its scale)."""
    bad = []
    for f in schema:
        if f.name not in existing or not pa.types.is_floating(f.type):
            continue
        sql_type, scale = existing[f.name]
        t = sql_type.lower()
        if INTEGER.fullmatch(t) or (t.startswith(("numeric", "decimal")) and scale == 0):
            bad.append(f"{table}.{f.name} ({sql_type}{'' if scale is None else f', scale {scale}'})")
    if bad:
        raise SinkError(f"load into {where} refused: the existing column{'s' if len(bad) > 1 else ''} "
                        f"{', '.join(bad)} would round fractional values; drop or alter "
                        f"{'them' if len(bad) > 1 else 'it'} (or load into another database)")


class TransactionSink:
    """A database sink: the run's tables in one transaction, opened on the first block,
    committed after the run's files are published. A subclass connects (``begin``), takes
    one table's block (``insert``), finishes (``finish``: deferred indexes, checks, the
    commit) and rolls back (``rollback``); every driver error it raises meanwhile is worded
    here, once, as one SinkError line naming the target (``where``), after a rollback."""

    staged = False
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, ctx: SinkContext):
        self.ctx, self.db = ctx, ctx.db
        self.where = self.kind
        self.rows: dict[str, int] = {}
        self.live = False
        self.conn = None                       # the driver's connection (commit, rollback, close), once open
        self.file: LocalFile | None = None     # a database file of the run directory

    def open(self, first: Block) -> None:
        schemas = {name: first.table(name).schema for name in first.names if name not in self.ctx.skip}
        self.ddls, self.order = ddl(schemas, self.ctx.renames)
        self.rows = {name: 0 for name in self.order}
        self.live = True
        with self.guarded():
            self.begin(schemas)

    def write(self, block: Block) -> None:
        for name in self.order:
            with self.guarded():
                self.insert(name, block)
            self.rows[name] += block.table(name).num_rows

    def commit(self) -> dict[str, int]:
        if not self.live:
            return {}
        with self.guarded():
            self.finish()
        self.live = False
        return self.rows

    def abort(self) -> None:
        if self.live:
            self.live = False
            try:
                self.rollback()
            except self.errors:
                pass

    def describe(self) -> str:
        return self.where

    def outputs(self) -> list[Path]:
        return []

    @contextlib.contextmanager
    def guarded(self):
        try:
            yield
        except SinkError:
            self.abort()
            raise
        except self.errors as exc:
            self.abort()
            raise SinkError(self.failed(exc)) from None

    def failed(self, exc: BaseException) -> str:
        text = (getattr(exc, "pgerror", None) or str(exc)).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        return f"load into {self.where} failed and was rolled back: {mask(first)}"

    def finish(self) -> None:
        self.before_commit()
        self.conn.commit()
        self.conn.close()
        if self.file is not None:
            self.file.complete()

    def rollback(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.rollback()
        finally:
            self.conn.close()
            if self.file is not None:
                self.file.discard()

    # what a kind implements
    def begin(self, schemas: Mapping[str, pa.Schema]) -> None:
        """Connect (``self.conn``), create the tables and whatever the load defers."""
        raise NotImplementedError

    def insert(self, name: str, block: Block) -> None:
        raise NotImplementedError

    def before_commit(self) -> None:
        """The deferred work (indexes, key checks), inside the transaction."""


class LocalFile:
    """A database file inside the run directory. A fresh one is built under a temporary
    name (no journal needed: nothing to roll back to) and renamed into place when complete;
    an existing one is changed in place, in the load's transaction."""

    def __init__(self, path: Path, fresh: bool):
        self.path, self.fresh = path, fresh
        self.target = path.with_name(f".{path.name}.partial") if fresh else path
        if fresh:
            self.discard()

    def complete(self) -> None:
        if self.fresh:
            os.replace(self.target, self.path)

    def discard(self) -> None:
        if self.fresh:
            for leftover in (self.target, self.target.with_name(self.target.name + ".wal")):
                leftover.unlink(missing_ok=True)


def file_database(p, kind: str, config: Mapping, default: str):
    """The db group of a database file: ``db.path`` a file name inside the run directory
    (nothing is written outside it), or None after adding the problem."""
    from ..spec import DbSpec

    value = config.get("path", default)
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", value) or ".." in value:
        p.add("db.path", f"must be a file name inside the run directory (letters, digits, '_', '.', '-'), "
                         f"like {default}, got {value!r}")
        return None
    return DbSpec(kind, value, mode(p, config))


def database_file(db, run_dir: Path) -> Path:
    """A database file of a run (``db.path`` inside the run directory)."""
    return run_dir / db.target


def locate_file(db, run_dir: Path, url: str | None = None) -> str:
    """Where a run's database file is, safe to print (a file kind's ``locate``)."""
    return str(database_file(db, run_dir))


def existing_file(db, run_dir: Path, what: str) -> Path:
    """The run's database file, refused (SinkError) when it is gone: it is never created anew."""
    path = database_file(db, run_dir)
    if not path.is_file():
        raise SinkError(f"{path}: no such database (the run's {what} file is gone; re-run python -m simulator "
                        f"to rebuild it, or read the predictions from a file; it is never created anew)")
    return path


def mode(p, config: Mapping) -> str:
    value = config.get("mode", "replace")
    if value not in ("replace", "append"):
        p.add("db.mode", f"must be replace or append, got {value!r}")
        return "replace"
    return value
