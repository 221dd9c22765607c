"""What is wrong right now, from the store alone (no Prometheus, no Alertmanager).

:func:`find_problems` reads the newest window of every (model, version, segment)
and names, one :class:`Finding` each:

* **drift**: input features (or the prediction) flagged in the newest window;
  critical when the model-level drift share passed ``drift.drift_share_threshold``;
* **performance drop**: the newest window with labels is worse than the baseline
  by more than ``alerts.performance_tolerance`` beyond its 95 % interval (the rule
  of the ``DriftdPerformanceDrop`` alert, :func:`performance_dropped`);
* **calibration**: its ECE above the baseline's by more than ``alerts.ece_increase``
  (``DriftdCalibrationDrift``), on windows with at least ``windows.min_events`` labels;
* **stale**: no window of the model's newest version closed for
  :attr:`Settings.stale_window_seconds <monitor.config.Settings.stale_window_seconds>`
  (wall time since the event-time end of its last window, as ``DriftdStaleWindows``);
* **late events**: late events above ``alerts.late_ratio`` of the newest window's events;
* **alert**: incidents Alertmanager opened that are firing or acknowledged.

``since`` is the start of the run of consecutive windows (within the last
:data:`LOOKBACK_WINDOWS`) in which the finding held; ``link`` is the app's query
string that opens the model or investigation page on it. The same rules decide
the daemon's drift start/clear log lines (:mod:`monitor.logs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from monitor.config import Settings

__all__ = [
    "FINDING_COLUMNS",
    "LOOKBACK_WINDOWS",
    "LOWER_IS_BETTER",
    "Finding",
    "as_number",
    "calibration_worse",
    "find_problems",
    "performance_dropped",
    "pretty_feature",
    "worst_metric",
]

# Performance metrics where a larger value is worse; every other metric drops as the model gets worse.
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse"})
# Preferred metric and statistic when several fail (the first present is reported).
_METRIC_ORDER = ("roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "rmse", "mae")
_ECE = ("ece_equal_width", "ece", "ece_equal_mass")
#: How far back ``since`` is traced, in windows (a day of 5-minute windows).
LOOKBACK_WINDOWS = 288
FINDING_COLUMNS = (
    "severity",
    "what",
    "model",
    "version",
    "segment",
    "subject",
    "value",
    "limit",
    "since",
    "detail",
    "link",
)
_SEVERITY = {"critical": 0, "warning": 1}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that is wrong now, with the value, the limit it crossed and since when."""

    severity: str
    what: str
    model: str
    version: str
    segment: str
    subject: str
    value: float
    limit: float
    since: datetime | None
    detail: str
    link: str

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def as_number(value: Any) -> float:
    """``float(value)``, NaN for what is not a number (None, text, a list)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _triple(raw: Any) -> tuple[float, float, float]:
    values = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    values = [as_number(v) for v in values] + [math.nan, math.nan]
    return values[0], values[1], values[2]


def performance_dropped(metric: str, raw: Any, baseline: Any, tolerance: float) -> bool:
    """Whether a realised metric ``raw`` ([value, lower, upper]) is worse than ``baseline``
    by more than ``tolerance`` beyond its interval (the ``DriftdPerformanceDrop`` rule).

    >>> performance_dropped("roc_auc", [0.10, 0.05, 0.15], 0.887, 0.05)
    True
    >>> performance_dropped("accuracy", [0.80, 0.70, 0.90], 0.82, 0.05)
    False
    >>> performance_dropped("log_loss", [0.9, 0.8, 1.0], 0.5, 0.05)
    True
    >>> performance_dropped("log_loss", [0.9, float("nan"), float("nan")], 0.5, 0.05)
    False
    """
    _, lower, upper = _triple(raw)
    base = as_number(baseline)
    # A bound that is undefined (too few labels) decides nothing, as in Prometheus.
    if metric in LOWER_IS_BETTER:
        return lower > base * (1 + tolerance)
    return upper < base * (1 - tolerance)


def _performance_limit(metric: str, baseline: float, tolerance: float) -> float:
    return baseline * (1 + tolerance) if metric in LOWER_IS_BETTER else baseline * (1 - tolerance)


def worst_metric(
    performance: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None, tolerance: float
) -> str | None:
    """The preferred metric that dropped (see :func:`performance_dropped`), or None."""
    performance, baseline = performance or {}, baseline or {}
    failing = [
        m for m in performance if performance_dropped(m, performance[m], baseline.get(m), tolerance)
    ]
    ordered = [m for m in _METRIC_ORDER if m in failing] + sorted(set(failing) - set(_METRIC_ORDER))
    return ordered[0] if ordered else None


def calibration_worse(
    calibration: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None, increase: float
) -> tuple[str, float, float] | None:
    """``(statistic, value, baseline)`` when the ECE exceeds the baseline's by more than ``increase``."""
    calibration, baseline = calibration or {}, baseline or {}
    for name in _ECE:
        value, base = as_number(calibration.get(name)), as_number(baseline.get(name))
        if not (math.isnan(value) or math.isnan(base)):
            return (name, value, base) if value - base > increase else None
    return None


def pretty_feature(feature: str) -> str:
    """``__prediction_score__`` → ``prediction score``; input names as they are."""
    return feature.strip("_").replace("_", " ") if feature.startswith("__") else feature


def _link(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return row["model"], row["version"], row["segment"]


def _since(
    history: list[dict[str, Any]], holds: Callable[[dict[str, Any]], bool | None]
) -> datetime | None:
    """Start of the newest run of windows where ``holds`` is true (None: window not judged)."""
    since = None
    for row in reversed(history):
        verdict = holds(row)
        if verdict is None:
            continue
        if not verdict:
            break
        since = row["window_start"]
    return since


class _Finder:
    def __init__(self, store: Any, settings: Settings, now: datetime) -> None:
        self.store, self.settings, self.now = store, settings, now
        self.size = timedelta(seconds=settings.windows.size_seconds)
        self._history: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

    def history(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        key = _key(row)
        if key not in self._history:
            start = row["window_start"] - LOOKBACK_WINDOWS * self.size
            self._history[key] = self.store.window_rows(*key, start=start)
        return self._history[key]

    def investigate(
        self, row: Mapping[str, Any], since: datetime | None, feature: str | None = None
    ) -> str:
        start = since or row["window_start"]
        return _link(
            model=row["model"],
            version=row["version"],
            segment=row["segment"],
            feature=feature,
            **{"from": _time(start), "to": _time(row["window_end"])},
        )

    def drift(self, row: dict[str, Any], flagged: list[dict[str, Any]]) -> Finding | None:
        key = _key(row)
        newest = sorted(
            (
                r
                for r in flagged
                if not r["feature"].startswith("__") or r["feature"].startswith("__prediction")
            ),
            key=lambda r: (r["feature"].startswith("__"), r["feature"]),
        )
        if not newest:
            return None
        names = sorted({r["feature"] for r in newest}, key=lambda n: (n.startswith("__"), n))
        history = self.history(row)
        flagged_in = {
            r["window_start"]
            for r in self.store.feature_rows(
                row["model"],
                history[0]["window_start"],
                row["window_end"],
                names,
                key[1],
                key[2],
                with_counts=False,
                drifted_only=True,
            )
        }
        min_events = self.settings.windows.min_events
        since = _since(
            history,
            lambda w: None if w["n_events"] < min_events else w["window_start"] in flagged_in,
        )
        ratios = [
            as_number(r["score"]) / r["threshold"] if r["threshold"] else math.nan for r in newest
        ]
        n_inputs = sum(1 for n in names if not n.startswith("__"))
        share = as_number(row["drift_share"])
        shown = [pretty_feature(n) for n in names]
        detail = "; ".join(
            f"{pretty_feature(r['feature'])} {r['method']} {as_number(r['score']):.3g} > {r['threshold']:.3g}"
            for r in newest[:6]
        )
        return Finding(
            "critical" if row["model_drifted"] else "warning",
            "drift",
            *key,
            ", ".join(shown)
            + (f" ({n_inputs} of the inputs, share {share:.2f})" if n_inputs else ""),
            max((x for x in ratios if not math.isnan(x)), default=math.nan),
            1.0,
            since,
            detail,
            self.investigate(row, since, names[0] if not names[0].startswith("__") else None),
        )

    def performance(self, row: dict[str, Any]) -> Finding | None:
        tolerance = self.settings.alerts.performance_tolerance
        metric = worst_metric(
            row.get("labelled_performance"), row.get("labelled_baseline_performance"), tolerance
        )
        if metric is None:
            return None
        value, lower, upper = _triple(row["labelled_performance"][metric])
        baseline = as_number(row["labelled_baseline_performance"][metric])

        def holds(w: dict[str, Any]) -> bool | None:
            if not w["n_labels"] or metric not in (w["performance"] or {}):
                return None
            return performance_dropped(
                metric,
                w["performance"][metric],
                (w["baseline_performance"] or {}).get(metric),
                tolerance,
            )

        since = _since(self.history(row), holds)
        detail = (
            f"{metric} {value:.3f} (95 % interval {lower:.3f}–{upper:.3f}, {row['labelled_n_labels']} labels) "
            f"vs baseline {baseline:.3f}: worse by more than {tolerance:.0%}"
        )
        return Finding(
            "critical",
            "performance drop",
            *_key(row),
            metric,
            value,
            _performance_limit(metric, baseline, tolerance),
            since,
            detail,
            self.investigate(row, since),
        )

    def calibration(self, row: dict[str, Any]) -> Finding | None:
        increase, min_labels = self.settings.alerts.ece_increase, self.settings.windows.min_events
        if (row.get("labelled_n_labels") or 0) < min_labels:
            return None
        worse = calibration_worse(
            row.get("labelled_calibration"), row.get("labelled_baseline_calibration"), increase
        )
        if worse is None:
            return None
        name, value, baseline = worse

        def holds(w: dict[str, Any]) -> bool | None:
            if w["n_labels"] < min_labels:
                return None
            return (
                calibration_worse(w["calibration"], w["baseline_calibration"], increase) is not None
            )

        since = _since(self.history(row), holds)
        detail = f"{name} {value:.3f} vs baseline {baseline:.3f} (more than {increase:g} above)"
        return Finding(
            "warning",
            "calibration",
            *_key(row),
            name,
            value,
            baseline + increase,
            since,
            detail,
            self.investigate(row, since),
        )

    def late(self, row: dict[str, Any]) -> Finding | None:
        ratio = self.settings.alerts.late_ratio

        def share(w: Mapping[str, Any]) -> float:
            total = w["n_events"] + w["n_late"]
            return w["n_late"] / total if total else 0.0

        if share(row) <= ratio:
            return None
        since = _since(self.history(row), lambda w: share(w) > ratio)
        detail = (
            f"{row['n_late']:,} late events beside {row['n_events']:,} on time in the newest window "
            f"(allowed lateness {self.settings.windows.allowed_lateness_seconds} s)"
        )
        return Finding(
            "warning",
            "late events",
            *_key(row),
            "late share",
            share(row),
            ratio,
            since,
            detail,
            _link(page="model", model=row["model"], version=row["version"]),
        )

    def stale(self, row: dict[str, Any]) -> Finding | None:
        limit = self.settings.stale_window_seconds
        age = (self.now - row["window_end"]).total_seconds()
        if age <= limit:
            return None
        detail = f"no window closed for {age / 60:.0f} min (stale after {limit:g} s): is the service logging?"
        return Finding(
            "warning",
            "stale",
            *_key(row),
            "last window",
            age,
            limit,
            row["window_end"],
            detail,
            _link(page="model", model=row["model"], version=row["version"]),
        )


def _alerts(store: Any) -> list[Finding]:
    found = []
    for incident in store.incident_rows(status=("firing", "acknowledged"), limit=50):
        annotations = incident.get("annotations") or {}
        found.append(
            Finding(
                incident["severity"] if incident["severity"] in _SEVERITY else "warning",
                "alert",
                incident["model"] or "(pipeline)",
                incident["version"],
                incident["segment"],
                incident["alertname"] + (f" {incident['feature']}" if incident["feature"] else ""),
                math.nan,
                math.nan,
                incident["starts_at"],
                f"{incident['status']}: {annotations.get('summary', '')}".strip(": "),
                _link(incident=incident["id"]),
            )
        )
    return found


def find_problems(
    store: Any,
    settings: Settings,
    now: datetime | None = None,
    health: list[dict[str, Any]] | None = None,
) -> list[Finding]:
    """Everything wrong right now, critical first, then oldest first (see module docstring).

    ``store`` is a :class:`~monitor.store.Store`; ``health`` its ``model_health()``
    rows when the caller has them already.
    """
    now = now or datetime.now(UTC)
    rows = store.model_health() if health is None else health
    finder = _Finder(store, settings, now)
    newest_version: dict[str, tuple[datetime, str]] = {}
    for row in rows:
        newest_version[row["model"]] = max(
            newest_version.get(row["model"], (row["window_start"], row["version"])),
            (row["window_start"], row["version"]),
        )
    flagged: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for verdict in store.newest_drifted_rows():
        flagged.setdefault(_key(verdict), []).append(verdict)
    found: list[Finding | None] = []
    for row in rows:
        found += [
            finder.drift(row, flagged.get(_key(row), [])),
            finder.performance(row),
            finder.calibration(row),
            finder.late(row),
        ]
        if row["version"] == newest_version[row["model"]][1]:
            found.append(finder.stale(row))
    problems = [f for f in found if f is not None] + _alerts(store)
    far_past = datetime.min.replace(tzinfo=UTC)
    return sorted(
        problems,
        key=lambda f: (_SEVERITY.get(f.severity, 2), f.since or far_past, f.model, f.segment),
    )
