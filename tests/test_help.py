"""``python -m simulator --help``: the project's own page (conf/hydra/help/simulator.yaml),
not Hydra's default config dump."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = (
    "python -m simulator [overrides]",
    "python -m simulator -m ...",
    "python -m simulator.diff RUN_A RUN_B [--format json]",
    "python -m simulator --cfg job --resolve",
)
EXIT_CODES = (
    "0  success",
    "1  an unexpected error",
    "2  a config problem",
    "3  a table failed its schema",
    "4  the database load failed",
)


def _help(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "simulator", *args, "--help"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_help_is_the_projects_page():
    proc = _help()
    assert proc.returncode == 0, proc.stderr
    page = proc.stdout
    assert "affiliate partner programme with known" in page and "ground truth" in page
    for command in COMMANDS:
        assert command in page, command
    # every command module of the package (one that runs as python -m simulator.<name>)
    entry = re.compile(r'^if __name__ == "__main__":', re.M)
    modules = sorted(p.stem for p in (ROOT / "simulator").glob("*.py")
                     if p.stem != "__main__" and entry.search(p.read_text()))
    assert {"arena", "diff", "evaluate"} <= set(modules)
    for name in modules:
        assert f"python -m simulator.{name} " in page, name
    # the config groups and their options, from Hydra's $APP_CONFIG_GROUPS
    groups = dict(line.split(": ", 1) for line in page.splitlines()
                  if re.match(r"^[a-z_]+: [a-z_]+(, [a-z_]+)*$", line))
    assert "brazil_heavy" in groups["region_mix"].split(", ")
    assert "network" in groups
    assert "region_mix=brazil_heavy n_partners=50000 seed=7" in page
    assert "-m seed=1,2,3 region_mix=uniform,brazil_heavy" in page
    for code in EXIT_CODES:
        assert re.search(rf"^\s*{re.escape(code)}", page, re.M), code
    # not a config dump
    assert not re.search(r"^\s*(n_partners|seed|as_of):", page, re.M)
    assert not re.search(r"^\s+columns:", page, re.M)
