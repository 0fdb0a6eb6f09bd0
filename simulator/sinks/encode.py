"""Blocks as CSV text: what the CSV files hold and what a PostgreSQL COPY reads, encoded
once per block (in a worker, or by the first sink that asks)."""
from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv


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
