"""Threshold values drawn on panels: the same numbers the alert rules fire on.

A panel must turn red exactly when the matching alert would fire, so no number is
typed here. They come from the sources the alert rules are generated from:
:mod:`detectors.registry` (each method's default effect-size threshold),
:class:`monitor.config.Settings` (overrides, drift share, attribution threshold,
window size) and :class:`alerts.catalogue.RuleOptions` (tolerances of the quality
and pipeline alerts). ``tests/dashboards`` checks every one of them against the
generated rule file.

Grafana colours a value with a step when ``value >= step``; the alerts use ``>``
for most comparisons. The two differ only for a value exactly at the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from alerts.catalogue import LOWER_IS_BETTER, RuleOptions
from detectors.registry import REGISTRY
from monitor.config import Settings

__all__ = ["Thresholds", "thresholds_for"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every threshold a dashboard draws, named after the alert it mirrors.

    Attributes
    ----------
    drift_share
        ``DriftdModelDrift``: share of a model's features that drifted.
    methods
        ``DriftdFeatureDrift``/``DriftdPredictionDrift``: effect-size threshold per
        registered drift method (a feature's own override is exported by driftd in
        ``driftd_feature_drift_threshold`` and used by the ratio panels).
    higher_is_drift
        Per method, whether scores above the threshold mean drift.
    attribution_ndcg
        ``DriftdAttributionDrift``: rank agreement below which attribution drifted.
    performance_tolerance
        ``DriftdPerformanceDrop``: relative distance from the baseline.
    lower_is_better
        Performance metrics where a larger value is worse (log loss, MAE, RMSE).
    ece_increase
        ``DriftdCalibrationDrift``: ECE (equal-width) above its baseline.
    missing_increase
        ``DriftdMissingValueSurge``: missing share above its baseline.
    unseen_ratio
        ``DriftdUnseenCategories``: share of values unseen in the baseline.
    dead_letter_ratio
        ``DriftdDeadLetterRate``: share of incoming messages dead-lettered.
    consumer_lag
        ``DriftdConsumerLagHigh``: messages behind, per daemon and topic.
    explain_queue_ratio
        ``DriftdExplainQueueSaturated``: explanation queue utilisation.
    stale_window_seconds
        ``DriftdStaleWindows``: age of a key's last closed window (two windows plus
        the allowed lateness).
    """

    drift_share: float
    methods: Mapping[str, float]
    higher_is_drift: Mapping[str, bool]
    attribution_ndcg: float
    performance_tolerance: float
    lower_is_better: frozenset[str]
    ece_increase: float
    missing_increase: float
    unseen_ratio: float
    dead_letter_ratio: float
    consumer_lag: float
    explain_queue_ratio: float
    stale_window_seconds: float


def thresholds_for(settings: Settings, options: RuleOptions | None = None) -> Thresholds:
    """The thresholds in force for ``settings`` and the alert rule ``options``.

    >>> t = thresholds_for(Settings(drift={"thresholds": {"psi": 0.25}}))
    >>> t.methods["psi"], t.drift_share, t.consumer_lag
    (0.25, 0.3, 10000)
    """
    options = options or RuleOptions.from_settings(settings)
    registered = sorted(REGISTRY.items())
    return Thresholds(
        drift_share=settings.drift.drift_share_threshold,
        methods=MappingProxyType({
            name: float(settings.drift.thresholds.get(name, spec.default_threshold))
            for name, spec in registered
        }),
        higher_is_drift=MappingProxyType({name: spec.higher_is_drift for name, spec in registered}),
        attribution_ndcg=settings.explain.attribution_threshold,
        performance_tolerance=options.performance_tolerance,
        lower_is_better=frozenset(LOWER_IS_BETTER),
        ece_increase=options.ece_increase,
        missing_increase=options.missing_increase,
        unseen_ratio=options.unseen_ratio,
        dead_letter_ratio=options.dead_letter_ratio,
        consumer_lag=options.consumer_lag,
        explain_queue_ratio=options.explain_queue_ratio,
        stale_window_seconds=settings.stale_window_seconds,
    )
