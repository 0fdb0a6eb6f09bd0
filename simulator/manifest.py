"""The run's manifest: what was generated, from what, with which versions."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .sinks.files import sha256
from .spec import WorldSpec

PACKAGES = ("partner-world-simulator", "numpy", "pandas", "pyarrow", "scipy", "pandera",
            "hydra-core", "omegaconf")


def config_hash(resolved: Mapping) -> str:
    """sha256 of the resolved config (output, database and executor excluded: they do not
    change the data, and a database URL may hold a password)."""
    world = {k: v for k, v in resolved.items() if k not in ("output", "db", "executor")}
    return hashlib.sha256(json.dumps(world, sort_keys=True, default=str).encode()).hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def build(spec: WorldSpec, rows: Mapping[str, int], files: Mapping[str, list[Path]],
          facts: Mapping[str, object], outputs: list[Path] = (), final: list[Path] = ()) -> dict:
    """Manifest contents: deterministic for a given config, seed and package versions.
    ``outputs`` are the run's other files (stats, report, database file), listed by name;
    ``final`` those among them whose bytes are final (not a database, which a model's
    predictions change later), hashed like the tables."""
    paths = [p for ps in files.values() for p in ps] + list(final)
    with ThreadPoolExecutor(max_workers=2) as pool:   # hashlib releases the GIL on big reads
        digests = dict(zip(paths, pool.map(sha256, paths)))
    return {
        "seed": spec.seed,
        "n_partners": spec.n,
        "as_of": str(spec.as_of.astype("datetime64[D]")),
        **(spec.timeline.manifest() if spec.timeline else {}),
        "config_sha256": config_hash(spec.resolved),
        "tables": {name: {"rows": rows[name],
                          "files": {p.name: {"sha256": digests[p], "bytes": p.stat().st_size}
                                    for p in files.get(name, [])}}
                   for name in rows},
        "outputs": sorted(p.name for p in outputs),
        "output_files": {p.name: {"sha256": digests[p], "bytes": p.stat().st_size} for p in final},
        "churn_intercept": facts.get("churn_intercept"),
        **({"churn_intercepts": periods} if (periods := {k: v for k, v in facts.items()
                                                         if k.startswith("churn_intercept_")}) else {}),
        "database": facts.get("database"),
        "plan": facts.get("plan"),
        "versions": _versions(),
    }
