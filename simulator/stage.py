"""The contract every stage kind fulfils, and the context a stage runs in.

A *stage kind* (:class:`StageKind`) is one module under ``simulator/stages/`` registered
in :data:`simulator.registry.STAGE_KINDS`; YAML names it: every top-level config group
with a ``kind:`` is a stage of that kind. The kind owns its group's config shape and its
parsing; the parsed :class:`Stage` owns what it reads and writes (with the domains of
what it writes), its plan steps and their run, the schemas of the tables it writes, its
invariants and its golden-record hooks. What the review (stats.json, report.html) needs
it hands over as plain records (``simulator.review.data``) through the separate
:class:`Reviewed` protocol: ``review`` (declared targets, realized values) and ``figures``
(figure specifications); it never imports the review.
The plan, the engine, the schemas, stats and the report iterate over stages and know none
of them by name. :class:`BaseStage` gives every optional part a neutral default.

The world (:class:`WorldSpec`: the settings and the stages) and a stage's unit of work
(:class:`Step`) are defined here too: each refers to the stage contract and the contract
to them, so one module holds all three and no import goes round in a circle.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from .errors import Problems
from .expr import Expr
from .identifiers import Names
from .review.data import FigureSpec, StageReview
from .spec.model import DbSpec, Domain, ExecutorSpec, GoldenRecord, IdSpec, Timeline
from .spec.shape import Shape

if TYPE_CHECKING:
    import pandera.pandas as pa

    from .spec.faults import Faults, HistoryFaults, Missing, Reactivations
    from .spec.shocks import Shock, ShockEffect


@dataclass
class ParseContext:
    """What a kind's parser may know of the rest of the world.

    ``domains`` holds every column known so far: the columns other stages own outright
    (declared before any stage is parsed) and those of the stages parsed before this one
    (the entity stage is parsed first). ``n`` is None when n_partners is invalid.
    ``names``: where a parser declares every table and column name its group gives, with
    its config path (simulator.identifiers checks them all, with the other problems)."""

    n: int | None
    domains: dict[str, Domain]
    timeline: "Timeline | None" = None        # None when as_of or the timeline is invalid
    names: Names = field(default_factory=Names)
    shocks: tuple["Shock", ...] = ()          # the declared shocks (simulator.spec.shocks)
    claimed: set[str] = field(default_factory=set)   # the config paths of the effects (and faults) a stage took
    faults: "Faults | None" = None            # the declared warehouse faults (simulator.spec.faults)
    histories: tuple[str, ...] | None = None  # the world's raw histories, once a stage declared them (None: none)
    values: Mapping[str, Any] = field(default_factory=dict)   # the value groups (calendar, ...), resolved

    def path_of(self, path: str, value: Any) -> str:
        """Where ``value``, found at ``path``, was written (:func:`simulator.spec.shape.written_at`)."""
        from .spec.shape import written_at

        return written_at(path, value, self.values)

    def shock_effects(self, kind: str, group: str) -> list[tuple["Shock", "ShockEffect"]]:
        """The shocks' effects of ``kind`` (multiply, shift, scale) on a parameter of
        ``group`` (its target is the group or under it), claimed by the caller, which
        checks the rest of the target and applies them; an effect no stage claims is
        refused when the config is loaded."""
        out = [(s, e) for s in self.shocks for e in s.effects
               if e.kind == kind and (e.target == group or e.target.startswith(group + "."))]
        self.claimed.update(e.path for _, e in out)
        return out

    def missing_values(self, columns: "list[str] | tuple[str, ...]") -> tuple["Missing", ...]:
        """The declared missing values (faults.missing) of ``columns``, claimed by the caller,
        which applies them to its tables; one no stage claims is refused when the config is
        loaded."""
        out = tuple(m for m in (self.faults.missing if self.faults else ()) if m.column in columns)
        self.claimed.update(m.path for m in out)
        return out

    def reactivations(self) -> "Reactivations | None":
        """The declared reactivations (faults.reactivations), claimed by the caller, the stage
        that dates the churn."""
        out = self.faults.reactivations if self.faults else None
        if out is not None:
            self.claimed.add(out.path)
        return out

    def history_faults(self, history: str) -> "HistoryFaults | None":
        """The declared faults of ``history``'s table (late rows, duplicates, outages), claimed
        by the caller, which applies them; one no stage claims is refused when the config is
        loaded."""
        out = self.faults.of_history(history) if self.faults else None
        self.claimed.update(out.paths if out else ())
        self.histories = (*(self.histories or ()), history)
        return out


class StageKind(Protocol):
    """A kind of stage: parses one config group into a :class:`Stage`."""

    name: str                                  # the value of the group's `kind:`
    shape: Shape                               # the group's keys (simulator.spec.shape)
    defines_entity: bool                       # its stage defines the partners table (parsed first)

    def owns(self, group: str, config: Mapping) -> dict[str, Domain]:
        """Columns the group will write whatever else it declares, from its raw config,
        tolerant of errors (other stages' parsers see them before this one is parsed)."""

    def parse(self, p: Problems, group: str, config: Mapping, ctx: ParseContext) -> "Stage | None":
        """The typed stage, or None after adding its problems (each with a config path)."""


@dataclass(frozen=True)
class Step:
    """One step of the plan: a stage's unit of work, with the columns it reads and writes."""

    stage: "Stage"
    name: str
    reads: frozenset[str]
    writes: frozenset[str]
    payload: Any = None           # what the stage needs to run the step (a column, a history)
    path: str | None = None       # config path named in a cycle error
    scope: tuple[str, str] | None = None   # ('outside' | 'inside', column): the rows of a split pass
    scope_column: str | None = None        # a scoped step (see the module docstring)
    splittable: bool = False
    inside_reads: frozenset[str] = frozenset()   # of a splittable step: what only its inside pass reads
    moves: frozenset[str] = frozenset()    # columns whose values at other dates its run gives (a horizon's
                                           #   features): a step reading one runs after it (unless it must first)


@dataclass(frozen=True)
class WorldSpec:
    """Everything a run needs, validated. Built once by :func:`simulator.load.load_spec`.

    ``stages`` are the config groups that name a ``kind:``, in config order; exactly one
    of them (the entity stage) defines the partners table and its key."""

    n: int
    seed: int
    as_of: np.datetime64
    stages: tuple["Stage", ...]
    golden: tuple[GoldenRecord, ...]
    golden_candidates: int
    formats: tuple[str, ...]
    output_dir: str | None
    db: DbSpec
    report: bool
    resolved: Mapping[str, Any]               # the resolved config, for hashing and reports
    timeline: Timeline | None = None
    executor: ExecutorSpec = ExecutorSpec()
    block_size: int = 65_536                  # partners per block (simulator.chunks): a data setting
    block: int = 0                            # a block's own spec (simulator.chunks): its index,
    offset: int = 0                           #   and the world row of its first partner
    shocks: tuple["Shock", ...] = ()          # dated events (simulator.spec.shocks), applied by their stages
    faults: "Faults | None" = None            # warehouse faults (simulator.spec.faults), applied by their stages

    @property
    def feature_date(self) -> np.datetime64:
        """The last day features observe (as_of minus the label window)."""
        return self.timeline.feature_date if self.timeline else self.as_of

    @property
    def golden_rows(self) -> list[int]:
        """The rows of the golden records (a block's: block 0 holds them all)."""
        return [rec.row for rec in self.golden]

    @property
    def entity(self) -> "Stage":
        """The stage whose table has one row per partner."""
        return next(s for s in self.stages if s.entity is not None)

    @property
    def key(self) -> str:
        """The partners table's key column (population.id.column)."""
        return self.entity.entity.column

    @property
    def table(self) -> str:
        """The partners table's name."""
        return self.entity.table

    def stage(self, name: str) -> "Stage | None":
        """The stage of config group ``name``, or None when the world leaves it out."""
        return next((s for s in self.stages if s.name == name), None)

    def role(self, role: str) -> str | None:
        """The column a stage declares for ``role`` (e.g. 'label': the churn label)."""
        return next((s.roles()[role] for s in self.stages if role in s.roles()), None)

    def domains(self) -> dict[str, Domain]:
        """Every column of the partners table (and helpers) -> its domain."""
        out = {self.key: Domain("str")}
        for s in self.stages:
            out.update(s.writes())
        return out

    @property
    def output_columns(self) -> list[str]:
        """The partners table's columns in order: the key, then each stage's."""
        return [self.key, *(c for s in self.stages for c in s.output_columns())]

    @property
    def files_only(self) -> dict[str, tuple[str, ...]]:
        """Tables written as files only (in their own formats), not loaded into the database."""
        return {t: f for s in self.stages for t, f in s.files_only().items()}


class GoldenRows(Protocol):
    """What a step may use of the golden records of its block (simulator.stages.golden.Golden)."""

    rows: np.ndarray                           # row positions of the records, in record order
    pins: Mapping[str, tuple[np.ndarray, list]]  # column -> (record positions, pinned values)

    def apply(self, name: str, values: object) -> object:
        """Put the golden rows' values of ``name`` into a freshly produced column."""


def block_stream(seed: int, block: int, *names: str) -> np.random.Generator:
    """The named stream of block ``block``: block 0 keeps the bare names, so a world of one
    block draws as before blocks existed; block b appends its index."""
    from .streams import stream

    return stream(seed, *names, *([f"block {block}"] if block else []))


@dataclass
class RunContext:
    """The state of one generation, handed to each step: the columns produced so far by
    name (``env``), the tables written so far, facts for the manifest, named streams."""

    world: WorldSpec
    gold: GoldenRows
    env: dict[str, object]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)
    given: Mapping[str, float] = field(default_factory=dict)   # world-level solutions (simulator.chunks)
    solved: dict[str, float] = field(default_factory=dict)     # those used here, to hand on
    cache: dict[str, object] = field(default_factory=dict)     # a stage's own arrays for this block (not facts)
    observed: dict[str, list[np.ndarray]] = field(default_factory=dict)
    # feature -> its values per snapshot as the faulty warehouse tables give them (simulator.spec.faults;
    # the model-ready tables read these, the partners table the clean values in env)

    @property
    def n(self) -> int:
        return self.world.n

    @functools.cached_property
    def id_dtype(self) -> pd.CategoricalDtype:
        """A categorical dtype over every partner id, in partners order (built once): the
        key column of long tables, 4 bytes a row, whose codes are partners rows."""
        return pd.CategoricalDtype(pd.Index(self.env[self.world.key]))

    def rng(self, *names: str) -> np.random.Generator:
        """The named stream of this block (:func:`block_stream`)."""
        return block_stream(self.world.seed, self.world.block, *names)

    def solve(self, name: str, compute) -> float:
        """A world-level quantity (e.g. the churn intercept): the one handed to this block,
        else computed here (the first block) and recorded in the facts."""
        value = self.given[name] if name in self.given else compute()
        self.facts[name] = self.solved[name] = value
        return value


class Stage(Protocol):
    """A parsed stage (one config group)."""

    name: str                                  # the config group, the prefix of its paths
    kind: str
    entity: IdSpec | None                      # set on the one stage whose table is the partners table
    table: str | None                          # the entity stage's table name

    def writes(self) -> dict[str, Domain]:
        """Every partners column (and helper) this stage writes, with its domain."""

    def output_columns(self) -> list[str]:
        """The partners-table columns it writes, in table order."""

    def roles(self) -> dict[str, str]:
        """Role -> column, for what other code needs to find without a name
        (e.g. 'label' for the churn label, 'scenario')."""

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        """(config path, columns read there): every name is checked against the world's."""

    def expressions(self) -> list[tuple[str, "Expr", str | None]]:
        """(config path, expression, expected type: bool | number | None) of every
        expression it evaluates, type-checked at load (simulator.exprtypes)."""

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        """Cross-checks once every stage is parsed (e.g. a column must be boolean)."""

    def lookback(self) -> list[tuple[str, int]]:
        """(config path, days) of each day count that takes this stage's dates further back
        than the feature date, beyond where the other stages' dates end (early leavers'
        observation ends, then the histories before them): load_spec adds them up for the
        earliest date the world can write."""

    def steps(self) -> list["Step"]:
        """This stage's plan nodes."""

    def run(self, step: "Step", ctx: RunContext) -> None:
        """Run one of its steps: arrays in ``ctx.env`` in, arrays and tables out."""

    def varying(self) -> frozenset[str]:
        """The partners columns it writes whose value moves with the date: the partners
        table holds the partner's state at the feature date, :meth:`state_at` gives it at
        any other day."""

    def state_at(self, ctx: RunContext, when: np.datetime64, gone: np.ndarray,
                 state: Mapping[str, object]) -> dict[str, object]:
        """Its :meth:`varying` columns as of the day ``when``, given every partner's churn
        date so far (``gone``: NaT for a partner still active) and ``state``, the columns
        as of that day of the stages it reads (simulator.state), after its step has run:
        what a churn process that moves through time reads at each period's start, and a
        snapshot's row."""

    def kept(self, ctx: RunContext):
        """What :meth:`state_at` moves in ``ctx`` besides its answer (a process it advances
        with the periods), kept: each call of what it returns puts it back as it was, so
        every trial play through the periods (simulator.stages.churn: the first periods'
        intercept) starts from it and the run goes on as it found it."""

    def follow(self, ctx: RunContext, state: Mapping[str, object], given: frozenset[str]) -> dict[str, object]:
        """Its moving columns derived from others that read a column of ``given``, which a
        later stage gave ``state`` on top of its own (simulator.state), recomputed from
        ``state``: what is derived follows the value shown, not the one it was made from."""

    def follows(self, names: frozenset[str]) -> frozenset[str]:
        """The columns its derived columns among ``names`` read, in turn: a later stage
        giving one of them must be in the state too (simulator.state.movers)."""

    def measures(self) -> frozenset[str]:
        """The drawn columns of other stages that it replaces at the feature date by what
        it measures (a horizon's histories): not the declared draw there."""

    def decides(self) -> frozenset[str]:
        """The columns its per-period decisions read (empty: it decides nothing per period)."""

    def decide_at(self, ctx: RunContext, period: int, state: Mapping[str, object]) -> None:
        """Decide period ``period`` again on ``state`` (the columns as of its start, when a
        column :meth:`decides` reads has moved), updating its helpers in ``ctx.env``; the
        same draws every time, so the churn process may play a period as often as it needs."""

    def finish(self, ctx: RunContext, partners: pd.DataFrame) -> None:
        """After every step and the golden check: tables built from the partners table."""

    def tables(self) -> tuple[str, ...]:
        """Names of the tables (other than the partners table) it writes."""

    def files_only(self) -> dict[str, tuple[str, ...]]:
        """Its tables written as files only, with their formats (not loaded into a database)."""

    def ddl(self) -> dict[str, str]:
        """Table -> the schema/ DDL table that describes it (the loader renames it)."""

    def schemas(self, world: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> dict[str, "pa.DataFrameSchema"]:
        """pandera schemas of its tables."""

    def column_checks(self) -> dict[str, list["pa.Check"]]:
        """Extra checks on the partners columns it writes."""

    def row_checks(self) -> list[tuple[frozenset[str], "pa.Check"]]:
        """Partners-table checks across its columns (e.g. 'date set exactly for churners'),
        each with the columns it reads (a projection keeps the checks it can hold)."""

    def invariants(self, world: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> list[dict]:
        """What the timeline implies across its tables: ``{invariant, violations}`` each
        (simulator.invariants); any violation fails the run."""

    def notices(self, world: WorldSpec) -> list[str]:
        """Warnings for the user before generation (e.g. what a size setting implies)."""

    def golden_filter(self, env: Mapping[str, object], pins: Mapping, record_of: np.ndarray,
                      m: int) -> tuple[np.ndarray, dict[int, str]] | None:
        """Golden hook: among candidate draws (``env``: pre-stage columns, and stage
        columns filled with pins), which agree with this stage's pinned outcome."""


class Reviewed(Protocol):
    """What a stage hands the review (simulator.review), apart from generating and checking:
    plain records, never a drawing (simulator.review.data)."""

    def review(self, world: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> StageReview:
        """What stats.json needs: declared targets beside realized values, and headline
        realized values or measures."""

    def figures(self, world: WorldSpec, tables: Mapping[str, pd.DataFrame]) -> list[FigureSpec]:
        """The report's panels, as figure specifications; the review draws them."""


class BaseStage:
    """Neutral defaults for the optional parts of :class:`Stage` and :class:`Reviewed`."""

    entity: IdSpec | None = None
    table: str | None = None

    def writes(self) -> dict[str, Domain]:
        return {}

    def output_columns(self) -> list[str]:
        return []

    def roles(self) -> dict[str, str]:
        return {}

    def reads(self) -> list[tuple[str, frozenset[str]]]:
        return []

    def expressions(self) -> list:
        return []

    def check(self, p: Problems, domains: Mapping[str, Domain]) -> None:
        return None

    def lookback(self) -> list[tuple[str, int]]:
        return []

    def steps(self) -> list["Step"]:
        return []

    def run(self, step: "Step", ctx: RunContext) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no steps")

    def varying(self) -> frozenset[str]:
        return frozenset()

    def state_at(self, ctx: RunContext, when, gone, state) -> dict[str, object]:
        return {}

    def kept(self, ctx: RunContext):
        return lambda: None

    def follow(self, ctx: RunContext, state, given) -> dict[str, object]:
        return {}

    def follows(self, names: frozenset[str]) -> frozenset[str]:
        return frozenset()

    def measures(self) -> frozenset[str]:
        return frozenset()

    def decides(self) -> frozenset[str]:
        return frozenset()

    def decide_at(self, ctx: RunContext, period: int, state) -> None:
        return None

    def finish(self, ctx: RunContext, partners: pd.DataFrame) -> None:
        return None

    def tables(self) -> tuple[str, ...]:
        return ()

    def files_only(self) -> dict[str, tuple[str, ...]]:
        return {}

    def ddl(self) -> dict[str, str]:
        return {}

    def schemas(self, world, tables) -> dict:
        return {}

    def column_checks(self) -> dict:
        return {}

    def row_checks(self) -> list:
        return []

    def invariants(self, world, tables) -> list[dict]:
        return []

    def review(self, world, tables) -> StageReview:
        return StageReview()

    def figures(self, world, tables) -> list[FigureSpec]:
        return []

    def notices(self, world) -> list[str]:
        return []

    def golden_filter(self, env, pins, record_of, m):
        return None

