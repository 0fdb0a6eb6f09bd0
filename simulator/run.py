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

from . import manifest, report, resources, stats
from .engine import simulate
from .schemas import validate_tables
from .sinks import database
from .sinks.files import MANIFEST, run_dir, write_json, write_tables, write_text
from .load import load_spec
from .spec import WorldSpec

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


def _review(spec: WorldSpec, tables: dict[str, pd.DataFrame], invariants=None) -> tuple[dict, str | None]:
    """stats.json's contents and report.html's page (None when output.report is false);
    ``invariants``: the validation's counts (a callable that waits for them)."""
    figures = stats.build(spec, tables, invariants)
    return figures, report.render(spec, tables, figures) if spec.report else None


def run(cfg: DictConfig, out_dir: Path, progress: Callable[[str], None] | None = None) -> RunReport:
    """Generate, validate and write the world into ``out_dir``; ``progress(stage)`` is told
    as each stage starts."""
    tick = progress or (lambda stage: None)
    t0 = time.perf_counter()
    spec = load_spec(cfg)                      # refuses a bad config before any work
    resources.check(spec, out_dir)             # and a world that cannot fit, or nowhere to write
    for stage in spec.stages:                  # e.g. large histories kept in memory, or not written
        for notice in stage.notices(spec):
            log.warning("%s", notice)
    t1 = time.perf_counter()
    tick("generate")
    result = simulate(spec)
    t2 = time.perf_counter()
    tick("validate and write")
    # Files are staged in a hidden directory while the schemas are checked and the review
    # (stats, plots) is computed; the run is published (one switch, sinks/files.py) only if
    # every table passed. Arrow's writers and hashing kernels release the GIL, so the three
    # share both cores.
    rows = {name: len(frame) for name, frame in result.tables.items()}
    db_file = database.local_file(spec.db, out_dir)
    own_db = db_file is not None and db_file.parent == out_dir
    marks: dict[str, float] = {}

    def stage_review(staging: Path, staged: dict[str, list[Path]]) -> None:
        """stats.json, report.html and the manifest join the tables before publication: the
        directory shows them together or not at all."""
        marks["written"] = time.perf_counter()
        tick("review")
        figures, page = review.result()
        write_json(figures, staging / STATS)
        if page is not None:
            write_text(page, staging / REPORT)
        pending = {"target": database.describe(spec.db), "rows": {}, "error": None, "pending": True}
        write_json(manifest.build(spec, rows, staged, {**result.facts, "database": pending},
                                  [staging / STATS, *([staging / REPORT] if page is not None else [])]),
                   staging / MANIFEST)

    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = pool.submit(validate_tables, spec, result.tables)
        review = pool.submit(_review, spec, result.tables, checked.result)
        formats = {name: spec.files_only.get(name, spec.formats) for name in result.tables}
        files = write_tables(result.tables, out_dir, formats, before_publish=checked.result,
                             stage_more=stage_review, keep=frozenset([db_file.name]) if own_db else frozenset())
    t4 = marks.get("written", time.perf_counter())
    run_files = run_dir(out_dir)
    outputs = [out_dir / STATS] + ([out_dir / REPORT] if (run_files / REPORT).exists() else [])
    t5 = time.perf_counter()
    csv_files = {name: p for name, paths in files.items() for p in paths if p.suffix == ".csv"}
    tick("load")
    failure = None
    try:                                       # the files are complete whatever happens here
        loaded = database.load(spec.db, {name: t for name, t in result.tables.items()
                                         if name not in spec.files_only},
                               out_dir, csv_files, spec.domains(), database.names(spec))
    except database.DatabaseError as exc:
        failure, loaded = exc, {}
    db_facts = {"target": database.describe(spec.db), "rows": loaded,
                "error": str(failure) if failure else None}
    t6 = time.perf_counter()
    if loaded and own_db:
        outputs.append(db_file)
    staged = {name: [run_files / p.name for p in paths] for name, paths in files.items()}
    write_json(manifest.build(spec, rows, staged, {**result.facts, "database": db_facts}, outputs),
               run_files / MANIFEST)           # the published run's manifest, now with its load
    if failure is not None:
        raise failure
    t7 = time.perf_counter()
    seconds = {"spec": t1 - t0, "generate": t2 - t1, "validate and write": t4 - t2,
               "review (beyond writing)": t5 - t4, "load": t6 - t5, "manifest": t7 - t6}
    return RunReport(out_dir, rows, files, seconds, database.describe(spec.db) if loaded else None,
                     [p.name for p in outputs])
