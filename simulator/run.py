"""The task: config -> spec -> tables -> validation -> files -> manifest.

Plain functions, callable from the CLI, a notebook or a test.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from . import manifest, report, stats
from .engine import simulate
from .schemas import validate_tables
from .sinks import database
from .sinks.files import MANIFEST, write_json, write_tables, write_text
from .spec import WorldSpec, load_spec

log = logging.getLogger("simulator")
STATS, REPORT = "stats.json", "report.html"
STAGES = ("generate", "validate and write", "review", "load")


@dataclass(frozen=True)
class RunReport:
    out_dir: Path
    rows: dict[str, int]
    files: dict[str, list[Path]]
    seconds: dict[str, float]
    database: str | None = None                # where the tables were loaded, password masked
    outputs: list[str] = field(default_factory=list)   # stats.json, report.html, world.sqlite


def generate(cfg: DictConfig | WorldSpec) -> dict[str, pd.DataFrame]:
    """Every table of the configured world as DataFrames, validated; nothing is written."""
    spec = cfg if isinstance(cfg, WorldSpec) else load_spec(cfg)
    result = simulate(spec)
    validate_tables(spec, result.tables)
    return result.tables


def _review(spec: WorldSpec, tables: dict[str, pd.DataFrame]) -> tuple[dict, str | None]:
    """stats.json's contents and report.html's page (None when output.report is false)."""
    figures = stats.build(spec, tables)
    return figures, report.render(spec, tables, figures) if spec.report else None


def _history_notice(spec: WorldSpec) -> None:
    """Say when large histories are kept in memory, or not written because of their size."""
    act = spec.activity
    if act is None:
        return
    if spec.history_tables and spec.n > act.auto_write_max:
        log.warning("writing the raw histories of %s partners keeps about %d million rows in memory; "
                    "activity.write=false computes the same features from histories that are reduced, "
                    "not kept", f"{spec.n:,}", spec.n * 250 // 1_000_000)
    elif not act.write and act.write_auto:
        log.warning("the raw histories of %s partners are reduced to features and not written "
                    "(activity.write=auto writes them up to activity.auto_write_max=%s partners); "
                    "activity.write=true writes them", f"{spec.n:,}", f"{act.auto_write_max:,}")


def run(cfg: DictConfig, out_dir: Path, progress: Callable[[str], None] | None = None) -> RunReport:
    """Generate, validate and write the world into ``out_dir``; ``progress(stage)`` is told
    as each stage starts."""
    tick = progress or (lambda stage: None)
    t0 = time.perf_counter()
    spec = load_spec(cfg)                      # refuses a bad config before any work
    _history_notice(spec)
    t1 = time.perf_counter()
    tick("generate")
    result = simulate(spec)
    t2 = time.perf_counter()
    tick("validate and write")
    # Files are staged in a hidden directory while the schemas are checked and the review
    # (stats, plots) is computed; nothing is moved into place unless every table passed.
    # Arrow's writers and hashing kernels release the GIL, so the three share both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = pool.submit(validate_tables, spec, result.tables)
        review = pool.submit(_review, spec, result.tables)
        formats = {name: spec.activity.formats if name in spec.history_tables else spec.formats
                   for name in result.tables}
        files = write_tables(result.tables, out_dir, formats, before_publish=checked.result)
        t4 = time.perf_counter()
        tick("review")
        figures, page = review.result()
    rows = {name: len(frame) for name, frame in result.tables.items()}
    outputs = [out_dir / STATS]
    write_json(figures, out_dir / STATS)
    if page is not None:
        write_text(page, out_dir / REPORT)
        outputs.append(out_dir / REPORT)
    t5 = time.perf_counter()
    csv_files = {name: p for name, paths in files.items() for p in paths if p.suffix == ".csv"}
    tick("load")
    failure = None
    try:                                       # the files are complete whatever happens here
        loaded = database.load(spec.db, {name: t for name, t in result.tables.items()
                                         if name not in spec.history_tables},
                               out_dir, csv_files, spec.domains())
    except database.DatabaseError as exc:
        failure, loaded = exc, {}
    db_facts = {"target": database.describe(spec.db), "rows": loaded,
                "error": str(failure) if failure else None}
    t6 = time.perf_counter()
    db_file = database.local_file(spec.db, out_dir)
    if loaded and db_file is not None and db_file.parent == out_dir:
        outputs.append(db_file)
    write_json(manifest.build(spec, rows, files, {**result.facts, "database": db_facts}, outputs),
               out_dir / MANIFEST)
    if failure is not None:
        raise failure
    t7 = time.perf_counter()
    seconds = {"spec": t1 - t0, "generate": t2 - t1, "validate and write": t4 - t2,
               "review (beyond writing)": t5 - t4, "load": t6 - t5, "manifest": t7 - t6}
    return RunReport(out_dir, rows, files, seconds, database.describe(spec.db) if loaded else None,
                     [p.name for p in outputs])
