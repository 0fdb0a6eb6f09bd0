"""The typed spec of a world (its dataclasses) and the parsers shared by stage kinds.
:func:`simulator.load.load_spec` builds it from the config."""
from .checks import FORMATS
from .model import ColumnSpec, DbSpec, Domain, ExecutorSpec, GoldenRecord, IdSpec, RuleSpec, Timeline, WorldSpec

__all__ = ["FORMATS", "ColumnSpec", "DbSpec", "Domain", "ExecutorSpec", "GoldenRecord", "IdSpec", "RuleSpec", "Timeline", "WorldSpec"]
