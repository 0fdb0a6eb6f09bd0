"""The command line through real subprocesses: outputs, refusals, exit codes."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_cli

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
    ("population.columns.tenure_drawn.dist=expo", "unknown sampler 'expo'"),
    ("population.columns.tenure_drawn.scale=-3", "must be a number > 0"),
    ("region_mix.weights.Brazil=0.5", "weights sum to 1.333"),
    ("population.columns.is_master_affiliate.p=1.5", "must be a probability in [0, 1]"),
    ("churn.rules.silence.when='days_since_last_interactoin > 10'",
     "did you mean 'days_since_last_interaction'"),
    ("churn.rules.silence.when='__import__(\"os\").system(\"touch pwned\")'", "is not allowed"),
    ("golden.records.P00001.tier=Diamond", "must be one of Bronze, Silver, Gold, Platinum"),
])
def test_bad_override_is_refused_before_generation(tmp_path, override, fragment):
    out = tmp_path / "run"
    proc = run_cli("n_partners=1500", override, out_dir=out, check=False)
    assert proc.returncode != 0
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
