"""The typed spec of a world and the one function that builds it from the config."""
from .load import FORMATS, load_spec
from .model import (ActivitySpec, ChurnSpec, EngineeredSpec, FeatureSpec, HistorySpec, ColumnSpec, DbSpec, Domain, EffectRow, GoldenRecord, IdSpec,
                    InterventionSpec, NetworkSpec, RuleSpec, ScenarioSpec, WorldSpec)

__all__ = ["FORMATS", "ActivitySpec", "ChurnSpec", "EngineeredSpec", "FeatureSpec", "HistorySpec", "ColumnSpec", "DbSpec", "Domain", "EffectRow", "GoldenRecord",
           "IdSpec", "InterventionSpec", "NetworkSpec", "RuleSpec", "ScenarioSpec", "WorldSpec",
           "load_spec"]
