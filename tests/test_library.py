"""``simulator.load_run``: a published run read back as a notebook would, from real runs.

The default run (Parquet and CSV) is only read; the tests that delete or edit a file do it
in their own copy of a small run whose partners tables are CSV only."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import ROOT, run_cli
from simulator import load_run, runfiles
from simulator.errors import ConfigError

KEY, LABEL = "partner_id", "churn_label"
CARRIED = ["is_master_affiliate", "churn_label", "churn_scenario"]
HISTORIES = ("activity_daily", "commissions_daily", "conversions_weekly", "payouts", "support_tickets")


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A small run whose tables are CSV (the histories keep their own format, Parquet)."""
    out = tmp_path_factory.mktemp("csv_run")
    run_cli("n_partners=1500", "db=none", "output.report=false", "output.formats=[csv]", out_dir=out)
    return out


@pytest.fixture
def own_copy(csv_run, tmp_path):
    """A copy of the small run to delete and edit files in (its links copied as links)."""
    shutil.copytree(csv_run, tmp_path / "run", symlinks=True)
    return tmp_path / "run"


def test_the_package_exports_only_its_api_and_load_run_lazily():
    probe = ("import simulator, sys; print(simulator.__all__); "
             "print(sorted(n for n in dir(simulator) if not n.startswith('_'))); "
             "print('simulator.library' in sys.modules); simulator.load_run; print('simulator.library' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:4] == ["['compose', 'generate', 'load_run']", "['compose', 'generate', 'load_run']",
                                          "False", "True"]


def test_features_are_the_spec_columns_between_the_key_and_the_carried_labels(default_run):
    run = load_run(default_run.dir)
    columns = list(pq.read_schema(default_run.dir / "partners_engineered.parquet").names)
    assert len(run.features) == 18
    assert columns == [KEY, *run.features, *CARRIED]
    declared = yaml.safe_load((ROOT / "conf" / "features" / "default.yaml").read_text())["columns"]
    assert run.features == [c for section in declared.values() for c in section]


def test_X_y_is_partners_engineered_without_its_key_labels_or_scenario(default_run):
    run = load_run(default_run.dir)
    X, y = run.X_y()
    table = default_run.parquet("partners_engineered")
    assert list(X.columns) == run.features
    assert not {KEY, *CARRIED} & set(X.columns)
    assert X.index.name == KEY and y.name == LABEL
    assert list(X.index) == list(table[KEY]) and list(y.index) == list(table[KEY])
    pd.testing.assert_frame_equal(X.reset_index(drop=True), table[run.features])
    pd.testing.assert_series_equal(y.reset_index(drop=True), table[LABEL])
    for snapshot in (run.manifest["feature_date"], pd.Timestamp(run.manifest["feature_date"])):
        Xs, ys = run.X_y(snapshot)         # from features_panel: the same rows at the one snapshot
        pd.testing.assert_frame_equal(Xs, X)
        pd.testing.assert_series_equal(ys, y)
    numeric = X.astype(float).to_numpy()             # (as the README says: nulls as NaN)
    assert numeric.dtype == np.float64 and np.array_equal(np.isnan(numeric), X.isna().to_numpy())
    assert X.isna().to_numpy().any()                 # (the masters-only network features)


def test_every_file_and_every_loaded_table_has_one_key_dtype(default_run):
    run = load_run(default_run.dir)
    assert set(HISTORIES) <= set(run.table_names)
    for name in run.table_names:
        if (default_run.dir / f"{name}.parquet").exists():
            schema = pq.read_schema(default_run.dir / f"{name}.parquet")
            if KEY in schema.names:
                assert str(schema.field(KEY).type) == "string", name
        frame = run[name]
        for column in frame.columns:
            if column == KEY or column.endswith("_id"):
                assert frame[column].dtype == runfiles.STRING, (name, column)
    merged = run["partners"].merge(run["activity_daily"], on=KEY)
    assert len(merged) == len(run["activity_daily"]) and merged[KEY].dtype == runfiles.STRING


def test_a_csv_table_and_a_parquet_history_merge_on_a_string_key(own_copy):
    run = load_run(own_copy)
    assert not (own_copy / "partners.parquet").exists() and (own_copy / "activity_daily.parquet").exists()
    merged = run["partners"].merge(run["activity_daily"], on=KEY)
    assert merged[KEY].dtype == runfiles.STRING and len(merged) == len(run["activity_daily"])
    X, y = run.X_y(run.manifest["feature_date"])      # from the CSV panel, its dates as text
    pd.testing.assert_index_equal(X.index, run["partners_engineered"].set_index(KEY).index)


def test_truth_stats_manifest_and_spec(default_run):
    run = load_run(default_run.dir)
    assert set(run.truth) == {"uplift_truth", "decision_truth", "snapshot_truth"}
    assert run.truth.oracle == "true_churn_probability" and run.truth.oracle in run["partners"]
    assert len(run.truth["uplift_truth"]) == run.manifest["tables"]["uplift_truth"]["rows"] == len(run.X_y()[0])
    assert len(run.truth["decision_truth"]) == len(run["interventions"])
    assert run.stats == json.loads((default_run.dir / "stats.json").read_text())
    assert run.manifest["n_partners"] == run.spec.n == 10_000 and run.spec.key == KEY
    assert run.dir == default_run.dir


def test_tables_are_read_on_first_access_only(own_copy):
    run = load_run(own_copy)
    for name in ("commissions_daily", "payouts", "partners"):      # not asked for: never read
        (own_copy / f"{name}.parquet").unlink(missing_ok=True)
        (own_copy / f"{name}.csv").unlink(missing_ok=True)
    assert run.tables.loaded == ()
    X, _ = run.X_y()
    assert run.tables.loaded == ("partners_engineered",)
    assert len(run["activity_daily"]) == run.manifest["tables"]["activity_daily"]["rows"]
    assert run["activity_daily"] is run.tables["activity_daily"]                  # kept, not read again
    assert "payouts" in run and run.tables.loaded == ("partners_engineered", "activity_daily")
    with pytest.raises(ConfigError, match="payouts.parquet: no such file"):
        run["payouts"]


def test_a_table_edited_after_the_run_is_refused(own_copy):
    path = own_copy / "partners_engineered.csv"
    text = path.read_text()
    edited = text.replace(',true,"', ',false,"', 1)                 # one partner's churn label flipped
    assert edited != text
    path.write_text(edited)
    run = load_run(own_copy)
    assert len(run["uplift_truth"]) > 0                           # the other files are still good
    with pytest.raises(ConfigError, match=r"partners_engineered.csv: edited after the run \(its sha256"):
        run.X_y()


def test_a_manifest_whose_table_entry_is_not_one_is_refused(own_copy):
    """A manifest's table entry that is not an object (its files and rows) is refused, where
    the table was left out silently: a horizon's panel gone, its snapshots read as one."""
    path = own_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["tables"]["features_panel"] = "oops"
    path.unlink()                                  # (a link: the copy's own file, not the shared run's)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"manifest.json: tables.features_panel is not a table's entry"):
        load_run(own_copy)


def test_unknown_tables_and_snapshots_are_refused_with_what_exists(default_run):
    run = load_run(default_run.dir)
    with pytest.raises(KeyError, match="'partner': not a table of the run .*its tables: activity_daily, "
                                       ".*partners, partners_engineered"):
        run["partner"]
    with pytest.raises(KeyError, match="its truth tables: decision_truth, uplift_truth|uplift_truth, decision"):
        run.truth["partners"]
    feature_date = run.manifest["feature_date"]
    for bad in ("2025-01-01", "not a date"):
        with pytest.raises(ValueError, match=f"snapshot '{bad}': not a snapshot .*its snapshots: {feature_date}"):
            run.X_y(bad)


def test_a_ctrl_c_that_omegaconf_wraps_is_a_ctrl_c_not_a_broken_config(own_copy, monkeypatch):
    """Ctrl-C while OmegaConf builds the saved config can come out as an OmegaConf error
    raised while it unwound (a tester saw "not a config ('NoneType' object has no
    attribute '_invalidate_flags_cache')", exit 2): read_config raises the Ctrl-C."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    def create(text):
        try:
            try:
                raise KeyboardInterrupt
            finally:
                None._invalidate_flags_cache()          # what went wrong as it unwound
        except AttributeError as exc:
            raise OmegaConfBaseException(str(exc)) from exc
    monkeypatch.setattr(OmegaConf, "create", create)
    with pytest.raises(KeyboardInterrupt):
        runfiles.read_config(own_copy)
    monkeypatch.undo()
    bad = OmegaConfBaseException("a broken config")   # without a Ctrl-C under it: nothing raised
    runfiles.interrupted(bad)
