"""Config shapes: which keys a group may hold, so that a misspelled key is refused.

A shape is a dict of key -> sub-shape; ``None`` is a leaf whose value its parser checks;
:class:`Open` marks a mapping whose keys the user names (columns, rules, types), with
one shape for every entry; :class:`Each` a list with one shape per item. Each stage kind
declares its group's shape once, beside its parser; :func:`check_keys` walks the config.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from ..errors import Problems, did_you_mean


@dataclass(frozen=True)
class Open:
    """A mapping with user-chosen keys; each value has shape ``value``."""

    value: "Shape"


@dataclass(frozen=True)
class Each:
    """A list; each item has shape ``item``."""

    item: "Shape"


Shape = Union[None, Open, Each, Mapping[str, Any]]


def written_at(path: str, value: Any, groups: Mapping[str, Any]) -> str:
    """Where ``value``, found at ``path``, was written: the value group it equals (its
    values interpolated there: ``calendar``, not ``activity.calendar``), else ``path``."""
    return next((group for group, v in groups.items() if v and v == value), path)


def check_keys(p: Problems, path: str, value: Any, shape: Shape, groups: Mapping[str, Any] | None = None) -> None:
    """Add a problem for every key of ``value`` that ``shape`` does not know. ``groups``: the
    value groups' values; a mapping equal to one is reported at that group's path (the user
    wrote ``calendar.season``, which ``activity.calendar`` interpolates)."""
    if shape is None or value is None:
        return
    if groups and isinstance(value, Mapping):
        path = written_at(path, value, groups)
    if isinstance(shape, Open):
        if isinstance(value, Mapping):
            for k, v in value.items():
                check_keys(p, f"{path}.{k}", v, shape.value, groups)
        return
    if isinstance(shape, Each):
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                check_keys(p, f"{path}[{i}]", v, shape.item, groups)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k not in shape:
                p.add(f"{path}.{k}" if path else str(k), "unknown key" + did_you_mean(str(k), shape))
            else:
                check_keys(p, f"{path}.{k}" if path else str(k), v, shape[k], groups)
