"""CSV and Parquet files, written all-or-nothing, plus the run's manifest.json.

Tables are written into a hidden temporary directory beside the destination and moved
into place with ``os.replace`` only when every file is complete; the manifest goes last,
so a directory with a manifest is a finished run.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Mapping
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


WRITERS = {
    "csv": lambda table, path: pacsv.write_csv(csv_table(table), path),
    "parquet": lambda table, path: pq.write_table(table, path),
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: Path,
                 formats: tuple[str, ...] | Mapping[str, tuple[str, ...]],
                 before_publish: Callable[[], object] = lambda: None) -> dict[str, list[Path]]:
    """Write every table in its formats (one tuple for all, or per table); files appear
    only once all are complete.

    ``before_publish`` runs after the files are staged and before any is moved into place:
    if it raises (a schema check that ran beside the writers failed), nothing appears."""
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{os.getpid()}-", dir=out_dir))
    try:
        per_table = formats if isinstance(formats, Mapping) else {name: formats for name in tables}
        staged = {name: [(tmp / name).with_suffix(f".{fmt}") for fmt in per_table[name]] for name in tables}

        def write(name: str) -> None:          # one Arrow copy of a table alive per thread
            table = pa.Table.from_pandas(tables[name], preserve_index=False)
            for path in staged[name]:
                WRITERS[path.suffix[1:]](table, path)

        # Arrow's writers release the GIL: two tables at a time keep both cores busy
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(write, name) for name in tables]:
                future.result()
        before_publish()
        _clear_previous_run(out_dir, {p.name for paths in staged.values() for p in paths})
        final = {}
        for name, paths in staged.items():
            final[name] = []
            for path in paths:
                target = out_dir / path.name
                os.replace(path, target)
                final[name].append(target)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    ``out_dir``: those whose process is gone, or that carry no pid (older versions)."""
    removed = []
    for path in out_dir.glob(".partial-*"):
        pid = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if path.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _clear_previous_run(out_dir: Path, keep: set[str]) -> None:
    """Remove the files of an earlier run in the same directory that this run does not
    rewrite (as listed by its manifest: tables, stats, report, database file), so nothing
    stale sits beside the new ones."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return
    try:
        previous = json.loads(manifest.read_text())
        old = {name for table in previous["tables"].values() for name in table.get("files", {})}
        old |= set(previous.get("outputs", []))   # stats.json, report.html, world.sqlite
    except (ValueError, KeyError, TypeError, AttributeError):
        old = set()
    manifest.unlink()                        # the old manifest no longer describes the directory
    for name in old - keep:
        if "/" not in name and name != MANIFEST:
            (out_dir / name).unlink(missing_ok=True)


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
