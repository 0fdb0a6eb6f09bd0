"""The docs match the behaviour, and these tests keep them so (issue 26, item 6).

The README describes every column of every file a default run writes, and every file it
writes; every README section a config comment names exists; every ready world
(conf/experiment/) is named; the numbers the README quotes from the config are the config's.
"""
from __future__ import annotations

import csv
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _prose(text: str) -> list[str]:
    """The lines of a Markdown text outside its fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


HEADINGS = {m.group(1).strip() for line in _prose(README) for m in [re.match(r"#+\s+(.*)", line)] if m}
ROWS = [line for line in _prose(README) if line.startswith("|")]


def _ticked(text: str) -> set[str]:
    """The names in backticks (`a`, `a.b`: both 'a.b' and 'b')."""
    out = set()
    for quoted in re.findall(r"`([^`\n]+)`", text):
        for name in re.split(r"[,\s]+", quoted):
            out.update({name, name.split(".")[-1]})
    return out


def _described(column: str, names: set[str]) -> bool:
    """A column is named, or matches a named pattern (`effect_<type>`)."""
    if column in names:
        return True
    return any(re.fullmatch(re.sub(r"<[^>]+>", "[a-z0-9_]+", n), column) for n in names if "<" in n)


# ----------------------------------------------------------------------------- what a run writes

def test_every_column_of_every_written_file_is_described(default_run):
    """Each file's columns are named (in backticks) in its own row of the README's table of
    files, or are the first cell of a table that defines columns (the 18 features, the
    timeline's dates, the uplift truth)."""
    defined = set().union(*(_ticked(row.split("|")[1]) for row in ROWS))
    missing = {}
    files = sorted(default_run.dir.glob("*.parquet")) + sorted(default_run.dir.glob("*.csv"))
    assert files
    for path in files:
        own = [row for row in ROWS if re.match(rf"\| `{re.escape(path.stem)}\.(csv|parquet)`", row)]
        assert own, f"{path.name}: no row in the README's table of files"
        names = _ticked(" ".join(own)) | defined
        columns = pq.read_schema(path).names if path.suffix == ".parquet" else \
            next(csv.reader(path.open(newline="")))
        gaps = [c for c in columns if not _described(c, names)]
        if gaps:
            missing[path.name] = gaps
    assert not missing, f"columns the README does not describe: {missing}"


def _files_named() -> set[str]:
    """The file names in the first cells of the README's tables (`a.csv` / `.parquet`: both)."""
    out = set()
    for row in ROWS:
        stem = ""
        for name in re.findall(r"`([^`\n]+)`", row.split("|")[1]):
            if name.startswith(".") and stem and name != ".hydra/":
                name = stem + name
            stem = name.rsplit(".", 1)[0]
            out.add(name)
    return out


def test_every_file_of_a_run_and_of_evaluate_is_named(default_run):
    from simulator import evaluate

    files = {p.name + ("/" if p.is_dir() else "") for p in default_run.dir.iterdir()
             if not p.name.startswith(".") or p.name == ".hydra"}
    assert ".hydra/" in files and "manifest.json" in files
    unnamed = sorted(files - _files_named())
    assert not unnamed, f"files a run writes that the README's table of files does not name: {unnamed}"
    for name in (*evaluate.OUTPUTS, evaluate.OUTCOMES):
        assert f"`{name}`" in README, name


# ----------------------------------------------------------------------------- references into the README

def _comment_text(path: Path) -> str:
    """Every comment of a YAML file, joined into one text (a reference may wrap a line)."""
    parts = []
    for line in path.read_text().splitlines():
        if "#" in line:
            parts.append(line.split("#", 1)[1])
    return " ".join(" ".join(parts).split())


def _references() -> dict[str, list[str]]:
    """README section title -> the files whose comments or docstrings name it
    (`README "Title"`, `README: "Title"`)."""
    refs: dict[str, list[str]] = {}
    texts = [(p, _comment_text(p)) for p in sorted((ROOT / "conf").rglob("*.yaml"))]
    texts += [(p, " ".join(p.read_text().split())) for p in sorted((ROOT / "simulator").rglob("*.py"))]
    texts += [(p, " ".join(p.read_text().split()))
              for p in [ROOT / "docs" / "architecture.md", *sorted((ROOT / "schema").glob("*.sql"))]]
    for path, text in texts:
        for title in re.findall(r'README:?\s+"([^"]{2,80})"', text):
            refs.setdefault(title, []).append(str(path.relative_to(ROOT)))
    return refs


def test_config_comments_name_readme_sections():
    refs = _references()
    assert "The world's timeline" in refs and "How hard is the problem" in refs     # the parser finds them
    assert any(p.startswith("conf/") for files in refs.values() for p in files)


@pytest.mark.parametrize("title", sorted(_references()))
def test_every_readme_section_a_comment_names_exists(title):
    assert title in HEADINGS, f"README has no section {title!r} (named in {_references()[title]})"


def test_every_quoted_section_of_the_readme_exists():
    """The README's own `see "Title"` references: a heading starting with the title."""
    for title in re.findall(r'[sS]ee "([^"]+)"', " ".join(_prose(README))):
        found = any(h.startswith(title) for h in HEADINGS)
        assert found, title


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_is_documented(name):
    """Named in the groups table, and run or described in the prose: `experiment=NAME`."""
    in_table, in_prose = f"`{name}`" in README, f"experiment={name}" in README
    assert in_table and in_prose, name


# ----------------------------------------------------------------------------- --help

def _help(module: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _config_keys() -> list[str]:
    """What `python -m simulator --help` must describe: conf/config.yaml's top-level keys (a
    mapping's keys one level down too) and the groups of its defaults list."""
    config = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())
    keys = [k for k in config if k not in ("defaults", "hydra")]
    keys += [f"{k}.{sub}" for k in keys if isinstance(config[k], dict) for sub in config[k]]
    groups = [next(iter(e)) for e in config["defaults"] if isinstance(e, dict)]
    return keys + [g for g in groups if not g.startswith("override")]


def test_simulator_help_describes_every_key_and_group():
    from simulator.helppage import UNDESCRIBED

    page = _help("simulator")
    keys = _config_keys()
    assert {"n_partners", "seed", "block_size", "as_of", "timeline", "value_groups", "region_mix"} <= set(keys)
    for key in keys:
        line = re.search(rf"^  {re.escape(key)}(=\S*)?(\s+(?P<text>\S.*))?$", page, re.M)
        assert line, f"--help does not list {key}"
        text = line.group("text") or page[line.end():].splitlines()[1].strip()   # a long name: text below
        assert text and text != UNDESCRIBED, f"--help lists {key} without a description"
    assert "region_mix=uniform" in page and "n_partners=10000" in page      # the defaults, from the file
    assert "$" not in page


def test_the_resolved_hydra_config_shows_the_settings():
    """--cfg all --resolve resolves the help page too: the settings resolve, once."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "simulator", "--cfg", "all", "--resolve"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_settings_follow_the_config_file(tmp_path):
    """A key added to config.yaml is listed with its comment; one without a comment is marked."""
    from simulator.helppage import UNDESCRIBED, render

    config = tmp_path / "config.yaml"
    config.write_text("defaults:\n  - _self_\n  - region_mix: uniform   # region shares\n"
                      "n_partners: 10   # rows of ${x}\nnew_key: 3\nnested:   # a mapping\n  inner: x   # its key\n"
                      "  other: 1   # continued\n              #   on the next line\nhydra:\n  job: {chdir: false}\n")
    keys = render(config, "keys")
    assert re.search(r"^  n_partners=10\s+rows of \{x\}$", keys, re.M)       # never an interpolation
    assert re.search(rf"^  new_key=3\s+{re.escape(UNDESCRIBED)}$", keys, re.M)
    assert re.search(r"^  nested.other=1\s+continued on the next line$", keys, re.M)
    assert "hydra" not in keys and "chdir" not in keys
    assert re.search(r"^  region_mix=uniform\s+region shares$", render(config, "groups"), re.M)


RST = re.compile(r"``|::|:class:|:func:")


@pytest.mark.parametrize("module", ["simulator.evaluate", "simulator.diff", "simulator.arena"])
def test_command_help_is_plain_text_and_describes_every_option(module):
    import importlib

    page = _help(module)
    assert not RST.search(page), RST.search(page)
    mod = importlib.import_module(module)
    ap = mod.parser()
    for action in ap._actions:
        assert action.help, f"{module}: {action.option_strings or action.dest} has no description"
        for name in action.option_strings or [action.dest]:
            assert name in page, name


def test_evaluate_help_lists_the_prediction_columns():
    from simulator import predictions

    page = _help("simulator.evaluate")
    assert set(predictions.COLUMN_HELP) == {*predictions.SEED_COLUMNS, predictions.SNAPSHOT}
    for column in predictions.COLUMN_HELP:
        assert re.search(rf"^  {column}\s+\S", page, re.M), column


# ----------------------------------------------------------------------------- one spelling of markdown

def test_markdown_is_one_spelling_and_md_its_alias():
    from simulator import diff, evaluate, runfiles

    assert runfiles.FORMATS == ("markdown", "json")
    ev = evaluate.parser()
    df = diff.parser()
    assert ev.parse_args(["run", "--predictions", "p.csv"]).format == "markdown"
    assert df.parse_args(["a", "b"]).format == "markdown"
    for spelling in ("markdown", "md"):
        assert ev.parse_args(["run", "--predictions", "p.csv", "--format", spelling]).format == "markdown"
        assert df.parse_args(["a", "b", "--format", spelling]).format == "markdown"
    assert "--format markdown" in README and "--format md" not in README


# ----------------------------------------------------------------------------- schema/

def _declared(ddl: str) -> set[str]:
    """The column names of a schema/ file's CREATE TABLE (constraints left out)."""
    body = re.search(r"CREATE TABLE IF NOT EXISTS \w+ \((.*?)\n\);", re.sub(r"--[^\n]*", "", ddl), re.S).group(1)
    return {m.group(1) for m in re.finditer(r"^\s+(\w+)\s+[A-Z]", body, re.M)} - {"CONSTRAINT", "PRIMARY", "FOREIGN"}


def test_schema_declares_every_column_the_default_world_loads(default_run):
    """Every table the default world loads that has a schema/ file declares every column of
    the written table (the loader would add a missing one untyped and uncommented)."""
    import sqlite3

    from simulator.sinks import sql

    files = {sql.table_of(p): p for p in sql.ddl_files()}
    with sqlite3.connect(default_run.dir / "world.sqlite") as con:
        loaded = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    checked, missing = [], {}
    for table in loaded:
        written = default_run.dir / f"{table}.parquet"
        if table not in files or not written.exists():
            continue
        checked.append(table)
        gaps = [c for c in pq.read_schema(written).names if c not in _declared(files[table].read_text())]
        if gaps:
            missing[table] = gaps
    assert {"partners", "interventions", "uplift_truth", "network_relationships"} <= set(checked), checked
    assert not missing, f"columns written but not declared in schema/: {missing}"


# ----------------------------------------------------------------------------- benchmarks/

BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.name for p in BENCHMARKS])
def test_each_benchmark_imports_and_reads_its_yardstick_from_the_repository(script, monkeypatch):
    import importlib.util

    monkeypatch.delenv("YARDSTICKS", raising=False)
    monkeypatch.syspath_prepend(str(script.parent))
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)                 # imports only: every run is under main()
    bench = getattr(module, "BENCH", None)
    if bench is not None:
        assert bench.resolve().is_relative_to(ROOT), bench
        assert (bench / "reference_vectorized.py").is_file() and (bench / "seed_reference.py").is_file()
    text = script.read_text()
    assert '"shared" / "bench"' not in text and "../shared/bench" not in text     # no path outside the repo


def test_the_yardstick_copies_say_where_they_come_from():
    for path in (ROOT / "benchmarks" / "yardstick").glob("*.py"):
        assert f"Copied from /work/shared/bench/{path.name}" in path.read_text().splitlines()[0], path


def test_the_cheapest_benchmark_runs_from_the_repository_alone():
    """scale.py with only its yardstick row, on a tiny world: the copy in benchmarks/yardstick."""
    env = {k: v for k, v in os.environ.items() if k != "YARDSTICKS"}
    proc = subprocess.run([sys.executable, "benchmarks/scale.py", "--n", "1000",
                           "--skip", "like,processes,default,floor,quick"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^\| yardstick reference_vectorized\.py .*\| 1,000 \| [\d.]+ \|", proc.stdout, re.M), proc.stdout


# ----------------------------------------------------------------------------- numbers the README quotes

FLAT = " ".join(README.split())                      # the README with its line breaks undone


@functools.lru_cache(maxsize=None)
def _config(*overrides: str):
    from simulator import compose

    return compose(list(overrides))


def _get(path: str, *overrides: str):
    from omegaconf import OmegaConf

    value = OmegaConf.select(_config(*overrides), path, throw_on_missing=True)
    assert value is not None, path
    return value


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _mix(*overrides: str) -> str:
    mix = _get("interventions.mix", *overrides)
    return "/".join(f"{mix[t] * 100:g}" for t in ("call", "email", "none"))


def _road(label: str, at_cliff: bool = False, *overrides: str) -> float:
    return _get("population.columns.churn_path.weights", *overrides)[at_cliff][label]   # keys: YAML booleans


def _as_of_minus(days: int) -> str:
    import datetime as dt

    return str(dt.date.fromisoformat(_get("as_of")) - dt.timedelta(days=days))


def _window() -> int:
    return _get("timeline.episodes") * _get("timeline.episode_days")


# (what the README says, with {} where a config value goes; the values, from the config)
CLAIMS = [
    ('Top level: `n_partners` ({}), `seed` ({}), `as_of` ("{}"), `timeline` (`episodes: {}`, `episode_days: {}`',
     lambda: (_get("n_partners"), _get("seed"), _get("as_of"), _get("timeline.episodes"),
              _get("timeline.episode_days"))),
    ("the *feature date* is the day before the window (as_of minus {} days)", lambda: (_window(),)),
    ("feature date ({})", lambda: (_as_of_minus(_window()),)),
    ("in **blocks** of `block_size` partners ({:,} by default)", lambda: (_get("block_size"),)),
    ("`activity.auto_write_max` ({:,}) partners", lambda: (_get("activity.auto_write_max"),)),
    ("`target_rate` ({:.2f}) in the label window", lambda: (_get("churn.target_rate"),)),
    ("the declared {} of non-masters who left in the {} days before the feature date (`churn.earlier`",
     lambda: (_pct(_get("churn.earlier.share")), _get("churn.earlier.days"))),
    ("in the {} days before it (`network.recent_days`)", lambda: (_get("network.recent_days"),)),
    ('"recent" = the {} days before the feature date', lambda: (_get("network.recent_days"),)),
    ("{} of the networks are *failing* (`network.failing`): {} of the early leavers",
     lambda: (_pct(_get("network.failing.share")), _pct(_get("network.failing.concentration")))),
    ("fan-out {}-{}", lambda: (_get("network.fanout.low"), _get("network.fanout.high"))),
    ("the seed's {} mix by default", lambda: (_mix(),)),
    ("mix {}, first matching row per type, noise N({:g}, {:g}), clip [{:g}, {:g}]",
     lambda: (_mix(), _get("interventions.noise.loc"), _get("interventions.noise.scale"),
              _get("interventions.clip.min"), _get("interventions.clip.max"))),
    ("`brazil_heavy` (Brazil {})", lambda: (_pct(_get("region_mix.weights.Brazil", "region_mix=brazil_heavy")),)),
    ("`experiment=mature_eu` (EU/UK {}, tenure mean {:g} months, churn target {:g})",
     lambda: (_pct(sum(_get(f"region_mix.weights.{r}", "experiment=mature_eu") for r in ("EU", "UK"))),
              _get("population.columns.tenure_drawn.scale", "experiment=mature_eu") / 30,
              _get("churn.target_rate", "experiment=mature_eu"))),
    ("payouts in Brazil late {:g}x as often from {};",
     lambda: (_get("shocks.payment_crisis.effects", "experiment=payment_crisis")[0]["by"],
              _get("shocks.payment_crisis.start", "experiment=payment_crisis"))),
    ("{{multiply: population.columns.delay_drawn.p, by: {:g}}}",
     lambda: (_get("shocks.payment_crisis.effects", "experiment=payment_crisis")[0]["by"],)),
    ("{{shift: churn, by: \"{}\"}}", lambda: (_get("shocks.payment_crisis.effects", "experiment=payment_crisis")[1]["by"],)),
    ("within `executor.timeout` seconds ({})", lambda: (_get("executor.timeout", "executor=dask"),)),
    ("at least `scenarios.agreement` ({})", lambda: (_pct(_get("scenarios.agreement")),)),
    ("`churn.signal` ({:.1f}) scales every churn rule's weight", lambda: (_get("churn.signal"),)),
    ("`churn.signal: {:.1f}`, and far fewer dips", lambda: (_get("churn.signal", "experiment=easy_signal"),)),
    ("`churn.signal: {:g}`: churn is mostly chance", lambda: (_get("churn.signal", "experiment=hard_signal"),)),
    ("(`dip` {:g} instead of {:g}, `steady` {:g})",
     lambda: (_road("dip", False, "experiment=easy_signal"), _road("dip"),
              _road("steady", False, "experiment=easy_signal"))),
    ("on `Tier_Cliff_Anxiety`'s road with weight {:g}", lambda: (_road("Tier_Cliff_Anxiety", True),)),
    ("`steady` {:g}, `dip` {:g}, `Passive_Disengagement` {:g}, `Trust_Erosion` {:g} and `Active_Churn` {:g}",
     lambda: tuple(_road(r) for r in ("steady", "dip", "Passive_Disengagement", "Trust_Erosion", "Active_Churn"))),
    ("(`features.learnability.model_auc`, {:.2f}-{:.2f}",
     lambda: (_get("features.learnability.model_auc.min"), _get("features.learnability.model_auc.max"))),
    ("`features.learnability.feature_auc_max` {:.2f}", lambda: (_get("features.learnability.feature_auc_max"),)),
    ("the seed's {} features in its order",
     lambda: (sum(len(cols) for cols in _get("features.columns").values()),)),
    ("the {} golden records", lambda: ({5: "five"}.get(len(_get("golden.records")), len(_get("golden.records"))),)),
]


@pytest.mark.parametrize("claim, values", CLAIMS, ids=[c[0][:40] for c in CLAIMS])
def test_the_readme_quotes_the_config(claim, values):
    expected = claim.format(*values())
    found = expected in FLAT
    assert found, f"the README does not say {expected!r} (the config's values)"


def test_the_readme_quotes_the_default_run(default_run):
    """The counts the README gives "at the default" are the default run's (seed 42, 10k)."""
    partners, cohort = default_run.parquet("partners"), default_run.parquet("partners_engineered")
    per_partner = default_run.parquet("interventions").groupby("partner_id").size().value_counts()
    churners = int(cohort["churn_label"].sum())
    said = [f"at the default, {len(cohort):,} partners of whom {churners:,} ({churners / len(cohort):.1%}) churn",
            f"(`churn.earlier`: {len(partners) - len(cohort):,} at the default",
            f"so its own churn rate is {partners['churn_label'].mean():.1%}",
            f"at the default, {per_partner.get(3, 0):,} partners have 3, {per_partner.get(2, 0):,} have 2, "
            f"{per_partner.get(1, 0):,} have 1"]
    missing = [s for s in said if s not in FLAT]
    assert not missing, f"the README does not say (the default run's counts): {missing}"


GROUPS = sorted(p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name != "hydra")


def _options(group: str) -> set[str]:
    return {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")}


@pytest.mark.parametrize("group", GROUPS)
def test_the_readme_table_of_groups_names_every_option(group):
    row = [r for r in ROWS if r.startswith(f"| `{group}` |")]
    assert row, f"README's table of groups has no row for {group}"
    missing = _options(group) - _ticked(row[0].split("|")[2])
    assert not missing, f"README's row for {group} leaves out {sorted(missing)}"


def test_config_comments_that_list_options_list_them_all():
    """A defaults-list comment that enumerates a group's options (`a | b | c`) names them all."""
    wrong = {}
    for entry in (ROOT / "conf" / "config.yaml").read_text().split("defaults:", 1)[1].split("\n\n", 1)[0].splitlines():
        m = re.match(r"\s+- (\w+): \S+\s+#(.*)", entry)
        if m and " | " in m.group(2) and m.group(1) in GROUPS:
            named = set(re.findall(r"\w+", m.group(2))) & _options(m.group(1))
            if named != _options(m.group(1)):
                wrong[m.group(1)] = sorted(_options(m.group(1)) - named)
    assert not wrong, f"options left out of conf/config.yaml's comments: {wrong}"
