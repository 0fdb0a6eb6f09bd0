"""Config -> typed, validated spec. The only module that reads the Hydra config.

``load_spec(cfg)`` converts the composed config once into frozen dataclasses and checks
its meaning (samplers and parameters, weights, expressions and the columns they name,
golden records), collecting every problem with its config path before raising one
:class:`~simulator.errors.ConfigError`. Stages never see a ``DictConfig``.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError, Problems, did_you_mean
from .checks import FORMATS, _int
from .columns import _columns
from .model import Domain, IdSpec, WorldSpec, _stage_domains
from .activity import _activity, _engineered
from .stages import _churn, _db, _golden, _interventions, _network, _scenarios


def _names_only(c: Mapping) -> SimpleNamespace:
    """The column names a stage writes, from its raw config, when the stage itself failed
    validation (so that its problem is reported once, not again by every reader)."""
    date, feats = c.get("churn_date") or {}, c.get("features") or {}
    return SimpleNamespace(label=str(c.get("label", "churn_label")),
                           probability=str(c.get("probability", "churn_probability")),
                           date_column=str(date.get("column", "churned_at")),
                           health=str(feats.get("health", "subnetwork_avg_health_score")),
                           recent_churn=str(feats.get("recent_churn", "subnetwork_recent_churn_count")))


def load_spec(cfg: DictConfig | Mapping) -> WorldSpec:
    """Validate the composed config and return the typed spec, or raise ConfigError."""
    try:
        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    except OmegaConfBaseException as exc:
        raise ConfigError([f"{getattr(exc, 'full_key', '') or 'config'}: {exc.msg if hasattr(exc, 'msg') else exc}"]) from None
    raw.pop("hydra", None)
    p = Problems()
    n = _int(p, "n_partners", raw.get("n_partners"), 1)
    seed = _int(p, "seed", raw.get("seed"), 0)
    try:
        as_of = np.datetime64(str(raw.get("as_of")), "us")
        if np.isnat(as_of):
            raise ValueError
    except ValueError:
        p.add("as_of", f"must be a date like 2026-01-01, got {raw.get('as_of')!r}")
        as_of = None
    pop = raw.get("population") or {}
    ids = pop.get("id") or {}
    id_spec = IdSpec(str(ids.get("column", "partner_id")), str(ids.get("prefix", "P")),
                     _int(p, "population.id.width", ids.get("width", 5), 1) or 5)

    churn = _churn(p, raw.get("churn") or {})
    network = _network(p, raw.get("network") or {})
    scenarios = _scenarios(p, raw.get("scenarios") or {})
    reserved = {id_spec.column: Domain("str")}
    reserved.update(_stage_domains(churn or _names_only(raw.get("churn") or {}),
                                   network or _names_only(raw.get("network") or {}), scenarios))
    columns, declared = _columns(p, pop.get("columns"), reserved)

    known = {**declared, **{c.name: c.domain for c in columns}}
    activity = _activity(p, raw.get("activity"), known, n)
    reads = [(c.path, c.reads) for c in columns]
    if activity is not None:
        reads += [(h.path, h.reads) for h in activity.histories]
        known.update({f.name: f.column.domain for f in activity.features if f.name not in known})
        # features of a history that failed validation: reported there, not again by their readers
        known.update({str(name): Domain("any") for name in (raw["activity"].get("features") or {})
                      if str(name) not in known})
    reads += [(r.path, r.expr.names) for r in (churn.rules if churn else ())]
    reads += [(r.path, r.expr.names) for r in scenarios.rules]
    interventions = _interventions(p, raw.get("interventions"))
    if interventions is not None:
        reads += [(r.path, r.expr.names) for rows in interventions.effects.values()
                  for r in rows if r.expr is not None]
    for path, names in reads:
        for name in sorted(names - set(known)):
            p.add(path, f"unknown column {name!r}" + did_you_mean(name, known))
    for path, col in (("churn.churn_date.not_before", churn.not_before if churn else None),
                      ("network.not_before", network.not_before if network else None)):
        if col is not None and known.get(col, Domain("")).dtype not in ("datetime", "any"):
            p.add(path, f"must name a date column (e.g. created_at), got {col!r}")
    if network is not None and known.get(network.masters, Domain("")).dtype not in ("bool", "any"):
        p.add("network.masters", f"must name a boolean column, got {network.masters!r}")
    engineered = _engineered(p, raw.get("features"), known)
    golden_cfg = raw.get("golden") or {}
    golden = _golden(p, golden_cfg, n, id_spec, known)
    candidates = _int(p, "golden.candidates", golden_cfg.get("candidates", 512), 1)

    out = raw.get("output") or {}
    formats = out.get("formats") or []
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        p.add("output.formats", f"must be a non-empty list of {', '.join(FORMATS)}, got {formats!r}")
    db = _db(p, raw.get("db"))
    p.raise_if_any()
    return WorldSpec(n, seed, as_of, id_spec, tuple(columns), churn, network, scenarios,
                     tuple(golden), candidates, interventions, tuple(formats), out.get("dir"), db,
                     bool(out.get("report", True)), raw, activity, engineered)
