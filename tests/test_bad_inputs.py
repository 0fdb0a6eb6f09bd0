"""The catalogue of bad inputs (issue "Hardening", first entries): each is refused before
generation with its config path and what would be valid, never run as silent garbage."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import refusal, run_cli
from simulator.errors import ConfigError
from simulator.load import load_spec

CATALOGUE = [
    # dates and flags that used to run as garbage
    ("as_of=20260101", "as_of: must be a date written YYYY-MM-DD"),
    ("as_of=2026-13-01", "as_of: must be a real calendar date"),
    ("as_of='2026-01-01T12:00'", "as_of: must be a date written YYYY-MM-DD, like 2026-01-01 (no time of day)"),
    ("output.report=maybe", "output.report: must be true or false, got 'maybe'"),
    # expressions of the wrong type
    ("churn.rules.silence.when='days_since_last_interaction + 0.7'",
     "churn.rules.silence.when: must be a boolean"),
    ("scenarios.rules.Active_Churn.when='negative_sentiment_score + 0.7'",
     "scenarios.rules.Active_Churn.when: must be a boolean"),
    ("interventions.effects.call.0.when='avg_commission_3m * 2'", "interventions.effects.call[0].when: must be a boolean"),
    ("churn.earlier.when='tenure_months'", "churn.earlier.when: must be a boolean"),
    ("churn.rules.open_tickets.value='region'", "churn.rules.open_tickets.value: must be a number"),
    ("churn.rules.open_tickets.value='region * 2'", "arithmetic needs numbers, got the category column 'region'"),
    ("churn.rules.tier_cliff.when='tier > 2'", "an order comparison needs numbers, got the category column 'tier'"),
    # a string literal compared with a categorical column must be one of its categories
    ("scenarios.rules.Active_Churn.when='region == \"Brazl\"'", "'Brazl' is not a category of 'region'"),
    ("+population.columns.flag.expr='churn_scenario == \"Trust_Erosian\"'", "'Trust_Erosian' is not a category of 'churn_scenario'"),
    ("interventions.effects.call.0.when='tier in [\"Gold\", \"Platnum\"]'", "'Platnum' is not a category of 'tier'"),
    ("interventions.effects.email.1.when='payment_rail_type != \"Paypal\"'", "'Paypal' is not a category of 'payment_rail_type'"),
    ("+interventions.policy=[{when: 'region == \"Mars\"', mix: {call: 1.0}}]", "'Mars' is not a category of 'region'"),
    ("+population.columns.bonus.expr='where(region == \"Brasil\", 1, 0)'", "did you mean 'Brazil'"),
    # shares and policies
    ("churn.earlier.share=2", "churn.earlier.share: must be a share in [0, 1)"),
    ("network.without_subs=-1", "network.without_subs: must be a share in [0, 1)"),
    ("network.failing.concentration=1.5", "network.failing.concentration: must be a share in [0, 1]"),
    ("+interventions.policy=[{when: 'payment_delay_flag', mix: {call: 0.5}}]",
     "interventions.policy[0].mix: weights sum to 0.5, must sum to 1"),
    ("+interventions.policy=[{when: 'payment_delay_flag', mix: {sms: 1.0}}]",
     "interventions.policy[0].mix.sms: unknown intervention type 'sms'"),
    ("interventions.control=nothing", "interventions.control: must be one of the types"),
    ("timeline.episodes=0", "timeline.episodes: must be a whole number >= 1"),
    # expressions of unbounded cost are refused at compile time, in bounded time
    ("churn.rules.silence.when='9**9**9 > 0'", "churn.rules.silence.when: the exponent"),
    ("churn.rules.silence.when='2 ** 100000000 > 1'", "is too large (at most 1000)"),
    ("churn.rules.silence.when='10.0 ** 400 > 1'", "cannot be computed (OverflowError)"),
    ("churn.rules.silence.when=\"'a' * 10**10 == 'b'\"", "churn.rules.silence.when"),
    ("churn.rules.silence.when='" + " + ".join(["days_since_last_interaction"] * 5000) + " > 1'",
     "characters is too long (at most 4,000)"),
    ("churn.rules.silence.when='" + "abs(" * 100 + "days_since_last_interaction" + ")" * 100 + " > 1'",
     "nested too deeply"),
    # every sampler's parameter constraints, mixes and weights
    ("population.columns.avg_commission_3m.alpha=-1", "population.columns.avg_commission_3m.alpha: must be a number > 0"),
    ("population.columns.is_master_affiliate.p=1.5", "population.columns.is_master_affiliate.p: must be a probability in [0, 1]"),
    ("population.columns.logins_drawn.scale=-8", "population.columns.logins_drawn.scale: must be a number > 0"),
    ("population.columns.downloads_drawn.lam=-4", "population.columns.downloads_drawn.lam: must be a number >= 0"),
    ("population.columns.unresolved_ticket_count.lam=abc", "unresolved_ticket_count.lam: must be a number >= 0, got 'abc'"),
    ("population.columns.payment_rail_type.weights.Brazil.P2P=2", "payment_rail_type.weights.Brazil: weights sum to 2.5"),
    ("population.columns.delay_drawn.p.P2P=-0.1", "delay_drawn.p: must be a probability in [0, 1]"),
    ("+population.columns.x.dist=normal", "population.columns.x.loc: missing: 'normal' needs loc, scale"),
    ("region_mix.weights.Brazil=-1", "population.columns.region.weights.Brazil: a weight must be a number >= 0"),
    ("interventions.mix.none=-0.1", "interventions.mix.none: a weight must be a number >= 0"),
    ("interventions.noise.scale=abc", "interventions.noise: needs loc (a number) and scale (a number >= 0)"),
    ("population.tiers.Gold=100", "population.columns.tier.edges: lower edges must ascend"),
    # reversed bounds, sizes, rates
    ("network.fanout.low=60", "network.fanout: low 60 is above high 50"),
    ("network.fanout.low=-1", "network.fanout.low: must be a whole number >= 1"),
    ("network.recent_days=-3", "network.recent_days: must be a whole number >= 0"),
    ("churn.target_rate=1.5", "churn.target_rate: must be a rate strictly between 0 and 1"),
    ("churn.target_rate=0", "churn.target_rate: must be a rate strictly between 0 and 1"),
    ("churn.earlier.days=0", "churn.earlier.days: must be a whole number >= 1"),
    ("timeline.episode_days=0", "timeline.episode_days: must be a whole number >= 1"),
    ("activity.histories.daily.days=10", "activity.histories.daily.days: must be a whole number >= 59"),
    ("activity.histories.commissions.months=1", "activity.histories.commissions.months: must be a whole number >= 3"),
    ("population.id.width=0", "population.id.width: must be a whole number >= 1"),
    ("golden.candidates=0", "golden.candidates: must be a whole number >= 1"),
    ("n_partners=abc", "n_partners: must be a whole number >= 1, got 'abc'"),
    ("seed=-1", "seed: must be a whole number >= 0"),
    # unknown names of every kind, self-reads, cycles, duplicates
    ("+churn.rules.bad.when='nope > 1'", "churn.rules.bad: unknown column 'nope'"),
    ("+population.columns.z.expr='w + 1'", "population.columns.z: unknown column 'w'"),
    ("+population.columns.y.expr='y + 1'", "population.columns.y: reads itself"),
    ("+scenarios.rules.Mystery.when='tenure_months >'", "scenarios.rules.Mystery.when: 'tenure_months >' is not a valid expression"),
    ("scenarios.default=Trust_Erosion", "scenarios.rules: scenario names must be unique"),
    ("network.masters=tier", "network.masters: must name a boolean column"),
    ("activity.features.login_count_30d.from=weekly", "activity.features.login_count_30d.from: unknown history 'weekly'"),
    ("+activity.histories.daily.nope=1", "activity.histories.daily.nope: unknown key for a 'daily_activity' history"),
    ("+features.columns.extra=[login_count_30d]", "features.columns: a column may appear once"),
    ("features.carry=[nonexistent]", "features.carry: unknown column 'nonexistent'"),
    ("+features.derived.tenure_drawn={expr: '1'}", "features.derived.tenure_drawn: not a feature of partners_engineered"),
    ("+faults.missing.partner_id={share: 0.5}",             # (the nearest among the 18, not every column)
     "'partner_id' is not a feature of a model-ready table of this world (features.columns) (18 known"),
    ("+features.derived.tenure_months={expr: 'nope + 1'}", "features.derived.tenure_months: unknown column 'nope'"),
    ("features.derived.tier_proximity_score={expr: 'payment_rail_type'}",
     "features.derived.tier_proximity_score.expr: must be a number"),
    ("features.derived.tier_proximity_score={bins: avg_commission_3m, edges: {a: 1}}",
     "features.derived.tier_proximity_score: must be an expression (expr) of the row's columns, got a 'bins' column"),
    ("output.formats=[xlsx]", "output.formats: must be a non-empty list of csv, parquet"),
    ("activity.formats=[xml]", "activity.formats: must be a non-empty list of csv, parquet"),
    ("activity.write=sometimes", "activity.write: must be true, false or auto"),
    ("db.mode=merge", "db.mode: must be replace or append"),
    ("churn.rules.silence.weight=abc", "churn.rules.silence.weight: must be a number (log-odds)"),
    ("interventions.outcomes.churned=''", "interventions.outcomes.churned: must be an outcome label"),
    # golden records that break the schema or the world
    ("golden.records.P00001.tier=Diamond", "golden.records.P00001.tier: 'Diamond' is not valid here"),
    ("golden.records.P00001.avg_commission_3m=abc", "golden.records.P00001.avg_commission_3m: 'abc' is not valid here"),
    ("+golden.records.P99999.tier=Gold", "golden.records.P99999: P99999 needs n_partners >= 99999"),
    ("population.id.prefix=''", "golden.records.P00001: 'P00001' is not an id this world generates"),
    # mixed types from the command line, and unknown names among many (the nearest listed)
    ("churn.target_rate=[1,a]", "churn.target_rate: must be a rate strictly between 0 and 1, got [1, 'a']"),
    ("region_mix.weights.Brazil=[0.2]", "population.columns.region.weights.Brazil: a weight must be a number >= 0, got [0.2]"),
    ("churn.rules.silence.when='days_since_last_interactoin > 10'",
     "the nearest: days_since_last_interaction"),
    ("population.columns.churn_path.by=at_clif", "did you mean 'at_cliff'?"),
    # the signals of issue "Signals that carry risk"
    ("churn.signal=-0.5", "churn.signal: must be a number >= 0"),
    ("scenarios.shares.Active_Churn=0.9", "scenarios.shares: the churners' scenario shares must sum to at most 1"),
    ("churn.signal=strong", "churn.signal: must be a number >= 0"),
    ("+scenarios.shares.Trust_Erosian=0.1", "scenarios.shares.Trust_Erosian: unknown churn scenario"),
    ("scenarios.agreement=1.5", "scenarios.agreement: must be a share in [0, 1]"),
    ("scenarios.agreement={Tier_Cliff:0.3}", "scenarios.agreement.Tier_Cliff: not a churn scenario with a rule"),
    ("scenarios.agreement={Active_Churn:2}", "scenarios.agreement.Active_Churn: must be a share in [0, 1]"),
    ("scenarios.road=[a]", "scenarios.road: must name the latent road column"),
    ("scenarios.road=roads", "scenarios.road: unknown column 'roads'"),
    ("features.learnability.model_auc.min=0.95", "features.learnability.model_auc: min 0.95 is above max 0.9"),
    # the executor and the blocks of issue "Scale"
    ("executor.kind=threads", "executor.kind: unknown executor 'threads' (known: local, processes, dask)"),
    ("executor.chunk_size=0", "executor.chunk_size: must be a whole number >= 1, got 0"),
    ("+executor.workers=two", "executor.workers: must be a whole number >= 1, got 'two'"),
    ("+executor.address=tcp://127.0.0.1:8786", "executor.address: is read by executor=dask only"),
    ("+executor.adress=tcp://h:1", "executor.adress: unknown key"),
    ("+executor.timeout=0", "executor.timeout: must be a number of seconds above 0 and at most 3600, got 0"),
    ("block_size=100", "block_size: must be a whole number >= 1024, got 100"),
    # names from YAML reach files and SQL (issue 22, item 2): one rule, simulator/identifiers.py
    ("interventions.truth_table=/tmp/another_run/.current/partners",
     "interventions.truth_table: '/tmp/another_run/.current/partners' is not a valid table name (lower-case "
     "letters, digits and _, starting with a letter or _, at most 63 characters)"),
    ("network.table=../../evil_net", "network.table: '../../evil_net' is not a valid table name"),
    ("interventions.truth_table=\"x; COPY (SELECT 1) TO PROGRAM 'touch x'; --\"",
     "interventions.truth_table: \"x; COPY (SELECT 1) TO PROGRAM 'touch x'; --\" is not a valid table name"),
    ("+population.columns.order.expr='tenure_months + 1'",
     "population.columns.order: 'order' is a reserved word in PostgreSQL, SQLite and DuckDB; choose another name"),
    ("+population.columns.select.expr='tenure_months + 1'", "population.columns.select: 'select' is a reserved word"),
    ("+population.columns.user.expr='tenure_months + 1'",
     "population.columns.user: 'user' is a reserved word in PostgreSQL; choose another name"),
    ("+population.columns.Tenure.expr='tenure_months + 1'", "population.columns.Tenure: 'Tenure' is not a valid column name"),
    ("network.table='evil net'", "network.table: 'evil net' is not a valid table name"),
    ("network.table=interventions",
     "interventions.table: 'interventions' is also the table of network.table; every table needs its own name"),
    ("activity.histories.daily.table=payouts", "activity.histories.payouts.table: 'payouts' is also the table of "
     "activity.histories.daily.table"),
    ("network.table=predictions", "network.table: 'predictions' is the database's predictions table"),
    ("network.table=" + "n" * 64, "network.table: '" + "n" * 64 + "' is not a valid table name (lower-case letters, "
     "digits and _, starting with a letter or _, at most 63 characters): it has 64"),
    ("population.table=Partners", "population.table: 'Partners' is not a valid table name"),
    ("population.id.column=affiliate-id", "population.id.column: 'affiliate-id' is not a valid column name"),
    ("features.table=by", "features.table: 'by' is a reserved word in DuckDB"),
    ("activity.histories.tickets.table='tickets;'", "activity.histories.tickets.table: 'tickets;' is not a valid table name"),
    ("activity.histories.conversions.column=1rate", "activity.histories.conversions.column: '1rate' is not a valid column name"),
    ("+activity.features.Logins.from=daily", "activity.features.Logins: 'Logins' is not a valid column name"),
    ("churn.observed_until=select", "churn.observed_until: 'select' is a reserved word"),
    ("churn.churn_date.column=order", "churn.churn_date.column: 'order' is a reserved word"),
    ("churn.truth=true_p.churn", "churn.truth: 'true_p.churn' is not a valid column name"),
    ("network.features.health=left", "network.features.health: 'left' is a reserved word in PostgreSQL and DuckDB"),
    ("interventions.effect_column=values", "interventions.effect_column: 'values' is a reserved word in SQLite"),
    ("+interventions.mix.SMS=0", "interventions.mix.SMS: 'effect_SMS' is not a valid column name (lower-case letters, "
     "digits and _, starting with a letter or _, at most 63 characters); a column of interventions.truth_table for type 'SMS'"),
    ("+interventions.mix." + "t" * 50 + "=0", "' is not a valid column name (lower-case letters, digits and _, starting "
     "with a letter or _, at most 63 characters): it has 66"),
    # values the world cannot hold (issue 22, item 8): dates in 1900-01-01..2200-12-31, caps above 0
    ("as_of=0001-01-01", "as_of: must be a date from 1900-01-01 to 2200-12-31"),
    ("as_of=2201-01-01", "as_of: must be a date from 1900-01-01 to 2200-12-31 (every date the world writes "
     "stays in that range), got 2201-01-01"),
    ("timeline.episode_days=1000000", "timeline.episode_days: the label window (3 episodes x 1,000,000 days) would "
     "start before 1900-01-01; with as_of 2026-01-01 at most 15,340 days per episode"),
    ("timeline.episode_days=100000000000000000000", "timeline.episode_days: the label window"),
    ("timeline.episodes=1000000", "timeline.episodes: the label window (1,000,000 episodes x 30 days) would start "
     "before 1900-01-01; with as_of 2026-01-01 at most 1,534 episodes of 30 days"),
    # a horizon (issue "Time"): snapshots that fit the calendar, columns that can move
    ("timeline.snapshots=0", "timeline.snapshots: must be"),
    ("timeline.snapshots=2000", "timeline.snapshots: 2,000 snapshots 30 days apart before the label window would "
     "start before 1900-01-01; with as_of 2026-01-01 at most 1,526 after 6 periods of burn-in (timeline.burn_in)"),
    ("timeline={snapshots: 12, burn_in: 1600}", "timeline.burn_in: 1,600 periods of burn-in before 12 snapshots 30 "
     "days apart would start before 1900-01-01; with as_of 2026-01-01 at most 1,520 (or fewer timeline.snapshots)"),
    ("timeline.burn_in=-1", "timeline.burn_in: must be"),
    ("timeline=12", "timeline: must be a mapping of episodes, episode_days, snapshots and burn_in, got 12"),
    ("network.failing=0.5", "network.failing: must be a mapping of share, concentration and spell_days, got 0.5"),
    ("network.features=1", "network.features: must be a mapping of health and recent_churn, got 1"),
    ("population.columns.avg_commission_3m.persistence=1.5", "population.columns.avg_commission_3m.persistence: "
     "must be a correlation in [0, 1]"),
    ("+population.columns.tier.persistence=0.5", "population.columns.tier.persistence: only a drawn column (dist) "
     "moves on its own"),
    ("+population.columns.region.ages=true", "population.columns.region.ages: only a count of days ages"),
    ("population.columns.tenure_drawn.arrivals=stedy", "population.columns.tenure_drawn.arrivals: must be one of "
     "steady, got 'stedy' (known: steady; did you mean 'steady'?)"),
    ("+population.columns.avg_commission_3m.arrivals=steady", "population.columns.avg_commission_3m.arrivals: needs "
     "an age drawn with dist: exponential (a steady population's ages, scale its mean stay in days), got dist: pareto"),
    ("+population.columns.tier.arrivals=steady", "population.columns.tier.arrivals: needs an age drawn with dist: "
     "exponential (a steady population's ages, scale its mean stay in days), got a column without dist"),
    ("churn.earlier.days=50000", "churn.earlier.days: dates would reach 50,180 days before the horizon's start "
     "2025-10-03 (50,000 (churn.earlier.days) + 180 (activity.histories.commissions)), before 1900-01-01"),
    ("activity.histories.daily.days=60000", "activity.histories.daily: dates would reach 60,090 days before"),
    ("activity.histories.commissions.months=2000", "activity.histories.commissions: dates would reach"),
    ("as_of=1900-03-01", "before 1900-01-01"),
    ("population.columns.avg_commission_3m.cap=0",
     "population.columns.avg_commission_3m.cap: must be a number > 0 (the largest value the column may take), got 0"),
    ("population.columns.avg_commission_3m.cap=-5", "population.columns.avg_commission_3m.cap: must be a number > 0"),
    ("+late={kind: late_columns, columns: {Late: {expr: 'tenure_months + 1'}}}",
     "late.columns.Late: 'Late' is not a valid column name"),
]


def test_a_stage_left_out_while_an_experiment_sets_keys_in_it_says_which(compose):
    """experiment=horizon_histories declares interventions.mean_relative_effect; with
    interventions=none that key is all the group holds: the message names it and how to
    remove it, where it said the group was neither a setting nor a stage."""
    message = refusal(compose, "experiment=horizon_histories", "interventions=none")
    assert ("interventions: holds mean_relative_effect but no kind: a stage needs one; if interventions=none left "
            "the stage out, the experiment or an override still sets these: remove them too "
            "(~interventions.mean_relative_effect)") in message
    load_spec(compose(["experiment=horizon_histories", "interventions=none", "~interventions.mean_relative_effect"]))


@pytest.mark.parametrize("override, fragment", CATALOGUE, ids=[c[0][:60] for c in CATALOGUE])
def test_bad_input_is_refused_with_its_path(compose, override, fragment):
    import time

    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_spec(compose([override]))
    assert fragment in str(info.value)
    assert len(str(info.value)) < 1_000                  # an excerpt, never the whole expression
    assert time.perf_counter() - start < 10              # refused in bounded time, never evaluated


@pytest.mark.parametrize("override, fragment", [
    ("scenarios.column=Scenario", "scenarios.column: 'Scenario' is not a valid column name"),
    ("churn.label=select", "churn.label: 'select' is a reserved word in PostgreSQL, SQLite and DuckDB"),
])
def test_a_bad_name_that_other_groups_read_is_refused_at_its_own_path(compose, override, fragment):
    """The golden records and features.carry name these columns too, and say so; the name's
    own problem comes with theirs."""
    with pytest.raises(ConfigError) as info:
        load_spec(compose([override]))
    assert fragment in str(info.value)


def test_names_from_a_users_yaml_are_checked_and_nothing_is_written(tmp_path):
    """A YAML key can hold what an override cannot (a double quote, a space): refused at
    compose time, exit 2, every problem at once, nothing written inside or outside the run."""
    exp = tmp_path / "conf" / "experiment"
    exp.mkdir(parents=True)
    (exp / "names.yaml").write_text(
        "# @package _global_\npopulation:\n  columns:\n    'a\"b': {expr: 'tenure_months + 1'}\n"
        "    'two words': {expr: 'tenure_months + 1'}\nnetwork:\n  table: ../../evil_net\n")
    proc = run_cli(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=names",
                   out_dir=tmp_path / "run", check=False)
    assert proc.returncode == 2, proc.stderr
    for fragment in ("3 problems", "population.columns.a\"b: 'a\"b' is not a valid column name",
                     "population.columns.two words: 'two words' is not a valid column name",
                     "network.table: '../../evil_net' is not a valid table name"):
        assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*evil*")) and not list(tmp_path.rglob("*.csv"))


def test_the_frozen_reserved_words_cover_the_installed_duckdb():
    """identifiers.DUCKDB is a literal, so the rule never needs the driver; this says when a
    new DuckDB reserves a word the literal lacks."""
    duckdb = pytest.importorskip("duckdb")
    from simulator import identifiers

    live = {r[0] for r in duckdb.sql("select keyword_name from duckdb_keywords() "
                                     "where keyword_category = 'reserved'").fetchall()}
    assert live <= identifiers.DUCKDB, sorted(live - identifiers.DUCKDB)


@pytest.mark.parametrize("name, ok", [("partners", True), ("_x1", True), ("a" * 63, True), ("a" * 64, False),
                                      ("1a", False), ("A", False), ("a-b", False), ("a b", False), ("é", False),
                                      ("", False), ("order", False), ("user", False), ("by", False), ("values", False),
                                      (7, False), (None, False)])
def test_the_identifier_rule(name, ok):
    from simulator.identifiers import problem

    assert (problem(name, "table") is None) is ok


def test_an_empty_primary_config_is_refused_with_every_setting_it_lacks(compose, tmp_path):
    """compose(config_dir=DIR) replaces our primary config: an empty config.yaml is refused,
    naming each missing setting, not a traceback."""
    (tmp_path / "config.yaml").write_text("")
    with pytest.raises(ConfigError) as info:
        load_spec(compose(config_dir=str(tmp_path)))
    for fragment in ("n_partners: must be a whole number >= 1", "seed: must be a whole number >= 0",
                     "as_of: must be a date written YYYY-MM-DD", "output.formats: must be a non-empty list"):
        assert fragment in str(info.value)


def test_a_bad_input_on_the_command_line_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("as_of=20260101", out_dir=out, check=False)
    assert proc.returncode == 2 and "as_of: must be a date" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(p.suffix in (".csv", ".parquet", ".json") for p in out.rglob("*")) if out.exists() else True


def test_a_long_expression_is_shortened_in_the_message(compose):
    long = " or ".join(["days_since_last_interaction > 1"] * 20) + " or region == 'Brazl'"
    with pytest.raises(ConfigError) as info:
        load_spec(compose([f"scenarios.rules.Active_Churn.when=\"{long}\""]))
    assert "..." in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("text, fragment", [
    ("# @package _global_\nchurn:\n  target_rate: 0.3\n  target_rate: 0.2\n",
     "bad.yaml, line 4, column 3: the key 'target_rate' is given twice (first on line 3)"),
    ("# @package _global_\nchurn:\n  target_rate: [0.3\n", "bad.yaml, line 4, column 1: while parsing a flow sequence"),
    ("# @package _global_\nchurn:\n target_rate: 0.3\n  label: x\n", "bad.yaml, line 4"),
])
def test_a_broken_config_file_is_one_line_with_its_file_and_line(tmp_path, text, fragment):
    conf = tmp_path / "my_conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "bad.yaml").write_text(text)
    proc = run_cli(f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "experiment=bad",
                   out_dir=tmp_path / "run", check=False)
    assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


def test_chunks_that_cannot_fit_in_memory_are_refused_before_any_work(tmp_path):
    """Memory grows with the blocks in flight (workers x chunk), not the world."""
    proc = run_cli("n_partners=1000000000", "executor=processes", "executor.workers=64",
                   "executor.chunk_size=100000000", out_dir=tmp_path / "run", check=False)
    assert proc.returncode == 2 and "GiB of memory" in proc.stderr and "executor.chunk_size" in proc.stderr, proc.stderr


@pytest.mark.parametrize("where", ["hydra.run.dir", "output.dir"])
def test_an_unwritable_output_directory_is_refused_before_any_work(tmp_path, where):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    args = [f"output.dir={blocker / 'sub'}"] if where == "output.dir" else []
    out = blocker / "sub" if where == "hydra.run.dir" else tmp_path / "run"
    proc = run_cli("n_partners=1000", "db=none", *args, out_dir=out, check=False)
    assert proc.returncode == 2 and "cannot be" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_a_directory_where_nothing_can_be_made_is_refused_before_hydra():
    """/proc passes an access() check for root, yet refuses every mkdir: one line, exit 2,
    not Hydra's traceback."""
    proc = run_cli("n_partners=1000", "db=none", out_dir=Path("/proc/simulator-run"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert "hydra.run.dir: /proc/simulator-run cannot be created" in proc.stderr and "Traceback" not in proc.stderr
