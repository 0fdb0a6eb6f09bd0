"""The run directory: one run at a time, staged, then published whole by one switch.

A run's files (tables, stats.json, report.html, manifest.json and its ``.hydra/`` config)
are written into a hidden staging directory beside the destination. When every one is
complete the staging directory becomes ``.runs/<run>`` and the run is published by
switching one symlink, ``.current``, to it with ``os.replace`` (atomic): each visible name
is a link ``<name> -> .current/<name>``, so the directory shows the previous complete run
or the new complete run, never a mix, whenever the process is killed. Links to names the
new run does not write dangle after the switch and are removed, as are older runs'
directories and the staging a killed run left.

One run writes into a directory at a time: :func:`lock` holds an advisory lock on the
directory (``flock``, which the kernel releases when the process dies, so the lock of a
killed run is taken over by the next one without a word), and a second run is refused at
once with the holder's process, from ``<dir>/.lock``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
LOCK = ".lock"            # who holds the run directory's lock (while a run is in progress)


class RunDirInUse(Exception):
    """Another live run is writing into the run directory."""


@contextlib.contextmanager
def lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s lock while the body runs; :class:`RunDirInUse` at once if another
    live process holds it. The lock is an ``flock`` on the directory itself (the kernel
    drops it with its process); ``.lock`` only says who holds it, for the message."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = (out_dir / LOCK).read_text(errors="replace").strip()
            except OSError:
                holder = ""
            raise RunDirInUse(f"{out_dir} is in use by another run ({holder or 'another process'}); wait for it "
                              f"to finish or choose another directory with hydra.run.dir=DIR") from None
        write_text(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n",
                   out_dir / LOCK)
        try:
            yield
        finally:
            (out_dir / LOCK).unlink(missing_ok=True)
    finally:
        os.close(fd)                           # releases the lock


class Staging:
    """A run's hidden staging directory beside ``out_dir``: files are written into ``dir``,
    then published together (:meth:`publish`) or discarded."""

    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(out_dir)
        self.out_dir = out_dir
        self.dir = Path(tempfile.mkdtemp(prefix=f".partial-{os.getpid()}-", dir=out_dir))

    def publish(self, keep: frozenset[str] = frozenset()) -> Path:
        """Publish the staged run (see the module docstring); the run's own directory."""
        return publish(self.out_dir, self.dir, keep)

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


RUNS = ".runs"            # one directory per complete run
CURRENT = ".current"      # the published run: a symlink switched atomically


def publish(out_dir: Path, staging: Path, keep: frozenset[str] = frozenset()) -> Path:
    """Make the complete run in ``staging`` the directory's run in one atomic step (see the
    module docstring); returns the run's own directory."""
    legacy = _legacy_files(out_dir)              # read before the switch hides it
    runs = out_dir / RUNS
    runs.mkdir(exist_ok=True)
    run = runs / staging.name.removeprefix(".partial-")
    os.replace(staging, run)
    names = sorted(p.name for p in run.iterdir())
    for name in names:                         # stable links; they resolve through .current
        link = out_dir / name
        if link.is_dir() and not link.is_symlink():    # a .hydra/ Hydra wrote before runs staged it
            shutil.rmtree(link)
        if not (link.is_symlink() and os.readlink(link) == f"{CURRENT}/{name}"):
            _atomic_symlink(f"{CURRENT}/{name}", link)
    _atomic_symlink(f"{RUNS}/{run.name}", out_dir / CURRENT)     # the switch
    for link in out_dir.iterdir():             # names this run does not write
        if link.is_symlink() and os.readlink(link).startswith(f"{CURRENT}/") and not link.exists():
            link.unlink(missing_ok=True)
    for old in runs.iterdir():
        if old != run:
            shutil.rmtree(old, ignore_errors=True)
    for name in legacy - set(names) - keep:    # a run written before the switch existed
        (out_dir / name).unlink(missing_ok=True)
    return run


def run_dir(out_dir: Path) -> Path:
    """The published run's own directory (where its files really are)."""
    return (out_dir / CURRENT).resolve()


def _atomic_symlink(target: str, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.link-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _legacy_files(out_dir: Path) -> set[str]:
    """Regular files (not links) the previous run listed in its manifest: its database
    file, or every file of a run written in place before the switch existed."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return set()
    try:
        previous = json.loads(manifest.read_text())
        old = {name for table in previous["tables"].values() for name in table.get("files", {})}
        old |= set(previous.get("outputs", []))
    except (ValueError, KeyError, TypeError, AttributeError):
        old = set()
    return {name for name in old | {MANIFEST} if "/" not in name and (out_dir / name).is_file()
            and not (out_dir / name).is_symlink()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                   # someone else's live process
        return True
    return True


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Remove the staging directories (``.partial-<pid>-*``) that killed runs left in
    ``out_dir``: those whose process is gone, or that carry no pid (older versions), and
    their half-made links."""
    removed = []
    for path in out_dir.glob(".partial-*"):
        pid = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if path.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for path in out_dir.glob(".*.link-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_symlink() and not (pid.isdigit() and _alive(int(pid))):
            path.unlink(missing_ok=True)
    return removed


def write_text(text: str, path: Path) -> None:
    """Atomically write ``text`` (temporary name, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)                      # mkstemp makes it private; outputs are not
    os.replace(tmp, path)


def write_json(data: Mapping, path: Path) -> None:
    """Atomically write ``data`` as pretty, strict JSON (a figure that is not a finite number,
    undefined for its inputs, is null)."""
    write_text(json.dumps(_finite(data), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n", path)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
