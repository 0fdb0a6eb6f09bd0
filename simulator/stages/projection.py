"""A table that selects partners columns (the model-ready ``partners_engineered``).

Kind ``projection`` (the ``features`` group): ``columns`` (a list, or a mapping of
section -> list, where a section set to null is left out) and ``carry`` name partners
columns; the table is the key and those columns, the same values as the partners table.
``rows`` (optional) names a boolean column (a helper allowed) selecting the rows: the
cohort at risk at the feature date for ``partners_engineered``. Its schema is the
partners schema's columns and every partners row check whose columns it holds.

What the table lets a model learn is declared beside it and measured without training one:
``learnability`` (the band a model's AUC should fall in, which the test suite checks by
training it, and the most any single feature may score alone) and ``class_means`` (a
feature's declared mean among churners and stayers of the carried churn label). stats.json
gets a target per class mean, with the tolerance of a measured feature (stats.py: 4
standard errors plus a tenth of the declared sd), and each feature's AUC alone; the report
draws those AUCs, the oracle's beside the band, and each churn scenario's average history
beside healthy partners'.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import Problems, did_you_mean
from ..expr import evaluate, frame_env
from ..review.data import (AucBars, AucBounds, ClassHistograms, Drift, DriftLines, FaultTable, FeatureAucs, FigureSpec,
                           Headline, LearnabilityTable, MeasuredTarget, ScenarioHistories, StageReview, Target)
from ..spec.checks import _is_number, named_entries
from ..spec.columns import _column
from ..spec.model import ColumnSpec, Domain
from ..spec.shape import Open
from ..spec.faults import Missing
from ..spec.shocks import first_start, phases
from ..stage import BaseStage, ParseContext, RunContext
from ..state import as_column, movers, state_at
from . import columns


CLASSES = (("churned", True), ("stayed", False))    # class_means keys -> value of the churn label
SNAPSHOT_DATE = "snapshot_date"                      # the panel's column: the feature date of its row


@dataclass(frozen=True)
class ClassMean:
    """A feature's declared mean and sd among churners and among stayers."""

    feature: str
    path: str
    churned: float
    stayed: float
    sd_churned: float
    sd_stayed: float


@dataclass(frozen=True)
class Projection(BaseStage):
    name: str
    kind: str
    table_name: str
    features: tuple[str, ...]
    carry: tuple[str, ...]
    paths: tuple[tuple[str, str], ...] = ()   # (config path, column) of every name, for checks
    rows: str | None = None                   # a boolean column selecting the rows (None: all)
    model_auc: tuple[float, float] | None = None   # declared band of a trained model's AUC (min, max)
    feature_auc_max: float | None = None      # the most a single feature may score alone
    class_means: tuple[ClassMean, ...] = ()
    panel: str | None = None                  # the same rows stamped with their snapshot date (features_panel)
    noise: tuple[str, ...] = ()               # features declared pure noise (their AUC alone near 0.5)
    noise_band: float | None = None           # every other feature's AUC at least this far from 0.5
    missing: tuple[Missing, ...] = ()         # features whose values a share of the rows lose (faults.missing)
    derived: tuple[ColumnSpec, ...] = ()      # features the pipeline computes from each row's own values

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        return ([(f"{self.name}.rows", frozenset([self.rows]))] if self.rows else []) + \
            [(c.path, c.reads) for c in self.derived]

    def expressions(self) -> list:
        return [(f"{c.path}.expr", c.expr, "number") for c in self.derived if c.kind == "derive"]

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        for path, name in self.paths:
            if name not in domains:
                p.add(path, f"unknown column {name!r}" + did_you_mean(name, domains))
        names = [n for _, n in self.paths]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            p.add(f"{self.name}.columns", f"a column may appear once, repeated: {dupes}")
        for c in self.derived:
            if c.name not in self.features:
                p.add(c.path, f"not a feature of {self.table_name}" + did_you_mean(c.name, self.features))
            elif c.kind != "derive":
                p.add(c.path, f"must be an expression (expr) of the row's columns, got a '{c.kind}' column")
        for m in self.class_means:
            if m.feature not in names:
                p.add(m.path, f"not a column of {self.table_name}" + did_you_mean(m.feature, names))
            elif m.feature in domains and domains[m.feature].dtype not in ("float", "int", "any"):   # any: reported
                p.add(m.path, f"a class mean needs a numeric column, {m.feature!r} is {domains[m.feature].dtype}")

    def finish(self, ctx: RunContext, partners: pd.DataFrame) -> None:
        names = [ctx.world.key, *self.features, *self.carry]
        lost = self._lost(ctx)
        if self.rows is None:                  # with copy-on-write a selection shares the arrays
            rows, table = np.arange(len(partners)), partners[names]
        else:                                  # one take of the selected rows and columns
            rows = np.flatnonzero(np.asarray(ctx.env[self.rows], dtype=bool))
            table = partners[names].take(rows).reset_index(drop=True)
        seen = {c: per[-1] for c, per in ctx.observed.items() if c in self.features}
        seen.update(self._derive({**ctx.env, **seen}, seen, ctx.n))
        if seen:                               # the features a faulty warehouse table gives
            domains = ctx.world.domains()
            table = table.assign(**{c: as_column(v[rows], domains[c]) for c, v in seen.items()})
        # the last snapshot's faults, once: the panel's last snapshot is this table
        ctx.tables[self.table_name] = _masked(table, lost, ctx.env, rows, -1) if lost else table
        if self.panel:
            ctx.tables[self.panel] = self._panel(ctx, names, lost)

    def _lost(self, ctx: RunContext) -> dict[str, tuple[Missing, np.ndarray]]:
        """Per feature with declared missing values, its declaration and one uniform per
        partner and snapshot (its own stream: faults=none draws nothing, so changes nothing);
        the golden records lose nothing (their pins are what the table shows)."""
        k = ctx.world.timeline.snapshots if ctx.world.timeline is not None else 1
        out = {m.column: (m, ctx.rng("faults", "missing", m.column).random((ctx.n, k))) for m in self.missing}
        for _, u in out.values():
            u[np.asarray(ctx.gold.rows, dtype=np.intp)] = 1.0      # (never below a share)
        return out

    def _derive(self, env: Mapping[str, object], given: Mapping[str, object], n: int) -> dict[str, object]:
        """The ``derived`` features computed from ``env``, the row's values (those reading a
        column of ``given``, the values that may differ from the state's: a snapshot's moved
        features, a faulty table's), in order, as a feature pipeline computes them: so a
        row's tier proximity is that of the average its commissions show."""
        out: dict[str, object] = {}
        for c in self.derived:
            if c.reads & (set(given) | set(out)):
                out[c.name] = columns.produce(c, {**env, **out}, n, None, None)
        return out

    def _panel(self, ctx: RunContext, names: list[str], lost: Mapping) -> pd.DataFrame:
        """Every snapshot's rows, oldest first: the partners active at it (joined on or
        before it, not gone by it), their columns as of that day (simulator.state), the
        label and scenario of the label window after it, each losing what ``lost`` takes
        at that snapshot. The last snapshot's rows are the table's own."""
        world, tl = ctx.world, ctx.world.timeline
        last = ctx.tables[self.table_name].copy(deep=False)
        last.insert(1, SNAPSHOT_DATE, np.full(len(last), np.datetime64(world.feature_date, "us")))
        if tl is None or tl.snapshots == 1:
            return last
        gone = np.asarray(ctx.env[world.role("event_date")], dtype="datetime64[us]")
        joined = np.asarray(ctx.env[world.role("joined")], dtype="datetime64[us]")
        domains, stages = world.domains(), movers(world.stages)
        frames = []
        for k, day in enumerate(tl.snapshot_dates()[:-1]):
            rows = np.flatnonzero(tl.active_on(day, joined, gone))
            state = {**state_at(ctx, stages, day, gone),
                     **{c: per[k] for c, per in ctx.observed.items() if c in self.features}}
            state.update(self._derive(state, state, ctx.n))
            frame = pd.DataFrame({c: as_column(state[c], domains[c]) for c in names}).take(rows)
            frame.insert(1, SNAPSHOT_DATE, np.full(rows.size, np.datetime64(day, "us")))
            frames.append(_masked(frame, lost, {**ctx.env, **state}, rows, k) if lost else frame)
        return pd.concat([*frames, last], ignore_index=True)

    def tables(self) -> tuple[str, ...]:
        return (self.table_name, *([self.panel] if self.panel else []))

    def ddl(self) -> dict[str, str]:
        return {self.table_name: "partners_engineered", **({self.panel: "features_panel"} if self.panel else {})}

    def schemas(self, world, tables) -> dict:
        import pandera.pandas as pa

        from ..table_checks import partners_schema, row_checks

        partners = partners_schema(world)
        names = [world.key, *self.features, *self.carry]
        checks = [check for cols, check in row_checks(world) if cols <= set(names)]
        lost = {m.column for m in self.missing}
        columns = {c: _nullable(partners.columns[c]) if c in lost else partners.columns[c] for c in names}
        out = {self.table_name: pa.DataFrameSchema(columns, strict=True, ordered=True, name=self.table_name,
                                                   checks=checks)}
        if self.panel:
            snapshot = pa.Column("datetime64[us]", checks=pa.Check.isin(list(world.timeline.snapshot_dates())))
            key = partners.columns[world.key]
            columns = {world.key: pa.Column(key.dtype, checks=key.checks, nullable=key.nullable), SNAPSHOT_DATE: snapshot,
                       **{c: columns[c] for c in names[1:]}}
            out[self.panel] = pa.DataFrameSchema(columns, strict=True, ordered=True, name=self.panel, checks=checks,
                                                 unique=[world.key, SNAPSHOT_DATE])
        return out

    def invariants(self, world, tables) -> list[dict]:
        """The panel tells the partners table's timeline: each snapshot holds exactly the
        partners active at it (joined on or before it, not gone by it), its label is churn
        in the label window after it, and its last snapshot is this table."""
        panel, partners = tables.get(self.panel) if self.panel else None, tables[world.table]
        joined_role, gone_role, label = world.role("joined"), world.role("event_date"), self._label(world)
        if panel is None or joined_role is None or gone_role is None:
            return []
        from .. import ids

        tl = world.timeline
        rows = ids.rows_of(partners[world.key], panel[world.key])
        day = panel[SNAPSHOT_DATE].to_numpy(dtype="datetime64[us]")
        joined = partners[joined_role].to_numpy(dtype="datetime64[us]")
        gone = partners[gone_role].to_numpy(dtype="datetime64[us]")
        active = sum(int(np.count_nonzero(tl.active_on(d, joined, gone))) for d in np.unique(day))
        joined, gone = joined[rows], gone[rows]                 # each panel row's partner's
        out = [{"invariant": f"{self.panel}: every row's partner joined on or before its snapshot and had not left",
                "violations": int(np.count_nonzero(~tl.active_on(day, joined, gone)))},
               {"invariant": f"{self.panel}: every partner active at a snapshot has its row (rows are unique)",
                "violations": abs(active - len(panel))}]
        if label is not None:
            expected = tl.churns_after(day, gone)
            out.append({"invariant": f"{self.panel}: {label} is churn in the label window after the snapshot",
                        "violations": int(np.count_nonzero(panel[label].to_numpy(dtype=bool) != expected))})
        return out

    def _label(self, world) -> str | None:
        """The carried churn label, or None when the table does not carry it."""
        label = world.role("label")
        return label if label in self.carry else None

    def review(self, world, tables) -> StageReview:
        """Each declared class mean beside the feature's mean among the table's rows of that
        class; each feature's AUC alone (network features' nulls left out) and the declared
        band."""
        table, label, out = tables[self.table_name], self._label(world), []
        for m in self.class_means:
            for key, value in CLASSES:
                declared, sd = getattr(m, key), getattr(m, f"sd_{key}")
                x = (table.loc[table[label] == value, m.feature].to_numpy(dtype=float, na_value=np.nan)
                     if label else np.empty(0))
                x = x[~np.isnan(x)]
                out.append(MeasuredTarget(f"{m.path}.{key}", declared, x, sd, "class mean", {
                    "feature": m.feature, "declared_sd": sd,
                    "realized_sd": round(float(x.std()), 6) if x.size else None,
                    "note": f"{self.table_name} rows with {label} {str(value).lower()}" if label
                    else f"{self.table_name} does not carry the churn label"}))
        realized = {}
        if self.missing:
            lost = self._review_missing(world, table, tables[world.table])
            out += [t for t, _ in lost]
            realized["faults"] = {"missing": {t.name.rsplit(".", 1)[1]: count for t, count in lost}}
        if label is not None:
            bounds = AucBounds(f"{self.name}.learnability", self.feature_auc_max, self.noise, self.noise_band) \
                if self.feature_auc_max is not None or self.noise_band is not None else None
            realized["feature_auc"] = FeatureAucs(table, label, self.features, best="max_feature_auc", bounds=bounds)
        if self.model_auc is not None:
            realized["model_auc_band"] = {"min": self.model_auc[0], "max": self.model_auc[1]}
        if self.feature_auc_max is not None:
            realized["feature_auc_max"] = self.feature_auc_max
        first = first_start(world.shocks)
        if first is not None and label is not None and self.panel in tables:
            dates = [str(np.datetime64(d, "D")) for d in world.timeline.snapshot_dates()]
            realized["shocks"] = Drift(tables[self.panel], label, self.features, SNAPSHOT_DATE,
                                       dict(zip(dates, phases(world.timeline, first))), str(first),
                                       tuple(s.declared() for s in world.shocks))
        headline = (Headline("model_auc_band", "trained-model AUC band (declared)", "band"),
                    Headline("max_feature_auc", "best single-feature AUC (realized)"),
                    Headline("feature_auc_max", "single-feature AUC ceiling (declared)"))
        return StageReview(out, realized, headline)

    def _review_missing(self, world, table: pd.DataFrame, partners: pd.DataFrame) -> list[tuple[Target, dict]]:
        """Per declared missing feature: the share of the table's eligible rows (its condition
        holds on the partner's true state, and a true value was there to lose) that lost it,
        beside the declared share; and the counts the report shows."""
        from .. import ids

        truth = partners.take(ids.rows_of(partners[world.key], table[world.key])).reset_index(drop=True)
        out = []
        for m in self.missing:
            eligible = truth[m.column].notna().to_numpy().copy()
            if m.where is not None:
                eligible &= np.asarray(evaluate(m.where, frame_env(truth, m.where.names), len(truth)), dtype=bool)
            lost = table[m.column].isna().to_numpy() & eligible
            k = int(eligible.sum())
            share = float(lost.sum() / k) if k else 0.0
            out.append((Target(m.path, m.share, share, float(np.sqrt(m.share * (1 - m.share) / max(k, 1))), k,
                               "share", {"note": f"{self.table_name} rows that lost {m.column} (null) among those "
                                                 f"where {m.where.source if m.where else 'any row'} and a value was "
                                                 f"there to lose; the partners table keeps it"}),
                        {"rows": k, "lost": int(lost.sum()), "where": m.where.source if m.where else None}))
        return out

    def figures(self, world, tables) -> list[FigureSpec]:
        """The features by churn class, the learnability measures beside their declarations
        (the oracle's AUC is the churn stage's ``oracle_auc``), each churn scenario's histories."""
        domains = world.domains()
        scenario = world.role("scenario")
        # the cohort's rows (this table, when it carries the label), as the AUCs are measured
        return [ClassHistograms(heading="Features by churn class", table=self.table_name if self._label(world)
                                else world.table, label=world.role("label"),
                                features=tuple(n for n in self.features
                                               if domains[n].dtype in ("float", "int", "bool"))),
                LearnabilityTable(heading="Learnability: the oracle beside the declared band", oracle="oracle_auc",
                                  band="model_auc_band", best="max_feature_auc", top="feature_auc_max"),
                AucBars(heading="Each feature's AUC alone", aucs="feature_auc", top="feature_auc_max",
                        oracle="oracle_auc"),
                ScenarioHistories(heading="Histories by churn scenario", table=self.table_name,
                                  label=self._label(world), scenario=scenario if scenario in self.carry else None),
                DriftLines(heading="Around the shocks: churn, and a model trained before them, per snapshot",
                           key="shocks"),
                FaultTable(heading="Warehouse faults: what the tables a pipeline reads got wrong", key="faults")]

def _nullable(column):
    """A partners schema column that may lose values (faults.missing): null allowed, an
    integer or flag as pandas' nullable kind."""
    import copy

    out = copy.deepcopy(column)
    out.nullable = True
    out.dtype = {"int64": "Int64", "bool": "boolean"}.get(str(column.dtype), str(column.dtype))
    return out


def _masked(frame: pd.DataFrame, lost: Mapping[str, tuple[Missing, np.ndarray]], state: Mapping[str, object],
            rows: np.ndarray, snapshot: int) -> pd.DataFrame:
    """``frame`` (the partners ``rows`` at one snapshot, ``state`` their columns then) with
    each declared feature's value lost (null) where its condition holds and the partner's
    uniform for that snapshot falls below the share."""
    out = frame.copy()
    for column, (m, u) in lost.items():
        hit = u[rows, snapshot] < m.share
        if m.where is not None:
            hit &= np.asarray(evaluate(m.where, state, len(u)), dtype=bool)[rows]
        if hit.any():
            col = out[column]
            if col.dtype.kind in "iub":                 # integers and flags keep their kind, nullable
                col = col.astype("Int64" if col.dtype.kind in "iu" else "boolean")
            out[column] = col.mask(hit)
    return out


def _names(p: Problems, path: str, value: Any) -> list[tuple[str, str]]:
    """(path, name) of a list of names, or of a mapping section -> list (null: left out)."""
    if isinstance(value, Mapping):
        return [x for k, v in value.items() if v is not None for x in _names(p, f"{path}.{k}", v)]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        p.add(path, f"must be a list of partners columns, got {value!r}")
        return []
    return [(path, x) for x in value]


def _finite(v: Any) -> bool:
    return _is_number(v) and bool(np.isfinite(v))


def _auc(p: Problems, path: str, value: Any) -> float | None:
    if not _is_number(value) or not 0.5 <= value <= 1:
        p.add(path, f"must be an AUC in [0.5, 1] (0.5: chance, 1: a perfect ranking), got {value!r}")
        return None
    return float(value)


def _noise(p: Problems, path: str, c: Mapping, features: list[str]) -> tuple[tuple[str, ...], float | None]:
    """The features declared noise and the band around 0.5 that tells them from the rest."""
    noise, band = c.get("noise") or [], c.get("noise_band")
    if not isinstance(noise, list) or not all(isinstance(x, str) for x in noise):
        p.add(f"{path}.noise", f"must be a list of the table's features that carry no signal, got {noise!r}")
        noise = []
    for name in noise:
        if name not in features:
            p.add(f"{path}.noise", f"{name!r} is not a feature of the table" + did_you_mean(name, features))
    if band is not None and (not _is_number(band) or not 0 <= band < 0.5):
        p.add(f"{path}.noise_band", f"must be a distance from 0.5 in [0, 0.5) (0.01: no other feature's AUC "
              f"alone within 0.49-0.51), got {band!r}")
        band = None
    return tuple(noise), None if band is None else float(band)


def _learnability(p: Problems, path: str, c: Any) -> tuple[tuple[float, float] | None, float | None]:
    """(model AUC band, single-feature maximum), each None when not declared."""
    if c is None:
        return None, None
    if not isinstance(c, Mapping):
        p.add(path, f"must be a mapping with model_auc: {{min, max}}, feature_auc_max, noise and noise_band, "
              f"got {c!r}")
        return None, None
    band, top = c.get("model_auc"), c.get("feature_auc_max")
    if band is not None:
        if not isinstance(band, Mapping) or not {"min", "max"} <= set(band):
            p.add(f"{path}.model_auc", f"must be a mapping {{min: AUC, max: AUC}}, got {band!r}")
            band = None
        else:
            lo, hi = _auc(p, f"{path}.model_auc.min", band["min"]), _auc(p, f"{path}.model_auc.max", band["max"])
            if lo is not None and hi is not None and lo > hi:
                p.add(f"{path}.model_auc", f"min {lo} is above max {hi}")
            band = (lo, hi) if lo is not None and hi is not None and lo <= hi else None
    return band, _auc(p, f"{path}.feature_auc_max", top) if top is not None else None


def _class_means(p: Problems, path: str, c: Any) -> tuple[ClassMean, ...]:
    if c is None:
        return ()
    if not isinstance(c, Mapping):
        p.add(path, f"must be a mapping of feature -> {{churned, stayed, sd: {{churned, stayed}}}}, got {c!r}")
        return ()
    out = []
    for feature, fpath, entry in named_entries(p, path, c, "churned, stayed and sd"):
        values, sd = {}, entry.get("sd")
        if not isinstance(sd, Mapping):
            p.add(f"{fpath}.sd", f"must be a mapping {{churned: sd, stayed: sd}}, got {sd!r}")
            sd = {}
        for key, _ in CLASSES:
            mean, spread = entry.get(key), sd.get(key) if sd else None
            if not _finite(mean):
                p.add(f"{fpath}.{key}", f"must be a number (the declared mean), got {mean!r}")
            if sd and (not _finite(spread) or spread <= 0):
                p.add(f"{fpath}.sd.{key}", f"must be a number > 0, got {spread!r}")
            values[key], values[f"sd_{key}"] = mean, spread
        if all(_finite(v) for v in values.values()):
            out.append(ClassMean(feature, fpath, **{k: float(v) for k, v in values.items()}))
    return tuple(out)


class ProjectionKind:
    name = "projection"
    defines_entity = False
    shape = {"kind": None, "table": None, "panel": None, "columns": None, "carry": None, "rows": None,
             "learnability": {"model_auc": {"min": None, "max": None}, "feature_auc_max": None, "noise": None,
                              "noise_band": None},
             "class_means": Open({"churned": None, "stayed": None, "sd": {"churned": None, "stayed": None}}),
             "derived": Open(None)}

    def owns(self, group: str, config: Mapping) -> dict[str, Domain]:
        return {}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> Projection | None:
        features = _names(p, f"{group}.columns", c.get("columns"))
        carry = _names(p, f"{group}.carry", c.get("carry"))
        band, top = _learnability(p, f"{group}.learnability", c.get("learnability"))
        noise, noise_band = _noise(p, f"{group}.learnability", c.get("learnability"), [n for _, n in features]) \
            if isinstance(c.get("learnability"), Mapping) else ((), None)
        ctx.names.table(f"{group}.table", c.get("table", "partners_engineered"))
        panel = c.get("panel")
        if panel is not None:                   # null: no panel table
            ctx.names.table(f"{group}.panel", panel)
        derived = _derived(p, f"{group}.derived", c.get("derived"), ctx)
        return Projection(group, self.name, str(c.get("table", "partners_engineered")),
                          tuple(n for _, n in features), tuple(n for _, n in carry), tuple(features + carry),
                          c.get("rows"), band, top, _class_means(p, f"{group}.class_means", c.get("class_means")),
                          str(panel) if panel is not None else None, noise, noise_band,
                          ctx.missing_values([n for _, n in features]), derived)


def _derived(p: Problems, path: str, value: Any, ctx: ParseContext) -> tuple[ColumnSpec, ...]:
    """``derived``: feature -> its column declaration (the population's, interpolated: one
    source), each set to null left out."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        p.add(path, f"must be a mapping of feature -> its expression column, got {value!r}")
        return ()
    out = [_column(p, str(name), decl, f"{path}.{name}", ctx.domains) for name, decl in value.items()
           if decl is not None]
    return tuple(c for c in out if c is not None)


KIND = ProjectionKind()
