"""Stages as plug-in kinds: a kind defined here, a world without a network, every key
checked, names from YAML, and no import cycles."""
from __future__ import annotations

import ast
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli
from simulator.errors import ConfigError, Problems
from simulator.load import load_spec
from simulator.plan import Step
from simulator.spec.model import Domain
from simulator.stage import BaseStage, ParseContext, RunContext


# ----------------------------------------------------------------------------- a toy kind

@dataclass(frozen=True)
class Referrals(BaseStage):
    """Who referred whom: each partner flagged `referred` names an earlier partner."""

    name: str
    kind: str
    table_name: str
    flag: str

    def reads(self):
        return [(f"{self.name}.flag", frozenset([self.flag]))]

    def steps(self):
        return [Step(self, self.name, frozenset([self.flag]), frozenset(), path=self.name)]

    def run(self, step: Step, ctx: RunContext) -> None:
        referred = np.flatnonzero(np.asarray(ctx.env[self.flag], dtype=bool)[1:]) + 1
        by = (ctx.rng("referrals", "by").random(referred.size) * referred).astype(np.int64)
        ids = ctx.env[ctx.world.key]
        ctx.tables[self.table_name] = pd.DataFrame({"referred": ids.take(referred), "referrer": ids.take(by)})

    def tables(self):
        return (self.table_name,)

    def schemas(self, world, tables):
        import pandera.pandas as pa

        from simulator.table_checks import member_of

        pids = tables[world.table][world.key]
        return {self.table_name: pa.DataFrameSchema({
            "referred": pa.Column("str", unique=True, checks=member_of(pids, "is a partner")),
            "referrer": pa.Column("str", checks=member_of(pids, "is a partner")),
        }, strict=True, name=self.table_name)}


class ReferralsKind:
    name = "referrals"
    shape = {"kind": None, "table": None, "flag": None}
    defines_entity = False

    def owns(self, group: str, config: Mapping) -> dict[str, Domain]:
        return {}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext):
        return Referrals(group, self.name, str(c.get("table", "referrals")), str(c.get("flag")))


def test_a_new_stage_kind_is_one_class_one_registration_and_yaml(compose, tmp_path, monkeypatch):
    from simulator import registry
    from simulator.run import run

    monkeypatch.setitem(registry.STAGE_KINDS, "referrals", ReferralsKind())
    cfg = compose(["n_partners=600", "activity.write=false", "+referrals.kind=referrals",
                   "+referrals.table=referrals", "+referrals.flag=is_master_affiliate"])
    report = run(cfg, tmp_path)
    table = pd.read_csv(tmp_path / "referrals.csv")
    partners = pd.read_csv(tmp_path / "partners.csv")
    assert len(table) == partners["is_master_affiliate"].iloc[1:].sum() > 0
    assert set(table["referrer"]) <= set(partners["partner_id"])
    assert report.rows["referrals"] == len(table)
    with sqlite3.connect(tmp_path / "world.sqlite") as conn:     # loaded too, with a DDL from its dtypes
        assert conn.execute("SELECT count(*) FROM referrals").fetchone()[0] == len(table)
    with pytest.raises(ConfigError, match=r"referrals.flag: unknown column 'is_mastr'"):
        load_spec(compose(["+referrals.kind=referrals", "+referrals.flag=is_mastr"]))
    with pytest.raises(ConfigError, match=r"referrals.colour: unknown key"):
        load_spec(compose(["+referrals.kind=referrals", "+referrals.flag=is_master_affiliate",
                           "+referrals.colour=red"]))


def test_a_kind_of_your_own_has_its_names_checked_without_declaring_them(compose, monkeypatch):
    """load_spec declares every table and column a stage writes that its parser did not, so
    a plug-in kind cannot slip a name past the identifier rule (simulator.identifiers)."""
    from simulator import registry

    monkeypatch.setitem(registry.STAGE_KINDS, "referrals", ReferralsKind())
    for table, fragment in (("'../referrals'", "is not a valid table name"), ("order", "is a reserved word"),
                            ("partners", "is also the table of population.table")):
        with pytest.raises(ConfigError) as info:
            load_spec(compose(["+referrals.kind=referrals", f"+referrals.table={table}",
                               "+referrals.flag=is_master_affiliate"]))
        assert any(p.startswith("referrals: ") and fragment in p for p in info.value.problems), info.value.problems


# ----------------------------------------------------------------------------- network=none

def test_a_world_without_a_network(tmp_path):
    run_cli("network=none", "n_partners=2000", "output.report=false", out_dir=tmp_path)
    assert not (tmp_path / "network_relationships.csv").exists()
    partners = pd.read_csv(tmp_path / "partners.csv")
    engineered = pd.read_csv(tmp_path / "partners_engineered.csv")
    for frame in (partners, engineered):
        assert not any(c.startswith("subnetwork_") for c in frame.columns)
    assert "Network_Contagion" not in set(partners["churn_scenario"])
    assert partners["is_master_affiliate"].any()                 # masters stay, recruiting no one
    with sqlite3.connect(tmp_path / "world.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM network_relationships").fetchone()[0] == 0


def test_without_a_network_a_rule_that_reads_it_is_refused(compose):
    with pytest.raises(ConfigError) as info:
        load_spec(compose(["network=none",
                           "churn.rules.contagion={when:'subnetwork_recent_churn_count > 2',weight:2.0}"]))
    assert any(p.startswith("churn.rules.contagion: unknown column 'subnetwork_recent_churn_count'")
               for p in info.value.problems)


# ----------------------------------------------------------------------------- every key known

@pytest.mark.parametrize("override, path, hint", [
    ("+churn.target_rat=0.3", "churn.target_rat", "target_rate"),
    ("+churn.rules.silence.wieght=3", "churn.rules.silence.wieght", "weight"),
    ("+network.fanot.low=5", "network.fanot", "fanout"),
    ("+db.pth=x.sqlite", "db.pth", "path"),
    ("+n_partner=5", "n_partner", "n_partners"),
    ("+scenarios.rules.Active_Churn.whne=x", "scenarios.rules.Active_Churn.whne", "when"),
    ("+interventions.effects.call.0.efect=1", "interventions.effects.call[0].efect", "effect"),
    ("+output.formt=csv", "output.formt", "formats"),
    ("+golden.candidate=3", "golden.candidate", "candidates"),
    ("+activity.fomats=[csv]", "activity.fomats", "formats"),
    ("+population.id.colum=x", "population.id.colum", "column"),
])
def test_an_unknown_key_is_refused_with_its_path_and_a_suggestion(compose, override, path, hint):
    with pytest.raises(ConfigError) as info:
        load_spec(compose([override]))
    assert any(p.startswith(f"{path}: unknown key") and f"did you mean '{hint}'" in p
               for p in info.value.problems), info.value.problems


def test_a_typo_in_an_experiment_file_is_refused_and_all_problems_come_together(tmp_path):
    exp = tmp_path / "conf" / "experiment"
    exp.mkdir(parents=True)
    (exp / "typo.yaml").write_text("# @package _global_\nchurn:\n  target_rat: 0.3\nnetwork:\n  fanot: {low: 5}\n")
    proc = run_cli(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=typo",
                   out_dir=tmp_path / "out", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "2 problems" in proc.stderr and "churn.target_rat: unknown key" in proc.stderr
    assert "network.fanot: unknown key" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_open_mappings_are_open_by_declaration(compose):
    spec = load_spec(compose(["+population.columns.bonus.dist=exponential", "+population.columns.bonus.scale=5",
                              "+churn.rules.bonus_rule.when='bonus > 3'", "+churn.rules.bonus_rule.weight=0.1"]))
    assert "bonus" in spec.domains()


# ----------------------------------------------------------------------------- names from YAML

def test_table_names_and_the_key_column_come_from_yaml(tmp_path):
    names = {"population.table": "affiliates", "network.table": "edges", "interventions.table": "actions",
             "interventions.truth_table": "truth", "features.table": "model_input",
             "activity.histories.daily.table": "daily_log", "activity.histories.tickets.table": "tickets"}
    run_cli("n_partners=1500", "population.id.column=affiliate_id", "output.report=true",
            *(f"{k}={v}" for k, v in names.items()), out_dir=tmp_path)
    written = {p.stem for p in tmp_path.iterdir() if p.suffix in (".csv", ".parquet")}
    assert set(names.values()) <= written
    assert not written & {"partners", "network_relationships", "interventions", "uplift_truth",
                          "partners_engineered", "activity_daily", "support_tickets"}
    for table in ("affiliates", "actions", "truth", "model_input"):
        assert "affiliate_id" in pd.read_csv(tmp_path / f"{table}.csv").columns, table
    for table in ("daily_log", "tickets", "payouts"):
        cols = pd.read_parquet(tmp_path / f"{table}.parquet").columns
        assert "affiliate_id" in cols and "partner_id" not in cols, table
    with sqlite3.connect(tmp_path / "world.sqlite") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"affiliates", "edges", "actions", "truth", "model_input", "predictions"} <= tables
        assert not tables & {"partners", "network_relationships", "interventions", "uplift_truth"}
        cols = {r[1] for r in conn.execute("PRAGMA table_info(affiliates)")}
        assert "affiliate_id" in cols and "partner_id" not in cols
        assert conn.execute("SELECT count(*) FROM actions").fetchone()[0] == len(pd.read_csv(tmp_path / "actions.csv"))
    assert "Histories by churn class" in (tmp_path / "report.html").read_text()   # found by kind


# ----------------------------------------------------------------------------- imports

def _imports(package: Path) -> dict[str, dict[str, list[str]]]:
    """Module -> each module of ``package`` it imports -> where (``line N``, plus ``in a
    function`` or ``for typing``): every import statement, at module level, inside functions
    and classes, and under ``if TYPE_CHECKING`` (a cycle of types is a cycle of concepts);
    ``import a.b``, ``from a import b`` (the submodule b when there is one, else a), and
    relative imports of any level (``from . import x``, ``from ..x import y``). A package's
    implicit import of its parents is not an edge: Python runs them first, whoever imports."""
    modules = {".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}
    out: dict[str, dict[str, list[str]]] = {}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text())
        typing = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                  for stmt in node.body for n in ast.walk(stmt)}
        local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                 for n in ast.walk(f) if n is not f}
        deps: dict[str, list[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = mod.split(".") + ([""] if path.name == "__init__.py" else [])
                    source = ".".join(parts[: len(parts) - node.level] + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            else:
                continue
            where = f"line {node.lineno}" + (" for typing" if id(node) in typing else "") \
                + (" in a function" if id(node) in local else "")
            for target in targets:
                if target in modules and target != mod and where not in deps.get(target, []):
                    deps.setdefault(target, []).append(where)
        out[mod] = deps
    return out


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Each import cycle, as the edges among a group of modules that all reach each other."""
    edges = {m: set(d) for m, d in graph.items()}
    reach = {m: _reachable(edges, m) for m in edges}
    groups: list[list[str]] = []
    for m in sorted(edges):
        group = sorted(x for x in reach[m] if m in reach[x])
        if len(group) > 1 and group[0] == m:   # each group once, from its first module
            groups.append([f"{a} -> {b} ({', '.join(graph[a][b])})" for a in group for b in sorted(graph[a])
                           if b in group])
    return groups


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others (itself included)."""
    reach, frontier = {start}, [start]
    while frontier:
        frontier = [d for m in frontier for d in edges.get(m, ()) if d not in reach]
        reach |= set(frontier)
    return reach


def test_the_import_walker_sees_every_form(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {"__init__.py": "from . import a\n", "a.py": "import pkg.b\n", "b.py": "from .c import name\n",
             "c.py": "def f():\n    from . import d\n", "d.py": "from .sub import e\n",
             "sub/__init__.py": "", "sub/e.py": "from ..f import thing\n",
             "f.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.e import x\n"}
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = _imports(pkg)
    assert {m: sorted(d) for m, d in graph.items() if d} == {
        "pkg": ["pkg.a"], "pkg.a": ["pkg.b"], "pkg.b": ["pkg.c"], "pkg.c": ["pkg.d"], "pkg.d": ["pkg.sub.e"],
        "pkg.sub.e": ["pkg.f"], "pkg.f": ["pkg.sub.e"]}
    assert graph["pkg.c"]["pkg.d"] == ["line 2 in a function"] and graph["pkg.f"]["pkg.sub.e"] == ["line 3 for typing"]
    assert _cycles(graph) == [["pkg.f -> pkg.sub.e (line 3 for typing)", "pkg.sub.e -> pkg.f (line 1)"]]


def test_the_package_has_no_import_cycles():
    graph = _imports(ROOT / "simulator")
    assert "simulator.spec.model" in graph["simulator.stages.churn"]      # the walker sees imports...
    assert "simulator.threads" in graph["simulator.schemas"]              # ...`from . import x`...
    assert "simulator.streams" in graph["simulator.stage"]                # ...and those inside functions
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join("  " + "; ".join(c) for c in cycles)


def test_a_users_tree_adds_a_region_and_an_intervention_type_in_yaml_only(tmp_path):
    """The README's worked example, its two files as the README shows them."""
    import re

    from simulator import compose, generate

    readme = (ROOT / "README.md").read_text()
    for path in ("region_mix/latam.yaml", "experiment/sms.yaml"):
        block = re.search(rf"```yaml\n# my_conf/{re.escape(path)}\n(.*?)```", readme, re.S)
        assert block, f"README's my_conf/{path}"
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(block.group(1))
    tables = generate(compose(["n_partners=1500", "experiment=sms", "activity.write=false"],
                              user_conf=str(tmp_path)))
    assert set(tables["partners"]["region"]) == {"Brazil", "Mexico", "EU"}
    assert "sms" in set(tables["interventions"]["intervention_type"])
    truth = tables["uplift_truth"].merge(tables["partners"][["partner_id", "region"]], on="partner_id")
    assert set(truth.loc[truth["region"] == "Mexico", "declared_effect_sms"]) == {-0.2}
