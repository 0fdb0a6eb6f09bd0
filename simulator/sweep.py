"""A Hydra multirun that always completes, and its summary: sweep_summary.csv and .md.

Each job runs through :func:`run_job`, which turns the job's refusal or failure into a
record (exit status and a one-line reason) instead of an exit: under Hydra's launchers a
``SystemExit`` in one job ends the whole sweep, so later jobs would never run. Only an
interrupt (Ctrl-C, SIGTERM) still stops the sweep. The records live in the sweep
directory (``.jobs/<num>.json``), because a refused job's own directory is removed.

The :class:`SweepSummary` callback (registered in conf/config.yaml) writes one row per job
at the end: its overrides, ``status`` (ok / failed), ``exit_status`` and ``reason``, then
its headline realized statistics (churn rate, target misses, scenario shares, the shares
of every unconditioned label column), read from the job's stats.json. ``python -m
simulator -m ...`` exits with :func:`exit_status`: 0, or the highest failed job's status.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError
from .secrets import mask, mask_file, mask_log_records, mask_saved_config, mask_streams

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

RECORDS = ".jobs"                  # <sweep dir>/.jobs/<job num>.json: each job's outcome
INTERRUPTED = {130, 143}           # Ctrl-C and SIGTERM stop the sweep, not just the job
_failed: dict[int, int] = {}       # job num -> exit status, of the sweep this process ran last
_running: Path | None = None       # the sweep in progress (its directory), which an interrupt summarizes


def reason(exc: BaseException | None) -> str:
    """One line, password-free, saying why a job failed: its config problems (each with
    its config path), or the first line of its error."""
    if isinstance(exc, ConfigError):
        text = "; ".join(exc.problems)
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif exc is None:
        text = "exited"
    else:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = lines[0] if lines else type(exc).__name__
        if type(exc).__module__ == "builtins" and not isinstance(exc, OSError):
            text = f"{type(exc).__name__}: {text}"         # an unexpected error: say which
    text = " ".join(mask(text).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _record(cfg: DictConfig, status: int, why: str) -> None:
    hydra_cfg = HydraConfig.get()
    records = Path(hydra_cfg.sweep.dir) / RECORDS
    records.mkdir(parents=True, exist_ok=True)
    out_dir = (cfg.get("output") or {}).get("dir") or hydra_cfg.runtime.output_dir
    record = {"job": hydra_cfg.job.num, "dir": str(out_dir), "status": status, "reason": why,
              "overrides": mask(" ".join(hydra_cfg.overrides.task))}
    (records / f"{hydra_cfg.job.num}.json").write_text(json.dumps(record) + "\n")


def run_job(task: Callable[[DictConfig], Any], cfg: DictConfig) -> None:
    """Run one job of a sweep and record its outcome; a refusal (exit 2-5) or an
    unexpected error fails this job only. The job's own message is already on stderr
    (``task`` printed it before exiting); an unexpected error gets one line there, not a
    traceback (``HYDRA_FULL_ERROR=1`` re-raises it). An interrupt is recorded, then raised."""
    try:
        task(cfg)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
        _record(cfg, status, "" if status == 0 else reason(exc.__context__))
        if status in INTERRUPTED:
            stopped()
            raise
    except Exception as exc:                              # noqa: BLE001 - the sweep goes on
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        why = reason(exc)
        print(f"error: job {HydraConfig.get().job.num} failed: {why}", file=sys.stderr)
        _record(cfg, 1, why)
    else:
        _record(cfg, 0, "")


def stopped() -> Path | None:
    """After an interrupt in a sweep: its summary as it stands (the jobs that finished, the
    one interrupted, failed) and one line saying so; its directory, or None outside a sweep."""
    global _running
    sweep, _running = _running, None
    if sweep is None:
        return None
    try:
        summarize(sweep)
    except Exception:                                     # noqa: BLE001 - the interrupt's line matters more
        return sweep
    print(f"the sweep stopped: {sweep / 'sweep_summary.csv'} lists its jobs so far", file=sys.stderr)
    return sweep


def exit_status() -> int:
    """The exit status for the sweep this process just ran: 0 when every job succeeded,
    else the highest exit status among its failed jobs."""
    return max(_failed.values(), default=0)


def _row(num: int, job_dir: Path | None, record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:                                    # no outcome recorded: a killed job
        saved = job_dir / ".hydra" / "overrides.yaml"
        record = {"overrides": " ".join(OmegaConf.load(saved)) if saved.is_file() else "",
                  "status": None, "reason": "no outcome recorded (killed?)", "dir": str(job_dir)}
    stats_path = Path(record["dir"]) / "stats.json"
    status, why = record["status"], record["reason"]
    if status == 0 and not stats_path.is_file():
        status, why = None, "no stats.json"
    row: dict[str, Any] = {"job": num, "overrides": record["overrides"], "status": "ok" if status == 0 else "failed",
                           "exit_status": status, "reason": why}
    if status != 0:
        return row
    stats = json.loads(stats_path.read_text())
    row.update(seed=stats["seed"], n_partners=stats["n_partners"],
               **{k: _cell(v) for k, v in stats["realized"].items() if not isinstance(v, dict)},
               target_misses=stats["misses"], targets=len(stats["targets"]))
    for name, shares in stats["realized"].items():     # e.g. scenario_shares -> scenario.<label>
        if isinstance(shares, dict):
            row.update(_flat(name.removesuffix("_shares"), shares))
    row.update({f"{t['column']}.{t['label']}": t["realized"] for t in stats["targets"]
                if t.get("column") and not t.get("conditional")})
    return row


def _flat(prefix: str, value: dict) -> dict[str, Any]:
    """A nested mapping of stats.json as one column per leaf (``calendar.logins.weekday``)."""
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(_flat(f"{prefix}.{k}", v) if isinstance(v, dict) else {f"{prefix}.{k}": _cell(v)})
    return out


def _cell(value: Any) -> Any:
    """A value a table cell holds: a list as its JSON text."""
    return json.dumps(value) if isinstance(value, list) else value


def summarize(sweep_dir: Path) -> pd.DataFrame | None:
    """Write sweep_summary.csv and sweep_summary.md into ``sweep_dir``, one row per job
    (every job with a record or a numbered directory); return the table."""
    import pandas as pd

    records = {}
    for path in (sweep_dir / RECORDS).glob("*.json"):
        record = json.loads(path.read_text())
        records[int(record["job"])] = record
    dirs = {int(p.name): p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()}
    if not records and not dirs:
        return None
    table = pd.DataFrame([_row(num, dirs.get(num), records.get(num)) for num in sorted(records.keys() | dirs.keys())])
    _failed.clear()
    failed = table[table["status"] != "ok"]
    _failed.update(zip(failed["job"].astype(int), failed["exit_status"].fillna(1).astype(int)))
    table["exit_status"] = table["exit_status"].astype("Int64")
    table.to_csv(sweep_dir / "sweep_summary.csv", index=False)
    (sweep_dir / "sweep_summary.md").write_text(_markdown(table))
    return table


def _markdown(table: pd.DataFrame) -> str:
    import pandas as pd

    cells = table.map(lambda v: "" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.to_numpy().tolist()]   # one row per job
    return "\n".join(lines) + "\n"


class SweepSummary(Callback):
    """Hydra callback: keep passwords out of the sweep's streams, log lines, saved configs
    and multirun.yaml, and summarize the sweep once every job has finished."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _running
        mask_log_records()
        _failed.clear()
        _running = Path(config.hydra.sweep.dir)
        shutil.rmtree(Path(config.hydra.sweep.dir) / RECORDS, ignore_errors=True)   # a re-used sweep dir

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        mask_streams()                 # again: a launcher's worker process starts unmasked
        mask_log_records()
        mask_file(Path(config.hydra.sweep.dir) / "multirun.yaml")   # saved before the first job
        if config.hydra.output_subdir is not None:   # this job's, saved just before this call
            mask_saved_config(Path(config.hydra.runtime.output_dir) / config.hydra.output_subdir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _running
        _running = None
        sweep_dir = Path(config.hydra.sweep.dir)
        mask_file(sweep_dir / "multirun.yaml")
        table = summarize(sweep_dir) if sweep_dir.is_dir() else None
        if table is not None:
            failed = f" ({len(_failed)} of {len(table)} jobs failed)" if _failed else ""
            print(f"sweep summary: {sweep_dir / 'sweep_summary.csv'} and sweep_summary.md{failed}")
