"""The stage kinds YAML can name with ``kind:``. Adding a kind is a module under
``simulator/stages/`` and one line here (or :func:`register` from your own code)."""
from __future__ import annotations

from .stage import StageKind
from .stages import activity, churn, interventions, late_columns, network, population, projection, scenarios

STAGE_KINDS: dict[str, StageKind] = {k.name: k for k in [
    population.KIND, activity.KIND, churn.KIND, scenarios.KIND, network.KIND, projection.KIND,
    interventions.KIND, late_columns.KIND,
]}


def register(kind: StageKind) -> StageKind:
    """Make ``kind`` available to YAML as ``kind: <kind.name>``; returns it."""
    STAGE_KINDS[kind.name] = kind
    return kind
