"""Which predictions get explained: the sampling policy and the per-model budget.

A prediction is explained when it is picked for one of these reasons (most specific
first; the stored ``reason`` is the first that applies):

``wrong``
    its label arrived and the prediction was wrong (``ExplainService.offer_wrong``);
``near_threshold``
    a binary score within ``near_threshold_band`` of the decision threshold;
``drifted_window``
    the model's window is drifting and the row's sampling key is below
    ``drifted_window_rate``;
``base_rate``
    the row's sampling key is below ``base_rate``.

The sampling key is a deterministic hash of ``prediction_id`` mapped to [0, 1), so a
replay of the same topic picks the same rows, and two daemons sharing a topic agree.
The hash (64-bit FNV-1a over the id's code points, then the splitmix64 finaliser) is
vectorised over a batch: one numpy pass per character position, never a Python loop
per event.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "REASONS",
    "SamplingPolicy",
    "TokenBucket",
    "id_hashes",
    "most_important",
    "sampling_keys",
]

# Reason codes in increasing priority; code 0 means "not picked".
REASONS = ("", "base_rate", "drifted_window", "near_threshold", "wrong")
BASE_RATE, DRIFTED_WINDOW, NEAR_THRESHOLD, WRONG = 1, 2, 3, 4

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def id_hashes(ids: Sequence[str]) -> np.ndarray:
    """64-bit hashes of prediction ids, the same in every process and every run.

    >>> bool(id_hashes(["a", "b", "a"])[0] == id_hashes(["a"])[0]), len(set(id_hashes(["a", "b"])))
    (True, 2)
    """
    if len(ids) == 0:
        return np.empty(0, dtype=np.uint64)
    h = np.full(len(ids), _FNV_OFFSET, dtype=np.uint64)
    columns, padded = _code_point_columns(ids)
    for column in columns.astype(np.uint64):
        if not padded:
            h ^= column
            h *= _FNV_PRIME
            continue
        # numpy pads shorter strings with NUL; skipping NULs keeps a string's hash
        # independent of the longest id in its batch.
        np.copyto(h, (h ^ column) * _FNV_PRIME, where=column != 0)
    # splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def _code_point_columns(ids: Sequence[str]) -> tuple[np.ndarray, bool]:
    """Code points of the ids, one row per character position, shape (width, n), and
    whether shorter ids are padded with NUL (which the hash skips).

    Ids of one length (UUIDs, most id formats) are read from one UTF-32 encoding of
    the joined ids, several times faster than building a numpy string array; ids of
    different lengths, or containing NUL, take the general path.
    """
    n = len(ids)
    flat = np.frombuffer(("\0".join(ids) + "\0").encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if len(flat) % n == 0:
        rows = flat.reshape(n, len(flat) // n)
        # Every row ends in its separator and no id holds a NUL: the rows are the ids.
        if not rows[:, -1].any() and np.count_nonzero(flat) == len(flat) - n:
            return rows[:, :-1].T, False
    text = np.asarray(ids, dtype=str)
    return text.view(np.uint32).reshape(n, text.dtype.itemsize // 4).T, True


def sampling_keys(hashes: np.ndarray) -> np.ndarray:
    """Hashes mapped to uniform floats in [0, 1) (the top 53 bits)."""
    return (hashes >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass(frozen=True, slots=True)
class SamplingPolicy:
    """Picks rows of a batch to explain; see the module docstring for the reasons.

    Parameters
    ----------
    base_rate
        Share of all predictions explained.
    drifted_window_rate
        Share explained while the model's window is drifting.
    near_threshold_band
        Binary scores with ``|score - decision_threshold| <= band`` are all picked
        (0 disables).
    decision_threshold
        The model's score threshold.
    """

    base_rate: float
    drifted_window_rate: float
    near_threshold_band: float
    decision_threshold: float = 0.5

    def picks_all(self, drifted: bool) -> bool:
        """Whether every row is picked whatever its key (a rate of 1): then
        :meth:`reasons` needs no keys, and the ingest path hashes no ids unless the
        queue has room to choose among them.

        >>> SamplingPolicy(1.0, 0.05, 0.0).picks_all(False), SamplingPolicy(0.1, 1.0, 0.0).picks_all(False)
        (True, False)
        """
        return self.base_rate >= 1.0 or (drifted and self.drifted_window_rate >= 1.0)

    def reasons(
        self, keys: np.ndarray | None, scores: np.ndarray | None, drifted: bool, n: int | None = None
    ) -> np.ndarray:
        """Reason code per row (0 = not picked), from sampling keys and binary scores.

        ``keys`` may be None when :meth:`picks_all` holds (then ``n`` gives the rows).

        >>> policy = SamplingPolicy(0.1, 0.5, 0.05, 0.5)
        >>> policy.reasons(np.array([0.05, 0.3, 0.9, 0.9]), np.array([0.9, 0.9, 0.52, 0.7]), True).tolist()
        [1, 2, 3, 0]
        >>> SamplingPolicy(1.0, 0.0, 0.05).reasons(None, np.array([0.9, 0.52]), False, n=2).tolist()
        [1, 3]
        """
        if keys is None:
            if not self.picks_all(drifted) or n is None:
                raise ValueError("sampling keys are needed unless every row is picked (give n)")
            codes = np.full(n, BASE_RATE if self.base_rate >= 1.0 else DRIFTED_WINDOW, dtype=np.int8)
        else:
            codes = np.zeros(len(keys), dtype=np.int8)
            codes[keys < self.base_rate] = BASE_RATE
            if drifted:
                codes[(keys < self.drifted_window_rate) & (codes == 0)] = DRIFTED_WINDOW
        if scores is not None and self.near_threshold_band > 0:
            with np.errstate(invalid="ignore"):
                near = np.abs(scores - self.decision_threshold) <= self.near_threshold_band
            codes[near] = NEAR_THRESHOLD
        return codes


def most_important(codes: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` most important picked rows (reason first, then lowest key).

    When a budget or a full queue cuts a batch short, the rows kept are the same on
    every replay. O(n) (a partition, not a sort); the result is in row order.

    >>> codes = np.array([1, 0, 4, 3, 1, 2], dtype=np.int8)
    >>> most_important(codes, np.array([0.3, 0.0, 0.9, 0.5, 0.1, 0.2]), 3).tolist()
    [2, 3, 5]
    """
    picked = np.flatnonzero(codes)
    if k >= len(picked):
        return picked
    if k <= 0:
        return picked[:0]
    # Keys are in [0, 1): a higher reason code always wins, then the lower key.
    importance = codes[picked].astype(np.float64) - keys[picked]
    best = np.argpartition(-importance, k - 1)[:k]
    return np.sort(picked[best])


class TokenBucket:
    """A per-model budget of explanations per second (thread-safe).

    Holds at most ``burst`` tokens (default: one second's worth, at least 1) and
    refills at ``rate`` tokens per second of ``clock`` time.

    >>> now = [0.0]
    >>> bucket = TokenBucket(rate=10, clock=lambda: now[0])
    >>> bucket.take(25), bucket.take(1)
    (10, 0)
    >>> now[0] = 0.5
    >>> bucket.take(25)
    5
    """

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] | None = None) -> None:
        import time

        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        self._clock = clock or time.monotonic
        self._tokens = self.burst
        self._last = self._clock()
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Take up to ``wanted`` tokens; returns how many were granted (never waits)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
            self._last = now
            granted = min(int(wanted), int(math.floor(self._tokens)))
            self._tokens -= granted
            return max(0, granted)
