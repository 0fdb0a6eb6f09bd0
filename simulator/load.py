"""Config -> typed, validated spec. The only module that reads the Hydra config.

``load_spec(cfg)`` checks every key against its shape (the world's settings here, each
stage's from its kind), parses each stage with its kind's parser, checks every column a
stage reads against the columns the world has, and parses the golden records, collecting
every problem with its config path before raising one :class:`~simulator.errors.ConfigError`.
Every top-level group with a ``kind:`` is a stage; ``value_groups`` (in config.yaml) name
the groups that only feed ``${...}`` interpolations. Stages never see a ``DictConfig``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from . import exprtypes
from .errors import ConfigError, Problems, did_you_mean
from .expr import Expr
from .registry import STAGE_KINDS
from .spec.checks import FORMATS, _date, _int, section
from .spec import faults as fault_spec
from .spec import shocks as shock_spec
from .spec.model import EARLIEST_DATE, LATEST_DATE, DbSpec, Domain, ExecutorSpec, Timeline
from .spec.shape import Open, check_keys
from .stage import ParseContext, WorldSpec
from .stages import golden as golden_records

SETTINGS = ("n_partners", "seed", "as_of", "block_size", "value_groups", "shocks", "faults")
WORLD_SHAPE = {"timeline": {"episodes": None, "episode_days": None, "snapshots": None, "burn_in": None},
               "golden": {"candidates": None, "records": Open(None)},
               "output": {"formats": None, "dir": None, "report": None},
               "executor": {"kind": None, "chunk_size": None, "workers": None, "address": None, "timeout": None}}
EXECUTORS = ("local", "processes", "dask")


def _raw(cfg: DictConfig | Mapping) -> dict:
    try:
        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    except OmegaConfBaseException as exc:
        why = str(exc.msg if hasattr(exc, "msg") else exc).splitlines()[0]   # (not OmegaConf's key/type lines)
        raise ConfigError([f"{getattr(exc, 'full_key', '') or 'config'}: {why}"]) from None
    raw.pop("hydra", None)
    return raw


def _value_groups(raw: Mapping) -> dict[str, Mapping]:
    """The groups that only feed interpolations (``value_groups``), by name: their values."""
    return {g: raw[g] for g in raw.get("value_groups") or [] if isinstance(raw.get(g), Mapping)}


def _stage_groups(p: Problems, raw: Mapping, groups: Mapping[str, Mapping]) -> list[tuple[str, Any, Mapping]]:
    """(group, kind, config) of every stage, in config order; unknown top-level keys refused
    (at the value group's path where a stage's value is one of ``groups``, interpolated)."""
    values = raw.get("value_groups") or []
    known = [*SETTINGS, *WORLD_SHAPE, "db", *values]
    stages = [k for k, v in raw.items() if isinstance(v, Mapping) and "kind" in v and k != "db"]
    out = []
    for key, value in raw.items():
        if key in known or value is None or value == {}:   # a group left empty (network=none) is left out
            continue
        if isinstance(value, Mapping) and "kind" not in value:
            # (most often a stage left out, e.g. interventions=none, and keys an experiment still sets in it)
            left = " ".join(f"~{key}.{k}" for k in value)
            p.add(str(key), f"holds {', '.join(map(str, value))} but no kind: a stage needs one; if {key}=none left "
                  f"the stage out, the experiment or an override still sets these: remove them too ({left})"
                  + did_you_mean(str(key), stages))
            continue
        if not isinstance(value, Mapping):
            p.add(str(key), "unknown key: neither a setting nor a stage (a group with a 'kind:')"
                  + did_you_mean(str(key), [*known, *stages]))
            continue
        kind = STAGE_KINDS.get(value["kind"])
        if kind is None:
            p.add(f"{key}.kind", f"unknown stage kind {value['kind']!r}" + did_you_mean(str(value["kind"]), STAGE_KINDS))
            continue
        check_keys(p, str(key), value, kind.shape, groups)
        out.append((str(key), kind, value))
    return out


def _db(p: Problems, c: Mapping | None) -> DbSpec:
    """The db group: a sink kind (simulator.sinks) parses its own keys; ``none``: files only."""
    from .sinks import NONE, SINK_KINDS

    c = c or {"kind": NONE}
    kind = c.get("kind")
    if kind == NONE:
        check_keys(p, "db", c, {"kind": None})
        return DbSpec(NONE)
    if kind not in SINK_KINDS:
        p.add("db.kind", f"unknown database kind {kind!r}" + did_you_mean(str(kind), [NONE, *SINK_KINDS]))
        return DbSpec(NONE)
    check_keys(p, "db", c, SINK_KINDS[kind].shape)
    return SINK_KINDS[kind].parse(p, c) or DbSpec(NONE)


def _executor(p: Problems, c: Mapping | None) -> ExecutorSpec:
    """The executor group (conf/executor): where chunks run; none of it changes the data."""
    c = c or {}
    kind = c.get("kind", "local")
    if kind not in EXECUTORS:
        p.add("executor.kind", f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
        kind = "local"
    chunk = _int(p, "executor.chunk_size", c.get("chunk_size", ExecutorSpec.chunk_size), 1)
    workers = c.get("workers")
    if workers is not None:
        workers = _int(p, "executor.workers", workers, 1)
    address = c.get("address")
    if address is not None and (not isinstance(address, str) or not re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+", address)):
        p.add("executor.address", f"must be a scheduler address like tcp://host:8786, got {address!r}")
        address = None
    if address is not None and kind != "dask":
        p.add("executor.address", f"is read by executor=dask only; this run's executor is {kind!r}")
    timeout = c.get("timeout", ExecutorSpec.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        p.add("executor.timeout", f"must be a number of seconds above 0 and at most 3600, got {timeout!r}")
        timeout = ExecutorSpec.timeout
    return ExecutorSpec(kind, chunk or ExecutorSpec.chunk_size, workers, address, float(timeout))


def _as_of(p: Problems, value: Any) -> np.datetime64 | None:
    """A calendar date written YYYY-MM-DD (quoted on the command line: as_of='"2026-01-01"'
    is not needed, but a number such as 20260101 or a time of day is refused)."""
    day = _date(p, "as_of", value)
    if day is None:
        return None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        p.add("as_of", f"must be a date from {EARLIEST_DATE} to {LATEST_DATE} (every date the world writes "
              f"stays in that range), got {day}")
        return None
    return day.astype("datetime64[us]")


def _timeline(p: Problems, as_of: np.datetime64 | None, episodes: int | None,
              episode_days: int | None, snapshots: int | None = 1, burn_in: int | None = 0) -> Timeline | None:
    """The timeline, or None when its parts are invalid or its label window would start
    before EARLIEST_DATE (counted in Python integers: numpy's day arithmetic would wrap)."""
    if as_of is None or None in (episodes, episode_days, snapshots, burn_in):
        return None
    day = np.datetime64(as_of, "D")
    room = int((day - EARLIEST_DATE).astype(int))
    if episodes * episode_days > room:
        window = f"the label window ({episodes:,} episodes x {episode_days:,} days) would start before {EARLIEST_DATE}"
        if room // episodes < 1:                   # (no episode length fits: too many episodes)
            p.add("timeline.episodes", f"{window}; with as_of {day} at most {room // episode_days:,} episodes of "
                  f"{episode_days:,} days")
        else:
            p.add("timeline.episode_days", f"{window}; with as_of {day} at most {room // episodes:,} days per episode")
        return None
    periods, burn = room // episode_days, burn_in if snapshots > 1 else 0
    if episodes + snapshots - 1 + burn > periods:
        if burn and episodes + snapshots - 1 <= periods:    # the snapshots fit, their burn-in does not
            p.add("timeline.burn_in", f"{burn_in:,} periods of burn-in before {snapshots:,} snapshots "
                  f"{episode_days} days apart would start before {EARLIEST_DATE}; with as_of {day} at most "
                  f"{periods - episodes - snapshots + 1:,} (or fewer timeline.snapshots)")
        else:
            p.add("timeline.snapshots", f"{snapshots:,} snapshots {episode_days} days apart before the label window "
                  f"would start before {EARLIEST_DATE}; with as_of {day} at most "
                  f"{max(periods - episodes + 1 - burn, 1):,}" + (f" after {burn_in:,} periods of burn-in "
                                                                  f"(timeline.burn_in)" if burn else ""))
        return None
    return Timeline(as_of, episodes, episode_days, snapshots, burn_in if snapshots > 1 else 0)


def _earliest_date(p: Problems, timeline: Timeline, stages: list) -> None:
    """Refuse day counts that would take a date before EARLIEST_DATE: the horizon's start minus
    every stage's lookback, added up (see Stage.lookback). Dates after the feature date end
    at as_of, already in range."""
    reach = sorted(((path, int(days)) for s in stages for path, days in s.lookback()), key=lambda r: -r[1])
    room = int((np.datetime64(timeline.start, "D") - EARLIEST_DATE).astype(int))
    total = sum(days for _, days in reach)
    if reach and total > room:
        path, days = reach[0]
        parts = " + ".join(f"{d:,} ({where})" for where, d in reach)
        p.add(path, f"dates would reach {total:,} days before the horizon's start "
              f"{np.datetime64(timeline.start, 'D')} ({parts}), before {EARLIEST_DATE}; "
              f"at most {room:,} days in all, so at most {max(room - total + days, 0):,} here")


def _flag(p: Problems, path: str, value: Any, default: bool) -> bool:
    """A boolean setting: true or false (a string such as 'maybe' is refused)."""
    if value is None:
        return default
    if not isinstance(value, bool):
        p.add(path, f"must be true or false, got {value!r}")
        return default
    return value


def _undeclared_names(ctx: ParseContext, stages: list) -> None:
    """Declare, under its group's path, every table and column a stage writes that its
    parser did not declare (a stage kind of your own): no name from YAML escapes the rule."""
    for stage in stages:
        tables = [*([stage.table] if stage.entity is not None else []), *stage.tables()]
        columns = [*([stage.entity.column] if stage.entity is not None else []), *stage.writes(), *stage.output_columns()]
        for what, names, declare in (("table", tables, ctx.names.table), ("column", columns, ctx.names.column)):
            for name in dict.fromkeys(names):
                if not ctx.names.under(stage.name, name, what):
                    declare(stage.name, name, f"a {what} that {stage.name} writes")


def _expression(p: Problems, path: str, expr: Expr, expected: str, known: Mapping[str, Domain]) -> None:
    """A top-level declaration's expression reads known columns and has the ``expected`` type."""
    for name in sorted(expr.names - set(known)):
        p.add(path, f"unknown column {name!r}" + did_you_mean(name, known))
    exprtypes.check(p, path, expr, expected, known)


def _shocks(p: Problems, shocks: tuple, ctx: ParseContext, known: Mapping[str, Domain]) -> None:
    """Every shock's condition reads known columns and is boolean; every effect is taken by
    a stage of this world (the one that owns its parameter)."""
    for shock in shocks:
        if shock.where is not None:
            _expression(p, f"{shock.path}.where", shock.where, "bool", known)
        for effect in shock.effects:
            if isinstance(effect.by, Expr):
                _expression(p, f"{effect.path}.by", effect.by, "number", known)
            if effect.path not in ctx.claimed:
                p.add(f"{effect.path}.{effect.kind}", f"no stage of this world has the parameter {effect.target!r}: "
                      f"{effect.kind} takes {shock_spec.KINDS[effect.kind]}")


def _faults(p: Problems, faults, ctx: ParseContext, known: Mapping[str, Domain], stages: list) -> None:
    """Every missing-value condition reads known columns and is boolean; every fault is
    taken by a stage of this world (a model-ready table that has the feature); the column
    of the returns is a new one."""
    r = faults.reactivations
    if r is not None:                          # (the churn stage's own columns: its parser says so)
        others = [s.name for s in stages if r.column in s.writes() and s.roles().get("returned") != r.column] + \
            [f"{s.name}.id.column" for s in stages if s.entity is not None and s.entity.column == r.column]
        if others:
            p.add(f"{r.path}.column", f"must name a new partners column, {r.column!r} is already one "
                  f"({', '.join(others)} writes it)")
        if r.path not in ctx.claimed:
            p.add(r.path, "no stage of this world dates a churn (churn): nobody can return")
    features = sorted({f for s in stages if s.kind == "projection" for f in s.features})
    for m in faults.missing:
        if m.where is not None:
            _expression(p, f"{m.path}.where", m.where, "bool", known)
        if m.path not in ctx.claimed:
            p.add(m.path, f"{m.column!r} is not a feature of a model-ready table of this world (features.columns)"
                  + did_you_mean(m.column, features))
    for o in faults.outages:
        if o.where is not None:
            _expression(p, f"{o.path}.where", o.where, "bool", known)
        if ctx.timeline is not None and o.start >= ctx.timeline.as_of:
            p.add(f"{o.path}.start", f"{o.start} is on or after as_of {np.datetime64(ctx.timeline.as_of, 'D')}, "
                  f"where every history ends: the outage would lose no row")
    for f in faults.of_histories:              # (a world without histories, activity=none, has no rows to spoil)
        if f.path not in ctx.claimed and ctx.histories is not None:
            p.add(f"{f.path}.history" if isinstance(f, fault_spec.Outage) else f.path,
                  f"{f.history!r} is not a history of this world (activity.histories: {', '.join(ctx.histories)})"
                  + did_you_mean(f.history, ctx.histories))


def load_spec(cfg: DictConfig | Mapping) -> WorldSpec:
    """Validate the composed config and return the typed spec, or raise ConfigError."""
    raw = _raw(cfg)
    p = Problems()
    n = _int(p, "n_partners", raw.get("n_partners"), 1)
    seed = _int(p, "seed", raw.get("seed"), 0)
    as_of = _as_of(p, raw.get("as_of"))
    check_keys(p, "", {k: raw[k] for k in WORLD_SHAPE if k in raw}, WORLD_SHAPE)
    tl = section(p, "timeline", raw.get("timeline"), "episodes, episode_days, snapshots and burn_in")
    episodes = _int(p, "timeline.episodes", tl.get("episodes", 3), 1)
    episode_days = _int(p, "timeline.episode_days", tl.get("episode_days", 30), 1)
    snapshots = _int(p, "timeline.snapshots", tl.get("snapshots", 1), 1)
    burn_in = _int(p, "timeline.burn_in", tl.get("burn_in", 0), 0)
    timeline = _timeline(p, as_of, episodes, episode_days, snapshots, burn_in)
    values = _value_groups(raw)
    groups = _stage_groups(p, raw, values)
    shocks = shock_spec.parse(p, raw.get("shocks"), timeline)
    faults = fault_spec.parse(p, raw.get("faults"))
    ctx = ParseContext(n, {}, timeline, shocks=shocks, faults=faults, values=values)
    for group, kind, c in groups:              # columns stages own outright, known to every parser
        ctx.domains.update(kind.owns(group, c))
    # the entity stage (the partners table) first, so that the others see its columns
    order = [g for g, _, _ in groups]
    groups.sort(key=lambda g: not getattr(g[1], "defines_entity", False))
    stages = []
    for group, kind, c in groups:
        stage = kind.parse(p, group, c, ctx)
        if stage is None:                      # reported; don't cascade into its readers
            continue
        if stage.entity is not None:
            ctx.domains[stage.entity.column] = Domain("str")
        ctx.domains.update({k: v for k, v in stage.writes().items() if k not in ctx.domains})
        stages.append(stage)
    stages.sort(key=lambda s: order.index(s.name))
    _undeclared_names(ctx, stages)
    if timeline is not None:
        _earliest_date(p, timeline, stages)
    ctx.names.check(p)
    entities = [s for s in stages if s.entity is not None]
    if len(entities) != 1 and not p.items:
        p.add("config", f"needs exactly one stage that defines the partners table "
              f"({', '.join(k for k, v in STAGE_KINDS.items() if getattr(v, 'defines_entity', False))}), "
              f"got {len(entities)}")
    known = ctx.domains
    # (a shock's condition and amounts are read by the stages they act on: an unknown name in
    # them is reported once, at the shock's own path, by _shocks)
    shocked = shock_spec.reads([(s, e) for s in shocks for e in s.effects])
    for stage in stages:
        for path, names in stage.reads():
            for name in sorted(names - set(known) - shocked):
                p.add(path, f"unknown column {name!r}" + did_you_mean(name, known))
        stage.check(p, known)
        for path, expr, expected in stage.expressions():
            exprtypes.check(p, path, expr, expected, known)
    _shocks(p, shocks, ctx, known)
    _faults(p, faults, ctx, known, stages)
    golden_cfg = raw.get("golden") or {}
    records = golden_records.parse(p, golden_cfg, n, entities[0].entity, known) if entities else []
    candidates = _int(p, "golden.candidates", golden_cfg.get("candidates", 512), 1)
    out = raw.get("output") or {}
    formats = out.get("formats") or []
    if any(f not in FORMATS for f in formats) or not formats:
        p.add("output.formats", f"must be a non-empty list of {', '.join(FORMATS)}, got {formats!r}")
    db = _db(p, raw.get("db"))
    report = _flag(p, "output.report", out.get("report"), True)
    executor = _executor(p, raw.get("executor"))
    block_size = _int(p, "block_size", raw.get("block_size", WorldSpec.block_size), 1024)
    if records and block_size is not None and max(r.row for r in records) >= block_size:
        p.add("block_size", f"must hold the golden records (rows up to {max(r.row for r in records) + 1}), "
              f"got {block_size}")
    p.raise_if_any()
    return WorldSpec(n, seed, as_of, tuple(stages), tuple(records), candidates, tuple(formats),
                     out.get("dir"), db, report, raw, timeline, executor, block_size, shocks=shocks, faults=faults)
