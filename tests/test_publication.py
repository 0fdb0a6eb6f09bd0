"""All or nothing: a run directory shows the previous complete run or the new complete
run whenever the process is killed, and a full disk stops a run with nothing published."""
from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

ARGS = ["n_partners=3000", "db=sqlite"]


def _start(out: Path, *overrides: str, preexec=None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "simulator", f"hydra.run.dir={out}", *ARGS, *overrides],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=preexec, text=True)


def _published(out: Path) -> dict | None:
    """The visible run: its manifest, after checking that every file it lists is there,
    resolves into the same run directory and has the listed bytes."""
    manifest = out / "manifest.json"
    if not manifest.exists():
        return None
    m = json.loads(manifest.read_text())
    run = (out / ".current").resolve()
    for table in m["tables"].values():
        for name, facts in table["files"].items():
            path = out / name
            assert path.resolve().parent == run, name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == facts["sha256"], name
    visible = {p.name for p in out.iterdir() if p.is_symlink() and not p.name.startswith(".")}
    listed = {n for t in m["tables"].values() for n in t["files"]} | set(m["outputs"]) | {"manifest.json"}
    assert visible <= listed, visible - listed          # no file of another run beside them
    config = (out / ".hydra" / "config.yaml").read_text()   # the config of these tables, published with them
    assert (out / ".hydra" / "config.yaml").resolve().parent.parent == run and f"seed: {m['seed']}\n" in config
    return m


@pytest.mark.slow
def test_a_killed_run_leaves_the_previous_run_or_the_new_one(tmp_path):
    """SIGKILL at six moments spread over a run (generation, file writing, publication, the
    SQLite load) and once as soon as its staging directory appears (a loaded machine may
    reach none of the six there): afterwards the directory holds one complete run, the one
    before (the other seed) or the new one, and the next run cleans up what the killed one
    left."""
    out = tmp_path / "run"
    run_cli(*ARGS, "seed=1", out_dir=out)
    current, seen = 1, set()

    def staging(proc: subprocess.Popen) -> None:       # until it writes (its own, not one a killed run left)
        deadline = time.monotonic() + 120                 #   or at most two minutes
        while proc.poll() is None and not any(out.glob(f".partial-{proc.pid}-*")) and time.monotonic() < deadline:
            time.sleep(0.005)
    for delay in (0.6, 1.8, 2.8, 3.6, 4.4, 5.4, staging):
        new = 3 - current
        proc = _start(out, f"seed={new}")
        delay(proc) if callable(delay) else time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = _published(out)
        assert state is not None and state["seed"] in (current, new), delay
        seen.add("kept" if state["seed"] == current else "new")
        if any(out.glob(".partial-*")):
            seen.add("staging")
        current = state["seed"]
    assert {"kept", "staging"} <= seen, seen            # killed before and while writing
    # (on this machine the later delays also reach past the switch: "new", killed in the load)
    run_cli(*ARGS, f"seed={3 - current}", out_dir=out)  # the next run completes and cleans up
    assert _published(out)["seed"] == 3 - current
    assert not any(out.glob(".partial-*")) and len(list((out / ".runs").iterdir())) == 1


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_exit_5_and_nothing_published(tmp_path):
    """A file-size limit (RLIMIT_FSIZE, as a full disk or a quota would) met while writing:
    one line naming what could not be written, exit 5, the previous run still published."""
    out = tmp_path / "run"
    run_cli(*ARGS, "seed=1", out_dir=out)
    before = _published(out)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    proc = _start(out, "seed=2", preexec=limit)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 5, err
    assert "File too large" in err and "nothing of this run was published" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _published(out) == before
    assert not any(out.glob(".partial-*"))


def test_a_world_that_cannot_fit_the_disk_is_refused_up_front(tmp_path):
    """The disk estimate (simulator/resources.py) against the free space of the output
    directory: twice the size that fits is refused with exit 2 before any generation."""
    import shutil

    from simulator import compose
    from simulator.load import load_spec
    from simulator.resources import disk_estimate

    per_partner = disk_estimate(load_spec(compose(["n_partners=1000"]))) / 1000
    n = int(2 * shutil.disk_usage(tmp_path).free / per_partner)
    proc = run_cli(f"n_partners={n}", out_dir=tmp_path / "run", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "GiB free; at most about" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "partners.csv").exists()


# The run, its "load" stage made 30 s long: an interrupt then lands after the switch.
AFTER_SWITCH = """
import sys, time
import simulator.__main__ as cli

shown = cli._progress.__call__

def slow(self, stage, done=0, total=0):
    shown(self, stage, done, total)
    if stage == "load":
        time.sleep(30)

cli._progress.__call__ = slow
sys.argv[0] = "simulator"
cli.main()
"""


def test_ctrl_c_after_the_switch_exits_0_and_says_the_run_is_published(tmp_path):
    """A Ctrl-C that lands after the publication switch (here, in the database load): the
    run is published, so exit 0, not 130 (which says nothing was published), with one line
    saying so; the directory shows the new run, complete."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", AFTER_SWITCH, f"hydra.run.dir={out}", *ARGS,
                             "n_partners=1000", "seed=2", "output.report=false"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / ".current").is_symlink():
        time.sleep(0.05)
    time.sleep(0.5)                            # into the 30 s load
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted after publication: this run is published in {out} and its files are complete; "
        f"its database load may not be committed (manifest.json then says 'pending')")
    assert "Traceback" not in err
    state = _published(out)
    assert state["seed"] == 2 and state["database"].get("pending") is True


def test_an_interrupt_knows_a_switch_that_came_before_run_could_report_it(tmp_path):
    """publish() removes older runs after switching .current, before run() reports
    "published": an interrupt there is after publication too (exit 0), as .current moved
    since the run began; before any switch, SIGTERM is 143 and Ctrl-C 130."""
    import simulator.__main__ as cli

    out = tmp_path / "run"
    out.mkdir()
    (out / ".current").symlink_to(".runs/1-old")
    state = cli._Publication(out, loads=False)
    state.seen("generate")                     # the run's first report: .current as it began
    assert not state.published()
    for exc, status in ((cli.Terminated(), 143), (KeyboardInterrupt(), 130)):
        cli._publication = state
        with pytest.raises(SystemExit) as exit_:
            cli._exit_interrupted(exc)
        assert exit_.value.code == status
    (out / ".current").unlink()
    (out / ".current").symlink_to(".runs/2-new")          # the switch
    assert state.published()
    cli._publication = state
    with pytest.raises(SystemExit) as exit_:
        cli._exit_interrupted(cli.Terminated())
    assert exit_.value.code == 0
    cli._publication = None


def test_stats_json_is_strict_json(tmp_path):
    """A figure that is not a finite number (undefined for its inputs) is written as null,
    so every JSON reader takes stats.json (Python's writer would give NaN and Infinity)."""
    from simulator.sinks.publication import write_json

    write_json({"a": float("nan"), "b": [1.5, float("inf")], "c": {"d": -float("inf"), "e": "x"}}, tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": {"d": None, "e": "x"}}
