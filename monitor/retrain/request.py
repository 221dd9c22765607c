"""The retrain request event: ``schemas/retrain_request.v1.json``, built from a decision.

Every field is always present (``null`` where nothing is known, e.g. no attribution
before explanations exist), so that an orchestrator reads one shape. Numbers that are
not finite become ``null``: JSON has no NaN.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from monitor.results import WindowReport
from monitor.retrain.trigger import RetrainDecision

__all__ = ["SCHEMA", "SCHEMA_VERSION", "app_link", "build_request"]

SCHEMA = "driftd.retrain_request"
SCHEMA_VERSION = 1


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def app_link(app_url: str, decision: RetrainDecision) -> str:
    """The investigation app's model page over the decision's windows."""
    key, windows = decision.key, decision.windows
    params = {
        "page": "model", "model": key.model, "version": key.version, "segment": key.segment,
        "start": _time(windows[0].window_start), "end": _time(windows[-1].window_end),
    }
    return app_url.rstrip("/") + "/?" + urlencode({k: v for k, v in params.items() if v})


def _window(report: WindowReport) -> dict[str, Any]:
    return {
        "start": _time(report.window_start),
        "end": _time(report.window_end),
        "n_events": int(report.n_events),
        "n_labels": int(report.n_labels),
        "drift_share": _number(report.drift_share),
        "model_drifted": bool(report.model_drifted),
    }


def _drifted(report: WindowReport) -> list[dict[str, Any]]:
    results = [*report.features, *report.prediction, *report.multivariate]
    return [
        {
            "feature": r.feature,
            "method": r.method,
            "score": _number(r.score),
            "p_value": _number(r.p_value),
            "threshold": _number(r.threshold),
        }
        for r in sorted(results, key=lambda r: (r.feature.startswith("__"), r.feature))
        if r.drifted
    ]


def _attribution(report: WindowReport) -> dict[str, Any] | None:
    summary = report.attribution
    if summary is None:
        return None
    return {
        "ndcg": _number(summary.ndcg),
        "threshold": _number(summary.threshold),
        "drifted": bool(summary.drifted),
        "n_explanations": int(summary.n_explanations),
        "relative_change": {f: _number(v) for f, v in sorted(summary.relative_change.items())},
    }


def _performance(report: WindowReport, metric: str | None, tolerance: float) -> dict[str, Any] | None:
    if metric is None or metric not in report.performance:
        return None
    value = report.performance[metric]
    return {
        "metric": metric,
        "value": _number(value.value),
        "lower": _number(value.lower),
        "upper": _number(value.upper),
        "baseline": _number(report.baseline_performance.get(metric)),
        "tolerance": tolerance,
    }


def build_request(
    decision: RetrainDecision,
    request_id: str,
    created_at: datetime,
    *,
    app_url: str,
    cooldown_seconds: float,
    performance_tolerance: float,
) -> dict[str, Any]:
    """The event for ``decision`` (``schemas/retrain_request.v1.json``)."""
    newest = decision.windows[-1]
    key = decision.key
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "request_id": request_id,
        "created_at": created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "model": key.model,
        "version": key.version,
        "segment": key.segment,
        "reason": decision.reason,
        "windows": [_window(w) for w in decision.windows],
        "drifted_features": _drifted(newest),
        "performance": _performance(newest, decision.metric, performance_tolerance),
        "attribution_change": _attribution(newest),
        "label_coverage": min(1.0, max(0.0, _number(newest.label_coverage) or 0.0)),
        "app_link": app_link(app_url, decision),
        "cooldown_seconds": int(cooldown_seconds),
    }
