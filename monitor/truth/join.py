"""GroundTruth: delayed labels joined to their predictions, per-window label results.

Labels arrive on their own topic minutes to days after the prediction.
:class:`GroundTruth`

1. remembers pending predictions (window, prediction, score) in a bounded
   columnar store keyed by ``prediction_id`` (:mod:`monitor.truth.pending`);
2. joins each label to its prediction, attributing the outcome to the window of
   the **prediction's** event time, so a window's performance fills in as labels
   trickle in (:meth:`GroundTruth.updates`, :mod:`monitor.truth.window`);
3. feeds the per-event error stream of each (model, version, segment), in label
   arrival order, to the sequential detectors (ADWIN, Page–Hinkley, DDM); their
   alarms come out of :meth:`GroundTruth.take_alarms` (:mod:`monitor.truth.alarms`);
4. keeps per-window score histograms so that the CBPE estimate of a window is
   available when it closes, before any label (:meth:`GroundTruth.estimate`);
5. notes which joined predictions were wrong, for the explainer to explain
   (:meth:`GroundTruth.take_wrong`): a classifier's predicted class differs from
   the label; a regression model's absolute error exceeds the model's
   ``wrong_abs_error`` (regression predictions are never "wrong" without it).

Bounds (nothing grows with traffic):

* pending predictions: at most ``LabelSettings.max_pending``; older than
  ``pending_ttl_seconds`` (in event time, against the latest event time seen) they
  are evicted and counted (``driftd_label_join_evictions_total{reason="ttl"}``),
  past the cap the oldest go first (``reason="capacity"``);
* early labels (label before its prediction): at most ``max_early`` for the same
  TTL; when the TTL passes without the prediction the label is counted as
  ``unknown`` and handed out by :meth:`GroundTruth.drain_dead_labels`;
* joined ids remembered for duplicate detection: at most ``max_early``;
* per-window aggregates: at most ``max_windows_per_key`` windows per (model,
  version, segment), and none older than the TTL;
* sequential detectors: for at most 1024 (model, version, segment) keys (least
  recently used go first); alarms not yet taken: at most 10,000;
* wrong predictions not yet taken: at most ``_MAX_WRONG`` (the pipeline takes them
  after every batch; the oldest go first if nobody does).

Checkpoints are orjson bytes (:meth:`GroundTruth.to_state`), never pickle.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from detectors.base import DriftResult
from detectors.calibration import SCORE_EDGES, ScoreHistogram, canonical_labels
from detectors.cbpe import CalibrationMap, PredictionHistogram, estimate_performance
from detectors.performance import BinaryCounts, MulticlassCounts, RegressionSums
from detectors.sequential import SequentialDetector
from monitor.batch import LabelBatch, PredictionBatch
from monitor.config import LabelSettings, ModelSettings
from monitor.metrics import PipelineMetrics
from monitor.results import MetricValue, WindowKey
from monitor.truth.alarms import ConceptAlarm, default_detectors
from monitor.truth.pending import PendingPredictions
from monitor.truth.sequential import SequentialStreams
from monitor.truth.window import LabelUpdate, WindowTruth, label_drift, label_update, score_bins

__all__ = ["ConceptAlarm", "DeadLabel", "GroundTruth"]

_STATE_VERSION = 1
_OTHER = "__other__"
_MAX_CLASSES = 10_000  # distinct predicted classes interned for pending multiclass predictions
_MAX_WRONG = 100_000  # wrong predictions kept until take_wrong()
_MAX_FUTURE_SECONDS = 86_400.0  # event times further ahead of the wall clock do not advance it
_REGRESSION_LABEL = "label is not a number for a regression model"


@dataclass(frozen=True, slots=True)
class DeadLabel:
    """A label whose prediction never arrived within the TTL (to dead-letter)."""

    prediction_id: str
    label: Any
    event_time: float
    model: str | None
    reason: str
    detail: str


class GroundTruth:
    """Joins labels to predictions and keeps the label-based results of recent windows.

    Parameters
    ----------
    settings
        TTL and cap of the pending-prediction store.
    models
        Settings of the configured models (task, positive class, threshold).
    baselines
        ``(model, version) -> Baseline | None``: reference label profile and the
        CBPE calibration map (``baseline.calibration["cbpe_map"]``).
    metrics
        Pipeline metrics to count labels, evictions and alarms in (optional).
    window_size
        Window size in seconds (windows older than TTL + size are dropped).
    max_windows_per_key
        Windows kept per (model, version, segment) for late labels.
    max_early
        Cap on buffered early labels and on remembered joined ids; default
        ``min(max_pending, 100_000)``.
    detectors
        ``task -> list of fresh detectors`` for each (model, version, segment) error stream.
    """

    def __init__(
        self,
        settings: LabelSettings,
        models: Mapping[str, ModelSettings],
        baselines: Callable[[str, str], Any],
        metrics: PipelineMetrics | None,
        window_size: float,
        *,
        max_windows_per_key: int = 48,
        max_early: int | None = None,
        detectors: Callable[[str], list[SequentialDetector]] = default_detectors,
    ) -> None:
        self.settings = settings
        self.models = dict(models)
        self.baselines = baselines
        self.metrics = metrics
        self.window_size = float(window_size)
        self.max_windows_per_key = max_windows_per_key
        self.max_early = max_early if max_early is not None else min(settings.max_pending, 100_000)
        self.detector_factory = detectors
        # (model, version) -> event time up to which its predictions have been read (the
        # pipeline's watermark plus lateness); None: the labels' clock alone settles errors.
        self.prediction_progress: Callable[[str, str], float] | None = None
        self._reset()

    def _reset(self) -> None:
        self._now = -math.inf  # latest event time seen (predictions or labels)
        # Latest label event time: errors settle behind it (predictions read ahead of
        # their labels, as in a backlog, must not settle errors whose labels are still coming).
        self._label_now = -math.inf
        self._keys: list[WindowKey] = []
        self._key_ids: dict[WindowKey, int] = {}
        self._classes: list[str] = []
        self._class_ids: dict[str, int] = {}
        # Pending predictions: id -> slot (insertion order) and columns per slot.
        self._pending = PendingPredictions(self.settings.max_pending)
        self._early: OrderedDict[str, tuple[Any, float, str | None, float]] = OrderedDict()
        self._joined: OrderedDict[str, float] = OrderedDict()
        self._windows: dict[int, dict[float, WindowTruth]] = {}
        self._streams = SequentialStreams(self.detector_factory, self.settings.settle_seconds, self.metrics,
                                          self.settings.max_pending)
        self._maps: dict[tuple[str, str], CalibrationMap | None] = {}
        self._dead: deque[DeadLabel] = deque(maxlen=10_000)
        self._wrong: deque[tuple[str, str]] = deque(maxlen=_MAX_WRONG)  # (model, prediction id)

    # -- small helpers ------------------------------------------------------------------

    def _model(self, name: str) -> ModelSettings:
        settings = self.models.get(name)
        return settings if settings is not None else _FALLBACK_MODEL

    def _count(self, outcome: str, n: int = 1) -> None:
        if self.metrics is not None and n:
            self.metrics.labels.labels(outcome=outcome).inc(n)

    def _evicted(self, reason: str, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics.label_join_evictions.labels(reason=reason).inc(n)

    def _key_id(self, key: WindowKey) -> int:
        key_id = self._key_ids.get(key)
        if key_id is None:
            key_id = self._key_ids[key] = len(self._keys)
            self._keys.append(key)
        return key_id

    def _class_id(self, name: str) -> int:
        code = self._class_ids.get(name)
        if code is None:
            if len(self._classes) >= _MAX_CLASSES - 1:  # the last id is shared by the rest
                name = _OTHER
                code = self._class_ids.get(_OTHER)
                if code is not None:
                    return code
            code = self._class_ids[name] = len(self._classes)
            self._classes.append(name)
        return code

    @property
    def pending_count(self) -> int:
        """Predictions waiting for their label."""
        return len(self._pending)

    @property
    def early_count(self) -> int:
        """Labels waiting for their prediction."""
        return len(self._early)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.label_join_pending.set(len(self._pending))

    def expire(self) -> None:
        """Evict pending predictions, early labels and windows older than the TTL."""
        horizon = self._now - self.settings.pending_ttl_seconds
        self._evicted("ttl", self._pending.expire(horizon))
        while self._early:
            pid, (label, event_time, model, arrived) = next(iter(self._early.items()))
            if arrived >= horizon:
                break
            self._early.popitem(last=False)
            self._dead_label(pid, label, event_time, model, "no prediction within pending_ttl_seconds")
        while self._joined and next(iter(self._joined.values())) < horizon:
            self._joined.popitem(last=False)
        oldest_window = horizon - self.window_size
        for windows in self._windows.values():
            for start in [s for s in windows if s < oldest_window]:
                del windows[start]

    def _dead_label(self, pid: str, label: Any, event_time: float, model: str | None, detail: str) -> None:
        self._count("unknown")
        self._dead.append(DeadLabel(pid, label, event_time, model, "unknown_prediction", detail))

    def drain_dead_labels(self) -> list[DeadLabel]:
        """Early labels whose prediction never came (since the last call), to dead-letter."""
        dead = list(self._dead)
        self._dead.clear()
        return dead

    def take_wrong(self) -> dict[str, list[str]]:
        """Predictions found wrong since the last call, by model, in join order.

        Wrong means: binary and multiclass, the predicted class is not the label;
        regression, ``|label - prediction| > wrong_abs_error`` of the model (never
        when that is not set). Invalid labels are not counted.
        """
        wrong: dict[str, list[str]] = {}
        for model, prediction_id in self._wrong:
            wrong.setdefault(model, []).append(prediction_id)
        self._wrong.clear()
        return wrong

    def alarms(self) -> list[ConceptAlarm]:
        """Recent sequential-detector alarms (bounded), oldest first."""
        return list(self._streams.alarms)

    def settle(self) -> None:
        """Feed the sequential detectors the errors that have settled (see monitor.truth.sequential)."""
        progress = self.prediction_progress
        self._streams.settle(self._label_now, None if progress is None else (lambda k: progress(k.model, k.version)))

    def take_alarms(self) -> list[ConceptAlarm]:
        """Alarms raised since the last call, oldest first (to export and store)."""
        return self._streams.take_alarms()

    def _advance(self, event_times: np.ndarray) -> None:
        # A timestamp far in the future would expire every pending prediction at once:
        # such times do not move the clock (the event itself is still processed).
        limit = time.time() + _MAX_FUTURE_SECONDS
        finite = event_times[np.isfinite(event_times) & (event_times <= limit)]
        if len(finite):
            self._now = max(self._now, float(finite.max()))
        self.expire()

    def _window(self, key_id: int, start: float) -> WindowTruth | None:
        """The aggregates of a window, created if it fits the per-key cap."""
        windows = self._windows.setdefault(key_id, {})
        window = windows.get(start)
        if window is None:
            if len(windows) >= self.max_windows_per_key:
                oldest = min(windows)
                if start < oldest:
                    return None
                del windows[oldest]
            window = windows[start] = WindowTruth()
        return window

    # -- predictions ------------------------------------------------------------------

    def add_predictions(self, batch: PredictionBatch, window_starts: np.ndarray) -> None:
        """Remember a batch's predictions until their labels come; fold scores for CBPE.

        ``window_starts`` holds the start of each row's window (event time). A
        prediction id already pending keeps its first record.
        """
        n = len(batch)
        if n == 0:
            return
        settings = self._model(batch.model)
        self._advance(batch.event_times)
        segment_ids = {s: self._key_id(WindowKey(batch.model, batch.version, s)) for s in dict.fromkeys(batch.segments)}
        key_ids = np.fromiter((segment_ids[s] for s in batch.segments), np.int64, n)
        window_starts = np.asarray(window_starts, np.float64)
        prediction, positive, scores = self._prediction_columns(batch, settings)

        # Window aggregates: predictions seen, and scores by predicted class for CBPE.
        groups, group_of = np.unique(np.column_stack([key_ids, window_starts]), axis=0, return_inverse=True)
        group_of = group_of.ravel()
        for g, (key_id, start) in enumerate(groups.tolist()):
            window = self._window(int(key_id), float(start))
            if window is None:
                continue
            rows = group_of == g
            window.n_predictions += int(rows.sum())
            if settings.task == "binary" and scores is not None:
                if window.predictions is None:
                    window.predictions = PredictionHistogram()
                window.predictions.add(scores[rows], positive[rows])

        # Pending store: new ids only (a re-sent prediction keeps its first record).
        seen: set[str] = set()
        rows_new = []
        for i, pid in enumerate(batch.prediction_ids):
            if pid not in self._pending and pid not in seen:
                seen.add(pid)
                rows_new.append(i)
        values = {
            "key": key_ids, "window": window_starts, "time": batch.event_times, "prediction": prediction,
            "score": np.full(n, np.nan) if scores is None else scores,
        }
        self._evicted("capacity", self._pending.insert(batch.prediction_ids, rows_new, values))

        # Labels that came before their prediction join now.
        if self._early:
            # In batch order, so that the error stream (and replays) are deterministic.
            ids = batch.prediction_ids
            early = [(ids[i], self._early.pop(ids[i])) for i in rows_new if ids[i] in self._early and ids[i] in self._pending]
            if early:
                joined_slots = [self._pending.pop(pid) for pid, _ in early]
                for pid, _ in early:
                    self._joined[pid] = self._now
                invalid = self._resolve(joined_slots, [entry[0] for _, entry in early], [pid for pid, _ in early])
                self._count("joined", len(early) - len(invalid))
                for j in invalid:
                    pid, (label, event_time, model, _) = early[j]
                    self._dead.append(DeadLabel(pid, label, event_time, model, "invalid_label",
                                                _REGRESSION_LABEL))
        self._trim_joined()
        self.settle()
        self._gauge()

    def _prediction_columns(
        self, batch: PredictionBatch, settings: ModelSettings
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(value stored per pending prediction, predicted-positive flag, scores)."""
        predictions = batch.predictions
        scores = None if batch.scores is None else np.asarray(batch.scores, np.float64)
        if settings.task == "regression":
            if predictions.dtype.kind == "O":
                values = np.array([_as_float(p) for p in predictions], np.float64)
            else:
                values = np.asarray(predictions, np.float64)
            return values, np.zeros(len(values), bool), None
        if settings.task == "binary" and predictions.dtype.kind == "f":
            # Binary models that log a score as their prediction: threshold it.
            if scores is None and np.any((predictions > 0) & (predictions < 1)):
                scores = predictions
            positive = predictions >= settings.decision_threshold
            return positive.astype(np.float64), positive, scores
        labels = canonical_labels(predictions)
        positive = np.fromiter((p == settings.positive_class for p in labels), bool, len(labels))
        if settings.task == "binary":
            return positive.astype(np.float64), positive, scores
        codes = np.fromiter((self._class_id(p if p is not None else "") for p in labels), np.float64, len(labels))
        return codes, positive, scores

    def _trim_joined(self) -> None:
        while len(self._joined) > self.max_early:
            self._joined.popitem(last=False)

    # -- labels ---------------------------------------------------------------------------

    def add_labels(self, batch: LabelBatch) -> list[tuple[int, str, str]]:
        """Join a batch of labels; returns ``(row, reason, detail)`` of rows to dead-letter.

        Outcomes per row: joined; duplicate (its prediction was already joined, or the
        same early label is waiting); early (kept until its prediction arrives);
        dead-lettered: ``unknown_model`` (names a model that is not configured),
        ``unknown_prediction`` (early-label buffer full), ``invalid_label`` (a
        non-numeric label for a regression model). Early labels that expire later
        come out of :meth:`drain_dead_labels`.
        """
        dead: list[tuple[int, str, str]] = []
        if len(batch) == 0:
            return dead
        label_times = np.asarray(batch.event_times, np.float64)
        self._advance(label_times)
        in_time = label_times[np.isfinite(label_times) & (label_times <= time.time() + _MAX_FUTURE_SECONDS)]
        if len(in_time):
            self._label_now = max(self._label_now, float(in_time.max()))
        joined_rows: list[int] = []
        joined_slots: list[int] = []
        duplicates = early = 0
        for row, (pid, model) in enumerate(zip(batch.prediction_ids, batch.models)):
            if model is not None and model not in self.models:
                dead.append((row, "unknown_model", f"model {model!r} is not configured"))
                continue
            slot = self._pending.pop(pid)
            if slot is not None:
                joined_rows.append(row)
                joined_slots.append(slot)
                self._joined[pid] = self._now
            elif pid in self._joined or pid in self._early:
                duplicates += 1
            elif len(self._early) >= self.max_early:
                self._count("unknown")
                dead.append((row, "unknown_prediction",
                             f"no pending prediction {pid!r} and the early-label buffer is full ({self.max_early})"))
            else:
                self._early[pid] = (batch.labels[row], float(batch.event_times[row]), model, self._now)
                early += 1
        invalid = self._resolve(
            joined_slots, [batch.labels[r] for r in joined_rows], [batch.prediction_ids[r] for r in joined_rows]
        )
        for j in invalid:
            dead.append((joined_rows[j], "invalid_label", _REGRESSION_LABEL))
        self._count("joined", len(joined_rows) - len(invalid))
        self._count("duplicate", duplicates)
        self._count("early", early)
        self._count("invalid", len(invalid))
        self._trim_joined()
        self.settle()
        self._gauge()
        return dead

    def _resolve(self, slots_list: list[int], labels: list[Any], prediction_ids: list[str]) -> list[int]:
        """Score joined predictions against their labels; returns invalid positions."""
        if not slots_list:
            return []
        columns = self._pending.take(slots_list)
        key_ids, windows, times = columns["key"], columns["window"], columns["time"]
        predictions, scores = columns["prediction"], columns["score"]
        invalid: list[int] = []
        # Group rows by (model, version): one task, one error stream each. Rows keep
        # their arrival order inside a group (the error stream is in label order).
        unique_keys, key_index = np.unique(key_ids, return_inverse=True)
        pair_of_key = [self._keys[k][:2] for k in unique_keys.tolist()]
        pairs = list(dict.fromkeys(pair_of_key))
        pair_index = np.array([pairs.index(p) for p in pair_of_key], np.int64)[key_index.ravel()]
        for p, pair in enumerate(pairs):
            rows = np.flatnonzero(pair_index == p)
            invalid_rows = self._resolve_version(
                pair, rows, key_ids, windows, times, predictions, scores, labels, prediction_ids
            )
            invalid.extend(rows[invalid_rows].tolist())
        return sorted(invalid)

    def _resolve_version(
        self,
        pair: tuple[str, str],
        rows: np.ndarray,
        key_ids: np.ndarray,
        windows: np.ndarray,
        times: np.ndarray,
        predictions: np.ndarray,
        scores: np.ndarray,
        labels: list[Any],
        prediction_ids: list[str],
    ) -> np.ndarray:
        """Fold one model version's joined rows; returns a mask of invalid rows."""
        settings = self._model(pair[0])
        task = settings.task
        raw = [labels[i] for i in rows.tolist()]
        predictions, scores = predictions[rows], scores[rows]
        if task == "regression":
            values = np.array([_as_float(v) for v in raw], np.float64)
            invalid = ~np.isfinite(values)
            errors = np.abs(values - predictions)
            texts: list[str] = []
        else:
            invalid = np.zeros(len(rows), bool)
            texts = [t if t is not None else "" for t in canonical_labels(raw)]
            if task == "binary":
                actual = np.fromiter((t == settings.positive_class for t in texts), bool, len(texts))
                errors = (actual != (predictions == 1.0)).astype(np.float64)
            else:
                predicted_text = [self._classes[int(c)] for c in predictions.tolist()]
                errors = np.fromiter((t != p for t, p in zip(texts, predicted_text)), np.float64, len(texts))
        valid = ~invalid
        fed, local_keys = valid & np.isfinite(errors), key_ids[rows]
        local_times, local_ids = times[rows], [prediction_ids[i] for i in rows.tolist()]
        for key_id in dict.fromkeys(local_keys[fed].tolist()):  # one stream per segment, settled in event time
            mask = fed & (local_keys == key_id)
            self._streams.add(self._keys[key_id], task, local_times[mask],
                              [pid for pid, m in zip(local_ids, mask.tolist()) if m], errors[mask])
        self._note_wrong(pair[0], settings, rows, errors, valid, prediction_ids)
        label_edges = None
        if task == "regression":
            label = getattr(self.baselines(*pair), "label", None)
            if label is not None and label.kind == "numeric":
                label_edges = label.edges

        local_windows, bins = windows[rows], score_bins(self.baselines(*pair))
        groups, group_of = np.unique(np.column_stack([local_keys, local_windows])[valid], axis=0, return_inverse=True)
        group_of = group_of.ravel()
        valid_index = np.flatnonzero(valid)
        for g, (key_id, start) in enumerate(groups.tolist()):
            window = self._window(int(key_id), float(start))
            members = valid_index[group_of == g]
            if window is None:
                self._count("window_evicted", len(members))
                continue
            window.n_labels += len(members)
            window.dirty = True
            if task == "regression":
                window.regression = window.regression or RegressionSums()
                window.regression.add(values[members], predictions[members])
                if label_edges is not None:
                    window.count_numeric_labels(values[members], label_edges)
                continue
            member_texts = [texts[i] for i in members.tolist()]
            window.count_labels(member_texts)
            member_scores = scores[members]
            scored = np.isfinite(member_scores)
            if task == "binary":
                actual_m = actual[members]
                window.binary = window.binary or BinaryCounts()
                window.binary.add(actual_m, predictions[members] == 1.0, member_scores, bins)
                outcome = actual_m
            else:
                window.multiclass = window.multiclass or MulticlassCounts()
                window.multiclass.add(member_texts, [self._classes[int(c)] for c in predictions[members].tolist()])
                outcome = errors[members] == 0.0  # top-label: was the prediction right
            if scored.any():
                window.scores = window.scores or ScoreHistogram()
                window.scores.add(member_scores[scored], outcome[scored])
        return invalid

    def _note_wrong(
        self, model: str, settings: ModelSettings, rows: np.ndarray, errors: np.ndarray,
        valid: np.ndarray, prediction_ids: list[str],
    ) -> None:
        """Remember the joined predictions that were wrong (see :meth:`take_wrong`)."""
        if settings.task == "regression":
            if settings.wrong_abs_error is None:
                return
            with np.errstate(invalid="ignore"):
                wrong = valid & (errors > settings.wrong_abs_error)
        else:
            wrong = valid & (errors > 0)
        self._wrong.extend((model, prediction_ids[i]) for i in rows[wrong].tolist())

    # -- results --------------------------------------------------------------------------

    def updates(self) -> list[LabelUpdate]:
        """Label-based results of every window whose labels changed since the last call."""
        out = []
        for key_id, windows in self._windows.items():
            for start, window in windows.items():
                if window.dirty:
                    window.dirty = False
                    out.append(self._result(key_id, start, window))
        return out

    def current(self, key: WindowKey, window_start: float) -> LabelUpdate | None:
        """The label-based results of one window now (e.g. when it closes), or None
        when no label has joined it yet. Does not change what :meth:`updates` drains."""
        window = self._find(key, window_start)
        if window is None or window.n_labels == 0:
            return None
        return self._result(self._key_ids[key], float(window_start), window)

    def label_drift(self, key: WindowKey, window_start: float) -> list[DriftResult]:
        """Label (prior) drift of one window against the baseline, [] when unknown."""
        window = self._find(key, window_start)
        if window is None:
            return []
        return label_drift(self.baselines(key.model, key.version), window)

    def _result(self, key_id: int, start: float, window: WindowTruth) -> LabelUpdate:
        key = self._keys[key_id]
        return label_update(key, start, window, self.baselines(key.model, key.version))

    def _find(self, key: WindowKey, window_start: float) -> WindowTruth | None:
        key_id = self._key_ids.get(key)
        return None if key_id is None else self._windows.get(key_id, {}).get(float(window_start))

    def _calibration_map(self, model: str, version: str) -> CalibrationMap | None:
        pair = (model, version)
        if pair not in self._maps:
            baseline = self.baselines(model, version)
            raw = baseline.calibration.get("cbpe_map") if baseline is not None else None
            try:
                self._maps[pair] = CalibrationMap.from_dict(raw) if raw else None
            except (KeyError, TypeError, ValueError):
                self._maps[pair] = None
        return self._maps[pair]

    def estimate(self, key: WindowKey, window_start: float) -> dict[str, MetricValue]:
        """CBPE estimate (binary models with scores) of a window, from its scores alone.

        Uses the baseline's calibration map; without one the scores are taken as
        calibrated probabilities. Empty when the window has no scored predictions.
        """
        window = self._find(key, window_start)
        if window is None or window.predictions is None or window.predictions.n == 0:
            return {}
        cmap = self._calibration_map(key.model, key.version) or _IDENTITY_MAP
        return {name: MetricValue(*e) for name, e in estimate_performance(window.predictions, cmap).items()}

    # -- checkpoints ---------------------------------------------------------------------

    def to_state(self) -> bytes:
        """Everything needed to resume exactly: pending store, early labels, windows,
        detectors. orjson bytes (floats NaN/inf as null)."""
        state = {
            "version": _STATE_VERSION,
            "now": self._now if math.isfinite(self._now) else None,
            "label_now": self._label_now if math.isfinite(self._label_now) else None,
            "keys": [list(k) for k in self._keys],
            "classes": self._classes,
            "pending": self._pending.to_state(),
            "early": [[pid, *entry] for pid, entry in self._early.items()],
            "joined": [[pid, t] for pid, t in self._joined.items()],
            "windows": [[k, s, w.to_state()] for k, ws in self._windows.items() for s, w in ws.items()],
            **self._streams.to_state(),
        }
        return orjson.dumps(state, option=orjson.OPT_SERIALIZE_NUMPY)

    def from_state(self, data: bytes) -> None:
        """Restore what :meth:`to_state` wrote, replacing the current state."""
        state = orjson.loads(data)
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"ground-truth state version {state.get('version')!r} is not {_STATE_VERSION}")
        self._reset()
        self._now = -math.inf if state["now"] is None else float(state["now"])
        label_now = state.get("label_now")
        self._label_now = -math.inf if label_now is None else float(label_now)
        for key in state["keys"]:
            self._key_id(WindowKey(*key))
        for name in state["classes"]:
            self._class_id(name)
        self._pending = PendingPredictions.from_state(state["pending"], self.settings.max_pending)
        self._early.update((pid, (label, float(t), model, float(arrived))) for pid, label, t, model, arrived in state["early"])
        self._joined.update((pid, float(t)) for pid, t in state["joined"])
        for key_id, start, window in state["windows"]:
            self._windows.setdefault(int(key_id), {})[float(start)] = WindowTruth.from_state(window)
        self._streams.restore(state["detectors"], state.get("waiting", []), state.get("fed_until", []),
                              state.get("alarms", []), state.get("untaken", []))
        self._gauge()




def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


_FALLBACK_MODEL = ModelSettings(name="unconfigured")
# Without a baseline map, scores are taken as calibrated: each bin at its midpoint.
_IDENTITY_MAP = CalibrationMap((SCORE_EDGES[:-1] + SCORE_EDGES[1:]) / 2)
