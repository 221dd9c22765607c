"""Ground truth: delayed labels joined to predictions, realised and estimated performance.

* :mod:`monitor.truth.join` — :class:`GroundTruth`, what the pipeline talks to;
* :mod:`monitor.truth.pending` — the bounded store of predictions awaiting labels;
* :mod:`monitor.truth.window` — per-window label aggregates and their results.

``docs/ground-truth.md`` describes the join, the metrics and CBPE's assumptions.
"""

from monitor.truth.join import ConceptAlarm, DeadLabel, GroundTruth
from monitor.truth.window import LabelUpdate

__all__ = ["ConceptAlarm", "DeadLabel", "GroundTruth", "LabelUpdate"]
