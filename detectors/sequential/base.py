"""The base every sequential drift detector shares: update, alarm flag, state.

A sequential detector watches a stream of numbers (here: the per-event error of a
model once its labels join) and raises ``drift_detected`` right after the update
on which it decides that the stream's mean moved. Following river's convention,
the update *after* an alarm starts the detector afresh (``_reset``), so alarm
indices of driftd and river agree on the same stream.

Constructor arguments are the configuration and are stored under the same names;
everything derived lives in ``_reset``. ``to_state``/``from_state`` give a
JSON-safe dict (checkpoints never pickle).
"""

from __future__ import annotations

import abc
import inspect
import math
from typing import Any, ClassVar

import numpy as np

__all__ = ["SequentialDetector", "decode_float", "encode_float"]


def encode_float(value: float | None) -> float | str | None:
    """A float as JSON can carry it: infinities and NaN become strings."""
    if value is None or math.isfinite(value):
        return value
    return repr(float(value))  # 'inf', '-inf', 'nan'


def decode_float(value: float | str | None) -> float | None:
    return None if value is None else float(value)


class SequentialDetector(abc.ABC):
    """A stateful change detector on a stream of numbers.

    Subclasses implement :meth:`update` (one value) and the state hooks
    :meth:`_get_state` / :meth:`_set_state`; they may override :meth:`update_many`
    with a vectorised version that gives the same alarms.
    """

    #: Name under which the detector is exported and checkpointed.
    name: ClassVar[str]
    #: Whether the detector only accepts 0/1 input (an error indicator).
    binary_input: ClassVar[bool] = False

    def __init__(self) -> None:
        self._drift_detected = False
        #: Statistic of each alarm of the last :meth:`update_many` call, in index order.
        self.alarm_statistics = np.empty(0)

    def _reset(self) -> None:
        """Forget the stream; derived state is rebuilt here."""
        self._drift_detected = False

    @property
    def drift_detected(self) -> bool:
        """Whether the last update raised an alarm."""
        return self._drift_detected

    @property
    def statistic(self) -> float:
        """The value the last update compared with the alarm threshold (NaN if none);
        read right after an alarm, it says how far the stream moved."""
        return math.nan

    @abc.abstractmethod
    def update(self, x: float) -> SequentialDetector:
        """Feed one value; returns ``self`` so that calls chain."""

    def update_many(self, values: np.ndarray) -> np.ndarray:
        """Feed a batch of values in order; the indices (into ``values``) of the alarms.

        After the call the detector is in the state that ``len(values)`` calls of
        :meth:`update` would leave, including ``drift_detected`` of the last value;
        :attr:`alarm_statistics` holds the :attr:`statistic` at each alarm.
        """
        alarms, statistics = [], []
        for i, x in enumerate(np.asarray(values, dtype=np.float64).tolist()):
            self.update(x)
            if self._drift_detected:
                alarms.append(i)
                statistics.append(self.statistic)
        self.alarm_statistics = np.asarray(statistics, dtype=np.float64)
        return np.asarray(alarms, dtype=np.int64)

    # -- configuration and checkpoints -------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def params(self) -> dict[str, Any]:
        """The constructor arguments this detector was built with."""
        return {name: getattr(self, name) for name in self._param_names()}

    def clone(self) -> SequentialDetector:
        """A fresh detector with the same configuration."""
        return type(self)(**self.params())

    @abc.abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """Derived state as JSON-safe values."""

    @abc.abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned."""

    def to_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot: detector name, parameters and state."""
        return {
            "detector": self.name,
            "params": self.params(),
            "drift_detected": self._drift_detected,
            "state": self._get_state(),
        }

    @classmethod
    def from_state(cls, snapshot: dict[str, Any]) -> SequentialDetector:
        """Rebuild a detector from :meth:`to_state`; continues exactly where it stopped."""
        if snapshot.get("detector") != cls.name:
            raise ValueError(
                f"state is for detector {snapshot.get('detector')!r}, not {cls.name!r}"
            )
        detector = cls(**snapshot["params"])
        detector._set_state(snapshot["state"])
        detector._drift_detected = bool(snapshot["drift_detected"])
        return detector

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
