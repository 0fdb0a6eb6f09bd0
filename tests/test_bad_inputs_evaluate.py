"""The catalogue of what ``simulator.evaluate`` and ``simulator.diff`` refuse (issue 22, item 6).

Each row: a malformed input, the exit status (2) and a fragment of the one-line refusal that
names the file and, where there is one, the row or line and the column. Every case also
asserts that nothing was written: the run directory (files, links and the database) is
byte for byte what it was, ``--out`` was not created, and stdout is empty. The cases call
the commands' own ``main`` in process (one run generated for the module); the argparse
cases, whose errors must not echo a password, run the real command in a subprocess.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli

PASSWORD = "hunter2-secret"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """One small world (1,000 partners, SQLite), generated once and copied per case."""
    out = tmp_path_factory.mktemp("bad_inputs_evaluate") / "run"
    run_cli("n_partners=1000", "output.report=false", out_dir=out)
    return out


def snapshot(directory: Path) -> dict[str, str]:
    """Every file (hashed) and link (its target) under ``directory``, hidden ones included."""
    out = {}
    for path in sorted(directory.rglob("*")):
        name = str(path.relative_to(directory))
        if path.is_symlink():
            out[name] = "-> " + os.readlink(path)
        elif path.is_file():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[name] = "dir"
    return out


# ----------------------------------------------------------------------------- inputs

def _frame(run: Path) -> pd.DataFrame:
    """Well-formed predictions for every partner of the cohort."""
    ids = pd.read_parquet(run / "uplift_truth.parquet")["partner_id"]
    return pd.DataFrame({"partner_id": ids, "recommended_intervention": "call", "churn_probability": 0.3,
                         "uplift_score": np.linspace(0, 1, len(ids)), "model_version": "v1"})


def _file(run: Path, tmp: Path, change: Callable[[pd.DataFrame], pd.DataFrame], name: str = "pred.csv") -> Path:
    frame = change(_frame(run))
    path = tmp / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    return path


def _raw(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def _at(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Set one cell (row 1 = the first data row)."""
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row - 1, column] = value
        return frame
    return change


def _copy(run: Path, tmp: Path) -> Path:
    """A copy of the run (links kept) that a case may break."""
    copy = tmp / "run"
    shutil.copytree(run, copy, symlinks=True)
    return copy


def _truncate(path: Path, keep: int = 300) -> None:
    data = path.read_bytes()
    path.unlink()                                 # a link to .current/: write a regular file in its place
    path.write_bytes(data[:keep])


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _edit_truth(run: Path) -> None:
    truth = run / ".current" / "uplift_truth.parquet"
    frame = pd.read_parquet(truth)
    frame["effect_call"] = -0.5                   # the kind of edit that would flatter a model
    frame.to_parquet(truth)


def _insert(run: Path, frame: pd.DataFrame) -> None:
    with sqlite3.connect(run / "world.sqlite") as conn:
        frame.to_sql("predictions", conn, if_exists="append", index=False)


# Each case: id, prepare(run, tmp) -> (run to use, the command's arguments), the refusal's fragment.
# prepare may copy and break the run; the snapshot is taken after it.
def _pred(change, name="pred.csv"):
    return lambda run, tmp: (run, ["--predictions", _file(run, tmp, change, name)])


def _bytes(name, data):
    return lambda run, tmp: (run, ["--predictions", _raw(tmp, name, data)])


def _broken_run(breaks, *extra):
    def prepare(run, tmp):
        copy = _copy(run, tmp)
        breaks(copy)
        return copy, [*extra] or ["--predictions", _file(run, tmp, lambda f: f)]
    return prepare


LATIN1 = "partner_id,recommended_intervention\nP00001,caf\xe9\n".encode("latin-1")
EVALUATE_CASES = [
    ("--ope without a policy", lambda run, tmp: (run, ["--predictions", _file(
        run, tmp, lambda f: f.drop(columns=["recommended_intervention"])), "--ope"]),
     "--ope: the predictions need recommended_intervention (the policy to estimate)"),
    ("zero-byte CSV", _bytes("pred.csv", b""), "pred.csv: empty file"),
    ("binary CSV", _bytes("pred.csv", bytes(range(256)) * 4), "pred.csv: a binary file, not CSV text"),
    ("latin-1 CSV", _bytes("pred.csv", LATIN1), "pred.csv line 2: not UTF-8 text (byte 0xe9"),
    ("truncated Parquet", lambda run, tmp: (run, ["--predictions", _raw(
        tmp, "pred.parquet", _file(run, tmp, lambda f: f, "full.parquet").read_bytes()[:2000])]),
     "pred.parquet: not a readable Parquet file"),
    ("zero-byte Parquet", _bytes("pred.parquet", b""), "pred.parquet: empty file (expected a Parquet table with"),
    ("not a file", lambda run, tmp: (run, ["--predictions", tmp / "missing.csv"]), "missing.csv: no such file"),
    ("NaN probability", _pred(_at("churn_probability", 3, np.nan)),
     "pred.csv row 3, column churn_probability: no value"),
    ("+inf probability", _pred(_at("churn_probability", 1, np.inf)),
     "pred.csv row 1, column churn_probability: inf is not a probability in [0, 1]"),
    ("-inf probability (Parquet)", _pred(lambda f: f.assign(churn_probability=[-np.inf] + [0.3] * (len(f) - 1)),
                                         "pred.parquet"),
     "pred.parquet row 1, column churn_probability: -inf is not a probability in [0, 1]"),
    ("text probability", _pred(_at("churn_probability", 2, "high")),
     "pred.csv row 2, column churn_probability: 'high' is not a probability"),
    ("NaN uplift score", _pred(_at("uplift_score", 2, np.nan)), "pred.csv row 2, column uplift_score: no value"),
    ("+inf uplift score", _pred(_at("uplift_score", 4, np.inf)),
     "pred.csv row 4, column uplift_score: inf is not a finite number"),
    ("-inf uplift score (Parquet)", _pred(lambda f: f.assign(uplift_score=-np.inf), "pred.parquet"),
     "pred.parquet row 1, column uplift_score: -inf is not a finite number"),
    ("empty key", _pred(_at("partner_id", 2, None)), "pred.csv row 2, column partner_id: no value"),
    ("header-only CSV", _pred(lambda f: f.iloc[:0]), "pred.csv: no predictions (no rows"),
    ("header-only Parquet", _pred(lambda f: f.iloc[:0], "pred.parquet"), "pred.parquet: no predictions"),
    ("misspelled column", _pred(lambda f: f.rename(columns={"churn_probability": "churn_probabilty"})),
     "pred.csv, column 'churn_probabilty': unknown column (known: "),
    ("misspelled column: did you mean", _pred(lambda f: f.rename(columns={"uplift_score": "uplift_scor"})),
     "did you mean 'uplift_score'?"),
    ("two model versions", _pred(lambda f: f.assign(model_version=["a"] * 10 + ["b"] * (len(f) - 10))),
     "pred.csv, column model_version: 2 model versions in one call ('a' from row 1, 'b' from row 11)"),
    ("a version and none", _pred(_at("model_version", 5, None)),
     "2 model versions in one call ('v1' from row 1, none from row 5)"),
    ("unreadable predicted_at", _pred(lambda f: f.assign(predicted_at="yesterday")),
     "pred.csv row 1, column predicted_at: 'yesterday' is not a date and time"),
    ("truth edited after the run", _broken_run(_edit_truth),
     "uplift_truth.parquet: edited after the run (its sha256 no longer matches manifest.json's "
     "tables.uplift_truth.files"),
    ("truth deleted", _broken_run(lambda r: (r / ".current" / "uplift_truth.parquet").unlink()),
     "uplift_truth.parquet: no such file"),
    ("partners truncated", _broken_run(lambda r: _truncate(r / "partners.parquet")),
     "partners.parquet: edited after the run"),
    ("config truncated", _broken_run(lambda r: _truncate(r / ".hydra" / "config.yaml", 4000)),
     ".hydra/config.yaml: edited after the run"),           # still YAML, no longer the run's config
    ("config invalid YAML", _broken_run(lambda r: _append(r / ".hydra" / "config.yaml", "  broken: [1,\n")),
     "column 1: not valid YAML (expected the node content"),
    ("config empty", _broken_run(lambda r: (r / ".hydra" / "config.yaml").write_text("")),
     ".hydra/config.yaml: empty file"),
    ("config edited after the run", _broken_run(lambda r: (r / ".hydra" / "config.yaml").write_text(
        (r / ".hydra" / "config.yaml").read_text().replace("seed: 42", "seed: 43"))),
     ".hydra/config.yaml: edited after the run (its resolved config no longer matches manifest.json's config_sha256"),
    ("manifest truncated", _broken_run(lambda r: _truncate(r / "manifest.json")), "manifest.json line"),
    ("world.sqlite deleted", _broken_run(lambda r: (r / "world.sqlite").unlink(), "--from-db"),
     "world.sqlite: no such database"),
    ("world.sqlite deleted, --record", _broken_run(lambda r: (r / "world.sqlite").unlink(), "--from-db", "--record"),
     "world.sqlite: no such database"),
    ("empty predictions table", _broken_run(lambda r: None, "--from-db"),
     "world.sqlite table predictions: no predictions"),
    ("empty predictions table, --record", _broken_run(lambda r: None, "--from-db", "--record"),
     "world.sqlite table predictions: no predictions"),
    ("two versions in the table", _broken_run(lambda r: _insert(r, _frame(r).assign(
        model_version=["a"] * 3 + ["b"] * (len(_frame(r)) - 3))), "--from-db"),
     "world.sqlite table predictions, column model_version: 2 model versions in one call"),
    ("NaN in the table", _broken_run(lambda r: _insert(r, _at("uplift_score", 2, np.nan)(_frame(r))), "--from-db"),
     "world.sqlite table predictions row 2, column uplift_score: no value"),
]


def _out_cases():
    """--out that cannot be written: checked before anything is computed."""
    def a_file(run, tmp):
        (tmp / "taken").write_text("not a directory\n")
        return run, ["--predictions", _file(run, tmp, lambda f: f), "--out", tmp / "taken"]

    def under_a_file(run, tmp):
        (tmp / "taken").write_text("not a directory\n")
        return run, ["--predictions", _file(run, tmp, lambda f: f), "--out", tmp / "taken" / "ev"]

    def broken_outcomes(run, tmp):                 # --record reads the outcomes already in --out
        (tmp / "ev").mkdir()
        _raw(tmp / "ev", "predictions_outcomes.csv", LATIN1)
        return run, ["--predictions", _file(run, tmp, lambda f: f), "--out", tmp / "ev", "--record"]

    return [("--out is a file", a_file, "--out " ),
            ("--out under a file", under_a_file, "cannot write there"),
            ("--out holds a broken outcomes file", broken_outcomes, "predictions_outcomes.csv line 2: not UTF-8 text")]


@pytest.mark.parametrize("prepare, fragment", [pytest.param(p, f, id=i) for i, p, f in EVALUATE_CASES + _out_cases()])
def test_evaluate_refuses(world, tmp_path, capsys, prepare, fragment):
    from simulator.evaluate import main

    run, args = prepare(world, tmp_path)
    args = [str(a) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    before, outside = snapshot(run), snapshot(tmp_path)
    assert main([str(run), *args]) == 2
    printed, err = capsys.readouterr()
    assert fragment in err, err
    assert "Traceback" not in err and len(err.splitlines()) <= 8, err
    assert snapshot(run) == before and snapshot(tmp_path) == outside, "a refusal wrote something"
    assert printed == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("budget", ["nan", "inf", "-inf", "-1", "0", "1e400", "lots"])
def test_evaluate_refuses_a_budget_that_is_not_a_finite_positive_number(world, tmp_path, capsys, budget):
    from simulator.evaluate import main

    before = snapshot(world)
    with pytest.raises(SystemExit) as exit_:
        main([str(world), "--predictions", str(_file(world, tmp_path, lambda f: f)), f"--budget={budget}",
              "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert f"argument --budget: must be a finite number above 0 (the most the interventions may cost), " \
           f"got {budget!r}" in capsys.readouterr().err
    assert snapshot(world) == before and not (tmp_path / "out").exists()


def test_a_deleted_database_is_not_created(world, tmp_path):
    """SQLite is opened read-only (never mode=rwc): no empty world.sqlite appears."""
    from simulator.evaluate import main

    run = _copy(world, tmp_path)
    (run / "world.sqlite").unlink()
    for extra in ([], ["--record"]):
        assert main([str(run), "--from-db", *extra, "--out", str(tmp_path / "out")]) == 2
        assert not (run / "world.sqlite").exists()


# ----------------------------------------------------------------------------- diff

def _diff_broken(breaks):
    def prepare(run, tmp):
        copy = _copy(run, tmp)
        breaks(copy)
        return copy
    return prepare


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


DIFF_CASES = [
    ("stats.json truncated", _diff_broken(lambda r: _truncate(r / "stats.json")),
     "stats.json line 14, column 9: not valid JSON"),
    ("stats.json empty", _diff_broken(lambda r: _rewrite(r / "stats.json", b"")), "stats.json: empty file"),
    ("stats.json latin-1", _diff_broken(lambda r: _rewrite(r / "stats.json", '{"x": "caf\xe9"}'.encode("latin-1"))),
     "stats.json line 1: not UTF-8 text"),
    ("stats.json without targets", _diff_broken(lambda r: _rewrite(r / "stats.json", b'{"realized": {}}')),
     "stats.json: no 'targets' (a list), 'columns' (an object)"),
    ("stats.json not an object", _diff_broken(lambda r: _rewrite(r / "stats.json", b"[1, 2]")),
     "stats.json: no 'targets' (a list)"),
    ("stats.json edited after the run", _diff_broken(lambda r: _rewrite(r / "stats.json", (r / "stats.json").read_bytes()
                                                                        .replace(b'"seed": 42', b'"seed": 43'))),
     "stats.json: edited after the run (its sha256 no longer matches manifest.json's output_files"),
    ("config truncated", _diff_broken(lambda r: _truncate(r / ".hydra" / "config.yaml", 4000)),
     ".hydra/config.yaml: edited after the run"),           # still YAML, no longer the run's config
    ("config invalid YAML", _diff_broken(lambda r: _append(r / ".hydra" / "config.yaml", "  broken: [1,\n")),
     "column 1: not valid YAML (expected the node content"),
    ("config not a mapping", _diff_broken(lambda r: (r / ".hydra" / "config.yaml").write_text("- 1\n- 2\n")),
     ".hydra/config.yaml: not a config"),
    ("config edited after the run", _diff_broken(lambda r: (r / ".hydra" / "config.yaml").write_text(
        (r / ".hydra" / "config.yaml").read_text().replace("seed: 42", "seed: 7"))),
     ".hydra/config.yaml: edited after the run"),
    ("manifest truncated", _diff_broken(lambda r: _truncate(r / "manifest.json")), "manifest.json line"),
    ("no manifest", _diff_broken(lambda r: (r / "manifest.json").unlink()), "is not a simulator run directory"),
]


@pytest.mark.parametrize("prepare, fragment", [pytest.param(p, f, id=i) for i, p, f in DIFF_CASES])
def test_diff_refuses(world, tmp_path, capsys, prepare, fragment):
    from simulator.diff import main

    broken = prepare(world, tmp_path)
    before = snapshot(broken)
    for pair in ((world, broken), (broken, world)):        # either side
        assert main([str(pair[0]), str(pair[1]), "--format", "json"]) == 2
        out, err = capsys.readouterr()
        assert fragment in err and "Traceback" not in err and out == "", err
    assert snapshot(broken) == before


# ----------------------------------------------------------------------------- argparse, in a subprocess

def _command(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("module, args", [
    ("simulator.evaluate", ["RUN", "--from-db", "--db-url", f"postgresql://u:{PASSWORD}@db/x",
                            f"--bogus=postgresql://u:{PASSWORD}@db/x"]),
    ("simulator.evaluate", ["RUN", "--from-db", f"postgresql://admin:{PASSWORD}@localhost:5432/w"]),
    ("simulator.diff", ["A", "B", f"postgresql://admin:{PASSWORD}@localhost/w"]),
])
def test_argparse_errors_never_echo_a_password(tmp_path, module, args):
    proc = _command(module, *[a.replace("RUN", str(tmp_path)) for a in args])
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr, proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout and "***" in proc.stderr
    assert list(tmp_path.iterdir()) == []
