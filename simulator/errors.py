"""Errors a user sees: config problems collected all at once, and failed validations."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(Exception):
    """One or more problems in the composed config, each with its config path."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self, where: str = "the composed config") -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in {where}:"
        return "\n".join([head, *(f"  {i}. {p}" for i, p in enumerate(self.problems, 1))])


class ValidationError(Exception):
    """A generated table broke its schema or the world's invariants; the message names
    table, column, check and rows (simulator.schemas, simulator.invariants)."""


class Problems:
    """Collects problems during validation; raises them together."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        item = f"{path}: {message}"
        if item not in self.items:             # (two checks of one name say it once)
            self.items.append(item)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (known: a, b, c; did you mean 'x'?)' for an unknown name."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    if len(known) > 12:                        # too many to list: the nearest few, by spelling
        nearest = difflib.get_close_matches(name, known, n=6, cutoff=0.0)
        return f" ({len(known)} known, the nearest: {', '.join(nearest)}{hint})"
    return f" (known: {', '.join(known)}{hint})"
