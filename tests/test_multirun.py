"""A multirun completes: a failing job is recorded in the summary, later jobs still run,
and the sweep's exit status says that a job failed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from simulator.sweep import RECORDS, exit_status, summarize


def _simulator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_refused_job_does_not_stop_the_sweep(tmp_path):
    """The first job's value is refused by load_spec (exit 2 in a single run); the second
    job still runs, and the summary names the refused job's config path."""
    proc = _simulator("-m", "churn.target_rate=1.5,0.2", "n_partners=1000", "output.report=false", "db=none",
                      f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr
    assert "churn.target_rate" in proc.stderr and "Traceback" not in proc.stderr
    summary = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert summary[["job", "status", "exit_status"]].values.tolist() == [[0, "failed", 2], [1, "ok", 0]]
    assert summary.loc[0, "reason"].startswith("churn.target_rate: ")
    assert (tmp_path / "1" / "stats.json").is_file() and summary.loc[1, "churn_rate"] > 0
    assert "1 of 2 jobs failed" in proc.stdout


def test_cfg_with_a_multirun_is_refused_in_one_line(tmp_path):
    proc = _simulator("-m", "seed=1,2", "--cfg", "job")
    assert proc.returncode == 2 and proc.stderr.startswith("error: Only one of"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_summary_lists_every_job_even_one_that_left_no_record(tmp_path):
    """Three jobs: one succeeded, one refused (its directory removed), one killed (a
    directory, no record); the sweep's exit status is the highest failed one."""
    (tmp_path / RECORDS).mkdir()
    ok = tmp_path / "0"
    ok.mkdir()
    (ok / "stats.json").write_text(json.dumps({"seed": 1, "n_partners": 10, "realized": {"churn_rate": 0.2},
                                               "misses": 0, "targets": []}))
    for num, status, why in [(0, 0, ""), (1, 4, "cannot connect to PostgreSQL at h:1, database d as a: refused")]:
        (tmp_path / RECORDS / f"{num}.json").write_text(json.dumps(
            {"job": num, "dir": str(tmp_path / str(num)), "status": status, "reason": why, "overrides": f"seed={num}"}))
    (tmp_path / "2" / ".hydra").mkdir(parents=True)
    (tmp_path / "2" / ".hydra" / "overrides.yaml").write_text("- seed=2\n")
    table = summarize(tmp_path)
    assert table[["job", "overrides", "status"]].values.tolist() == [
        [0, "seed=0", "ok"], [1, "seed=1", "failed"], [2, "seed=2", "failed"]]
    assert table["reason"].tolist()[1:] == ["cannot connect to PostgreSQL at h:1, database d as a: refused",
                                            "no outcome recorded (killed?)"]
    assert exit_status() == 4
    assert (tmp_path / "sweep_summary.md").read_text().startswith("| job | overrides | status | exit_status | reason |")


def test_nested_and_list_figures_become_one_cell_each(tmp_path):
    """stats.json's realized figures nest (a calendar's per history, a shock's list of
    snapshots, as experiment=payment_crisis writes): each leaf is a column of its own, a
    list its JSON text, and both summary files are written (a list once stopped the
    Markdown table, and with it the summary of `-m 'experiment=glob(*)'`)."""
    (tmp_path / RECORDS).mkdir()
    (tmp_path / "0").mkdir()
    realized = {"churn_rate": 0.2, "calendar": {"logins": {"weekday_ratio": 1.7}},
                "shocks": {"first": "2025-06-01", "snapshots": [{"date": "2025-05-06", "rate": 0.21}]}}
    (tmp_path / "0" / "stats.json").write_text(json.dumps({"seed": 1, "n_partners": 10, "realized": realized,
                                                           "misses": 0, "targets": []}))
    (tmp_path / RECORDS / "0.json").write_text(json.dumps(
        {"job": 0, "dir": str(tmp_path / "0"), "status": 0, "reason": "", "overrides": "experiment=payment_crisis"}))
    table = summarize(tmp_path)
    assert table.loc[0, "calendar.logins.weekday_ratio"] == 1.7 and table.loc[0, "shocks.first"] == "2025-06-01"
    assert json.loads(table.loc[0, "shocks.snapshots"]) == realized["shocks"]["snapshots"]
    markdown = (tmp_path / "sweep_summary.md").read_text()
    assert "calendar.logins.weekday_ratio" in markdown and "{'" not in markdown
    assert pd.read_csv(tmp_path / "sweep_summary.csv").loc[0, "calendar.logins.weekday_ratio"] == 1.7


def test_an_interrupted_sweep_is_summarized_as_it_stands(tmp_path, capsys):
    """Ctrl-C between jobs (or in one) stops the sweep: the summary lists the job that
    finished and the one that never recorded an outcome, and says where it is."""
    import simulator.sweep as sweep

    (tmp_path / RECORDS).mkdir()
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "stats.json").write_text(json.dumps({"seed": 1, "n_partners": 10, "realized": {},
                                                           "misses": 0, "targets": []}))
    (tmp_path / RECORDS / "0.json").write_text(json.dumps(
        {"job": 0, "dir": str(tmp_path / "0"), "status": 0, "reason": "", "overrides": "seed=1"}))
    (tmp_path / "1").mkdir()                                   # started, interrupted before its run
    sweep._running = tmp_path
    assert sweep.stopped() == tmp_path and sweep.stopped() is None     # (once)
    table = pd.read_csv(tmp_path / "sweep_summary.csv")
    assert table[["job", "status"]].values.tolist() == [[0, "ok"], [1, "failed"]]
    assert f"the sweep stopped: {tmp_path / 'sweep_summary.csv'} lists its jobs so far" in capsys.readouterr().err


def test_evaluations_summarized_over_a_sweep(tmp_path, capsys):
    """evaluate --summarize SWEEP_DIR: each figure's mean, SE (sd / sqrt(jobs)) and job count
    over the jobs' evaluation.json, equal to the figures recomputed from the two files;
    a sweep with no graded job, or a broken evaluation.json, exits 2 naming it."""
    from simulator.evaluate import main

    proc = _simulator("-m", "seed=1,2", "n_partners=1500", "output.report=false", "db=none",
                      f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert main(["--summarize", str(tmp_path)]) == 2
    assert f"--summarize {tmp_path}: no job holds evaluation.json" in capsys.readouterr().err
    for job in ("0", "1"):
        truth = pd.read_parquet(tmp_path / job / "uplift_truth.parquet")
        preds = tmp_path / f"p{job}.csv"
        pd.DataFrame({"partner_id": truth["partner_id"], "recommended_intervention": "email",
                      "uplift_score": truth["effect_none"] - truth["effect_email"],
                      "churn_probability": truth["base_churn_probability"]}).to_csv(preds, index=False)
        assert main([str(tmp_path / job), "--predictions", str(preds)]) == 0
    capsys.readouterr()
    assert main(["--summarize", str(tmp_path), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    a, b = (json.loads((tmp_path / job / "evaluation.json").read_text()) for job in ("0", "1"))
    for name, x, y in (("churn_model.auc", a["churn_model"]["auc"], b["churn_model"]["auc"]),
                       ("policies.submitted.expected_churners", a["policies"][0]["expected_churners"],
                        b["policies"][0]["expected_churners"]),
                       ("uplift_model.qini", a["uplift_model"]["qini"], b["uplift_model"]["qini"])):
        row = summary["figures"][name]
        assert row["jobs"] == 2 and row["mean"] == (x + y) / 2 and abs(row["se"] - abs(x - y) / 2) < 1e-12, name
    assert (tmp_path / "evaluation_summary.md").read_text().startswith("# Evaluations over 2 jobs")
    (tmp_path / "1" / "evaluation.json").write_text("{not json")
    assert main(["--summarize", str(tmp_path)]) == 2
    assert f"{tmp_path / '1' / 'evaluation.json'}: not an evaluation" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["a config file", "an override"])
def test_hydra_mode_set_in_a_config_or_an_override_still_makes_a_multirun(tmp_path, where):
    """The CLI skips Hydra's compose that only reads hydra.mode when nothing the run reads
    sets it (preflight.command_line_decides_mode): a user's experiment that sets it, or an
    override, still makes a sweep without -m."""
    conf = tmp_path / "my_conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "sweep.yaml").write_text("# @package _global_\nhydra:\n  mode: MULTIRUN\n  sweeper:\n"
                                     "    params:\n      seed: 1,2\n")
    chosen = ([f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "experiment=sweep"] if where == "a config file"
              else ["hydra.mode=MULTIRUN", "seed=1,2"])
    proc = _simulator(*chosen, "n_partners=1500", "output.report=false", "db=none", "activity=none",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 0, proc.stderr
    seeds = [json.loads((tmp_path / "sweep" / job / "manifest.json").read_text())["seed"] for job in ("0", "1")]
    assert seeds == [1, 2]


def test_only_the_command_line_decides_the_mode_when_nothing_else_may():
    from simulator.__main__ import conf_dir
    from simulator.preflight import command_line_decides_mode, scan, search_dirs

    found = scan(search_dirs([], conf_dir()))
    assert found.problems == [] and found.mode_files == []       # the packaged config sets no hydra.mode
    assert command_line_decides_mode([], found) and command_line_decides_mode(["-m", "seed=1,2"], found)
    for arg in ("hydra.mode=MULTIRUN", "+hydra.mode=RUN", "hydra/launcher=joblib", "-cn", "--config-path=x",
                "hydra.searchpath=[pkg://elsewhere]"):
        assert not command_line_decides_mode([arg], found), arg
