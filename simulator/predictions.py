"""A model's predictions for ``simulator.evaluate``: read from a file or the run's database,
and checked before anything is graded or written.

The contract is the seed's ``predictions`` table (``schema/predictions.sql``), its key column
renamed to the world's. Every refusal names where the value is (the file, or the database
and table), the row (1 = the first data row) and the column, then what would be valid; all
problems are collected and raised together as one :class:`~simulator.errors.ConfigError`.

The database is read and written through the run's database sink (simulator.sinks: its
kind's ``read`` and ``update``), which never creates a missing database and quotes every
identifier; :func:`read_table` and :func:`write_outcomes` word its errors for evaluate.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError, did_you_mean
from .runfiles import EXACT_FLOATS
from .sinks.sql import DDL_KEY

# schema/predictions.sql: the seed's learning-loop table. Its name is the schema's, not the
# world's (no stage renames it).
PREDICTIONS_DDL = "predictions"
SEED_COLUMNS = ("prediction_id", DDL_KEY, "churn_probability", "top_churn_factors", "recommended_intervention",
                "uplift_score", "predicted_at", "actual_intervention", "actual_outcome", "outcome_recorded_at",
                "model_version")
# What each column means to evaluate (its --help lists them)
COLUMN_HELP = {
    "prediction_id": "the row's id (kept, not graded)",
    DDL_KEY: "required: the partner (the world's key column), one row per partner of the run's cohort",
    "churn_probability": "P(churn) in [0, 1]: AUC, Brier score and calibration against the truth",
    "top_churn_factors": "the model's reasons (kept, not graded)",
    "recommended_intervention": "an intervention type (empty: the control): the submitted policy, "
                                "graded beside none, logging, all_<type> and the oracle",
    "uplift_score": "higher = more churn prevented: the Qini coefficient against the true benefit",
    "predicted_at": "a date and time (empty: the run's feature date)",
    "actual_intervention": "written by --record: the type applied",
    "actual_outcome": "written by --record: Churned or Retained, from the world's outcome process",
    "outcome_recorded_at": "written by --record: the end of the outcome window",
    "model_version": "one version per call (--model-version chooses one in a table of several); "
                     "keys --record's outcome stream",
}
SNAPSHOT = "snapshot_date"                     # a backtest's column (a file's only: not the seed's table)
COLUMN_HELP[SNAPSHOT] = ("a snapshot of the run (features_panel's snapshot_date; absent: the last): one file may "
                         "hold several, each graded against its own labels and truth (evaluation.json by_snapshot)")
SHOWN = 5                                      # rows listed per problem; the rest are counted


def table_name(spec) -> str:
    """The predictions table's name in the run's database."""
    from .sinks.sql import names

    return names(spec).get(PREDICTIONS_DDL, PREDICTIONS_DDL)


def columns(spec) -> list[str]:
    """The predictions' columns in this world (the key column is the world's), and a
    backtest's snapshot_date."""
    return [spec.key if c == DDL_KEY else c for c in SEED_COLUMNS] + [SNAPSHOT]


# ----------------------------------------------------------------------------- files

def read_file(path: Path, key: str) -> pd.DataFrame:
    """A predictions CSV (UTF-8 text) or Parquet file; empty, binary, non-UTF-8 and
    truncated files refused with the file named (and the line, where there is one)."""
    if path.suffix not in (".csv", ".parquet"):
        raise ConfigError([f"--predictions {path}: must be a .csv or .parquet file"])
    if not path.is_file():
        raise ConfigError([f"--predictions {path}: {'not a regular file' if path.exists() else 'no such file'}"])
    data = path.read_bytes()
    if not data:
        expected = (f"a Parquet table with {key} and the predicted columns" if path.suffix == ".parquet" else
                    f"a header row naming {key} and the predicted columns")
        raise ConfigError([f"{path}: empty file (expected {expected}, then one row per partner)"])
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(io.BytesIO(data)).to_pandas()
        except (OSError, ValueError) as exc:         # ArrowInvalid is a ValueError
            raise ConfigError([f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})"]) from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError([f"{path}: a binary file, not CSV text (a NUL byte at offset {nul})"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{path} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}; "
                           f"save the file as UTF-8)"]) from None
    try:
        return pd.read_csv(io.StringIO(text), dtype={key: str},   # keys stay text: 'P007', not 7
                           **EXACT_FLOATS)                         # every float read to its last bit
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise ConfigError([f"{path}: not a readable CSV file ({str(exc).strip().splitlines()[-1]})"]) from None


# ----------------------------------------------------------------------------- the run's database

def describe(spec, run_dir: Path, url: str | None = None) -> str:
    """Where the predictions table is, safe to print: the run's database (its sink kind says
    where) and the table."""
    return f"{_kind(spec).locate(spec.db, run_dir, url)} table {table_name(spec)}"


def _kind(spec):
    from . import sinks

    if spec.db is None or spec.db.kind == sinks.NONE:
        raise ConfigError(["--from-db: the run loaded no database (db=none)"])
    return sinks.kind(spec.db)


def read_table(spec, run_dir: Path, url: str | None = None, version: str | None = None) -> pd.DataFrame:
    """The predictions table, through the run's database sink (which refuses a missing
    database, never creating one); only ``version``'s rows when given."""
    from .sinks import SinkError

    try:
        frame = _kind(spec).read(spec.db, run_dir, table_name(spec), url).to_pandas()
    except SinkError as exc:                   # the sink's own line names the database
        raise ConfigError([str(exc)]) from None
    if spec.key in frame:
        frame[spec.key] = frame[spec.key].astype(str)              # keys stay text: 'P007', not 7
    if version is not None and "model_version" in frame:
        frame = frame[frame["model_version"].astype(str) == version].reset_index(drop=True)
    return frame


def write_outcomes(spec, run_dir: Path, recorded: pd.DataFrame, read_version: str | None,
                   url: str | None = None) -> None:
    """The recorded outcomes into the predictions table, through the run's database sink, in
    one transaction: each partner's row of the version it was read with (``read_version``;
    None matches a NULL version)."""
    import pyarrow as pa

    from .sinks import SinkError

    rows = pa.table({"actual_intervention": recorded["actual_intervention"].astype(str).to_numpy(),
                     "actual_outcome": recorded["actual_outcome"].astype(str).to_numpy(),
                     "outcome_recorded_at": pd.to_datetime(recorded["outcome_recorded_at"]).to_numpy(),
                     "model_version": recorded["model_version"].astype(str).to_numpy(),
                     "_key": recorded[spec.key].astype(str).to_numpy(),
                     "_read_version": pa.array([read_version] * len(recorded), pa.string())})
    try:
        _kind(spec).update(spec.db, run_dir, table_name(spec), {spec.key: "_key", "model_version": "_read_version"},
                           rows, url)
    except SinkError as exc:
        raise ConfigError([f"{describe(spec, run_dir, url)}: cannot record the outcomes ({exc}); "
                           f"nothing was recorded"]) from None


# ----------------------------------------------------------------------------- checks

def _unique_keys(frame: pd.DataFrame, key: str) -> pd.Series:
    """One key per (partner, snapshot) row, so that the per-partner checks read each pair
    once: 'P00001 @ 2025-10-03'."""
    dates = pd.to_datetime(frame[SNAPSHOT], errors="coerce", format="mixed")
    return frame[key].astype(str) + " @ " + dates.dt.strftime("%Y-%m-%d").fillna("?")


def _snapshots(frame: pd.DataFrame, source: str, spec, panel: pd.DataFrame | None) -> list[str]:
    """Each row's snapshot_date: a date, one of the run's snapshots."""
    if panel is None:
        return [f"{source}, column {SNAPSHOT}: this run wrote no features_panel (features.panel: null) to grade "
                f"snapshots against"]
    at = frame[SNAPSHOT]
    parsed = pd.to_datetime(at, errors="coerce", format="mixed")
    dates = pd.to_datetime(panel[SNAPSHOT].unique())
    known = ", ".join(d.strftime("%Y-%m-%d") for d in sorted(dates))
    return (_rows(source, SNAPSHOT, (at.isna() | parsed.isna()).to_numpy(), at,
                  "is not a date (a snapshot of the run, e.g. " + known.split(", ")[-1] + ")")
            + _rows(source, SNAPSHOT, (parsed.notna() & ~parsed.isin(dates)).to_numpy(), at,
                    f"is not a snapshot of this run (its snapshots: {known})"))


def _shown(value: object) -> str:
    return repr(value.item() if hasattr(value, "item") else value)     # 1.5, not np.float64(1.5)


def _rows(source: str, column: str, bad: np.ndarray, values: pd.Series | None, what: str) -> list[str]:
    """One problem per offending row (the first few, each with its value unless ``values``
    is None), then a count of the rest."""
    rows = np.flatnonzero(bad)
    out = [f"{source} row {i + 1}, column {column}: " + (f"{_shown(values.iloc[i])} {what}" if values is not None
                                                         else what) for i in rows[:SHOWN]]
    if len(rows) > SHOWN:
        out.append(f"{source}, column {column}: {len(rows) - SHOWN} more rows like these")
    return out


def _numbers(frame: pd.DataFrame, column: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """(values as floats, rows left empty, rows that are not a finite number)."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    empty = raw.isna().to_numpy()
    return values, empty, ~empty & ~np.isfinite(values.to_numpy())


def check(frame: pd.DataFrame, source: str, spec, types: Sequence[str], cohort: pd.Index,
          panel: pd.DataFrame | None = None, each: str = "partner") -> list[str]:
    """Every problem of the predictions, with the row and the column: unknown columns,
    no rows, keys outside the cohort or repeated, empty or non-finite numbers, unknown
    intervention types, unreadable dates and more than one model version; with a
    ``snapshot_date`` column, each row's snapshot one of the run's (``panel``'s) and its
    partner active at it, once."""
    key, known = spec.key, columns(spec)
    if SNAPSHOT in frame:
        return [*(f"{source}, column {c!r}: unknown column" + did_you_mean(str(c), known)
                  for c in frame.columns if c not in known), *_snapshots(frame, source, spec, panel),
                *check(frame.drop(columns=SNAPSHOT).assign(**{key: _unique_keys(frame, key)}), source, spec,
                       types, pd.Index(_unique_keys(panel, key)) if panel is not None else cohort,
                       each="partner and snapshot")]
    problems = [f"{source}, column {c!r}: unknown column" + did_you_mean(str(c), known)
                for c in frame.columns if c not in known]
    if key not in frame:
        return [*problems, f"{source}: no {key} column (the required key; columns: "
                           f"{', '.join(map(str, frame.columns)) or 'none'})"]
    if frame.empty:
        return [*problems, f"{source}: no predictions (no rows: one row per partner graded is expected)"]
    ids = frame[key]
    problems += _rows(source, key, ids.isna().to_numpy(), None, "no value (every row needs the partner's key)")
    ids = ids.astype(str)
    problems += _rows(source, key, (frame[key].notna() & ~ids.isin(cohort)).to_numpy(), ids,
                      "is not a partner of this run's cohort" if each == "partner"
                      else "is not a partner active at that snapshot (a row of features_panel)")
    problems += _rows(source, key, (frame[key].notna() & ids.duplicated()).to_numpy(), ids,
                      f"appears twice (one prediction per {each})")
    if "churn_probability" in frame:
        p, empty, bad = _numbers(frame, "churn_probability")
        problems += _rows(source, "churn_probability", empty, None,
                          "no value (a probability in [0, 1] on every row, or leave the column out)")
        problems += _rows(source, "churn_probability", bad | ((p < 0) | (p > 1)).to_numpy(),
                          frame["churn_probability"], "is not a probability in [0, 1]")
    if "uplift_score" in frame:
        _, empty, bad = _numbers(frame, "uplift_score")
        problems += _rows(source, "uplift_score", empty, None,
                          "no value (a finite number on every row, or leave the column out)")
        problems += _rows(source, "uplift_score", bad, frame["uplift_score"], "is not a finite number")
    if "recommended_intervention" in frame:
        rec = frame["recommended_intervention"]
        problems += _rows(source, "recommended_intervention", (rec.notna() & ~rec.astype(str).isin(types)).to_numpy(),
                          rec, f"is not an intervention type (known: {', '.join(types)})")
    if "predicted_at" in frame:
        at = frame["predicted_at"]
        parsed = pd.to_datetime(at, errors="coerce", format="mixed")
        problems += _rows(source, "predicted_at", (at.notna() & parsed.isna()).to_numpy(), at,
                          "is not a date and time (e.g. 2025-10-03 00:00:00; empty: the run's feature date)")
    if "model_version" in frame:
        versions = frame["model_version"].astype(object).where(frame["model_version"].notna(), None)
        first = np.flatnonzero(~versions.duplicated().to_numpy())
        if len(first) > 1:
            listed = ", ".join(f"{'none' if versions.iloc[i] is None else repr(str(versions.iloc[i]))} from row {i + 1}"
                               for i in first[:4])
            problems.append(f"{source}, column model_version: {len(first)} model versions in one call ({listed}): "
                            f"grade one version at a time (--model-version V)")
    return problems
