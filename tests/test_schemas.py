"""pandera schemas: a broken frame is named by table, column, check and rows; nothing written."""
from __future__ import annotations

import pandas as pd
import pytest

from simulator.engine import simulate
from simulator.schemas import ValidationError, validate_tables
from simulator.sinks.files import write_tables
from simulator.load import load_spec


@pytest.fixture(scope="module")
def world(compose):
    spec = load_spec(compose(["n_partners=800"]))
    return spec, simulate(spec).tables


def test_generated_tables_pass(world):
    spec, tables = world
    validate_tables(spec, tables)


def test_broken_partners_frame_names_table_column_check_and_rows(world):
    spec, tables = world
    bad = tables["partners"].copy()
    bad.loc[7, "dashboard_usage_score"] = 3.0
    bad.loc[3, "churn_label"] = not bad.loc[3, "churn_label"]
    with pytest.raises(ValidationError) as info:
        validate_tables(spec, {**tables, "partners": bad})
    text = str(info.value)
    assert "table 'partners'" in text
    assert "column dashboard_usage_score, check in_range(0, 1): 1 rows, e.g. rows [7]" in text
    assert "churn_label <=> churn_scenario != Healthy" in text and "rows [3]" in text


def test_unknown_category_is_caught(world):
    spec, tables = world
    bad = tables["partners"].copy()
    bad["region"] = bad["region"].cat.add_categories(["Atlantis"])
    bad.loc[0, "region"] = "Atlantis"
    with pytest.raises(ValidationError, match="column region, check isin"):
        validate_tables(spec, {**tables, "partners": bad})


def test_network_must_be_a_tree_of_known_partners(world):
    spec, tables = world
    net = tables["network_relationships"].copy()
    net.loc[1, "sub_affiliate_id"] = net.loc[0, "sub_affiliate_id"]
    net.loc[2, "master_affiliate_id"] = "P99999"
    with pytest.raises(ValidationError) as info:
        validate_tables(spec, {**tables, "network_relationships": net})
    assert "column sub_affiliate_id" in str(info.value)
    assert "is a master partner" in str(info.value)


def test_decision_truth_rows_must_be_the_interventions_rows(world):
    """decision_truth's row i is interventions' row i: a key or type out of step is caught,
    and the copy the check compares against (an equal column, another index) passes."""
    spec, tables = world
    truth = tables["decision_truth"]
    validate_tables(spec, {**tables, "decision_truth": truth.set_index(truth.index + 5)})
    for col in ("partner_id", "intervention_type"):
        bad = truth.copy()
        other = int((truth[col] != truth[col].iloc[0]).to_numpy().argmax())    # (a row whose value differs)
        bad.loc[[0, other], col] = bad.loc[[other, 0], col].to_numpy()
        with pytest.raises(ValidationError, match=f"column {col}, check {col} of the interventions row"):
            validate_tables(spec, {**tables, "decision_truth": bad})


def test_a_failed_write_leaves_no_partial_files(tmp_path, world):
    _, tables = world
    unwritable = pd.DataFrame({"x": [object()]})           # Arrow cannot convert this
    with pytest.raises(Exception):
        write_tables({"partners": tables["partners"], "broken": unwritable}, tmp_path, ("csv", "parquet"))
    assert list(tmp_path.iterdir()) == []


def test_a_schema_failure_publishes_nothing(tmp_path, compose, monkeypatch):
    """Blocks are staged as they are checked: a failure in the last block, after the
    others were written, leaves the directory empty."""
    import simulator.run as run_module
    import simulator.schemas as schemas_module

    real = schemas_module.validate_tables

    def failing(spec, tables):
        if spec.block == 2:
            raise ValidationError("table 'partners' failed validation (test)")
        return real(spec, tables)

    monkeypatch.setattr(schemas_module, "validate_tables", failing)
    with pytest.raises(ValidationError):
        run_module.run(compose(["n_partners=2500", "block_size=1024", "db=sqlite"]), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_staging_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    import os

    dead = tmp_path / ".partial-999999999-abc"          # no such process
    legacy = tmp_path / ".partial-xyz"                  # an older version's name, no pid
    live = tmp_path / f".partial-{os.getpid()}-def"     # a run still going (this process)
    for d in (dead, legacy, live):
        d.mkdir()
        (d / "partners.parquet").write_bytes(b"half a file")
    write_tables({"t": pd.DataFrame({"a": [1, 2]})}, tmp_path, ("csv",))
    assert not dead.exists() and not legacy.exists() and live.exists()
    assert (tmp_path / "t.csv").is_file() and set(tmp_path.glob(".partial-*")) == {live}   # its own staging gone too


def test_an_infinite_number_fails_any_table(compose):
    """No table holds an infinite number, whatever a column's declared range: a derived
    feature that divides by zero is refused with its table, column and rows."""
    spec = load_spec(compose(["n_partners=1500", "db=none"]))
    tables = simulate(spec).tables
    tables["partners_engineered"].loc[[3, 7], "tier_proximity_score"] = float("inf")
    with pytest.raises(ValidationError, match=r"table 'partners_engineered' failed validation: column "
                                              r"tier_proximity_score, check finite: 2 infinite values, e\.g\. rows \[3, 7\]"):
        validate_tables(spec, tables)
