"""Blocks as the sinks take them: Arrow tables whose key columns are plain strings, and CSV
text (what the CSV files hold and what a PostgreSQL COPY reads), each built once per block
(in a worker, or by the first sink that asks)."""
from __future__ import annotations

import io
import json
from collections.abc import Collection

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv


def arrow_table(frame: pd.DataFrame, keys: Collection[str] = ()) -> pa.Table:
    """``frame`` as Arrow, its ``keys`` columns as plain strings whatever their dtype in memory.

    The history tables hold the partner key as a categorical over every partner id (4 bytes
    a row); written as such, a Parquet reader gets a categorical there and a string in every
    other table, and a merge on the key falls back to ``object``. A key therefore has one
    type in every file and database: string (Parquet still dictionary-encodes its pages), under
    pandas 2 (object columns) and 3 (``str`` columns, which Arrow takes as large strings) alike."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):    # pandas 3's str columns: the string type pandas 2 writes
        if pa.types.is_large_string(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    cast = [name for name in keys if name in table.column_names
            and pa.types.is_dictionary(table.schema.field(name).type)]
    if not cast:
        return table
    meta = table.schema.pandas_metadata
    for entry in meta["columns"]:              # what pandas would record for a string column
        if entry["name"] in cast:
            entry.update(pandas_type="unicode", numpy_type="object", metadata=None)
    for name in cast:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(i).cast(pa.string()))
    return table.replace_schema_metadata({**table.schema.metadata, b"pandas": json.dumps(meta).encode()})


def csv_table(table: pa.Table) -> pa.Table:
    """Labels as plain text and timestamps to the second, so CSV reads back cleanly."""
    cols = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_dictionary(field.type):
            col = col.cast(pa.string())
        elif pa.types.is_timestamp(field.type):
            col = pc.cast(col, pa.timestamp("s"), safe=False)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def csv_rows(table: pa.Table) -> bytes:
    """A block's rows as CSV, without the header."""
    buf = io.BytesIO()
    pacsv.write_csv(csv_table(table), buf, pacsv.WriteOptions(include_header=False))
    return buf.getvalue()
