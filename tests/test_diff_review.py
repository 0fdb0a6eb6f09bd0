"""python -m simulator.diff for a review (issue 26): a changed key listed once, with where its
value flows; the statistics by |z|, each flagged significant beyond 4; --limit checked."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli

SIZE = ("n_partners=1500", "db=none", "output.report=false")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two small worlds: the default, and one with a higher churn target and Brazil-heavy regions."""
    root = tmp_path_factory.mktemp("pair")
    run_cli(*SIZE, out_dir=root / "a")
    run_cli(*SIZE, "churn.target_rate=0.25", "region_mix=brazil_heavy", out_dir=root / "b")
    return root / "a", root / "b"


def _diff(a, b, *args):
    return subprocess.run([sys.executable, "-m", "simulator.diff", str(a), str(b), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def diff(pair):
    proc = _diff(*pair, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_copied_key_is_listed_once_under_the_key_changed(diff, pair):
    config = {c["key"]: c for c in diff["config"]}
    assert not any(k.startswith("population.columns.region.weights") for k in config)
    assert config["region_mix.weights.Brazil"]["flows_to"] == ["population.columns.region.weights.Brazil"]
    assert (config["region_mix.weights.Brazil"]["old"], config["region_mix.weights.Brazil"]["new"]) == (0.1667, 0.45)
    assert set(config) == {"churn.target_rate", *(f"region_mix.weights.{r}" for r in
                                                  ("Brazil", "EU", "UK", "Nigeria", "SE_Asia", "APAC"))}
    assert "flows_to" not in config["churn.target_rate"]
    md = _diff(*pair).stdout
    assert ("| `region_mix.weights.Brazil` | 0.1667 | 0.45 | `population.columns.region.weights.Brazil` |" in md
            and "**Config** (7 keys changed)" in md)


def test_statistics_are_ordered_by_z_and_flagged_beyond_four(diff, pair):
    stats = diff["statistics"]
    scored = [s for s in stats if s["z"] is not None]
    assert stats[:len(scored)] == scored and len(scored) > 100       # those without a standard error last
    assert [abs(s["z"]) for s in scored] == sorted((abs(s["z"]) for s in scored), reverse=True)
    assert all(s["significant"] == (abs(s["z"]) > 4) for s in scored)
    assert all(s["significant"] is None for s in stats[len(scored):])
    assert diff["headline"] == [s for s in stats if s["statistic"].startswith(("targets.", "realized."))]
    # z: the move over both runs' standard errors (stats.json's se of each target)
    a, b = (json.loads((run / "stats.json").read_text()) for run in pair)
    name = "population.columns.region.weights.Brazil"
    ta, tb = ({t["target"]: t for t in s["targets"]}[name] for s in (a, b))
    brazil = next(s for s in stats if s["statistic"] == f"targets.{name}")
    assert brazil["z"] == pytest.approx((tb["realized"] - ta["realized"]) / math.hypot(ta["se"], tb["se"]), abs=0.01)
    assert brazil["significant"] and brazil["z"] > 10
    rate = next(s for s in stats if s["statistic"] == "realized.churn_rate")
    se = [s["standard_errors"]["churn_rate"] for s in (a, b)]
    assert rate["z"] == pytest.approx((rate["new"] - rate["old"]) / math.hypot(*se), abs=0.01)
    # a column mean's own standard error: std / sqrt(values)
    mean = next(s for s in stats if s["statistic"].endswith(".mean") and s["statistic"].startswith("columns.partners"))
    column = mean["statistic"].split(".")[2]
    sa, sb = (s["columns"]["partners"][column] for s in (a, b))
    expected = (sb["mean"] - sa["mean"]) / math.hypot(sa["std"] / math.sqrt(sa["count"] - sa["nulls"]),
                                                      sb["std"] / math.sqrt(sb["count"] - sb["nulls"]))
    assert mean["z"] == pytest.approx(expected, abs=0.01)


def test_markdown_shows_z_and_the_flag(pair):
    md = _diff(*pair, "--limit", "3").stdout
    rows = [line for line in md.splitlines() if line.startswith("| targets.") or line.startswith("| realized.")]
    assert len(rows) == 3 and rows[0].startswith("| targets.population.columns.region.weights.Brazil |")
    assert rows[0].endswith("**significant** |") and "| ... " in md and "more (use --format json)" in md


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "ten", ""])
def test_a_bad_limit_is_refused_naming_the_option(pair, capsys, value):
    from simulator.diff import main

    with pytest.raises(SystemExit) as exit_:
        main([str(pair[0]), str(pair[1]), "--limit", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert f"argument --limit: must be a whole number of rows, 1 or more (the headline rows shown in Markdown), " \
           f"got {value!r}" in err


def test_copies_follow_relative_interpolations_and_chains():
    from simulator.diff import _copies, _source

    copies = _copies({"a.b.c": "${..x.y}", "a.b.d": "${.e}", "p.q": "${r.s}", "r.s": "${t}", "u": "pre_${r.s}",
                      "v": "${oc.env:HOME}", "w": 3})
    # a string around an interpolation, or a resolver, copies no key
    assert copies == {"a.b.c": "a.x.y", "a.b.d": "a.b.e", "p.q": "r.s", "r.s": "t"}
    assert _source("p.q.z", copies) == "t.z" and _source("a.b.c", copies) == "a.x.y" and _source("w", copies) is None
