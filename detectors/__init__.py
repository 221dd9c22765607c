"""Pure drift statistics: arrays and counts in, frozen typed results out.

Nothing here does I/O; the package imports only numpy and scipy.
"""

from detectors.base import DriftResult, FeatureData, MethodSpec, Score
from detectors.decision import decide
from detectors.registry import REGISTRY, choose_method, get_method, methods_for

__all__ = [
    "REGISTRY",
    "DriftResult",
    "FeatureData",
    "MethodSpec",
    "Score",
    "choose_method",
    "decide",
    "get_method",
    "methods_for",
]
