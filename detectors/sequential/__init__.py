"""Sequential change detectors on the per-event error stream.

One algorithm per module; each reproduces river 0.26.1's alarm indices.

>>> sorted(DETECTORS)
['adwin', 'ddm', 'page_hinkley']
"""

from __future__ import annotations

from typing import Any

from detectors.sequential.adwin import ADWIN
from detectors.sequential.base import SequentialDetector
from detectors.sequential.ddm import DDM
from detectors.sequential.page_hinkley import PageHinkley

__all__ = ["ADWIN", "DDM", "DETECTORS", "PageHinkley", "SequentialDetector", "load_detector"]

#: Detector classes by their exported name.
DETECTORS: dict[str, type[SequentialDetector]] = {
    cls.name: cls for cls in (ADWIN, PageHinkley, DDM)
}


def load_detector(snapshot: dict[str, Any]) -> SequentialDetector:
    """Rebuild any detector from its :meth:`~SequentialDetector.to_state` snapshot."""
    name = snapshot.get("detector")
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; allowed: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[name].from_state(snapshot)
