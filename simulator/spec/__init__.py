"""The typed spec of a world and the one function that builds it from the config."""
from .load import FORMATS, load_spec
from .model import (ActivitySpec, ChurnSpec, ColumnSpec, DbSpec, Domain, EffectRow, EngineeredSpec,
                    FeatureSpec, GoldenRecord, HistorySpec, IdSpec, InterventionSpec, NetworkSpec, RuleSpec,
                    ScenarioSpec, WorldSpec)

__all__ = ["FORMATS", "ActivitySpec", "ChurnSpec", "ColumnSpec", "DbSpec", "Domain", "EffectRow",
           "EngineeredSpec", "FeatureSpec", "GoldenRecord", "HistorySpec", "IdSpec", "InterventionSpec",
           "NetworkSpec", "RuleSpec", "ScenarioSpec", "WorldSpec", "load_spec"]
