"""``python -m simulator [overrides]``: generate the configured world into the run directory.

A bad config or override is refused before any generation with a message naming the
config path (exit status 2); a table that fails its schema stops the run before anything
is written (exit status 3).
"""
from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from .errors import ConfigError
from .schemas import ValidationError

log = logging.getLogger("simulator")


def conf_dir() -> str:
    """The packaged config tree: <pkg>/conf in a wheel, <repo>/conf in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"no conf/config.yaml beside {here}")


def _forget_run_dir(out_dir: Path) -> None:
    """After a refused config, remove what Hydra created if that is all the directory holds."""
    bookkeeping = {".hydra", "__main__.log", "simulator.log"}
    if out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= bookkeeping:
        shutil.rmtree(out_dir, ignore_errors=True)


@hydra.main(config_path=conf_dir(), config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    from .run import run                       # heavy imports after Hydra parsed the CLI

    out_dir = Path(cfg.output.dir or HydraConfig.get().runtime.output_dir)
    try:
        report = run(cfg, out_dir)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        _forget_run_dir(out_dir)
        sys.exit(2)
    except ValidationError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(3)
    counts = ", ".join(f"{rows:,} {name}" for name, rows in report.rows.items())
    names = ", ".join(p.name for paths in report.files.values() for p in paths)
    print(f"wrote {counts} to {out_dir}\n  files: {names}, manifest.json\n  "
          + ", ".join(f"{k} {v:.2f}s" for k, v in report.seconds.items()))


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
