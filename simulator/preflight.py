"""Read every config file before Hydra does, so a YAML mistake is one clear line.

Hydra reports a YAML syntax error or a duplicated key in a config file with a long
traceback, the file and line only at its end. This check parses every ``*.yaml`` under
the directories a run will search (the package's ``conf/``, ``--config-dir``, and
``hydra.searchpath`` entries on the command line) and reports each problem as
``FILE, line L: what``; the CLI exits 2 without starting the run.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import yaml


class _StrictLoader(yaml.SafeLoader):
    """A loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict[object, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (first on line {first})", key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def search_dirs(argv: list[str], conf: str) -> list[Path]:
    """The config directories a run with these command-line arguments reads."""
    dirs = [Path(conf)]
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(Path(argv[i + 1]))
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
        elif arg.startswith("hydra.searchpath="):
            dirs += [Path(m) for m in re.findall(r"file://([^,\]\s'\"]+)", arg)]
    return [d for d in dirs if d.is_dir()]


def yaml_problems(dirs: list[Path]) -> list[str]:
    """``FILE, line L, column C: message`` for every config file that does not parse."""
    out = []
    for d in dirs:
        for path in sorted(d.rglob("*.yaml")):
            try:
                yaml.load(path.read_text(), Loader=_StrictLoader)
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                what = " ".join(x for x in (exc.context, exc.problem) if x)
                out.append(f"{path}{where}: {what}")
            except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
                out.append(f"{path}: {exc}")
    return out


def run_dir_problem(argv: list[str]) -> str | None:
    """Hydra creates ``hydra.run.dir`` before the run starts: say so plainly when it cannot."""
    for arg in argv:
        if arg.startswith("hydra.run.dir="):
            target = Path(arg.split("=", 1)[1])
            probe = target
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not probe.is_dir() or not os.access(probe, os.W_OK):
                return (f"hydra.run.dir: {target} cannot be created ({probe} is not a writable directory); "
                        f"choose another with hydra.run.dir=DIR")
            try:                               # access() says yes to root even where nothing can be made (/proc)
                os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=probe))
            except OSError as exc:
                return (f"hydra.run.dir: {target} cannot be created ({probe}: {exc.strerror}); "
                        f"choose another with hydra.run.dir=DIR")
    return None
