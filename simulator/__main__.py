"""``python -m simulator [overrides]``: generate the configured world into the run directory.

A bad config or override is refused before any generation with a message naming the
config path (exit status 2); a table that fails its schema stops the run before anything
is published (3); a database that refuses the load leaves the files complete (4); a full
disk, a quota or a file-size limit stops it with nothing of the run published (5). Ctrl-C
(130) and SIGTERM (143) stop the workers and publish nothing; after the publication switch
they exit 0, because the run is published.

In a multirun (``-m``) each job's refusal or failure is recorded and the sweep goes on;
it exits with the highest failed job's status (see simulator.sweep). Every line this
process prints, Hydra's ``--cfg`` output included, has its URL passwords hidden
(see simulator.secrets).
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import threads
from .errors import ConfigError, did_you_mean
from .helppage import register as register_help
from .secrets import mask_log_records, mask_streams

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
    bookkeeping = {".hydra", ".lock", "__main__.log", "simulator.log"}
    if out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= bookkeeping:
        shutil.rmtree(out_dir, ignore_errors=True)


TERMINAL_FALLBACK = (100, 24)                  # columns, lines of a terminal that reports no size


def _terminal_size(stream) -> tuple[int, int]:
    """(columns, lines) of the terminal ``stream`` writes to: COLUMNS and LINES first (as
    ``shutil.get_terminal_size``, which asks stdout, not the bar's stderr), then the
    terminal's own answer; a size it does not report (no answer, or 0) is the fallback."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        size = os.terminal_size((0, 0))
    out = []
    for env, reported, fallback in zip(("COLUMNS", "LINES"), size, TERMINAL_FALLBACK):
        given = os.environ.get(env, "")
        out.append(int(given) if given.isdigit() and int(given) > 0 else reported if reported > 0 else fallback)
    return out[0], out[1]


class _progress:
    """A tqdm bar on a terminal: the partners generated (rows done, rows/s, ETA), then the
    stages after them; silent when stderr is not a TTY (logs, CI, pipes). Used as
    ``with _progress() as tick: tick("generate", done, total)``; ``listener(stage)`` is
    also told each stage (whether the run got past its publication switch)."""

    def __init__(self, listener: Callable[[str], None] | None = None):
        self.listener = listener

    def __enter__(self):
        from tqdm import tqdm

        # Both sizes given: tqdm asks the terminal itself only for what is not, and takes a
        # terminal of 0 x 0 (a bare pty) for 0 columns and -1 rows, where it draws nothing.
        columns, lines = _terminal_size(sys.stderr)
        self.bar = tqdm(total=0, desc="world", unit=" partners", unit_scale=True, leave=False,
                        disable=not sys.stderr.isatty(), ncols=columns, nrows=lines)
        return self

    def __call__(self, stage: str, done: int = 0, total: int = 0) -> None:
        if self.listener is not None:
            self.listener(stage)
        if total and self.bar.total != total:
            self.bar.reset(total=total)
        self.bar.set_description(stage, refresh=False)
        if done:
            self.bar.update(done - self.bar.n)
        else:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()

    def __exit__(self, *exc) -> None:
        self.bar.close()


def _job_record(cfg: DictConfig) -> dict[str, str]:
    """What Hydra would save in ``.hydra/`` (config.yaml, hydra.yaml, overrides.yaml), passwords
    hidden, for the run to publish with its tables: Hydra's own saving is off
    (``hydra.output_subdir: null`` in config.yaml), because it writes into the run directory
    before the run starts, so a refused, killed or interrupted run would replace the
    published run's config."""
    from omegaconf import OmegaConf

    from .secrets import mask

    hydra_cfg = HydraConfig.get()
    texts = {"config.yaml": OmegaConf.to_yaml(cfg),
             "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(hydra_cfg)})),
             # (the overrides as typed: an interpolation in one is resolved by the config, not here)
             "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(
                 OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)))}
    return {f"{RECORD}/{name}": mask(text) for name, text in texts.items()}


RECORD = ".hydra"                              # where a run's config is published (Hydra's name for it)


FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}     # a full disk, a file-size limit, a quota


class Terminated(KeyboardInterrupt):
    """SIGTERM as an exception in the main thread. A KeyboardInterrupt, so that it unwinds
    through every cleanup a Ctrl-C does (workers terminated, the LocalCluster closed, the
    staging removed, the load rolled back); only its line and exit status differ."""


EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM    # the shell's 130 and 143
_stopping = False                              # set by the first SIGINT or SIGTERM


def _on_signal(signum: int, frame: object) -> None:
    """The first SIGINT or SIGTERM raises in the main thread; later ones are ignored, so that
    a second Ctrl-C cannot cut the cleanup short and leave workers or a staging behind (the
    cleanup is bounded: workers are terminated, not waited for)."""
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@dataclass
class _Publication:
    """Whether this run's publication switch has happened, for the line an interrupt prints.

    ``run`` reports ``published`` right after the switch. The switch can also come and the
    interrupt land before that report (``publish`` removes older runs after it), so the
    ``.current`` link is also compared with what it was when the run began (read at the
    run's first report, when it holds the directory's lock: no other run can switch it)."""

    out_dir: Path
    loads: bool                                # a database load follows the switch
    before: str | None = None
    began: bool = False
    switched: bool = False

    def _current(self) -> str | None:
        from .sinks.publication import CURRENT

        try:
            return os.readlink(self.out_dir / CURRENT)
        except OSError:
            return None

    def seen(self, stage: str) -> None:
        """Told every progress report of the run."""
        if not self.began:
            self.began, self.before = True, self._current()
        if stage == "published":
            self.switched = True

    def published(self) -> bool:
        current = self._current()
        return self.switched or (self.began and current is not None and current != self.before)


_publication: _Publication | None = None       # the run in progress, once _main knows its directory


def _exit_interrupted(exc: KeyboardInterrupt) -> None:
    """One line for a Ctrl-C or SIGTERM, and its exit status: 130 or 143 if nothing of the run
    was published, 0 once the switch has published it (README: "When things go wrong")."""
    from .sinks.publication import CURRENT

    what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    status = EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT
    from .sweep import stopped

    if stopped() is not None:                  # between a sweep's jobs: the sweep stops, its summary says where
        print(f"{what} between the sweep's jobs: those before were published, no later one ran", file=sys.stderr)
        sys.exit(status)
    state = _publication
    if state is not None and state.published():
        load = "; its database load may not be committed (manifest.json then says 'pending')" if state.loads else ""
        print(f"{what} after publication: this run is published in {state.out_dir} and its files are "
              f"complete{load}", file=sys.stderr)
        sys.exit(0)
    if state is None:
        print(f"{what} before the run started: nothing was generated or published", file=sys.stderr)
    else:
        kept = " (its previous complete run is kept)" if (state.out_dir / CURRENT).exists() else ""
        print(f"{what}: nothing of this run was published in {state.out_dir}{kept}", file=sys.stderr)
    sys.exit(status)


def _free(out_dir: Path) -> str:
    """Free space where the run writes, for the error line."""
    try:
        return f"{shutil.disk_usage(out_dir).free / 2**20:,.0f} MiB free there"
    except OSError:
        return "free space unknown"


register_help(conf_dir())                       # the --help page's settings, from conf/config.yaml


@hydra.main(config_path=conf_dir(), config_name="config", version_base="1.3")
def _main(cfg: DictConfig) -> None:
    if HydraConfig.get().mode == RunMode.MULTIRUN:     # one job of a sweep: its failure is recorded
        from .sweep import run_job                     # and the sweep goes on (see simulator.sweep)

        run_job(_run, cfg)
    else:
        _run(cfg)


def _run(cfg: DictConfig) -> None:
    from .run import run                       # heavy imports after Hydra parsed the CLI
    from .schemas import ValidationError
    from .sinks import NONE, SinkError
    from .sinks.publication import RunDirInUse

    global _publication
    hydra_cfg = HydraConfig.get()
    out_dir = Path(cfg.output.dir or hydra_cfg.runtime.output_dir)
    _publication = publication = _Publication(out_dir, loads=cfg.db.kind != NONE)
    with _progress(publication.seen) as tick:
        try:
            report = run(cfg, out_dir, progress=tick, record=_job_record(cfg))
        except RunDirInUse as exc:
            tick.close()
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except ConfigError as exc:
            tick.close()
            print(exc.render(), file=sys.stderr)
            _forget_run_dir(out_dir)
            sys.exit(2)
        except ValidationError as exc:
            tick.close()
            print(str(exc), file=sys.stderr)
            sys.exit(3)
        except SinkError as exc:
            tick.close()
            print(f"error: {exc}\n(the files in {out_dir} are complete and valid)", file=sys.stderr)
            sys.exit(4)
        except KeyboardInterrupt as exc:       # Ctrl-C, or SIGTERM (Terminated)
            tick.close()
            _exit_interrupted(exc)
        except OSError as exc:
            if exc.errno not in FULL:
                raise
            tick.close()
            print(f"error: {exc.strerror} while writing {exc.filename or out_dir} ({_free(out_dir)}); "
                  f"nothing of this run was published", file=sys.stderr)
            sys.exit(5)
    counts = ", ".join(f"{rows:,} {name}" for name, rows in report.rows.items())
    names = ", ".join([p.name for paths in report.files.values() for p in paths] + report.outputs)
    loaded = f"\n  loaded into {report.database}" if report.database else ""
    print(f"wrote {counts} to {out_dir}\n  files: {names}, manifest.json{loaded}\n  "
          + ", ".join(f"{k} {v:.2f}s" for k, v in report.seconds.items()))
    if report.misses:                          # declared but not met: one line, every miss named
        print(f"{len(report.misses)} declared target{'s' if len(report.misses) > 1 else ''} missed "
              f"(stats.json, report.html): {', '.join(report.misses)}")


def main() -> None:
    mask_streams()                             # first: every line this process prints (secrets.py)
    threads.few_arenas()                       # before any thread: the run's memory (threads.py)
    # then: a SIGTERM at any moment is a Terminated, handled like a Ctrl-C
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        _checked_main()
    except KeyboardInterrupt as exc:           # one that landed outside the run: before it, or after its switch
        _exit_interrupted(exc)


def _compose_once() -> None:
    """Hydra composes the whole config twice per run: once only to read ``hydra.mode``
    (``Hydra.get_mode``; about 0.9 s of a 5 s default run, as it composes for a multirun),
    then for the run. Where nothing the run reads sets ``hydra.mode``
    (``preflight.command_line_decides_mode``), that first compose finds None, from which
    Hydra takes the command line's mode (``-m``: a multirun); so it answers None at once. A
    Hydra without the method (its internals moved) composes twice, as before."""
    from hydra._internal.hydra import Hydra

    if callable(getattr(Hydra, "get_mode", None)):
        Hydra.get_mode = lambda self, config_name, overrides: None


def _config_errors_are_bad_input() -> None:
    """Hydra reports a config it cannot compose (an override of a key that does not exist,
    a group option that does not) as it reports a crash, with exit code 1. Those are bad
    input: the same message, a close key where there is one, and exit code 2. A Hydra
    without these internals (moved) reports them itself, as before."""
    try:
        from hydra._internal import utils
        from hydra.errors import CompactHydraException
    except ImportError:
        return
    report = getattr(utils, "run_and_report", None)
    if not callable(report):
        return

    def run_and_report(func):
        def composed():
            try:
                return func()
            except CompactHydraException as exc:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                cause, override = exc.__cause__, getattr(exc, "override", None)
                text = (f"{override}: " if override else "") + str(exc) + (f"\n{cause}" if cause is not None else "")
                parent, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
                if isinstance(parent, DictConfig) and key is not None and "not in struct" in str(cause) \
                        and len(parent):               # (an interpolated node, ${calendar}, has no keys here)
                    text += "\n" + did_you_mean(str(key), [str(k) for k in parent.keys()]).strip()
                print(text, file=sys.stderr)
                sys.exit(2)
        return report(composed)

    utils.run_and_report = run_and_report


def _checked_main() -> None:
    """The pre-checks of the command line's config files and run directory, then Hydra."""
    mask_log_records()                         # before Hydra logs the overrides of a sweep
    _config_errors_are_bad_input()
    from .preflight import command_line_decides_mode, run_dir_problem, scan, search_dirs

    found = scan(search_dirs(sys.argv[1:], conf_dir()))
    problems = found.problems + [p for p in [run_dir_problem(sys.argv[1:])] if p]
    if problems:                               # before Hydra's traceback would show them
        print(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} before the run:\n"
              + "\n".join(f"  {i}. {text}" for i, text in enumerate(problems, 1)), file=sys.stderr)
        sys.exit(2)
    if command_line_decides_mode(sys.argv[1:], found):
        _compose_once()
    try:
        _main()
    except ValueError as exc:                  # Hydra's own check of its flags (e.g. -m with --cfg),
        if os.environ.get("HYDRA_FULL_ERROR") == "1":   # raised outside its error reporting
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    from .sweep import exit_status

    if exit_status():                          # a multirun with a failed job (a single run exits itself)
        sys.exit(exit_status())


if __name__ == "__main__":
    main()
