"""Sequential alarms on the error streams, as results in their own right.

Each (model, version, segment) has one error stream (one error per joined label,
in join order) watched by ADWIN, Page–Hinkley and, for classifiers, DDM. An
alarm is a :class:`ConceptAlarm`: where (the key), which detector, when (the
latest event time seen when it was raised), at which position of the stream, and
the detector's statistic at that moment. :meth:`GroundTruth.take_alarms` hands
new alarms to the pipeline, which exports when each stream last alarmed
(``driftd_concept_drift_last_alarm_age_seconds``) and stores them
(``concept_alarms`` table, :meth:`monitor.store.Store.alarms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.sequential import ADWIN, DDM, PageHinkley, SequentialDetector

__all__ = ["ConceptAlarm", "default_detectors"]


@dataclass(frozen=True, slots=True)
class ConceptAlarm:
    """A sequential detector's alarm on the error stream of one (model, version, segment)."""

    model: str
    version: str
    segment: str
    detector: str
    event_time: float  # event time of the prediction whose error raised the alarm
    errors_seen: int  # 1-based position of the alarming error in the key's error stream
    statistic: float = math.nan  # the detector's statistic at the alarm (SequentialDetector.statistic)


def default_detectors(task: str) -> list[SequentialDetector]:
    """ADWIN and Page–Hinkley (errors going up); DDM too for classifiers (0/1 errors)."""
    # DDM assumes a 0/1 error stream; regression feeds absolute errors to ADWIN and PH only.
    detectors: list[SequentialDetector] = [ADWIN(), PageHinkley(mode="up")]
    if task != "regression":
        detectors.append(DDM())
    return detectors
