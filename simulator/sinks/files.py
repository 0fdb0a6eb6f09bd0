"""CSV and Parquet files, written all-or-nothing, plus the run's manifest.json.

A run's files (tables, stats.json, report.html, manifest.json) are written into a hidden
staging directory beside the destination. When every one is complete the staging
directory becomes ``.runs/<run>`` and the run is published by switching one symlink,
``.current``, to it with ``os.replace`` (atomic): each visible file is a link
``<name> -> .current/<name>``, so the directory shows the previous complete run or the new
complete run, never a mix, whenever the process is killed. Links to names the new run
does not write dangle after the switch and are removed, as are older runs' directories
and the staging a killed run left.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

MANIFEST = "manifest.json"


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


class _CsvWriter:
    """A CSV file appended block by block: the header once, then each block's rows (the
    bytes are those of one ``write_csv`` of all blocks). ``write`` returns the rows' bytes
    (without the header), which a PostgreSQL COPY can reuse."""

    def __init__(self, path: Path, first: pa.Table):
        self.fh = open(path, "wb")
        buf = pa.BufferOutputStream()
        pacsv.write_csv(csv_table(first.slice(0, 0)), buf)
        self.fh.write(buf.getvalue().to_pybytes())

    def write(self, table: pa.Table, rows: bytes | None = None) -> bytes:
        data = csv_rows(table) if rows is None else rows
        self.fh.write(data)
        return data

    def close(self) -> None:
        self.fh.close()


class _ParquetWriter:
    """A Parquet file with each block's row groups (pyarrow's default row-group size within
    a block, so the file is the same whatever the chunks)."""

    def __init__(self, path: Path, first: pa.Table):
        self.writer = pq.ParquetWriter(path, first.schema)

    def write(self, table: pa.Table, rows: bytes | None = None) -> None:
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


class Staging:
    """A run's files written into a hidden staging directory beside ``out_dir``, table by
    table and block by block, then published together (:func:`publish`) or discarded.

    ``formats``: each table's formats. The first block of a table fixes its schema; later
    blocks are cast to it (a block's labels have fewer categories, so narrower codes)."""

    def __init__(self, out_dir: Path, formats: Mapping[str, tuple[str, ...]]):
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(out_dir)
        self.out_dir, self.formats = out_dir, formats
        self.dir = Path(tempfile.mkdtemp(prefix=f".partial-{os.getpid()}-", dir=out_dir))
        self.schemas: dict[str, pa.Schema] = {}
        self.writers: dict[str, list] = {}

    def paths(self, name: str) -> list[Path]:
        return [(self.dir / name).with_suffix(f".{fmt}") for fmt in self.formats[name]]

    def write(self, name: str, table: pa.Table | pd.DataFrame, rows: bytes | None = None) -> bytes | None:
        """Append one block of table ``name`` to each of its files (``rows``: its CSV rows
        if already encoded); the block's CSV rows when the table is written as CSV."""
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if name not in self.writers:
            self.schemas[name] = table.schema
            self.writers[name] = [WRITERS[p.suffix[1:]](p, table) for p in self.paths(name)]
        elif not table.schema.equals(self.schemas[name], check_metadata=False):
            table = table.cast(self.schemas[name])
        out = None
        for writer in self.writers[name]:
            data = writer.write(table, rows)
            out = data if data is not None else out
        return out

    def close(self) -> dict[str, list[Path]]:
        """Finish every file; each table's staged paths."""
        for writers in self.writers.values():
            for writer in writers:
                writer.close()
        return {name: self.paths(name) for name in self.written()}

    def written(self) -> list[str]:
        """The tables with files, in the order ``formats`` declares them (whichever of the
        writer threads opened its files first)."""
        return [name for name in self.formats if name in self.writers]

    def publish(self, keep: frozenset[str] = frozenset()) -> dict[str, list[Path]]:
        """Publish the staged run (see the module docstring); each table's visible paths."""
        publish(self.out_dir, self.dir, keep)
        return {name: [self.out_dir / p.name for p in self.paths(name)] for name in self.written()}

    def discard(self) -> None:
        for writers in self.writers.values():
            for writer in writers:
                try:
                    writer.close()
                except Exception:           # closing a half-written file after a failure
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: Path,
                 formats: tuple[str, ...] | Mapping[str, tuple[str, ...]],
                 keep: frozenset[str] = frozenset()) -> dict[str, list[Path]]:
    """Write whole tables in their formats (one tuple for all, or per table), each as one
    block of a :class:`Staging`, and publish them together; returns each table's visible
    paths. ``keep``: regular files of the directory this run owns outside the switch."""
    per_table = formats if isinstance(formats, Mapping) else {name: formats for name in tables}
    staging = Staging(out_dir, per_table)
    try:
        # Arrow's writers release the GIL: two tables at a time keep both cores busy
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(staging.write, name, frame) for name, frame in tables.items()]:
                future.result()
        staging.close()
        return staging.publish(keep)
    except BaseException:
        staging.discard()
        raise


RUNS = ".runs"            # one directory per complete run
CURRENT = ".current"      # the published run: a symlink switched atomically


def publish(out_dir: Path, staging: Path, keep: frozenset[str] = frozenset()) -> Path:
    """Make the complete run in ``staging`` the directory's run in one atomic step (see the
    module docstring); returns the run's own directory."""
    legacy = _legacy_files(out_dir)              # read before the switch hides it
    runs = out_dir / RUNS
    runs.mkdir(exist_ok=True)
    run = runs / staging.name.removeprefix(".partial-")
    os.replace(staging, run)
    names = sorted(p.name for p in run.iterdir())
    for name in names:                         # stable links; they resolve through .current
        link = out_dir / name
        if not (link.is_symlink() and os.readlink(link) == f"{CURRENT}/{name}"):
            _atomic_symlink(f"{CURRENT}/{name}", link)
    _atomic_symlink(f"{RUNS}/{run.name}", out_dir / CURRENT)     # the switch
    for link in out_dir.iterdir():             # names this run does not write
        if link.is_symlink() and os.readlink(link).startswith(f"{CURRENT}/") and not link.exists():
            link.unlink(missing_ok=True)
    for old in runs.iterdir():
        if old != run:
            shutil.rmtree(old, ignore_errors=True)
    for name in legacy - set(names) - keep:    # a run written before the switch existed
        (out_dir / name).unlink(missing_ok=True)
    return run


def run_dir(out_dir: Path) -> Path:
    """The published run's own directory (where its files really are)."""
    return (out_dir / CURRENT).resolve()


def _atomic_symlink(target: str, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.link-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _legacy_files(out_dir: Path) -> set[str]:
    """Regular files (not links) the previous run listed in its manifest: its database
    file, or every file of a run written in place before the switch existed."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return set()
    try:
        previous = json.loads(manifest.read_text())
        old = {name for table in previous["tables"].values() for name in table.get("files", {})}
        old |= set(previous.get("outputs", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        old = set()
    return {name for name in old | {MANIFEST} if "/" not in name and (out_dir / name).is_file()
            and not (out_dir / name).is_symlink()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                   # someone else's live process
        return True
    return True


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove the staging directories (``.partial-<pid>-*``) that killed runs left in
    ``out_dir``: those whose process is gone, or that carry no pid (older versions), and
    their half-made links."""
    removed = []
    for path in out_dir.glob(".partial-*"):
        pid = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if path.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for path in out_dir.glob(".*.link-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_symlink() and not (pid.isdigit() and _alive(int(pid))):
            path.unlink(missing_ok=True)
    return removed


def write_text(text: str, path: Path) -> None:
    """Atomically write ``text`` (temporary name, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)                      # mkstemp makes it private; outputs are not
    os.replace(tmp, path)


def write_json(data: Mapping, path: Path) -> None:
    """Atomically write ``data`` as pretty JSON."""
    write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", path)
