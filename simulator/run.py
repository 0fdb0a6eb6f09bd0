"""The task: config -> spec -> tables -> validation -> files -> manifest.

Plain functions, callable from the CLI, a notebook or a test.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from . import chunks, executors, manifest, report, resources, stats
from .chunks import BlockResult
from .sinks import database
from .sinks.files import MANIFEST, Staging, run_dir, write_json, write_text
from .load import load_spec
from .spec import ExecutorSpec, WorldSpec

log = logging.getLogger("simulator")
STATS, REPORT = "stats.json", "report.html"
STAGES = ("generate", "write", "review", "load")
# Blocks the sinks may be behind the generation. In this process (executor=local) one
# already overlaps checking, writing and loading a block with generating the next (at 1M
# like-for-like: the time of two, 35-65 MB less at the peak). With workers, this process
# only feeds them while it is not waiting on the sinks: two (10M with processes: 175.9 s
# with two, 187.8 s with one)
BEHIND_LOCAL, BEHIND_WITH_WORKERS = 1, 2


@dataclass(frozen=True)
class RunReport:
    out_dir: Path
    rows: dict[str, int]
    files: dict[str, list[Path]]
    seconds: dict[str, float]
    database: str | None = None                # where the tables were loaded, password masked
    outputs: list[str] = field(default_factory=list)   # stats.json, report.html, world.sqlite
    steps: dict[str, float] = field(default_factory=dict)   # seconds per plan step, summed over blocks


def generate(cfg: DictConfig | WorldSpec) -> dict[str, pd.DataFrame]:
    """Every table of the configured world as DataFrames, validated; nothing is written.
    (The whole world in memory: for large worlds use :func:`run`, which streams.)"""
    spec = cfg if isinstance(cfg, WorldSpec) else load_spec(cfg)
    parts = [chunks.validate_block(spec, r).tables for r in executors.blocks(replace(spec, executor=ExecutorSpec()))]
    return {name: chunks.concat([p[name] for p in parts]) for name in parts[0]}


def _review(spec: WorldSpec, tables: dict[str, pd.DataFrame], invariants) -> tuple[dict, str | None]:
    """stats.json's contents and report.html's page (None when output.report is false),
    measured on the pilot block's tables (the whole world when it is one block)."""
    pilot = chunks.block_spec(spec, 0)
    figures = stats.build(pilot, tables, invariants)
    figures["n_partners"] = spec.n
    if pilot.n < spec.n:
        figures["review"] = {"partners": pilot.n, "note": (
            f"targets, realized figures and column summaries are measured on the first block "
            f"({pilot.n:,} of {spec.n:,} partners); invariants and row counts on every block")}
    return figures, report.render(pilot, tables, figures) if spec.report else None


def _world_counts(spec: WorldSpec, partners: pd.DataFrame) -> dict[str, int]:
    """What the review of a world larger than its pilot can still count on every block:
    the cohort at the feature date and its churners in the label window."""
    label, when = spec.role("label"), spec.role("event_date")
    if label is None or when is None or spec.timeline is None:
        return {}
    cohort = spec.timeline.active(partners[when])
    return {"cohort": int(cohort.sum()), "churners": int(np.asarray(partners[label])[cohort].sum())}


class _Sinks:
    """Where each block goes as it arrives, in three background threads (Arrow's writers,
    pandas' kernels and the database drivers release the GIL): the schema and invariant
    checks, the staged files, and the database's one transaction, at most one block behind
    the generation with executor=local and two with workers (``BEHIND_*``). Nothing is
    published unless every block passed its checks. A database failure stops only the
    database: the files are complete whatever happens there, and the error is raised after
    them."""

    def __init__(self, spec: WorldSpec, staging: Staging, out_dir: Path):
        self.spec, self.staging, self.out_dir = spec, staging, out_dir
        self.checker, self.writer, self.loader = (ThreadPoolExecutor(max_workers=1) for _ in range(3))
        self.inner = ThreadPoolExecutor(max_workers=2)
        self.pending: list = []
        self.load = None
        self.failure: database.DatabaseError | None = None
        self.load_seconds = 0.0

    def submit(self, result: BlockResult):
        """Check (if the executor did not), write and load the block; returns the future
        of its invariants' counts."""
        behind = BEHIND_LOCAL if self.spec.executor.kind == "local" else BEHIND_WITH_WORKERS
        while len(self.pending) >= behind:
            for future in self.pending.pop(0):
                future.result()
        checked = self.checker.submit(chunks.validate_block, self.spec, result)
        written = self.writer.submit(self._write, result)
        loaded = self.loader.submit(self._load, result, written) if self.spec.db.kind != "none" else None
        self.pending.append([f for f in (checked, written, loaded) if f is not None])
        return self.checker.submit(lambda: checked.result().invariants)

    def _write(self, result: BlockResult) -> dict[str, bytes | None]:
        """Each table's block into its files; the CSV rows written (a COPY reuses them)."""
        return dict(zip(result.tables, self.inner.map(
            lambda name: self.staging.write(name, result.tables[name], result.csv.get(name)), result.tables)))

    def _load(self, result: BlockResult, written) -> None:
        spec = self.spec
        if self.failure is not None:
            return
        csv = written.result() if spec.db.kind == "postgres" else {}
        t0 = time.perf_counter()
        loaded = {name: t for name, t in result.tables.items() if name not in spec.files_only}
        try:
            if self.load is None:
                self.load = database.open_load(spec.db, loaded, self.out_dir, spec.domains(), database.names(spec),
                                               checked=True)
            for name in self.load.order:
                self.load.insert(name, loaded[name], csv.get(name))
        except database.DatabaseError as exc:
            self.failure, self.load = exc, None
        self.load_seconds += time.perf_counter() - t0

    def drain(self) -> None:
        for futures in self.pending:
            for future in futures:
                future.result()
        self.pending = []

    def close(self) -> None:
        for pool in (self.checker, self.writer, self.loader, self.inner):
            pool.shutdown(wait=True)

    def abort(self) -> None:
        for futures in self.pending:
            for future in futures:
                future.cancel()
        self.close()
        if self.load is not None:
            self.load.rollback()
            self.load = None

    def commit(self) -> dict[str, int]:
        """Commit the load (after the files are published); rows per table."""
        if self.failure is not None:
            raise self.failure
        if self.load is None:
            return {}
        t0 = time.perf_counter()
        try:
            return self.load.commit()
        finally:
            self.load = None
            self.load_seconds += time.perf_counter() - t0


def run(cfg: DictConfig, out_dir: Path, progress: Callable[..., None] | None = None) -> RunReport:
    """Generate, validate and write the world into ``out_dir``, block by block;
    ``progress(stage, done=0, total=0)`` is told as each stage starts and, while
    generating, how many partners are done."""
    tick = progress or (lambda stage, done=0, total=0: None)
    t0 = time.perf_counter()
    spec = load_spec(cfg)                      # refuses a bad config before any work
    resources.check(spec, out_dir)             # and a world that cannot fit, or nowhere to write
    for stage in spec.stages:                  # e.g. large histories not written
        for notice in stage.notices(spec):
            log.warning("%s", notice)
    t1 = time.perf_counter()
    tick("generate", 0, spec.n)
    db_file = database.local_file(spec.db, out_dir)
    own_db = db_file is not None and db_file.parent == out_dir
    names = [spec.table, *(t for s in spec.stages for t in s.tables())]
    staging = Staging(out_dir, {name: spec.files_only.get(name, spec.formats) for name in names})
    sinks = _Sinks(spec, staging, out_dir)
    # sums over the blocks: rows per table, the world's cohort and churners, seconds per
    # plan step, and per phase (a block's are complete once it is checked)
    rows, world, step_seconds, seconds = Counter(), Counter(), Counter(), Counter()
    review = facts = None
    checked_seconds = []
    # Blocks are generated (here or by workers), validated, and handed to the sinks as they
    # finish; stats and the report are computed from the pilot block beside them. The run
    # is published (one switch, sinks/files.py) only when every block passed.
    with ThreadPoolExecutor(max_workers=1) as reviewer:
        try:
            for result in executors.blocks(spec):
                invariants = sinks.submit(result)
                if result.block == 0:          # the pilot's facts (intercepts, plan) are the run's
                    facts = result.facts
                    review = reviewer.submit(_review, spec, result.tables, invariants.result)
                rows.update(result.rows)
                world.update(_world_counts(spec, result.tables[spec.table]))
                step_seconds.update(result.facts.get("step_seconds", {}))
                checked_seconds.append(result.seconds)
                tick("generate", rows[spec.table], spec.n)
            tick("write")
            sinks.drain()
            for part in checked_seconds:
                seconds.update(part)
            staged = staging.close()
            t2 = time.perf_counter()
            tick("review")
            figures, page = review.result()
            if "review" in figures and world.get("cohort"):      # the pilot's figures, and the world's rate
                figures["review"]["world"] = {**world, "churn_rate": round(world["churners"] / world["cohort"], 6)}
            write_json(figures, staging.dir / STATS)
            if page is not None:
                write_text(page, staging.dir / REPORT)
            pending = {"target": database.describe(spec.db), "rows": {}, "error": None, "pending": True}
            write_json(manifest.build(spec, rows, staged, {**facts, "database": pending},
                                      [staging.dir / STATS, *([staging.dir / REPORT] if page is not None else [])]),
                       staging.dir / MANIFEST)
            files = staging.publish(frozenset([db_file.name]) if own_db else frozenset())
        except BaseException:
            sinks.abort()
            staging.discard()
            raise
    t3 = time.perf_counter()
    run_files = run_dir(out_dir)
    outputs = [out_dir / STATS] + ([out_dir / REPORT] if (run_files / REPORT).exists() else [])
    tick("load")
    failure = None
    try:                                       # the files are complete whatever happens here
        loaded = sinks.commit()
    except database.DatabaseError as exc:
        failure, loaded = exc, {}
    sinks.close()
    db_facts = {"target": database.describe(spec.db), "rows": loaded,
                "error": str(failure) if failure else None}
    t4 = time.perf_counter()
    if loaded and own_db:
        outputs.append(db_file)
    staged = {name: [run_files / p.name for p in paths] for name, paths in files.items()}
    write_json(manifest.build(spec, rows, staged, {**facts, "database": db_facts}, outputs),
               run_files / MANIFEST)           # the published run's manifest, now with its load
    if failure is not None:
        raise failure
    t5 = time.perf_counter()
    loads = spec.db.kind != "none"             # (no database: no load to time)
    report_seconds = {"spec": t1 - t0, "generate and write": t2 - t1, "review and publish": t3 - t2,
                      **({"load (commit)": t4 - t3} if loads else {}), "manifest": t5 - t4,
                      **{f"blocks: {k}": v for k, v in seconds.items()},
                      **({"database inserts": sinks.load_seconds} if loads else {})}
    return RunReport(out_dir, dict(rows), files, report_seconds, database.describe(spec.db) if loaded else None,
                     [p.name for p in outputs], dict(step_seconds))
