"""The typed spec of a world (its dataclasses) and the parsers shared by stage kinds.
:func:`simulator.load.load_spec` builds it from the config."""
from .checks import FORMATS
from .model import ColumnSpec, DbSpec, Domain, ExecutorSpec, GoldenRecord, IdSpec, RuleSpec, Timeline

__all__ = ["FORMATS", "ColumnSpec", "DbSpec", "Domain", "ExecutorSpec", "GoldenRecord", "IdSpec", "RuleSpec", "Timeline", "WorldSpec"]


def __getattr__(name: str) -> object:
    """``simulator.spec.WorldSpec``: the world holds its stages, so it is defined beside the
    stage contract (simulator.stage), which imports this package's model; looked up on first
    use so that neither module imports the other while it loads."""
    if name == "WorldSpec":
        from ..stage import WorldSpec

        return WorldSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
