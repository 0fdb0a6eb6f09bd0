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
                 before_publish: Callable[[], object] = lambda: None,
                 stage_more: Callable[[Path, dict[str, list[Path]]], object] | None = None,
                 keep: frozenset[str] = frozenset()) -> dict[str, list[Path]]:
    """Write every table in its formats (one tuple for all, or per table) and publish them
    together; returns each table's visible paths.

    ``before_publish`` runs after the files are staged: if it raises (a schema check that
    ran beside the writers failed), nothing appears. ``stage_more(staging, staged)`` writes
    the run's other files (stats, report, manifest) into the staging directory, to be
    published with the tables. ``keep``: regular files of the directory this run owns
    outside the switch (its SQLite file)."""
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
        if stage_more is not None:
            stage_more(tmp, staged)
        publish(out_dir, tmp, keep)
        return {name: [out_dir / path.name for path in paths] for name, paths in staged.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
