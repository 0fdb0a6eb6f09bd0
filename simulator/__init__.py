"""A declarative simulator of an affiliate partner programme with known ground truth.

Library use::

    from simulator import compose, generate
    tables = generate(compose(["n_partners=2000", "region_mix=brazil_heavy"]))
    tables["partners"], tables["network_relationships"]
"""
from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig


def compose(overrides: Sequence[str] = (), config_dir: str | None = None) -> DictConfig:
    """Compose the world's config with Hydra (as the CLI would), without running it."""
    from hydra import compose as _compose, initialize_config_dir
    from .__main__ import conf_dir

    with initialize_config_dir(config_dir=config_dir or conf_dir(), version_base="1.3"):
        return _compose("config", overrides=list(overrides))


def generate(cfg: DictConfig):
    """Every table of the composed world as a dict of validated DataFrames."""
    from .run import generate as _generate

    return _generate(cfg)


__all__ = ["compose", "generate"]
