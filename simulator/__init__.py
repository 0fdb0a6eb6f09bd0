"""A declarative simulator of an affiliate partner programme with known ground truth.

Library use::

    from simulator import compose, generate, load_run
    tables = generate(compose(["n_partners=2000", "region_mix=brazil_heavy"]))
    tables["partners"], tables["network_relationships"]

    run = load_run("outputs/demo")             # a published run directory, read lazily
    X, y = run.X_y()                           # the 18 features and the churn label
"""
import typing as _typing

if _typing.TYPE_CHECKING:
    from collections.abc import Sequence

    from omegaconf import DictConfig

__all__ = ["compose", "generate", "load_run"]

_LAZY = {"load_run": "library"}               # public name -> its module, imported on first use


def compose(overrides: "Sequence[str]" = (), config_dir: str | None = None,
            user_conf: str | None = None) -> "DictConfig":
    """Compose the world's config with Hydra (as the CLI would), without running it.

    ``user_conf``: a directory of your own groups and options (a region mix, an experiment,
    a stage) added on top of ours, like ``hydra.searchpath=[file://DIR]`` on the command
    line. ``config_dir`` instead *replaces* the primary config directory: it must hold a
    ``config.yaml`` of its own (``defaults: [...]`` naming every group)."""
    from pathlib import Path

    from hydra import compose as _compose, initialize_config_dir
    from .__main__ import conf_dir

    extra = [f"hydra.searchpath=[file://{Path(user_conf).resolve()}]"] if user_conf else []
    with initialize_config_dir(config_dir=config_dir or conf_dir(), version_base="1.3"):
        return _compose("config", overrides=[*extra, *overrides])


def generate(cfg: "DictConfig"):
    """Every table of the composed world as a dict of validated DataFrames."""
    from .run import generate as _generate

    return _generate(cfg)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
