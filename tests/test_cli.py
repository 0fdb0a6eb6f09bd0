"""The command line through real subprocesses: outputs, refusals, exit codes."""
from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time

import pandas as pd
import pytest

from conftest import ROOT, run_cli

TABLE_FILES = {"partners.csv", "partners.parquet", "network_relationships.csv", "interventions.csv",
               "interventions.parquet", "uplift_truth.csv", "uplift_truth.parquet",
               "network_relationships.parquet", "manifest.json"}


def test_default_run_writes_tables_and_manifest(default_run):
    files = {p.name for p in default_run.dir.iterdir()}
    assert TABLE_FILES <= files
    assert not [f for f in files if f.startswith(".partial")]
    manifest = json.loads((default_run.dir / "manifest.json").read_text())
    assert manifest["seed"] == 42 and manifest["n_partners"] == 10000
    assert manifest["tables"]["partners"]["rows"] == 10000
    assert set(manifest["tables"]["partners"]["files"]) == {"partners.csv", "partners.parquet"}
    assert len(manifest["config_sha256"]) == 64
    assert manifest["versions"]["numpy"]


def test_formats_override_and_output_message(tmp_path):
    proc = run_cli("n_partners=1000", "output.formats=[parquet]", out_dir=tmp_path)
    assert "wrote 1,000 partners" in proc.stdout and str(tmp_path) in proc.stdout
    assert not list(tmp_path.glob("*.csv")) and (tmp_path / "partners.parquet").exists()


@pytest.mark.parametrize("override, fragment", [
    ("n_partners=abc", "n_partners: must be a whole number >= 1, got 'abc'"),
    ("n_partners=-5", "n_partners: must be a whole number >= 1, got -5"),
    ("region_mix=nope", "Could not find 'region_mix/nope'"),
    ("n_partnerz=5", "did you mean 'n_partners'?"),                # (Hydra's own refusals: exit 2 as well)
    ("churn.target_rat=0.3", "did you mean 'target_rate'?"),
    ("n_partners=[1,", "n_partners=[1,: no viable alternative"),
    ("population.columns.tenure_drawn.dist=expo", "unknown sampler 'expo'"),
    ("population.columns.tenure_drawn.scale=-3", "must be a number > 0"),
    ("region_mix.weights.Brazil=0.5", "weights sum to 1.333"),
    ("population.columns.is_master_affiliate.p=1.5", "must be a probability in [0, 1]"),
    ("churn.rules.silence.when='days_since_last_interactoin > 10'",
     "did you mean 'days_since_last_interaction'"),
    ("churn.rules.silence.when='__import__(\"os\").system(\"touch pwned\")'", "is not allowed"),
    ("golden.records.P00001.tier=Diamond", "must be one of Bronze, Silver, Gold, Platinum"),
    # an interpolation that does not resolve (once a traceback while the run recorded its overrides)
    ("features.derived.tier_proximity_score=${population.columns.nope}",
     "features.derived.tier_proximity_score: Interpolation key 'population.columns.nope' not found"),
    ("seed=${oops:1}", "seed: Unsupported interpolation type oops"),
])
def test_bad_override_is_refused_before_generation(tmp_path, override, fragment):
    out = tmp_path / "run"
    proc = run_cli("n_partners=1500", override, out_dir=out, check=False)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    written = {p.name for p in out.iterdir()} if out.exists() else set()
    assert not written & TABLE_FILES
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_rerun_into_the_same_directory_leaves_no_stale_files(tmp_path):
    run_cli("n_partners=1200", out_dir=tmp_path)
    run_cli("n_partners=1000", "output.formats=[parquet]", out_dir=tmp_path)
    assert not list(tmp_path.glob("*.csv"))
    assert pd.read_parquet(tmp_path / "partners.parquet").shape[0] == 1000
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["tables"]["partners"]["files"]) == {"partners.parquet"}


def test_rerun_removes_the_earlier_report_and_database(tmp_path):
    run_cli("n_partners=1200", out_dir=tmp_path)
    assert (tmp_path / "report.html").exists() and (tmp_path / "world.sqlite").exists()
    run_cli("n_partners=1000", "db=none", "output.report=false", out_dir=tmp_path)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "world.sqlite").exists()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["outputs"] == ["stats.json"]


def _run_on_a_bare_pty(*args: str, timeout: float = 120) -> tuple[int, bytes]:
    """``python -m simulator ARGS`` with stdin, stdout and stderr on a new pseudo-terminal
    of 0 x 0 (what a bare pty reports), COLUMNS and LINES unset; (exit status, all it wrote)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "simulator", *args], cwd=ROOT, env=env, stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1.0)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:                # EIO: every holder of the terminal has closed it
                    break
                if not data:
                    break
                out += data
        return proc.wait(timeout=max(1.0, deadline - time.monotonic())), out
    finally:
        proc.kill()
        os.close(master)


def test_progress_is_shown_on_a_terminal_that_reports_no_size(tmp_path):
    """On a terminal that reports 0 columns and 0 rows, the progress bar is drawn (at the
    fallback width) and the run succeeds. tqdm, left to ask the terminal, takes it for -1 rows
    and draws nothing at all."""
    status, out = _run_on_a_bare_pty(f"hydra.run.dir={tmp_path}", "n_partners=1500", "db=none",
                                      "output.report=false")
    text = out.decode("utf-8", "replace")
    assert status == 0, text
    assert "wrote 1,500 partners" in text
    frames = [f for f in text.split("\r") if "partners/s" in f]
    assert frames, f"no progress bar drawn:\n{text}"
    assert any("world" in f for f in frames) and all(len(f) <= 100 for f in frames)


def test_a_run_names_its_missed_targets_in_one_line(tmp_path):
    """Declared but not met is said at the end of the run: one line naming every target
    stats.json marks missed (two class means declared far from anything the world does),
    and no such line when nothing is missed."""
    import json

    out = tmp_path / "wrong"
    proc = run_cli("features.class_means.login_trend_30d.churned=-0.9", "features.class_means.revenue_velocity.stayed=90",
                   "n_partners=3000", "db=none", "output.report=false", out_dir=out)
    missed = [t["target"] for t in json.loads((out / "stats.json").read_text())["targets"] if t["miss"]]
    assert missed
    lines = [line for line in proc.stdout.splitlines() if "declared target" in line]
    assert lines == [f"{len(missed)} declared target{'s' if len(missed) > 1 else ''} missed "
                     f"(stats.json, report.html): {', '.join(missed)}"]
    calm = run_cli("n_partners=3000", "db=none", "output.report=false", out_dir=tmp_path / "calm")
    calm_missed = [t for t in json.loads((tmp_path / "calm" / "stats.json").read_text())["targets"] if t["miss"]]
    assert ("declared target" in calm.stdout) == bool(calm_missed)
