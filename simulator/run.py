"""The task: config -> spec -> tables -> validation -> files -> manifest.

Plain functions, callable from the CLI, a notebook or a test.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from . import chunks, executors, manifest, resources
from .review import report, stats
from .chunks import BlockResult
from . import sinks
from .sinks import Block, Sink, SinkError, publication
from .sinks.publication import MANIFEST, write_json, write_text
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
    database: str | None = None                # where the tables were loaded, password hidden
    outputs: list[str] = field(default_factory=list)   # stats.json, report.html, world.sqlite
    steps: dict[str, float] = field(default_factory=dict)   # seconds per plan step, summed over blocks
    misses: list[str] = field(default_factory=list)          # stats.json's declared targets missed


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


class _Fanout:
    """Each block to the checks and to every sink, each in a background thread of its own
    (Arrow's writers, pandas' kernels and the database drivers release the GIL), at most
    one block behind the generation with executor=local and two with workers (``BEHIND_*``).
    Nothing is published unless every block passed its checks. A sink that fails with a
    SinkError (a database that refuses the load) stops taking blocks, the others go on, and
    its error is raised once the files are published; any other failure aborts the run."""

    def __init__(self, spec: WorldSpec, sinks: list[Sink]):
        self.spec, self.sinks = spec, sinks
        self.checker = ThreadPoolExecutor(max_workers=1)
        self.threads = [ThreadPoolExecutor(max_workers=1) for _ in sinks]
        self.pending: list = []
        self.failures: dict[int, SinkError] = {}
        self.seconds: Counter = Counter()

    def submit(self, result: BlockResult):
        """Check (if the executor did not) and hand the block to every sink; returns the
        future of its invariants' counts."""
        behind = BEHIND_LOCAL if self.spec.executor.kind == "local" else BEHIND_WITH_WORKERS
        while len(self.pending) >= behind:
            for future in self.pending.pop(0):
                future.result()
        block = Block(result.block, result.tables, result.csv, frozenset([self.spec.key]))
        checked = self.checker.submit(chunks.validate_block, self.spec, result)
        handed = [pool.submit(self._write, i, block) for i, pool in enumerate(self.threads)]
        self.pending.append([checked, *handed])
        return self.checker.submit(lambda: checked.result().invariants)

    def _write(self, i: int, block: Block) -> None:
        sink = self.sinks[i]
        if i in self.failures:
            return
        t0 = time.perf_counter()
        try:
            if block.index == 0:
                sink.open(block)
            sink.write(block)
        except SinkError as exc:
            self.failures[i] = exc
        self.seconds[f"{sink.kind} writes"] += time.perf_counter() - t0

    def drain(self) -> None:
        for futures in self.pending:
            for future in futures:
                future.result()
        self.pending = []

    def prepare(self) -> dict[str, list[Path]]:
        """Finish the staged sinks (the files), before the run's switch publishes them; each
        table's staged files."""
        self.drain()
        staged: dict[str, list[Path]] = {}
        for sink in self.sinks:
            if sink.staged:
                sink.commit()
                staged.update(sink.files())
        return staged

    def commit(self) -> dict[str, dict]:
        """Commit every other sink (after the switch): each one's rows per table, or its error."""
        out = {}
        for i, sink in enumerate(self.sinks):
            if sink.staged:
                continue
            t0 = time.perf_counter()
            if i not in self.failures:
                try:
                    out[sink.kind] = {"rows": sink.commit(), "error": None}
                except SinkError as exc:
                    self.failures[i] = exc
            if i in self.failures:
                out[sink.kind] = {"rows": {}, "error": str(self.failures[i])}
            self.seconds[f"{sink.kind} commit"] += time.perf_counter() - t0
        return out

    def failure(self) -> SinkError | None:
        return next(iter(self.failures.values()), None)

    def close(self) -> None:
        for pool in (self.checker, *self.threads):
            pool.shutdown(wait=True)

    def abort(self) -> None:
        for futures in self.pending:
            for future in futures:
                future.cancel()
        self.close()
        for sink in self.sinks:
            sink.abort()


def run(cfg: DictConfig, out_dir: Path, progress: Callable[..., None] | None = None,
        record: Mapping[str, str] | None = None) -> RunReport:
    """Generate, validate and write the world into ``out_dir``, block by block, holding the
    directory's lock (a second run into it is refused at once: RunDirInUse).
    ``progress(stage, done=0, total=0)`` is told as each stage starts and, while
    generating, how many partners are done; ``published`` right after the switch.
    ``record``: files (relative path -> text, e.g. ``.hydra/config.yaml``) published with
    the run, so that its config is always the config of the published tables."""
    t0 = time.perf_counter()
    spec = load_spec(cfg)                      # refuses a bad config before any work
    resources.check(spec, out_dir)             # and a world that cannot fit, or nowhere to write
    with publication.lock(out_dir):
        return _run(spec, out_dir, progress or (lambda stage, done=0, total=0: None), record or {}, t0)


def _run(spec: WorldSpec, out_dir: Path, tick: Callable[..., None], record: Mapping[str, str],
         t0: float) -> RunReport:
    for stage in spec.stages:                  # e.g. large histories not written
        for notice in stage.notices(spec):
            log.warning("%s", notice)
    t1 = time.perf_counter()
    tick("generate", 0, spec.n)
    staging = publication.Staging(out_dir)
    fanout = _Fanout(spec, sinks.configured(spec, out_dir, staging.dir))
    # sums over the blocks: rows per table, the world's cohort and churners, seconds per
    # plan step, and per phase (a block's are complete once it is checked)
    rows, world, step_seconds, seconds = Counter(), Counter(), Counter(), Counter()
    review = facts = None
    checked_seconds = []
    # Blocks are generated (here or by workers), validated, and handed to the sinks as they
    # finish; stats and the report are computed from the pilot block beside them. The run
    # is published (one switch, sinks/publication.py) only when every block passed.
    with ThreadPoolExecutor(max_workers=1) as reviewer:
        try:
            for result in executors.blocks(spec):
                invariants = fanout.submit(result)
                if result.block == 0:          # the pilot's facts (intercepts, plan) are the run's
                    facts = result.facts
                    review = reviewer.submit(_review, spec, result.tables, invariants.result)
                rows.update(result.rows)
                world.update(_world_counts(spec, result.tables[spec.table]))
                step_seconds.update(result.facts.get("step_seconds", {}))
                checked_seconds.append(result.seconds)
                tick("generate", rows[spec.table], spec.n)
            tick("write")
            staged = fanout.prepare()
            for part in checked_seconds:
                seconds.update(part)
            t2 = time.perf_counter()
            tick("review")
            figures, page = review.result()
            if "review" in figures and world.get("cohort"):      # the pilot's figures, and the world's rate
                figures["review"]["world"] = {**world, "churn_rate": round(world["churners"] / world["cohort"], 6)}
            write_json(figures, staging.dir / STATS)
            if page is not None:
                write_text(page, staging.dir / REPORT)
            for name, text in record.items():
                (staging.dir / name).parent.mkdir(parents=True, exist_ok=True)
                write_text(text, staging.dir / name)
            pending = {"target": sinks.describe(spec.db), "rows": {}, "error": None, "pending": True}
            reviewed = [staging.dir / STATS, *([staging.dir / REPORT] if page is not None else [])]
            write_json(manifest.build(spec, rows, staged, {**facts, "database": pending}, reviewed, reviewed),
                       staging.dir / MANIFEST)
            keep = frozenset(p.name for s in fanout.sinks for p in s.outputs())
            run_files = staging.publish(keep)
        except BaseException:
            fanout.abort()
            staging.discard()
            raise
    tick("published")
    t3 = time.perf_counter()
    outputs = [out_dir / STATS] + ([out_dir / REPORT] if (run_files / REPORT).exists() else [])
    tick("load")
    try:
        committed = fanout.commit()            # the files are complete whatever happens here
    except BaseException:                      # an interrupt in the load: roll it back, leave no partial file
        fanout.abort()
        raise
    fanout.close()
    failure = fanout.failure()
    db = next(iter(committed.values()), {"rows": {}, "error": None})
    t4 = time.perf_counter()
    if db["rows"]:
        outputs += [p for s in fanout.sinks for p in s.outputs()]
    published = {name: [run_files / p.name for p in paths] for name, paths in staged.items()}
    write_json(manifest.build(spec, rows, published, {**facts, "database": {"target": sinks.describe(spec.db), **db}},
                              outputs, [run_files / p.name for p in reviewed]),
               run_files / MANIFEST)           # the published run's manifest, now with its load
    if failure is not None:
        raise failure
    t5 = time.perf_counter()
    loads = spec.db.kind != sinks.NONE         # (no database: no load to time)
    report_seconds = {"spec": t1 - t0, "generate and write": t2 - t1, "review and publish": t3 - t2,
                      **({"load (commit)": t4 - t3} if loads else {}), "manifest": t5 - t4,
                      **{f"blocks: {k}": v for k, v in seconds.items()},
                      **{f"sinks: {k}": v for k, v in fanout.seconds.items() if loads or "files" in k}}
    visible = {name: [out_dir / p.name for p in paths] for name, paths in staged.items()}
    return RunReport(out_dir, dict(rows), visible, report_seconds, sinks.describe(spec.db) if db["rows"] else None,
                     [p.name for p in outputs], dict(step_seconds),
                     [t["target"] for t in figures.get("targets", []) if t.get("miss")])
