"""python -m simulator.arena (issue "Evaluate over time", item 3): a policy played forward
with common random numbers. The logging policy replays the run exactly; the same policy
twice gives the same figures; the oracle is never worse than the submitted policy on the
state they share; a bad policy is refused with its period and row; the example learning
loop beats the logging policy."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli
from simulator.arena import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("arena") / "run"
    run_cli("n_partners=3000", "db=none", "output.report=false", out_dir=out)
    return out


def _policy(tmp_path, body: str, name: str = "pol.py") -> str:
    path = tmp_path / name
    path.write_text("import pandas as pd\nimport numpy as np\n\ndef policy(features):\n" + body)
    return f"{path}:policy"


CALL_HIGH = "    pick = features[features['avg_commission_3m'] > 2000]\n" \
            "    return pd.DataFrame({'partner_id': pick['partner_id'], 'intervention_type': 'call'})\n"


def _arena(run, tmp_path, policy, *args):
    out = tmp_path / "out"
    assert main([str(run), "--policy", policy, "--out", str(out), *map(str, args)]) == 0
    return json.loads((out / "arena.json").read_text())


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    """A world of three blocks: each block draws from its own streams (and the pilot solves
    the intercept), which the replay must regenerate block by block."""
    out = tmp_path_factory.mktemp("arena-blocks") / "run"
    run_cli("n_partners=3000", "block_size=1024", "db=none", "output.report=false", out_dir=out)
    return out


@pytest.fixture(scope="module")
def horizon(tmp_path_factory):
    """A horizon of 5 snapshots in two blocks (drawn features that move, partners joining
    throughout, an intercept per period): replayed from its second snapshot."""
    out = tmp_path_factory.mktemp("arena-horizon") / "run"
    run_cli("n_partners=3000", "block_size=2048", "activity=none", "timeline.snapshots=5", "db=none",
            "output.report=false", out_dir=out)
    return out


@pytest.fixture(scope="module")
def shocked(tmp_path_factory):
    """The horizon above with the payment crisis from August (conf/shocks/payment_crisis.yaml):
    its shifted hazards, scaled call effects and held intercepts (the second block handed
    them) replayed from before it."""
    out = tmp_path_factory.mktemp("arena-shocked") / "run"
    run_cli("n_partners=3000", "block_size=2048", "activity=none", "timeline.snapshots=5", "db=none",
            "output.report=false", "shocks=payment_crisis", "shocks.payment_crisis.start=2025-08-01", out_dir=out)
    return out


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    """A horizon of 5 snapshots in two blocks whose features come from raw histories run
    forward (each block's replayed from its own streams), the warehouse clean so the panel
    shows the features the churn read."""
    out = tmp_path_factory.mktemp("arena-histories") / "run"
    run_cli("n_partners=3000", "block_size=2048", "experiment=horizon_histories", "timeline.snapshots=5",
            "faults=none", "db=none", "output.report=false", out_dir=out)
    return out


HORIZONS = ("horizon", "shocked", "histories")


@pytest.mark.parametrize("world", ["run", "blocks", *HORIZONS])
def test_logging_replays_the_run(world, request, tmp_path):
    """The logging policy with the run's draws: per period, the active partners, the
    realized churners and the exact expected churners are the run's interventions'."""
    run = request.getfixturevalue(world)
    start = ["--start", "2025-07-05"] if world in HORIZONS else []
    result = _arena(run, tmp_path, _policy(tmp_path, CALL_HIGH), *start)
    assert len(result["policies"]["logging"]["periods"]) == (6 if world in HORIZONS else 3)
    iv = pd.read_parquet(run / "interventions.parquet")
    by_date = iv.groupby(iv["intervention_date"].dt.strftime("%Y-%m-%d"))
    for row in result["policies"]["logging"]["periods"]:
        logged = by_date.get_group(row["date"])
        assert row["active"] == len(logged)
        assert row["realized_churners"] == int((logged["outcome"] == "Churned").sum())
        assert abs(row["expected_churners"] - logged["outcome_probability"].sum()) < 1e-9
        assert row["decisions"] == logged["intervention_type"].value_counts().reindex(
            ["call", "email", "none"], fill_value=0).to_dict()


def test_common_random_numbers_and_the_oracle(run, tmp_path):
    a = _arena(run, tmp_path, _policy(tmp_path, CALL_HIGH), "--budget", 25000)
    b = _arena(run, tmp_path, _policy(tmp_path, CALL_HIGH), "--budget", 25000)
    assert a == b
    first = {name: p["periods"][0] for name, p in a["policies"].items()}
    # period 0: every policy faces the same state; the oracle's budgeted greedy is never worse
    assert first["oracle"]["expected_churners"] <= first["submitted"]["expected_churners"] + 1e-9
    assert first["oracle"]["expected_churners"] < first["none"]["expected_churners"]
    for name in ("submitted", "oracle"):
        assert all(r["cost"] <= 25000 + 1e-9 for r in a["policies"][name]["periods"]), name
    # a policy that never acts is `none`, draw for draw
    quiet = _arena(run, tmp_path, _policy(tmp_path, "    return features.iloc[:0][['partner_id']].assign("
                                                     "intervention_type='none')\n"))
    assert quiet["policies"]["submitted"] == quiet["policies"]["none"]


@pytest.mark.parametrize("body, fragment", [
    ("    return pd.DataFrame({'partner_id': ['P99999'], 'intervention_type': ['call']})\n",
     "period 0 (2025-10-03) row 0: partner_id 'P99999' is not active at this period's start"),
    ("    return pd.DataFrame({'partner_id': features['partner_id'][:2], 'intervention_type': 'sms'})\n",
     "row 0: intervention_type 'sms' is not a type (call, email, none)"),
    ("    k = features['partner_id'].iloc[0]\n    return pd.DataFrame({'partner_id': [k, k], "
     "'intervention_type': ['call', 'email']})\n", "row 1: partner_id"),
    ("    return pd.DataFrame({'partner_id': features['partner_id'], 'intervention_type': 'call'})\n",
     "row 4: the decisions cost 71,425.00, above --budget 100.00 (this row's is the first that does not fit)"),
    ("    return None\n", "the policy must return a DataFrame with columns ['partner_id', 'intervention_type']"),
    ("    x = 1\n    return x / 0\n", "pol.py:6: ZeroDivisionError: division by zero"),
    ("    import sys\n    sys.exit(0)\n", "period 0 (2025-10-03): the policy called sys.exit(0); it must return"),
])
def test_a_bad_policy_is_refused_with_its_period_and_row(run, tmp_path, capsys, body, fragment):
    out = tmp_path / "out"
    assert main([str(run), "--policy", _policy(tmp_path, body), "--out", str(out), "--budget", "100"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and len(err.splitlines()) <= 3, err
    assert not out.exists()


def test_an_interrupted_arena_says_so_and_writes_nothing(run, tmp_path, capsys):
    """Ctrl-C while the policy runs (here the policy raises it): one line, the shell's 130."""
    out = tmp_path / "out"
    assert main([str(run), "--policy", _policy(tmp_path, "    raise KeyboardInterrupt\n"), "--out", str(out)]) == 130
    assert capsys.readouterr().err == "interrupted: the arena wrote nothing\n" and not out.exists()


def test_a_policy_file_that_does_not_parse_is_refused_at_its_line(run, tmp_path, capsys):
    bad = tmp_path / "broken.py"
    bad.write_text("import pandas as pd\n\ndef policy(features:\n")
    assert main([str(run), "--policy", f"{bad}:policy", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"cannot import it at {bad}:3: SyntaxError" in err and "Traceback" not in err, err


@pytest.mark.parametrize("world", ["horizon", "histories"])
def test_a_policy_sees_the_panel_at_the_start(world, request, tmp_path):
    """What the policy is given at the snapshot it starts from is that snapshot's
    features_panel, row for row and value for value: drawn features moved to the date, or
    (histories) the features of the histories regenerated up to it."""
    run = request.getfixturevalue(world)
    dump = tmp_path / "seen.parquet"
    body = (f"    if features.attrs['period'] == 0:\n        features.to_parquet({str(dump)!r})\n"
            "    return features.iloc[:0][['partner_id']].assign(intervention_type='none')\n")
    _arena(run, tmp_path, _policy(tmp_path, body), "--start", "2025-07-05", "--periods", "1")
    seen = pd.read_parquet(dump).set_index("partner_id").sort_index()
    panel = pd.read_parquet(run / "features_panel.parquet")
    panel = panel[panel["snapshot_date"] == "2025-07-05"].set_index("partner_id").sort_index()
    assert list(seen.index) == list(panel.index) and len(seen) > 1000
    features = [c for c in seen.columns if c != "decision_date"]
    assert len(features) == 19                      # the 18 and is_master_affiliate
    # (the drawn world's warehouse loses values, faults.missing: the policy sees the true ones, as the churn
    # read them; the histories' world has a clean warehouse)
    lost = panel[features].isna() & seen[features].notna()
    assert lost.to_numpy().mean() < (0.01 if world == "horizon" else 1e-12)
    pd.testing.assert_frame_equal(seen[features].mask(lost), panel[features], check_dtype=False,
                                  check_categorical=False)


@pytest.mark.parametrize("args, fragment", [
    (["--policy", "nowhere_module_xyz:policy"], "cannot import it"),
    (["--policy", "no-colon"], "must be module:function"),
    (["--periods", "4"], "--periods 4: must be 1 to 3"),
    (["--start", "2024-01-01"], "--start '2024-01-01': not a snapshot of this run (its snapshots: 2025-10-03)"),
])
def test_bad_arguments_exit_2(run, tmp_path, capsys, args, fragment):
    full = ["--policy", _policy(tmp_path, CALL_HIGH)] + [a for a in args]
    if args[0] == "--policy":
        full = args
    assert main([str(run), *full, "--out", str(tmp_path / "out")]) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.slow
def test_the_learning_loop_beats_the_logging_policy(run, tmp_path):
    """The seed's learning loop (examples/arena_policy.py, a T-learner weighted by the logged
    propensities, retrained at T+30) held to a budget of about a third of what the logging
    policy spends (which ignores budgets) prevents more churn per unit of cost than the
    logging policy, and more churn than doing nothing."""
    result = _arena(run, tmp_path, f"{ROOT / 'examples' / 'arena_policy.py'}:policy", "--budget", 6000)
    totals = {name: p["total"] for name, p in result["policies"].items()}
    saved = {name: totals["none"]["expected_churners"] - t["expected_churners"] for name, t in totals.items()}
    assert totals["submitted"]["cost"] <= 3 * 6000 < totals["logging"]["cost"]
    assert saved["submitted"] / totals["submitted"]["cost"] > saved["logging"] / totals["logging"]["cost"]
    assert saved["submitted"] > 0
    assert totals["oracle"]["expected_churners"] < totals["none"]["expected_churners"]
    assert np.isclose(result["periods"], 3)


def test_the_learning_loop_learns_a_horizon_from_the_snapshot_before_the_start(histories):
    """On a horizon the example trains on the decisions of the snapshot before the start,
    their outcomes known by then, with features_panel's features at their date (it joined the
    last snapshot's features to the first decisions, and learned from no churner)."""
    import importlib.util

    loader = importlib.util.spec_from_file_location("arena_policy_horizon", ROOT / "examples" / "arena_policy.py")
    example = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(example)
    example._start(str(histories), "2025-07-05")
    rows = example.STATE["rows"]
    iv = pd.read_parquet(histories / "interventions.parquet")
    before = iv[iv["intervention_date"] == "2025-06-05"]
    panel = pd.read_parquet(histories / "features_panel.parquet")
    assert len(rows) == len(before) > 1000 and rows["churned"].sum() == (before["outcome"] == "Churned").sum() > 20
    at = panel[panel["snapshot_date"] == "2025-06-05"].set_index("partner_id").loc[before["partner_id"]]
    assert np.allclose(rows["avg_commission_3m"].to_numpy(), at["avg_commission_3m"].to_numpy())
