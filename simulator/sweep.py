"""At the end of a Hydra multirun: sweep_summary.csv and .md, one row per job.

Registered as a Hydra callback in conf/config.yaml. Each row holds the job's overrides and
its headline realized statistics (churn rate, target misses, scenario shares, the shares of
every unconditioned label column), read from the job's stats.json.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def _row(job: Path) -> dict[str, Any]:
    overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml") if (job / ".hydra" / "overrides.yaml").is_file() else []
    row: dict[str, Any] = {"job": job.name, "overrides": " ".join(overrides)}
    stats_path = job / "stats.json"
    if not stats_path.is_file():
        return {**row, "status": "failed (no stats.json)"}
    stats = json.loads(stats_path.read_text())
    row.update(status="ok", seed=stats["seed"], n_partners=stats["n_partners"],
               **{k: v for k, v in stats["realized"].items() if not isinstance(v, dict)},
               target_misses=stats["misses"], targets=len(stats["targets"]))
    for name, shares in stats["realized"].items():     # e.g. scenario_shares -> scenario.<label>
        if isinstance(shares, dict):
            row.update({f"{name.removesuffix('_shares')}.{k}": v for k, v in shares.items()})
    row.update({f"{t['column']}.{t['label']}": t["realized"] for t in stats["targets"]
                if t.get("column") and not t.get("conditional")})
    return row


def summarize(sweep_dir: Path) -> pd.DataFrame | None:
    """Write sweep_summary.csv and sweep_summary.md into ``sweep_dir``; return the table."""
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not jobs:
        return None
    table = pd.DataFrame([_row(j) for j in jobs])
    table.to_csv(sweep_dir / "sweep_summary.csv", index=False)
    (sweep_dir / "sweep_summary.md").write_text(_markdown(table))
    return table


def _markdown(table: pd.DataFrame) -> str:
    cells = table.map(lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v)))
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.to_numpy().tolist()]   # one row per job
    return "\n".join(lines) + "\n"


def mask_log_records() -> None:
    """Mask URL passwords in every log record of this process (Hydra's launcher prints each
    job's overrides, a database URL among them), whatever handlers Hydra installs later."""
    from .secrets import mask

    make = logging.getLogRecordFactory()
    if getattr(make, "masks_passwords", False):
        return

    def factory(*args, **kwargs):
        record = make(*args, **kwargs)
        text = record.getMessage()
        if mask(text) != text:
            record.msg, record.args = mask(text), ()
        return record

    factory.masks_passwords = True
    logging.setLogRecordFactory(factory)


def _mask_file(path: Path) -> None:
    from .secrets import mask

    if path.is_file():
        text = path.read_text()
        if mask(text) != text:
            path.write_text(mask(text))


class SweepSummary(Callback):
    """Hydra callback: keep passwords out of the sweep's log lines and multirun.yaml, and
    summarize the sweep once every job has finished."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        mask_log_records()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        _mask_file(Path(config.hydra.sweep.dir) / "multirun.yaml")   # saved before the first job

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        _mask_file(sweep_dir / "multirun.yaml")
        if sweep_dir.is_dir() and summarize(sweep_dir) is not None:
            print(f"sweep summary: {sweep_dir / 'sweep_summary.csv'} and sweep_summary.md")
