"""Partners columns drawn after the stages whose columns they read.

Kind ``late_columns`` (any group name): ``columns`` declares partners columns in the grammar
of ``population.columns`` (parsed by ``spec.columns``, produced by ``stages.columns``, golden
pins put in as each is produced), and their ``by:``, expressions, bins and lookups may name
columns other stages write, such as the churn label. The population's columns come before
every stage (the churn rules read them); these are plan steps like any other, ordered by
what they read, so a late column sees its inputs finished. A stage that reads a late column
and feeds what that column reads would read its own outcome: the plan refuses the cycle with
the column's path. The columns join the partners table after the other stages' columns.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..errors import Problems
from ..review.data import FigureSpec, StageReview
from ..spec.columns import _columns
from ..spec.model import Domain
from ..spec.shape import Open
from ..stage import ParseContext
from .population import Population


@dataclass(frozen=True)
class LateColumns(Population):
    """The population's column steps (writes, reads, checks, steps, run, review) over
    this group's columns; the partners table and its key stay the population's."""

    table: str | None = None

    def ddl(self) -> dict[str, str]:
        return {}

    def review(self, world, tables) -> StageReview:
        return Population.review(replace(self, table=world.table), world, tables)

    def figures(self, world, tables) -> list[FigureSpec]:
        return []


class LateColumnsKind:
    name = "late_columns"
    defines_entity = False
    shape = {"kind": None, "columns": Open(None)}

    def owns(self, group: str, config: Mapping) -> dict[str, Domain]:
        return {}

    def parse(self, p: Problems, group: str, c: Mapping, ctx: ParseContext) -> LateColumns | None:
        """Its columns; every column known so far (the population's, and what the stages
        own) may be read, and a name already taken is refused."""
        ctx.names.keys(f"{group}.columns", c.get("columns"))
        cols, known = _columns(p, c.get("columns"), dict(ctx.domains), f"{group}.columns")
        ctx.domains.update(known)
        return LateColumns(group, self.name, tuple(cols))


KIND = LateColumnsKind()
