"""A declarative simulator of an affiliate partner programme with known ground truth.

Library use::

    from simulator import compose, generate
    tables = generate(compose(["n_partners=2000", "region_mix=brazil_heavy"]))
    tables["partners"], tables["network_relationships"]
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig


def compose(overrides: Sequence[str] = (), config_dir: str | None = None,
            user_conf: str | None = None) -> DictConfig:
    """Compose the world's config with Hydra (as the CLI would), without running it.

    ``user_conf``: a directory of your own groups and options (a region mix, an experiment,
    a stage) added on top of ours, like ``hydra.searchpath=[file://DIR]`` on the command
    line. ``config_dir`` instead *replaces* the primary config directory: it must hold a
    ``config.yaml`` of its own (``defaults: [...]`` naming every group)."""
    from hydra import compose as _compose, initialize_config_dir
    from .__main__ import conf_dir

    extra = [f"hydra.searchpath=[file://{Path(user_conf).resolve()}]"] if user_conf else []
    with initialize_config_dir(config_dir=config_dir or conf_dir(), version_base="1.3"):
        return _compose("config", overrides=[*extra, *overrides])


def generate(cfg: DictConfig):
    """Every table of the composed world as a dict of validated DataFrames."""
    from .run import generate as _generate

    return _generate(cfg)


__all__ = ["compose", "generate"]
