"""Mergeable window aggregates and event-time tumbling windows.

A :class:`WindowAggregate` is a pure fold over batches (``add``), ``merge`` of two
partial aggregates equals the aggregate of all their events, and it round-trips
through ``to_state``/``from_state``. What it keeps is bounded by the number of
features and bins, never by traffic:

* counts per reference bin of every numeric and categorical feature, the
  prediction and the score, plus missing counts;
* sums and extremes of numeric features (for means and ranges);
* a bounded uniform sample of rows chosen by **bottom-k** on a deterministic hash of
  each event's position, so that the sample of a merged window is exactly the
  sample of the union, and a replay after a crash selects the same rows.

:class:`Windows` assigns events to tumbling windows per (model, version, segment),
tracks a watermark (the slowest partition's highest event time minus the allowed
lateness) and hands back the windows the watermark has passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.baseline import Baseline, FeatureProfile
from monitor.batch import PredictionBatch
from monitor.clock import PartitionClocks
from monitor.events import category_text
from monitor.results import WindowKey

__all__ = ["Layout", "WindowAggregate", "Windows", "sample_keys", "window_start"]


def window_start(event_times: np.ndarray, size: float) -> np.ndarray:
    """Start of the tumbling window of each event time (epoch seconds).

    >>> window_start(np.array([0.0, 299.9, 300.0]), 300).tolist()
    [0.0, 0.0, 300.0]
    """
    return np.floor(np.asarray(event_times, dtype=np.float64) / size) * size


def sample_keys(positions: np.ndarray) -> np.ndarray:
    """SplitMix64 of each event position: uniform, deterministic sampling priorities.

    >>> int(sample_keys(np.array([1]))[0]) == int(sample_keys(np.array([1]))[0])
    True
    """
    z = np.asarray(positions, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class _Categorical:
    profile: FeatureProfile
    known: pd.Index
    bin_of_known: np.ndarray  # index into known_categories -> bin

    @classmethod
    def of(cls, profile: FeatureProfile) -> _Categorical:
        k = len(profile.categories)
        known = pd.Index(profile.known_categories, dtype=object)
        return cls(profile, known, np.minimum(np.arange(len(known)), k))

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Bin of each raw value; -1 for missing."""
        try:
            codes = self.known.get_indexer(values)
        except TypeError:
            # Lists or objects where a category belongs: treated as missing (the decoder counts them).
            values = np.array([v if isinstance(v, (str, int, float, bool)) else None for v in values], dtype=object)
            codes = self.known.get_indexer(values)
        unseen_bin = len(self.profile.categories) + 1
        bins = self.bin_of_known[np.maximum(codes, 0)] if len(self.known) else np.zeros(len(codes), dtype=np.int64)
        unknown = np.flatnonzero(codes < 0)
        if unknown.size:
            # Only values not found need a closer look: missing, unseen, or a boolean or
            # number where the baseline saw its text.
            candidates = values[unknown]
            missing = pd.isna(candidates)
            retry = np.array([not m and not isinstance(v, str) for v, m in zip(candidates, missing)], dtype=bool)
            found = np.full(unknown.size, -1, dtype=np.int64)
            if retry.any():
                texts = np.array([category_text(v) for v in candidates[retry]], dtype=object)
                found[retry] = self.known.get_indexer(texts)
            bins[unknown] = np.where(found >= 0, self.bin_of_known[np.maximum(found, 0)] if len(self.known) else 0, unseen_bin)
            bins[unknown[missing]] = -1
        return bins


# Up to this many bin edges per feature, numeric values are binned by comparisons.
_MAX_COMPARED_EDGES = 48


class Layout:
    """How the columns of one model version map to reference bins.

    Built once per baseline; shared by every window of that model version.
    """

    def __init__(self, baseline: Baseline, sample_size: int, max_categories: int = 50) -> None:
        self.baseline = baseline
        self.sample_size = sample_size
        self.numeric_names = baseline.numeric_names
        self.categorical_names = baseline.categorical_names
        numeric = [baseline.features[n] for n in self.numeric_names]
        self.numeric_edges = [p.edges for p in numeric]
        sizes = np.array([len(e) + 1 for e in self.numeric_edges], dtype=np.int64)
        self.numeric_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # Edges of every feature side by side, padded with NaN (never <= a value), for
        # the comparison binning of _numeric_bins; None when some feature has too many.
        widest = max((len(e) for e in self.numeric_edges), default=0)
        self._edge_matrix: np.ndarray | None = None
        if widest <= _MAX_COMPARED_EDGES:
            self._edge_matrix = np.full((len(self.numeric_edges), widest), np.nan)
            for j, column_edges in enumerate(self.numeric_edges):
                self._edge_matrix[j, : len(column_edges)] = column_edges
        self.categorical = [_Categorical.of(baseline.features[n]) for n in self.categorical_names]
        cat_sizes = np.array([p.profile.n_bins for p in self.categorical], dtype=np.int64)
        self.categorical_offsets = np.concatenate([[0], np.cumsum(cat_sizes)]).astype(np.int64)
        self.prediction = _Categorical.of(baseline.prediction) if baseline.prediction is not None and baseline.prediction.kind == "categorical" else None
        self.prediction_edges = (
            baseline.prediction.edges if baseline.prediction is not None and baseline.prediction.kind == "numeric" else None
        )
        self.score_edges = baseline.score.edges if baseline.score is not None else None
        self.max_categories = max_categories
        self.reference_matrix = self._reference_matrix(baseline)

    def _reference_matrix(self, baseline: Baseline) -> np.ndarray | None:
        """The baseline's bounded multivariate sample of the numeric features (rows x features)."""
        rows = baseline.reference_rows
        if not rows or any(name not in rows for name in self.numeric_names) or not self.numeric_names:
            return None
        return np.array([[np.nan if v is None else v for v in rows[name]] for name in self.numeric_names], dtype=np.float64).T

    def _numeric_bins(self, numeric: np.ndarray) -> np.ndarray:
        """Bin of every numeric value within its feature: ``searchsorted(edges, v, side="right")``.

        With few edges (the default ten bins have nine) counting the edges at or below
        each value, one comparison of the whole matrix per edge rank, is several times
        faster than a binary search per column; both give the same bins for every
        non-NaN value (NaN bins are overwritten by the caller).
        """
        edges = self._edge_matrix
        if edges is None:
            bins = np.empty(numeric.shape, dtype=np.int64)
            for j, column_edges in enumerate(self.numeric_edges):
                bins[:, j] = np.searchsorted(column_edges, numeric[:, j], side="right")
            return bins
        counted = np.zeros(numeric.shape, dtype=np.uint8)
        at_or_above = np.empty(numeric.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            for rank in range(edges.shape[1]):
                np.greater_equal(numeric, edges[:, rank], out=at_or_above)
                np.add(counted, at_or_above, out=counted, casting="unsafe")
        return counted.astype(np.int64)

    @property
    def prediction_bins(self) -> int:
        if self.prediction is not None:
            return self.prediction.profile.n_bins
        return 0 if self.prediction_edges is None else len(self.prediction_edges) + 1

    @property
    def score_bins(self) -> int:
        return 0 if self.score_edges is None else len(self.score_edges) + 1

    def empty(self) -> WindowAggregate:
        n_num, n_cat = len(self.numeric_names), len(self.categorical_names)
        return WindowAggregate(
            n=0,
            start=math.inf,
            end=-math.inf,
            numeric_counts=np.zeros(int(self.numeric_offsets[-1]), dtype=np.int64),
            numeric_missing=np.zeros(n_num, dtype=np.int64),
            numeric_sum=np.zeros(n_num),
            numeric_min=np.full(n_num, np.inf),
            numeric_max=np.full(n_num, -np.inf),
            categorical_counts=np.zeros(int(self.categorical_offsets[-1]), dtype=np.int64),
            categorical_missing=np.zeros(n_cat, dtype=np.int64),
            prediction_counts=np.zeros(self.prediction_bins, dtype=np.int64),
            score_counts=np.zeros(self.score_bins, dtype=np.int64),
            sample_keys=np.empty(0, dtype=np.uint64),
            sample=np.empty((0, n_num + 2)),
        )

    def bin_batch(self, batch: PredictionBatch) -> BinnedBatch:
        """Bin every column of ``batch`` once; windows then only add up rows."""
        numeric = batch.numeric
        n = len(batch)
        num_bins = self._numeric_bins(numeric)
        num_missing = np.isnan(numeric)
        num_infinite = np.isinf(numeric)  # counted on their own (a data-quality signal), never binned
        num_bins += self.numeric_offsets[:-1]
        num_bins[num_missing | num_infinite] = -1
        cat_bins = np.empty((n, len(self.categorical)), dtype=np.int64)
        for j, coder in enumerate(self.categorical):
            bins = coder.bins(batch.categorical[:, j])
            cat_bins[:, j] = np.where(bins >= 0, bins + self.categorical_offsets[j], -1)
        if self.prediction is not None:
            prediction_bins = self.prediction.bins(batch.predictions.astype(object))
            prediction_values = np.full(n, np.nan)
        elif self.prediction_edges is not None:
            prediction_values = batch.predictions.astype(np.float64)
            prediction_bins = np.searchsorted(self.prediction_edges, prediction_values, side="right")
            prediction_bins[np.isnan(prediction_values)] = -1
        else:
            prediction_bins = np.full(n, -1)
            prediction_values = np.full(n, np.nan)
        scores = batch.scores if batch.scores is not None else np.full(n, np.nan)
        if self.score_edges is not None:
            score_bins = np.searchsorted(self.score_edges, scores, side="right")
            score_bins[np.isnan(scores)] = -1
        else:
            score_bins = np.full(n, -1)
        sample_rows = np.column_stack([numeric, prediction_values, scores]) if n else np.empty((0, numeric.shape[1] + 2))
        return BinnedBatch(
            numeric=numeric, numeric_bins=num_bins, numeric_missing=num_missing | num_infinite,
            numeric_infinite=num_infinite,
            categorical_bins=cat_bins, prediction_bins=prediction_bins, score_bins=score_bins,
            sample_rows=sample_rows, keys=sample_keys(batch.offsets), event_times=batch.event_times,
        )


@dataclass(slots=True)
class BinnedBatch:
    numeric: np.ndarray
    numeric_bins: np.ndarray
    numeric_missing: np.ndarray  # NaN or ±inf: left out of sums and extremes
    numeric_infinite: np.ndarray
    categorical_bins: np.ndarray
    prediction_bins: np.ndarray
    score_bins: np.ndarray
    sample_rows: np.ndarray
    keys: np.ndarray
    event_times: np.ndarray


def _bincount(bins: np.ndarray, size: int) -> np.ndarray:
    flat = bins.ravel()
    return np.bincount(flat[flat >= 0], minlength=size)[:size] if size else np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class WindowAggregate:
    """Mergeable statistics of one window (see module docstring)."""

    n: int
    start: float
    end: float
    numeric_counts: np.ndarray
    numeric_missing: np.ndarray
    numeric_sum: np.ndarray
    numeric_min: np.ndarray
    numeric_max: np.ndarray
    categorical_counts: np.ndarray
    categorical_missing: np.ndarray
    prediction_counts: np.ndarray
    score_counts: np.ndarray
    sample_keys: np.ndarray
    sample: np.ndarray  # rows x (numeric features + prediction + score)
    # ±inf values per numeric feature (not binned, not missing); zeros in older checkpoints.
    numeric_nonfinite: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.numeric_nonfinite is None:
            self.numeric_nonfinite = np.zeros(len(self.numeric_missing), dtype=np.int64)

    def add(self, binned: BinnedBatch, rows: np.ndarray | slice, sample_size: int) -> None:
        """Fold rows of a binned batch into this aggregate."""
        numeric = binned.numeric[rows]
        if len(numeric) == 0:
            return
        self.n += len(numeric)
        times = binned.event_times[rows]
        self.start = min(self.start, float(times.min()))
        self.end = max(self.end, float(times.max()))
        self.numeric_counts += _bincount(binned.numeric_bins[rows], len(self.numeric_counts))
        missing = binned.numeric_missing[rows]
        infinite = binned.numeric_infinite[rows]
        self.numeric_missing += missing.sum(axis=0) - infinite.sum(axis=0)
        self.numeric_nonfinite += infinite.sum(axis=0)
        if numeric.shape[1]:
            clean = np.where(missing, 0.0, numeric)
            self.numeric_sum += clean.sum(axis=0)
            self.numeric_min = np.fmin(self.numeric_min, np.where(missing, np.inf, numeric).min(axis=0))
            self.numeric_max = np.fmax(self.numeric_max, np.where(missing, -np.inf, numeric).max(axis=0))
        self.categorical_counts += _bincount(binned.categorical_bins[rows], len(self.categorical_counts))
        cat_bins = binned.categorical_bins[rows]
        self.categorical_missing += (cat_bins < 0).sum(axis=0)
        self.prediction_counts += _bincount(binned.prediction_bins[rows], len(self.prediction_counts))
        self.score_counts += _bincount(binned.score_bins[rows], len(self.score_counts))
        self._sample(binned.keys[rows], binned.sample_rows[rows], sample_size)

    def _sample(self, keys: np.ndarray, rows: np.ndarray, sample_size: int) -> None:
        if len(self.sample_keys) >= sample_size:
            # Only rows with a smaller key than the current k-th can enter.
            keep = keys < self.sample_keys.max()
            keys, rows = keys[keep], rows[keep]
            if len(keys) == 0:
                return
        all_keys = np.concatenate([self.sample_keys, keys])
        all_rows = np.concatenate([self.sample, rows])
        if len(all_keys) > sample_size:
            chosen = np.argpartition(all_keys, sample_size - 1)[:sample_size]
            all_keys, all_rows = all_keys[chosen], all_rows[chosen]
        order = np.argsort(all_keys, kind="stable")
        self.sample_keys, self.sample = all_keys[order], all_rows[order]

    def merge(self, other: WindowAggregate, sample_size: int) -> WindowAggregate:
        """A new aggregate equal to one that saw the events of both."""
        merged = WindowAggregate(
            n=self.n + other.n,
            start=min(self.start, other.start),
            end=max(self.end, other.end),
            numeric_counts=self.numeric_counts + other.numeric_counts,
            numeric_missing=self.numeric_missing + other.numeric_missing,
            numeric_nonfinite=self.numeric_nonfinite + other.numeric_nonfinite,
            numeric_sum=self.numeric_sum + other.numeric_sum,
            numeric_min=np.fmin(self.numeric_min, other.numeric_min),
            numeric_max=np.fmax(self.numeric_max, other.numeric_max),
            categorical_counts=self.categorical_counts + other.categorical_counts,
            categorical_missing=self.categorical_missing + other.categorical_missing,
            prediction_counts=self.prediction_counts + other.prediction_counts,
            score_counts=self.score_counts + other.score_counts,
            sample_keys=self.sample_keys.copy(),
            sample=self.sample.copy(),
        )
        merged._sample(other.sample_keys, other.sample, sample_size)
        return merged

    _ARRAYS = (
        "numeric_counts", "numeric_missing", "numeric_sum", "numeric_min", "numeric_max",
        "categorical_counts", "categorical_missing", "prediction_counts", "score_counts",
        "sample_keys", "sample", "numeric_nonfinite",
    )

    def to_state(self) -> dict[str, object]:
        """A JSON-friendly dict (arrays as dtype/shape/bytes-hex) that :meth:`from_state` inverts."""
        state: dict[str, object] = {"n": self.n, "start": self.start, "end": self.end}
        for name in self._ARRAYS:
            array = np.ascontiguousarray(getattr(self, name))
            state[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "data": array.tobytes().hex()}
        return state

    @classmethod
    def from_state(cls, state: dict[str, object]) -> WindowAggregate:
        arrays = {}
        for name in cls._ARRAYS:
            if name == "numeric_nonfinite" and name not in state:
                continue  # checkpoints written before the count existed
            spec = state[name]
            assert isinstance(spec, dict)
            arrays[name] = np.frombuffer(bytes.fromhex(spec["data"]), dtype=np.dtype(spec["dtype"])).reshape(spec["shape"]).copy()
        return cls(n=int(state["n"]), start=float(state["start"]), end=float(state["end"]), **arrays)  # type: ignore[arg-type]


class Windows:
    """Open tumbling windows of every (model, version, segment) and their watermarks.

    Parameters
    ----------
    size
        Window length in seconds (event time).
    allowed_lateness
        How far behind the highest event time a window stays open.
    max_open_per_key
        Cap on open windows per key; past it the oldest is closed early.
    count_trigger
        When > 0, a window also closes as soon as it holds this many events.
    """

    def __init__(
        self, size: float, allowed_lateness: float, max_open_per_key: int = 8, count_trigger: int = 0,
        clocks: PartitionClocks | None = None,
    ) -> None:
        self.size = float(size)
        self.allowed_lateness = float(allowed_lateness)
        self.clocks = clocks or PartitionClocks(allowed_lateness)
        # Enough open windows for a partition paused at the maximum lead, so that reading
        # in step never closes a window early.
        in_step = math.ceil(self.clocks.max_lead / self.size) + 2
        self.max_open_per_key = max(max_open_per_key, in_step)
        self.count_trigger = count_trigger
        self.open: dict[tuple[WindowKey, float], WindowAggregate] = {}
        # Start of the latest window already closed per key: events before it are late.
        self.closed_before: dict[WindowKey, float] = {}

    def watermark(self, model: str, version: str) -> float:
        """Event time up to which windows of this model version are complete (see ``monitor.clock``)."""
        return self.clocks.watermark(model, version)

    def add(self, layout: Layout, batch: PredictionBatch) -> tuple[np.ndarray, list[tuple[WindowKey, float, WindowAggregate]]]:
        """Fold ``batch`` into its windows.

        Returns
        -------
        late
            Boolean mask of rows that arrived after their window closed (not counted).
        closed
            Windows closed early because of the count trigger or the open-window cap.
        """
        if len(batch) == 0:
            return np.zeros(0, dtype=bool), []
        binned = layout.bin_batch(batch)
        starts = window_start(batch.event_times, self.size)
        # Lateness is judged against the watermark before the batch; windows close only
        # after the whole batch is in (``due``), so a window's contents do not depend on
        # how polls cut a partition's stream into batches.
        late = starts + self.size <= self.watermark(batch.model, batch.version)
        segments = np.asarray(batch.segments, dtype=object)
        closed: list[tuple[WindowKey, float, WindowAggregate]] = []
        # Group rows by (segment, window start) with one sort instead of a loop per row.
        unique_segments, segment_codes = np.unique(segments, return_inverse=True)
        group = segment_codes.astype(np.float64) * 1e12 + starts  # window starts are < 1e11
        order = np.argsort(group, kind="stable")
        boundaries = np.flatnonzero(np.diff(group[order])) + 1
        for rows in np.split(order, boundaries):
            segment = unique_segments[segment_codes[rows[0]]]
            start = float(starts[rows[0]])
            key = WindowKey(batch.model, batch.version, segment)
            if start < self.closed_before.get(key, -math.inf):
                late[rows] = True
                continue
            rows = rows[~late[rows]]
            if len(rows) == 0:
                continue
            aggregate = self.open.get((key, start))
            if aggregate is None:
                aggregate = self.open[(key, start)] = layout.empty()
            aggregate.add(binned, rows, layout.sample_size)
            if self.count_trigger and aggregate.n >= self.count_trigger:
                closed.append(self._close(key, start))
        partitions = (batch.offsets >> 40) if len(batch.offsets) == len(batch) else np.zeros(len(batch), dtype=np.int64)
        self.clocks.observe(batch.model, batch.version, partitions, batch.event_times)
        closed.extend(self._enforce_cap(batch.model, batch.version))
        return late, closed

    def _close(self, key: WindowKey, start: float) -> tuple[WindowKey, float, WindowAggregate]:
        aggregate = self.open.pop((key, start))
        self.closed_before[key] = max(self.closed_before.get(key, -math.inf), start + self.size if not self.count_trigger else start)
        return key, start, aggregate

    def _enforce_cap(self, model: str, version: str) -> list[tuple[WindowKey, float, WindowAggregate]]:
        per_key: dict[WindowKey, list[float]] = {}
        for key, start in self.open:
            if key.model == model and key.version == version:
                per_key.setdefault(key, []).append(start)
        closed = []
        for key, starts in per_key.items():
            for start in sorted(starts)[: max(0, len(starts) - self.max_open_per_key)]:
                closed.append(self._close(key, start))
        return closed

    def due(self) -> list[tuple[WindowKey, float, WindowAggregate]]:
        """Close and return every window whose end the watermark has passed."""
        due = [
            (key, start) for key, start in self.open
            if start + self.size <= self.watermark(key.model, key.version)
        ]
        return [self._close(key, start) for key, start in sorted(due, key=lambda ks: ks[1])]

    def close_all(self) -> list[tuple[WindowKey, float, WindowAggregate]]:
        """Close every open window (shutdown)."""
        return [self._close(key, start) for key, start in sorted(self.open, key=lambda ks: ks[1])]

    def to_state(self) -> dict[str, object]:
        return {
            "open": [[list(key), start, agg.to_state()] for (key, start), agg in self.open.items()],
            "clocks": self.clocks.to_state(),
            "closed_before": [[list(key), t] for key, t in self.closed_before.items()],
        }

    def restore(self, state: dict[str, object], max_event_time: float = math.inf) -> int:
        """Load saved windows and clocks; returns how many poisoned clocks were dropped
        (event times above ``max_event_time``, from wrong clocks before they were refused)."""
        self.open = {(WindowKey(*key), float(start)): WindowAggregate.from_state(agg) for key, start, agg in state["open"]}  # type: ignore[union-attr]
        self.closed_before = {WindowKey(*key): float(t) for key, t in state["closed_before"]}  # type: ignore[union-attr]
        if "clocks" in state:
            return self.clocks.restore(state["clocks"], max_event_time)  # type: ignore[arg-type]
        return self.clocks.restore_legacy(state.get("partition_max", []), max_event_time)  # type: ignore[arg-type]
