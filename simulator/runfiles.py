"""A finished run's files, read back for ``simulator.evaluate`` and ``simulator.diff``.

Both commands trust a run only as far as its ``manifest.json`` vouches for it: every table
they read is checked against the sha256 the manifest recorded, and the saved config against
the manifest's ``config_sha256``, so a truth edited after the run is refused rather than
graded. Every file that cannot be read (missing, empty, not UTF-8, not valid JSON or YAML,
truncated Parquet) is refused as one :class:`~simulator.errors.ConfigError` line naming the
file and, where there is one, the line and column: the commands exit 2, never a traceback.
Their command lines are parsed by :class:`CliParser`, whose errors never echo a password.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ConfigError
from .manifest import config_hash
from .secrets import mask
from .sinks.files import sha256

# read_csv reads every float to its last bit: pandas 3 by default (its float_precision is
# deprecated), pandas 2 with the round-trip converter
EXACT_FLOATS: dict = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}

MANIFEST = "manifest.json"
STATS = "stats.json"
CONFIG = ".hydra/config.yaml"
REGENERATE = "re-run python -m simulator to regenerate the run"


class CliParser(argparse.ArgumentParser):
    """argparse with its errors masked: "unrecognized arguments" and "invalid value" echo
    the command line, which may hold a database URL with its password. Its description and
    epilog are printed as written (plain text, laid out by hand)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {mask(message)}\n")


# What evaluate and diff print: one spelling, `markdown`; `md` is accepted for it.
FORMATS = ("markdown", "json")
FORMAT_ALIASES = {"md": "markdown"}


def add_format_option(ap: argparse.ArgumentParser, markdown: str, json_: str) -> None:
    """``--format {markdown,json}`` (default markdown; ``md`` accepted), described."""
    ap.add_argument("--format", choices=FORMATS, default="markdown", type=lambda s: FORMAT_ALIASES.get(s, s),
                    help=f"what is printed: markdown ({markdown}; the default, also spelled md) or "
                         f"json ({json_})")


def _regular_file(path: Path, what: str) -> None:
    """Refuse what is not a regular file (missing, a directory, a FIFO that would block)."""
    if not path.is_file():
        raise ConfigError([f"{path}: {'not a regular file' if path.exists() else 'no such file'} ({what})"])


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a run's file; empty, binary or non-UTF-8 files refused."""
    _regular_file(path, what)
    data = path.read_bytes()
    if not data.strip():
        raise ConfigError([f"{path}: empty file ({what}; {REGENERATE})"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{path} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                           f"{exc.start}; {what})"]) from None


def read_json(path: Path, what: str) -> Any:
    """A run's JSON file, parsed; a truncated or invalid one refused with its line and column."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path} line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}; "
                           f"{REGENERATE})"]) from None


def read_manifest(run_dir: Path) -> dict:
    """The run's manifest.json, with its ``tables`` mapping checked."""
    path = run_dir / MANIFEST
    if not path.exists():
        raise ConfigError([f"{run_dir}: not a run directory (no {MANIFEST}; run python -m simulator first)"])
    manifest = read_json(path, "the run's manifest")
    if not isinstance(manifest, Mapping) or not isinstance(manifest.get("tables"), Mapping):
        raise ConfigError([f"{path}: no 'tables' object (the manifest of a run lists its tables; {REGENERATE})"])
    bad = [name for name, entry in manifest["tables"].items()
           if not isinstance(entry, Mapping) or not isinstance(entry.get("files"), Mapping)]
    if bad:                    # (a table left out silently would read as a run without it)
        raise ConfigError([f"{path}: tables.{bad[0]} is not a table's entry (an object with its files and rows; "
                           f"{REGENERATE})"])
    return dict(manifest)


def read_config(run_dir: Path):
    """The run's saved config (``.hydra/config.yaml``) as a DictConfig; invalid YAML refused
    with its line and column."""
    import yaml
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = run_dir / CONFIG
    if not path.exists():
        raise ConfigError([f"{run_dir}: not a run directory (no {CONFIG}; run python -m simulator first)"])
    text = read_text(path, "the run's saved config")
    try:
        cfg = OmegaConf.create(text)           # OmegaConf's own (safe) YAML loader, as OmegaConf.load
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}{where}: not valid YAML ({problem}; {REGENERATE})"]) from None
    except (OmegaConfBaseException, ValueError) as exc:
        interrupted(exc)
        raise ConfigError([f"{path}: not a config ({str(exc).splitlines()[0]})"]) from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError([f"{path}: not a config (a YAML mapping of settings and groups; {REGENERATE})"])
    return cfg


def interrupted(exc: BaseException) -> None:
    """Raise the Ctrl-C (or SIGTERM) that ``exc`` was raised while handling, if any: OmegaConf
    wraps what goes wrong as it unwinds from one, which would read as a broken config."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if isinstance(e, KeyboardInterrupt):
            raise e
        if id(e) not in seen:
            seen.add(id(e))
            todo += [c for c in (e.__cause__, e.__context__) if c is not None]


def resolved_config(cfg) -> dict:
    """The config resolved; the database, output and executor groups (which may name an
    environment variable the reader does not have) left unresolved when they cannot be."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        interrupted(exc)
        world = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in ("db", "output", "executor")])
        try:
            out = OmegaConf.to_container(world, resolve=True)
        except OmegaConfBaseException as exc:
            interrupted(exc)
            # the run wrote a config that resolves: one that does not was edited after it
            raise ConfigError([f"{CONFIG}: edited after the run ({getattr(exc, 'full_key', '') or 'config'} "
                               f"cannot be resolved: {getattr(exc, 'msg', exc)}; {REGENERATE})"]) from None
        return {**OmegaConf.to_container(cfg, resolve=False), **out}


def verify_config(run_dir: Path, resolved: Mapping, manifest: Mapping) -> None:
    """Refuse a saved config that no longer matches the manifest's ``config_sha256``."""
    recorded = manifest.get("config_sha256")
    if recorded is not None and config_hash({k: v for k, v in resolved.items() if k != "hydra"}) != recorded:
        raise ConfigError([f"{run_dir / CONFIG}: edited after the run (its resolved config no longer matches "
                           f"{MANIFEST}'s config_sha256; {REGENERATE})"])


def _listed(manifest: Mapping, name: str) -> tuple[str, Mapping] | None:
    """(table, entry) of a file name in the manifest's ``tables.*.files`` (each table's entry
    checked by :func:`read_manifest`)."""
    for table, entry in manifest["tables"].items():
        if isinstance(entry["files"].get(name), Mapping):
            return table, entry["files"][name]
    return None


def verify_file(run_dir: Path, manifest: Mapping, name: str) -> Path:
    """The path of a run's file whose sha256 is the one the manifest recorded."""
    path = run_dir / name
    listed = _listed(manifest, name)
    if listed is None:
        raise ConfigError([f"{path}: not listed in {MANIFEST} (cannot tell whether it was edited after the run)"])
    table, entry = listed
    _regular_file(path, f"the run's {table} table")
    if sha256(path) != entry.get("sha256"):
        raise ConfigError([f"{path}: edited after the run (its sha256 no longer matches {MANIFEST}'s "
                           f"tables.{table}.files; {REGENERATE})"])
    return path


def verify_output(run_dir: Path, manifest: Mapping, name: str) -> Path:
    """The path of a run's review file (stats.json, report.html) whose sha256 is the one the
    manifest recorded in ``output_files`` (runs from before it was recorded: unchecked)."""
    path = run_dir / name
    entry = (manifest.get("output_files") or {}).get(name)
    if isinstance(entry, Mapping) and path.is_file() and sha256(path) != entry.get("sha256"):
        raise ConfigError([f"{path}: edited after the run (its sha256 no longer matches {MANIFEST}'s "
                           f"output_files; {REGENERATE})"])
    return path


def read_table(run_dir: Path, manifest: Mapping, table: str, keys: Collection[str] = ()) -> pd.DataFrame:
    """One of the run's tables (its Parquet file, else its CSV), verified against the manifest.

    ``keys`` (the world's key column): given, identifiers come back as :data:`STRING`: the
    ``keys`` columns from either file (a CSV's ``00042`` stays text, the dictionary of an
    older run's Parquet becomes plain strings), and every other plain-string column of a
    Parquet file (its identifiers; labels are dictionaries there)."""
    files = manifest["tables"].get(table, {}).get("files", {}) if isinstance(manifest["tables"].get(table),
                                                                             Mapping) else {}
    name = next((f"{table}{s}" for s in (".parquet", ".csv") if f"{table}{s}" in files), None)
    if name is None:
        raise ConfigError([f"{run_dir}: no {table}.parquet or {table}.csv in {MANIFEST} (output.formats "
                           f"left the table out?)"])
    path = verify_file(run_dir, manifest, name)
    try:
        if not name.endswith(".parquet"):
            return pd.read_csv(path, dtype=dict.fromkeys(keys, STRING), **EXACT_FLOATS)
        if not keys:
            return pd.read_parquet(path)
        return _identifiers(pq.read_table(path), keys).to_pandas(types_mapper={pa.large_string(): STRING}.get)
    except (OSError, ValueError, pd.errors.ParserError) as exc:      # pyarrow's errors are ValueErrors
        raise ConfigError([f"{path}: cannot be read ({str(exc).splitlines()[0]})"]) from None


STRING = pd.StringDtype("pyarrow")             # the dtype of identifiers read by read_table(keys=...)


def _identifiers(table: pa.Table, keys: Collection[str]) -> pa.Table:
    """The ``keys`` columns and every plain-string column as Arrow large strings, which
    to_pandas maps to STRING without a Python object per row (twice as fast as reading
    objects and converting them)."""
    for i, field in enumerate(table.schema):
        if field.name in keys or pa.types.is_string(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.large_string()))
    return table
