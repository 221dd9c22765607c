"""Mergeable aggregates of realised performance (all JSON-safe through ``to_state``).

* :class:`BinaryCounts`: the 2x2 confusion counts around the positive class, the
  log-loss sums and, given the model's :class:`~detectors.score_bins.ScoreBins`,
  positives/negatives per score bin for ROC AUC;
* :class:`MulticlassCounts`: a confusion matrix over up to ``max_classes`` classes;
* :class:`RegressionSums`: count, sums of |e|, e^2 and e^4.

Each has ``merge``: two partial aggregates merged equal one that saw every event.
:mod:`detectors.performance` turns them into metrics with intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.score_bins import RankCounts, ScoreBins

__all__ = ["BinaryCounts", "MulticlassCounts", "RegressionSums"]

_EPS = float(np.finfo(np.float64).eps)


@dataclass(slots=True)
class BinaryCounts:
    """Confusion counts around the positive class, log-loss sums and rank counts."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    loss_sum: float = 0.0
    loss_sq_sum: float = 0.0
    n_scored: int = 0
    ranks: RankCounts | None = None

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def add(
        self, actual: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None = None,
        bins: ScoreBins | None = None,
    ) -> None:
        """``actual``/``predicted``: True where the label / prediction is the positive
        class; ``scores``: P(positive), NaN where unknown (left out of log loss and
        AUC); ``bins``: the model's score bins, to count scores for ROC AUC.

        Rank counts start only on counts that are still empty, so that a window
        restored from a checkpoint without them never reports an AUC of part of
        its labels (it keeps the calibration histogram's AUC instead).
        """
        actual = np.asarray(actual, dtype=bool)
        predicted = np.asarray(predicted, dtype=bool)
        if scores is not None and bins is not None and self.ranks is None and self.n == 0:
            self.ranks = RankCounts.empty(bins)
        self.tp += int(np.sum(actual & predicted))
        self.fp += int(np.sum(~actual & predicted))
        self.fn += int(np.sum(actual & ~predicted))
        self.tn += int(np.sum(~actual & ~predicted))
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64)
            known = np.isfinite(scores)
            p = np.clip(scores[known], _EPS, 1 - _EPS)
            loss = -np.where(actual[known], np.log(p), np.log1p(-p))
            self.loss_sum += float(loss.sum())
            self.loss_sq_sum += float(np.sum(loss * loss))
            self.n_scored += int(known.sum())
            if self.ranks is not None and bins is not None:
                self.ranks.add(bins, scores, actual)

    def merge(self, other: BinaryCounts) -> BinaryCounts:
        """Both inputs' events; rank counts survive only if every non-empty side has them."""
        sides = [c for c in (self, other) if c.n]
        ranked = [c.ranks for c in sides if c.ranks is not None]
        ranks = None
        if ranked and len(ranked) == len(sides):
            ranks = ranked[0] if len(ranked) == 1 else ranked[0].merge(ranked[1])
        scalars = [a + b for a, b in zip(self._scalars(), other._scalars())]
        return BinaryCounts(*scalars, ranks=ranks)

    def _scalars(self) -> tuple:
        return self.tp, self.fp, self.fn, self.tn, self.loss_sum, self.loss_sq_sum, self.n_scored

    def to_state(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__ if name != "ranks"}
        state["ranks"] = None if self.ranks is None else self.ranks.to_state()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BinaryCounts:
        state = dict(state)
        ranks = state.pop("ranks", None)  # absent from checkpoints before adaptive bins
        return cls(**state, ranks=None if ranks is None else RankCounts.from_state(ranks))


@dataclass(slots=True)
class MulticlassCounts:
    """A confusion matrix (rows: label, columns: prediction) over interned classes.

    Classes past ``max_classes`` share the last slot, ``"__other__"``.
    """

    max_classes: int = 50
    classes: list[str] = field(default_factory=list)
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))

    @property
    def n(self) -> int:
        return int(self.matrix.sum())

    def _codes(self, labels: list[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        for label in labels:
            if label not in index:
                if len(self.classes) < self.max_classes - 1:
                    index[label] = len(self.classes)
                    self.classes.append(label)
                else:
                    if "__other__" not in index:
                        index["__other__"] = len(self.classes)
                        self.classes.append("__other__")
                    index[label] = index["__other__"]
        k = len(self.classes)
        if self.matrix.shape[0] < k:
            grown = np.zeros((k, k), np.int64)
            grown[: self.matrix.shape[0], : self.matrix.shape[1]] = self.matrix
            self.matrix = grown
        return np.fromiter((index[label] for label in labels), np.int64, len(labels))

    def add(self, actual: list[str], predicted: list[str]) -> None:
        rows, cols = self._codes(list(actual)), self._codes(list(predicted))
        np.add.at(self.matrix, (rows, cols), 1)

    def merge(self, other: MulticlassCounts) -> MulticlassCounts:
        """Both inputs' events; ``other``'s classes are interned after this one's."""
        merged = MulticlassCounts(self.max_classes, list(self.classes), self.matrix.copy())
        if other.classes:
            codes = merged._codes(list(other.classes))
            np.add.at(merged.matrix, (codes[:, None], codes[None, :]), other.matrix)
        return merged

    def to_state(self) -> dict[str, Any]:
        return {"max_classes": self.max_classes, "classes": self.classes, "matrix": self.matrix.tolist()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MulticlassCounts:
        k = len(state["classes"])
        matrix = np.asarray(state["matrix"], np.int64).reshape(k, k)
        return cls(int(state["max_classes"]), list(state["classes"]), matrix)


@dataclass(slots=True)
class RegressionSums:
    """Count and power sums of the errors ``y - y_hat``."""

    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    quad_sum: float = 0.0

    def add(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        error = np.asarray(actual, np.float64) - np.asarray(predicted, np.float64)
        error = error[np.isfinite(error)]
        square = error * error
        self.n += len(error)
        self.abs_sum += float(np.abs(error).sum())
        self.sq_sum += float(square.sum())
        self.quad_sum += float(np.sum(square * square))

    def merge(self, other: RegressionSums) -> RegressionSums:
        return RegressionSums(
            self.n + other.n, self.abs_sum + other.abs_sum, self.sq_sum + other.sq_sum, self.quad_sum + other.quad_sum
        )

    def to_state(self) -> dict[str, Any]:
        return {"n": self.n, "abs_sum": self.abs_sum, "sq_sum": self.sq_sum, "quad_sum": self.quad_sum}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RegressionSums:
        return cls(**state)
