"""Sinks: where a run's checked blocks go. Only this package touches files and databases.

The files (CSV and Parquet, ``output.formats``) are always written; ``db.kind`` chooses
one database sink from :data:`SINK_KINDS` (``none``: files only). Each kind is one module
(``sqlite``, ``postgres``, ``duckdb``) with its ``name``, its db group's ``shape``,
``parse``, ``sink``, ``read`` and ``update`` (simulator.sinks.base.SinkKind). Adding a kind
is one module, one line here (or :func:`register` from your own code), and YAML: a
``conf/db/<name>.yaml`` with ``kind: <name>``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa

from . import duckdb, postgres, sqlite
from .base import Block, Sink, SinkContext, SinkError, SinkKind
from .files import FilesSink
from .sql import names

SINK_KINDS: dict[str, SinkKind] = {k.name: k for k in [sqlite, postgres, duckdb]}
NONE = "none"                                 # db.kind of a files-only run


def register(kind: SinkKind) -> SinkKind:
    """Make ``kind`` available to YAML as ``db.kind: <kind.name>``; returns it."""
    SINK_KINDS[kind.name] = kind
    return kind


def kind(db) -> SinkKind:
    """The sink kind of a db spec."""
    return SINK_KINDS[db.kind]


def describe(db) -> str:
    """Where a load goes, safe to print."""
    from ..secrets import mask

    return f"{db.kind} {mask(db.target)}" if db.target else db.kind


def configured(spec, out_dir: Path, staging: Path) -> list[Sink]:
    """The run's sinks: its files, then its database (if any)."""
    tables = [spec.table, *(t for s in spec.stages for t in s.tables())]
    out: list[Sink] = [FilesSink(staging, {name: spec.files_only.get(name, spec.formats) for name in tables})]
    if spec.db.kind != NONE:
        out.append(kind(spec.db).sink(SinkContext(spec.db, out_dir, names(spec), frozenset(spec.files_only))))
    return out


def load(db, tables: Mapping[str, pd.DataFrame | pa.Table], out_dir: Path, renames: Mapping[str, str] | None = None,
         checked: bool = False) -> dict[str, int]:
    """Load whole tables into database ``db`` in one transaction (a notebook's or a test's
    way; a run streams its blocks); rows per table. ``checked``: the keys were checked
    already (else SQLite scans its foreign keys)."""
    if db.kind == NONE:
        return {}
    block = Block(0, tables)
    sink = kind(db).sink(SinkContext(db, out_dir, dict(renames or {}), checked=checked))
    try:
        sink.open(block)
        sink.write(block)
        return sink.commit()
    except BaseException:
        sink.abort()
        raise


__all__ = ["SINK_KINDS", "Block", "Sink", "SinkContext", "SinkError", "SinkKind", "configured", "describe",
           "kind", "load", "register"]
