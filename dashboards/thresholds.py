"""Threshold values drawn on panels: the same numbers the alert rules fire on.

Panels must colour a value red exactly when the matching alert would fire, so these
numbers are never typed here: they come from :mod:`detectors.registry` (each
method's default effect-size threshold) and :class:`monitor.config.Settings`
(overrides and the model-level drift share), the same sources the alert rules use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from detectors.registry import REGISTRY
from monitor.config import Settings

__all__ = ["Thresholds", "thresholds_for"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every threshold a dashboard draws.

    Attributes
    ----------
    drift_share
        Share of a model's features that must drift for the model to count as drifted.
    methods
        Effect-size threshold per registered drift method (feature, prediction and
        label drift scores all use their method's threshold).
    higher_is_drift
        Per method, whether scores above the threshold mean drift.
    attribution_ndcg
        Rank agreement of SHAP importances below which attribution drifted.
    """

    drift_share: float
    methods: Mapping[str, float]
    higher_is_drift: Mapping[str, bool]
    attribution_ndcg: float


def thresholds_for(settings: Settings) -> Thresholds:
    """The thresholds in force for ``settings``.

    >>> t = thresholds_for(Settings(drift={"thresholds": {"psi": 0.25}}))
    >>> t.methods["psi"], t.drift_share
    (0.25, 0.3)
    """
    methods = {
        name: float(settings.drift.thresholds.get(name, spec.default_threshold))
        for name, spec in sorted(REGISTRY.items())
    }
    return Thresholds(
        drift_share=settings.drift.drift_share_threshold,
        methods=MappingProxyType(methods),
        higher_is_drift=MappingProxyType({n: s.higher_is_drift for n, s in sorted(REGISTRY.items())}),
        attribution_ndcg=settings.explain.attribution_threshold,
    )
