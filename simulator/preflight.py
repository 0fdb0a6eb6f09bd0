"""Read every config file before Hydra does, so a YAML mistake is one clear line.

Hydra reports a YAML syntax error or a duplicated key in a config file with a long
traceback, the file and line only at its end. This check parses every ``*.yaml`` under
the directories a run will search (the package's ``conf/``, ``--config-dir``, and
``hydra.searchpath`` entries on the command line) and reports each problem as
``FILE, line L: what``; the CLI exits 2 without starting the run.

Reading is bounded, because these files come from anywhere a command line points, and
Hydra reads the same files afterwards without limits: a FIFO or a device (a link to
``/dev/zero``) would block or fill memory, a YAML "billion laughs" alias bomb expands to
more values than memory holds when Hydra copies it into an OmegaConf tree, and deep nesting
overflows the recursive composer. So each file must be a regular file of at most
:data:`MAX_BYTES`, nested at most :data:`MAX_DEPTH` deep, holding at most
:data:`MAX_NODES` nodes once its aliases are expanded; the count is made on the parser's
event stream (iterative, linear in the file's size), before anything is composed.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

# 25x the largest file in conf/ (activity/histories.yaml, 10 KB). PyYAML's pure-Python
# loader, which Hydra uses, reads about 0.1 MB/s on a busy 2-core machine: a file at the
# limit still composes in seconds, and the limit is checked before reading (fstat)
MAX_BYTES = 256 * 1024
# 25x the nodes of every file in conf/ together (1,866 keys, values and collections): an
# alias bomb of a few hundred bytes is past it within five levels of nine aliases
MAX_NODES = 50_000
# 5x the deepest file in conf/ (6 levels); PyYAML's composer and OmegaConf recurse per level
MAX_DEPTH = 32
# directories walked under one search directory: a config tree has tens; this stops
# --config-dir / from walking a whole file system (symlinked directories are followed, as
# Hydra follows them, each real directory once)
MAX_DIRS = 1_000

_KINDS = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
          stat.S_ISSOCK: "a socket", stat.S_ISDIR: "a directory"}


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):   # (libyaml's parser: 5x faster)
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


def config_files(root: Path) -> tuple[list[Path], str | None]:
    """Every ``*.yaml`` under ``root``, sorted, following symlinked directories (as Hydra
    does) once each; and a problem line if the tree has more than :data:`MAX_DIRS`
    directories (then the files found so far)."""
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    todo = [root]
    while todo:
        directory = todo.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(directory))
        except OSError:
            continue                           # unreadable: Hydra cannot read it either
        if len(seen) > MAX_DIRS:
            return sorted(found), (f"{root}: more than {MAX_DIRS:,} directories under this config directory; "
                                   f"point --config-dir or hydra.searchpath at a config tree")
        for entry in entries:
            if entry.name.endswith(".yaml"):
                found.append(Path(entry.path))
            elif entry.is_dir():               # follows a symlink, as Hydra does
                todo.append(Path(entry.path))
    return sorted(found), None


def read_bounded(path: Path) -> str:
    """The text of a config file that is a regular file of at most :data:`MAX_BYTES`;
    ValueError naming what it is otherwise. Opened without blocking and checked on the open
    descriptor, so a FIFO or a device is never read (and cannot be swapped in meanwhile)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        for test, kind in _KINDS.items():
            if test(info.st_mode):
                raise ValueError(f"is {kind}, not a regular file; a config file must be one")
        if info.st_size > MAX_BYTES:
            raise ValueError(f"is {info.st_size:,} bytes, over the {MAX_BYTES // 1024} KiB limit for a config file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_BYTES + 1)      # a file that grew since fstat is still bounded
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise ValueError(f"grew over the {MAX_BYTES // 1024} KiB limit for a config file while it was read")
    return data.decode("utf-8")


def size_problem(text: str) -> str | None:
    """What makes this YAML too large once composed, or None: nesting deeper than
    :data:`MAX_DEPTH`, or more than :data:`MAX_NODES` nodes with every alias expanded.

    Made on the event stream, so that nothing is composed and nothing recurses: each
    anchored node's expanded size and depth are remembered when it ends, and an alias adds
    them where it appears (a bomb's sizes multiply level by level, and are refused at the
    level that passes the limit, not after expanding it)."""
    parser = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
    anchors: dict[str, tuple[int, int]] = {}   # anchor -> (nodes, depth) of the node it names
    stack: list[list] = []                     # open collections: [anchor, nodes, deepest below]
    total = deepest = 0
    aliases = False
    events = yaml.parse(text, Loader=parser)
    while True:
        try:
            event = next(events)
        except StopIteration:
            return None
        except yaml.YAMLError as exc:          # a syntax error: the strict loader words it, with its line;
            if "nesting depth" in str(exc):    # but libyaml from PyYAML 6.0.4 refuses deep flows itself,
                return f"nests deeper than {MAX_DEPTH} levels, the limit for a config file"   # before their events
            return None
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            stack.append([event.anchor, 1, 0])
            if len(stack) > MAX_DEPTH:
                return f"nests deeper than {MAX_DEPTH} levels, the limit for a config file"
            continue
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, nodes, below = stack.pop()
            size, depth = nodes, below + 1
            if anchor:
                anchors[anchor] = (size, depth)
        elif isinstance(event, yaml.ScalarEvent):
            size, depth = 1, 0
            if event.anchor:
                anchors[event.anchor] = (size, depth)
        elif isinstance(event, yaml.AliasEvent):
            aliases = True
            size, depth = anchors.get(event.anchor, (1, 0))   # an unknown anchor: the loader says so
        else:
            continue
        if stack:
            stack[-1][1] += size
            stack[-1][2] = max(stack[-1][2], depth)
        else:
            total += size
        deepest = max(deepest, len(stack) + depth)
        if deepest > MAX_DEPTH:
            return f"nests deeper than {MAX_DEPTH} levels once its aliases are expanded, the limit for a config file"
        if total + sum(frame[1] for frame in stack) > MAX_NODES:
            if aliases:
                return (f"its aliases expand it past {MAX_NODES:,} nodes (keys, values and collections), "
                        f"the limit for a config file: an alias bomb?")
            return f"holds more than {MAX_NODES:,} nodes (keys, values and collections), the limit for a config file"


@dataclass(frozen=True)
class Scan:
    """What reading the config files found: their problems (``FILE, line L, column C:
    message``, or ``FILE: what`` for one that is not a bounded regular file), and the files
    that may set ``hydra.mode``."""

    problems: list[str]
    mode_files: list[Path]


def yaml_problems(dirs: list[Path]) -> list[str]:
    """The problems of :func:`scan`."""
    return scan(dirs).problems


def scan(dirs: list[Path]) -> Scan:
    """Every config file under ``dirs`` read, bounded and parsed (see the module docstring)."""
    out, modes = [], []
    for d in dirs:
        paths, too_many = config_files(d)
        out += [too_many] if too_many else []
        for path in paths:
            try:
                text = read_bounded(path)
                problem = size_problem(text)
                if problem is not None:
                    out.append(f"{path}: {problem}")
                    continue
                if _may_set_mode(path.relative_to(d), text, yaml.load(text, Loader=_StrictLoader)):
                    modes.append(path)
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                what = " ".join(x for x in (exc.context, exc.problem) if x)
                out.append(f"{path}{where}: {what}")
            except ValueError as exc:          # read_bounded's refusals, and UnicodeDecodeError
                out.append(f"{path}: {exc}")
            except (yaml.YAMLError, OSError) as exc:
                out.append(f"{path}: {exc}")
    return Scan(out, modes)


PACKAGE = re.compile(r"^#\s*@package\s+(\S+)", re.M)


def _may_set_mode(relative: Path, text: str, data: object) -> bool:
    """Whether a config file may set ``hydra.mode``, erring towards yes: a ``hydra`` mapping
    with a ``mode`` key, or a top-level ``mode`` in a file of Hydra's own config (under a
    ``hydra/`` group or in a ``hydra`` package)."""
    if not isinstance(data, dict):
        return False
    if isinstance(data.get("hydra"), dict) and "mode" in data["hydra"]:
        return True
    package = PACKAGE.search(text)
    return "mode" in data and ("hydra" in relative.parts or (package is not None and "hydra" in package.group(1)))


# command-line arguments that may change Hydra's mode, or where its config comes from
_MODE_ARGS = re.compile(r"^[+~]*hydra(\.mode|/|=)|^--?c(onfig-(path|name)|p|n)\b|^--config-(path|name)=")


def command_line_decides_mode(argv: list[str], found: Scan) -> bool:
    """Whether Hydra's mode is the command line's own (``-m``: a multirun, else one run):
    no config file that :func:`scan` read may set ``hydra.mode``, no argument sets it or
    selects Hydra's config or another primary config, and every search path is a
    directory that was read (``file://``). Then Hydra's composing the whole config only to
    read ``hydra.mode`` (``Hydra.get_mode``) can be skipped."""
    if found.mode_files:
        return False
    for arg in argv:
        if _MODE_ARGS.search(arg):
            return False
        if arg.startswith("hydra.searchpath=") and re.search(r"\w+://", arg.replace("file://", "")):
            return False
    return True


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
