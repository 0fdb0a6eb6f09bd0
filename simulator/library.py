"""``simulator.load_run(DIR)``: a published run as a notebook reads it, in the manner of
scikit-learn's ``load_*`` Bunch (``data``, ``target``, ``feature_names``).

Nothing is read before it is asked for: ``load_run`` reads the manifest and the saved config
(and checks the one against the other), and each table is read on its first access, from its
Parquet file if the run wrote one, else its CSV. Every file goes through
:mod:`simulator.runfiles`, so a file whose sha256 no longer matches ``manifest.json`` is
refused (a :class:`~simulator.errors.ConfigError` naming it) rather than read.

A key has one dtype in every table: the world's key column (``partner_id``) is read as pandas'
Arrow-backed ``string`` dtype (:data:`simulator.runfiles.STRING`) whichever table it is in and
however the run wrote it (a CSV's ``00042`` stays text), so that a merge of two tables keeps it
a ``string`` column, never ``object``; from Parquet (written by default) every other identifier
too (``intervention_id``, ``master_affiliate_id`` ...: the plain-string columns, labels being
categoricals there). From a CSV, the other columns are what pandas makes of them.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from . import runfiles

SUFFIXES = (".parquet", ".csv")                # a table's files, in the order they are preferred
SNAPSHOT = "snapshot_date"                     # the panel's column (stages/projection.py's SNAPSHOT_DATE)


class Tables(Mapping):
    """A run's tables by name, each read on its first access and kept (see the module
    docstring); ``loaded``: the names read so far. An unknown name raises KeyError naming
    the tables the run has."""

    def __init__(self, run_dir: Path, manifest: Mapping, key: str, names: tuple[str, ...]):
        self._dir, self._manifest, self._key, self._names = run_dir, manifest, key, names
        self._read: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(f"{name!r}: not a table of the run in {self._dir} (its tables: {', '.join(self._names)})")
        if name not in self._read:
            self._read[name] = runfiles.read_table(self._dir, self._manifest, name, keys=(self._key,))
        return self._read[name]

    def __contains__(self, name: object) -> bool:          # without reading it (Mapping's would)
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def loaded(self) -> tuple[str, ...]:
        return tuple(self._read)

    def __repr__(self) -> str:
        return f"Tables({', '.join(self._names)}; read: {', '.join(self._read) or 'none'})"


class Truth(Mapping):
    """The run's truth tables by name (the interventions' ``uplift_truth``: each partner's
    exact expected effect of every intervention type; ``decision_truth``: every decision's;
    ``snapshot_truth``: every snapshot's label's probability, before the decisions and on the path),
    read on first access; ``oracle``: the partners table's column holding the oracle's churn
    probability (``churn.truth``; None when the world writes none)."""

    def __init__(self, tables: Tables, names: tuple[str, ...], oracle: str | None):
        self._tables, self._names, self.oracle = tables, names, oracle

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(f"{name!r}: not a truth table of this run (its truth tables: "
                           f"{', '.join(self._names) or 'none'})")
        return self._tables[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"Truth({', '.join(self._names) or 'no tables'}; oracle: {self.oracle})"


class Run:
    """A published run (see :func:`load_run`)."""

    def __init__(self, run_dir: Path, manifest: dict, spec: Any):
        self.dir, self.manifest, self.spec = run_dir, manifest, spec
        names = tuple(t for t, entry in manifest["tables"].items() if isinstance(entry, Mapping)
                      and any(f"{t}{s}" in (entry.get("files") or {}) for s in SUFFIXES))
        self.tables = Tables(run_dir, manifest, spec.key, names)

    @property
    def table_names(self) -> list[str]:
        """The tables the run wrote as files."""
        return list(self.tables)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tables

    @cached_property
    def stats(self) -> dict:
        """stats.json: every declared target beside its realized value."""
        path = runfiles.verify_output(self.dir, self.manifest, runfiles.STATS)
        return runfiles.read_json(path, "the run's statistics")

    def _model(self):
        """The projection stage writing the model-ready table (it carries the churn label)."""
        label = self.spec.role("label")
        return next((s for s in self.spec.stages if s.kind == "projection" and label in s.carry), None)

    @property
    def features(self) -> list[str]:
        """The model-ready table's feature names, in the spec's order (``features.columns``:
        the seed's 18 in the default world); empty when the world has no such table."""
        model = self._model()
        return list(model.features) if model else []

    @property
    def target(self) -> str | None:
        """The churn label's column name."""
        return self.spec.role("label")

    @cached_property
    def truth(self) -> Truth:
        """The truth tables and the oracle's probability column (see :class:`Truth`)."""
        stage = next((s for s in self.spec.stages if s.kind == "interventions"), None)
        names = () if stage is None else (stage.truth_table, stage.decision_table, stage.snapshot_table)
        oracle = next((s.truth for s in self.spec.stages if s.kind == "churn" and s.truth), None)
        return Truth(self.tables, tuple(n for n in names if n in self.tables), oracle)

    def snapshots(self) -> list[pd.Timestamp]:
        """The snapshot dates of the model-ready rows (``features_panel``), oldest first."""
        model = self._model()
        if model is None:
            return []
        if model.panel and model.panel in self.tables:
            return sorted(pd.to_datetime(self.tables[model.panel][SNAPSHOT].unique()))
        return [pd.Timestamp(self.spec.feature_date)]

    def X_y(self, snapshot: str | pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.Series]:
        """(X, y) of the model-ready rows at ``snapshot``, indexed by the key.

        X holds the :attr:`features` only, in their order: not the key (the index), not the
        churn label or scenario, and not ``is_master_affiliate`` (carried beside the features,
        not one of the seed's 18; a master is the row whose network features are not null).
        X keeps the tables' dtypes (a flag ``bool``, a masters-only count ``Int64``):
        ``X.astype(float)`` is the numeric matrix, nulls as NaN.
        y is the churn label (churn in the label window after the snapshot). ``snapshot``: a
        date (a string or a Timestamp) among :meth:`snapshots`, read from ``features_panel``;
        None, the last one: ``partners_engineered``. An unknown snapshot raises ValueError
        listing the run's."""
        model = self._model()
        if model is None:
            raise ValueError(f"the run in {self.dir} has no model-ready table (no projection stage carrying "
                             f"the churn label {self.target!r})")
        frame = self.tables[model.table_name]
        if snapshot is not None:
            known = self.snapshots()
            try:
                when = pd.Timestamp(snapshot)
            except (TypeError, ValueError):
                when = None
            if when not in known:
                raise ValueError(f"snapshot {snapshot!r}: not a snapshot of the run in {self.dir} (its snapshots: "
                                 f"{', '.join(str(d.date()) for d in known)})")
            if model.panel and model.panel in self.tables:
                panel = self.tables[model.panel]
                frame = panel[pd.to_datetime(panel[SNAPSHOT]) == when]
        frame = frame.set_index(self.spec.key)
        return frame[self.features], frame[self.target]

    def __repr__(self) -> str:
        return (f"Run({str(self.dir)!r}: {len(self.tables)} tables ({', '.join(self.tables)}), "
                f"{len(self.features)} features, target {self.target!r})")


def load_run(run_dir: str | Path) -> Run:
    """A published run directory, read lazily (see the module docstring).

    ``run.tables[name]`` or ``run[name]``: a table as a DataFrame (``run.table_names``);
    ``run.features``: the model-ready table's feature names, from the spec; ``run.X_y(snapshot)``:
    the features and the churn label, without leakage columns; ``run.truth``: the truth tables
    and the oracle's probability column; ``run.spec`` (the typed spec of the saved config),
    ``run.manifest``, ``run.stats`` (stats.json), ``run.dir``. A file edited after the run, a
    missing or malformed one, is refused (:class:`~simulator.errors.ConfigError`)."""
    from .load import load_spec

    path = Path(run_dir)
    manifest = runfiles.read_manifest(path)
    cfg = runfiles.read_config(path)
    runfiles.verify_config(path, runfiles.resolved_config(cfg), manifest)
    return Run(path, manifest, load_spec(cfg))
