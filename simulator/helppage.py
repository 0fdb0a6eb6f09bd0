"""The settings section of ``python -m simulator --help``, read from ``conf/config.yaml``.

The help page (conf/hydra/help/simulator.yaml) lists every top-level key of the primary
config and every group of its defaults list, each with its default and the trailing comment
the YAML gives it, through the OmegaConf resolver ``${simulator.settings:groups}`` (and ``:keys``). So the page
cannot drift from the config: a new key or group is listed with its comment, and a key
without one is listed as undescribed (tests/test_docs.py refuses that).
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import yaml

RESOLVER = "simulator.settings"
SKIPPED = ("defaults", "hydra")                 # the defaults list (its groups are listed) and Hydra's own
UNDESCRIBED = "(no comment in conf/config.yaml)"
WIDTH = 100                                    # the page's width


def _split(line: str) -> tuple[str, str]:
    """(the YAML part, its trailing comment) of a line; a '#' inside quotes is not a comment."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "\"'" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1:].strip()
    return line, ""


def _shown(value: object) -> str:
    """A default as an override would spell it."""
    if isinstance(value, list):
        return "[" + ", ".join(map(_shown, value)) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def settings(config: Path) -> list[tuple[str, str]]:
    """(``key=default``, description) of every ``group=option`` of ``config``'s defaults list
    and every top-level key (a mapping's keys one level down as ``key.sub=default``), in file
    order; a description continues on the comment-only lines after its key."""
    values = yaml.safe_load(config.read_text()) or {}
    out: list[list[str]] = []
    top = None
    for line in config.read_text().splitlines():
        code, comment = _split(line)
        if not code.strip():
            if comment and line[:1].isspace() and out and top != "hydra":
                out[-1][1] = f"{out[-1][1]} {comment.lstrip('# ').strip()}".strip()
            continue
        if (m := re.match(r"^(\w+):", code)):
            top = m.group(1)
            if top in SKIPPED:
                continue
            value = values.get(top)
            out.append([top if isinstance(value, dict) else f"{top}={_shown(value)}", comment])
        elif top == "defaults" and (m := re.match(r"^\s+-\s+([\w/]+):\s*(\S+)", code)):
            group, option = m.groups()
            if not group.startswith("override") and "/" not in group:
                out.append([f"{group}={option}", comment])
        elif top == "defaults" and re.match(r"^\s+-\s", code):
            out.append(["", ""])                # _self_ or an override: holds its own comments
        elif top not in SKIPPED and isinstance(values.get(top), dict) and (m := re.match(r"^  (\w+):", code)):
            out.append([f"{top}.{m.group(1)}={_shown(values[top].get(m.group(1)))}", comment])
    return [(name, text or UNDESCRIBED) for name, text in out if name]


def render(config: Path, part: str) -> str:
    """The ``groups`` or the ``keys`` of :func:`settings` as the help page shows them: a name
    column, the description wrapped beside it."""
    groups = set(_groups(config))
    rows = [(name, text) for name, text in settings(config)
            if (name.split("=")[0] in groups) == (part == "groups")]
    column = min(max(len(name) for name, _ in rows) + 2, 26)
    lines = []
    for name, text in rows:
        wrapped = textwrap.wrap(text, WIDTH - column - 2) or [""]
        if len(name) + 2 > column:
            lines += [f"  {name}"] + [" " * (column + 2) + w for w in wrapped]
        else:
            lines += [f"  {name.ljust(column)}{wrapped[0]}"] + [" " * (column + 2) + w for w in wrapped[1:]]
    # "${" would be resolved again by --cfg all --resolve (a comment's "${...}" is not an
    # interpolation); "$" is string.Template's, on the help page
    return "\n".join(lines).replace("${", "{").replace("$", "$$")


def _groups(config: Path) -> list[str]:
    """The groups of the defaults list (``_self_`` and Hydra's overrides left out)."""
    entries = (yaml.safe_load(config.read_text()) or {}).get("defaults") or []
    return [next(iter(e)) for e in entries if isinstance(e, dict) and not next(iter(e)).startswith("override")]


def register(conf_dir: str) -> None:
    """``${simulator.settings:groups}`` and ``${simulator.settings:keys}`` for the help page,
    from ``conf_dir``'s config.yaml."""
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver(RESOLVER, lambda part: render(Path(conf_dir) / "config.yaml", part),
                                    replace=True)
